//! Databases that go away or run out of connections, and shutting down gracefully.

mod common;

use std::process::{Command, Stdio};

use common::{spawn_app, spawn_app_with, Stack};
use multidb::db::Read;

fn set_connections_allowed(database: &str, allowed: bool) {
    common::admin_execute(&format!(
        "ALTER DATABASE {database} ALLOW_CONNECTIONS {allowed}"
    ));
    if !allowed {
        common::admin_execute(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}' AND pid <> pg_backend_pid()"
        ));
    }
}

/// db1 on PostgreSQL: its server refuses and drops every connection, then comes back.
fn a_database_that_goes_away_gives_503_and_the_service_recovers(stack: Stack) {
    let app = spawn_app_with(stack, |settings| {
        settings.db1.pool.checkout_timeout = std::time::Duration::from_millis(500);
    });
    let user = app.create_user("ada@example.com", "Ada")["id"]
        .as_i64()
        .unwrap();
    let db1 = app.postgres_database(1).expect("db1 on PostgreSQL");

    set_connections_allowed(&db1, false);
    let response = app.get(&format!("/users/{user}"));
    response.assert_error(503, "database_unavailable");
    assert!(response.header("retry-after").is_some());
    assert!(
        !response.text.contains(&db1),
        "the cause leaked: {}",
        response.text
    );
    app.post(
        "/orders",
        serde_json::json!({"user_id": user, "item": "x", "quantity": 1, "amount_cents": 1}),
    )
    .assert_error(503, "database_unavailable");
    let health = app.get("/health");
    assert_eq!(health.status, 503);
    assert_eq!(health.body["status"], "degraded");
    assert_eq!(health.body["databases"]["db1"], "unavailable");
    assert_eq!(health.body["databases"]["db2"], "ok");
    // The other database is not affected.
    assert_eq!(app.get("/orders").status, 200);

    set_connections_allowed(&db1, true);
    // Connections are re-established on demand: the next requests succeed.
    assert_eq!(app.get(&format!("/users/{user}")).status, 200);
    assert_eq!(app.get("/health").status, 200);
    app.create_order(user, "book", 1, 100);
    assert_eq!(app.count_orders(), 1);
}

fn an_exhausted_pool_answers_503_and_does_not_block_the_other_database(stack: Stack) {
    let app = spawn_app_with(stack, |settings| {
        settings.db1.pool.max_size = 1;
        settings.db1.pool.min_idle = 1;
        settings.db1.pool.checkout_timeout = std::time::Duration::from_millis(300);
    });
    let user = app.create_user("ada@example.com", "Ada")["id"]
        .as_i64()
        .unwrap();
    app.create_order(user, "book", 1, 100);

    let held = app.databases.db1.begin::<Read>().unwrap();
    let response = app.get(&format!("/users/{user}"));
    response.assert_error(503, "database_unavailable");
    assert_eq!(response.header("retry-after"), Some("1"));
    assert_eq!(app.get("/health").body["databases"]["db1"], "unavailable");
    // db2 requests go on while db1 has no free connection.
    let orders = app.get(&format!("/orders?user_id={user}"));
    assert_eq!(orders.status, 200);
    assert_eq!(orders.body["items"].as_array().unwrap().len(), 1);

    drop(held);
    assert_eq!(app.get(&format!("/users/{user}")).status, 200);
    app.assert_pools_idle();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

/// The real binary, stopped by SIGTERM while a request is in flight: the request is
/// finished and answered, then the process exits 0.
#[test]
fn sigterm_finishes_in_flight_requests_then_exits_zero() {
    let directory = std::env::temp_dir().join(format!("multidb-shutdown-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let address = format!("127.0.0.1:{}", free_port());
    let mut server = Command::new(env!("CARGO_BIN_EXE_multidb"))
        .env("DATABASE_URL_1", directory.join("db1.sqlite"))
        .env("DATABASE_URL_2", directory.join("db2.sqlite"))
        .env("BIND_ADDRESS", &address)
        // Every db1 commit takes a while: a request that is surely in flight.
        .env("MULTIDB_FAULTS", "db1.commit=sleep:1500")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the server");
    let base = format!("http://{address}");
    let agent = ureq::AgentBuilder::new()
        .timeout(std::time::Duration::from_secs(30))
        .build();
    let ready = (0..200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        agent.get(&format!("{base}/health")).call().is_ok()
    });
    assert!(ready, "the server did not come up");

    let in_flight = std::thread::spawn({
        let agent = agent.clone();
        let base = base.clone();
        move || {
            agent
                .post(&format!("{base}/users"))
                .send_json(serde_json::json!({"email": "late@example.com", "name": "Late"}))
                .map(|response| response.status())
                .map_err(|error| error.to_string())
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());

    assert_eq!(
        in_flight
            .join()
            .unwrap()
            .expect("the in-flight request was answered"),
        201
    );
    let status = server.wait().unwrap();
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
    let _ = std::fs::remove_dir_all(&directory);
}

/// With the default settings and no database server, `cargo run` works: the SQLite
/// files and their directory are created and migrated.
#[test]
fn the_embedded_default_creates_and_migrates_its_files() {
    let app = spawn_app(Stack::sqlite());
    assert_eq!(app.get("/health").status, 200);
    assert_eq!(app.get("/users").body["items"], serde_json::json!([]));
}

/// Bad configuration ends the process with one line naming the setting.
#[test]
fn bad_configuration_exits_nonzero_naming_the_variable() {
    let run = |vars: &[(&str, &str)]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_multidb"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        command.current_dir(std::env::temp_dir());
        for (name, value) in vars {
            command.env(name, value);
        }
        let output = command.output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    for (vars, variable) in [
        (
            vec![("DATABASE_URL_1", "mysql://root@127.0.0.1/x")],
            "DATABASE_URL_1",
        ),
        (vec![("DB2_POOL_SIZE", "many")], "DB2_POOL_SIZE"),
        (
            vec![("DB1_CHECKOUT_TIMEOUT_MS", "-5")],
            "DB1_CHECKOUT_TIMEOUT_MS",
        ),
        (
            vec![("DATABASE_URL_2", "postgres://nobody@127.0.0.1:1/none")],
            "DATABASE_URL_2",
        ),
    ] {
        let (code, stderr) = run(&vars);
        assert_eq!(code, Some(1), "{vars:?}: {stderr}");
        let last = stderr.lines().last().unwrap_or("");
        assert!(
            last.starts_with("multidb: ") && last.contains(variable),
            "{vars:?}: {stderr}"
        );
    }
}

/// Only PostgreSQL can be taken away and brought back from outside the process.
mod outage {
    #[test]
    fn postgres_a_database_that_goes_away_gives_503_and_the_service_recovers() {
        if let Some(stack) = super::Stack::postgres() {
            super::a_database_that_goes_away_gives_503_and_the_service_recovers(stack)
        }
    }

    #[test]
    fn mixed_a_database_that_goes_away_gives_503_and_the_service_recovers() {
        if let Some(stack) = super::Stack::mixed() {
            super::a_database_that_goes_away_gives_503_and_the_service_recovers(stack)
        }
    }
}

on_both_backends!(an_exhausted_pool_answers_503_and_does_not_block_the_other_database);

/// The variable naming a PostgreSQL server whose `max_prepared_transactions` is 0.
const NO_TWO_PHASE_URL_VAR: &str = "MULTIDB_TEST_POSTGRES_NO2PC_URL";

/// Without two-phase commit on db1's server, writes to both databases are refused with
/// 503 instead of losing atomicity; everything else works.
#[test]
fn without_prepared_transactions_cross_database_writes_are_refused() {
    let admin_url = match std::env::var(NO_TWO_PHASE_URL_VAR) {
        Ok(url) if !url.is_empty() => url,
        _ if std::env::var_os("CI").is_some() => {
            panic!("{NO_TWO_PHASE_URL_VAR} must be set under CI")
        }
        _ => return eprintln!("{NO_TWO_PHASE_URL_VAR} is not set: skipping"),
    };
    let name = format!("multidb_test_no2pc_{}", std::process::id());
    let run_admin = |sql: &str| {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        let mut admin = diesel::PgConnection::establish(&admin_url)
            .unwrap_or_else(|e| panic!("{admin_url}: {e}"));
        admin
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    };
    run_admin(&format!("DROP DATABASE IF EXISTS {name}"));
    run_admin(&format!("CREATE DATABASE {name}"));
    let db1_url = common::postgres_url_for(&admin_url, &name);
    {
        let app = spawn_app_with(Stack::sqlite(), |settings| {
            settings.db1.url = multidb::db::DatabaseUrl::parse(&db1_url).unwrap();
        });
        let user = app.create_user("ada@example.com", "Ada")["id"]
            .as_i64()
            .unwrap();
        app.create_order(user, "book", 1, 100);
        let response = app.delete(&format!("/users/{user}"));
        response.assert_error(503, "database_unavailable");
        assert_eq!(response.header("retry-after"), Some("1"));
        assert_eq!((app.count_users(), app.count_orders()), (1, 1));
        assert_eq!(app.get(&format!("/users/{user}/summary")).status, 200);
    }
    run_admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
}
