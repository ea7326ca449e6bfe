//! Databases that go away or run out of connections, and shutting down gracefully.

use crate::helpers::{spawn_app, spawn_app_with, Stack, TestApp};
use multidb::db::Read;

/// Makes db`n` (on a server) refuse new connections and drop the service's, or let them
/// in again; its name, which must not leak into answers.
pub(crate) fn set_connections_allowed(app: &TestApp, n: u8, allowed: bool) -> String {
    if let Some(database) = app.mysql_database(n) {
        crate::helpers::set_mysql_connections_allowed(&database, allowed);
        return database;
    }
    let database = app.postgres_database(n).expect("a database on a server");
    crate::helpers::admin_execute(&format!(
        "ALTER DATABASE {database} ALLOW_CONNECTIONS {allowed}"
    ));
    if !allowed {
        crate::helpers::admin_execute(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}' AND pid <> pg_backend_pid()"
        ));
    }
    database
}

/// db1 on a server: it refuses and drops every connection, then comes back (on
/// PostgreSQL by `ALLOW_CONNECTIONS` and `pg_terminate_backend`, on MySQL by locking the
/// service's account and `KILL CONNECTION`).
fn a_database_that_goes_away_gives_503_and_the_service_recovers(stack: Stack) {
    let app = spawn_app_with(stack, |settings| {
        settings.db1.pool.checkout_timeout = std::time::Duration::from_millis(500);
    });
    let user = app.create_user("ada@example.com", "Ada")["id"]
        .as_i64()
        .unwrap();
    let db1 = set_connections_allowed(&app, 1, false);
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

    set_connections_allowed(&app, 1, true);
    // Connections are re-established on demand: the next requests succeed.
    assert_eq!(app.get(&format!("/users/{user}")).status, 200);
    assert_eq!(app.get("/health").status, 200);
    app.order(user).create();
    assert_eq!(app.count_orders(), 1);
}

/// One database's outage does not take the other down. While database `down` refuses
/// connections and four clients keep retrying requests that need both databases (orders,
/// deletions of users, summaries, overviews), requests that need only the other database are served, and
/// `/health` names only the database that is down.
fn an_outage_of_one_database_leaves_the_other_serving(stack: Stack, down: u8) {
    let app = spawn_app_with(stack, |settings| {
        for database in [&mut settings.db1, &mut settings.db2] {
            database.pool.max_size = 2;
            database.pool.min_idle = 2;
            database.pool.checkout_timeout = std::time::Duration::from_millis(1000);
        }
    });
    let user = app.create_user("ada@example.com", "Ada")["id"]
        .as_i64()
        .unwrap();
    let other = app.create_user("bob@example.com", "Bob")["id"]
        .as_i64()
        .unwrap();
    let order = app.order(user).create()["id"].as_i64().unwrap();
    // Orders for db2-only writes during a db1 outage, one deleted per round.
    let mut spare_orders: Vec<i64> = (0..if down == 1 { 40 } else { 0 })
        .map(|_| {
            app.order(user).item("spare").cents(1).create()["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    let (down_name, up_name) = if down == 1 {
        ("db1", "db2")
    } else {
        ("db2", "db1")
    };

    set_connections_allowed(&app, down, false);
    let served = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    for _ in 0..4 {
                        app.post(
                            "/orders",
                            serde_json::json!({"user_id": user, "item": "x", "quantity": 1, "amount_cents": 1}),
                        )
                        .assert_error(503, "database_unavailable");
                        app.delete(&format!("/users/{other}"))
                            .assert_error(503, "database_unavailable");
                        // Reads of both databases, on one blocking thread each.
                        app.get(&format!("/users/{user}/summary"))
                            .assert_error(503, "database_unavailable");
                        app.get("/overview?limit=5")
                            .assert_error(503, "database_unavailable");
                    }
                })
            })
            .collect();
        let mut served = 0;
        while !clients.iter().all(|client| client.is_finished()) {
            if down == 2 {
                let found = app.get(&format!("/users/{user}"));
                assert_eq!(found.status, 200, "{}", found.text);
                let created = app.post(
                    "/users",
                    serde_json::json!({"email": format!("new{served}@example.com"), "name": "New"}),
                );
                assert_eq!(created.status, 201, "{}", created.text);
            } else {
                let found = app.get(&format!("/orders/{order}"));
                assert_eq!(found.status, 200, "{}", found.text);
                let listed = app.get(&format!("/orders?user_id={user}"));
                assert_eq!(listed.status, 200, "{}", listed.text);
                if let Some(spare) = spare_orders.pop() {
                    let deleted = app.delete(&format!("/orders/{spare}"));
                    assert_eq!(deleted.status, 204, "{}", deleted.text);
                }
            }
            let health = app.get("/health");
            assert_eq!(
                (
                    health.body["databases"][up_name].as_str(),
                    health.body["databases"][down_name].as_str()
                ),
                (Some("ok"), Some("unavailable")),
                "{}",
                health.text
            );
            served += 1;
        }
        for client in clients {
            client.join().unwrap();
        }
        served
    });
    assert!(served > 0, "nothing was asked during the outage");

    set_connections_allowed(&app, down, true);
    app.order(user).item("pen").cents(5).create();
    assert_eq!(app.delete(&format!("/users/{other}")).status, 204);
}

/// The binary started on `db1` and `db2` (see [`crate::helpers::start_up_outcome`]).
fn start_up_outcome(db1: &str, db2: &str) -> (Option<i32>, String) {
    crate::helpers::start_up_outcome(&[("DATABASE_URL_1", db1), ("DATABASE_URL_2", db2)])
}

/// Two URLs that reach one database — spelled alike or not — stop the start-up with one
/// line, before any migration touches it.
#[test]
fn two_urls_reaching_one_database_are_refused_at_start_up() {
    let directory =
        std::env::temp_dir().join(format!("multidb-same-database-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let file = directory.join("one.sqlite").display().to_string();
    let link = directory.join("link.sqlite");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&file, &link).unwrap();
    let mut pairs = vec![
        (file.clone(), file.clone()),
        (
            file.clone(),
            directory.join(".").join("one.sqlite").display().to_string(),
        ),
        (file.clone(), link.display().to_string()),
    ];
    let postgres = crate::helpers::postgres_admin_url().map(|admin_url| {
        let name = format!("multidb_test_same_{}", std::process::id());
        crate::helpers::admin_execute(&format!("DROP DATABASE IF EXISTS {name}"));
        crate::helpers::admin_execute(&format!("CREATE DATABASE {name}"));
        let url = crate::helpers::postgres_url_for(&admin_url, &name);
        let separator = if url.contains('?') { '&' } else { '?' };
        pairs.push((url.clone(), url.clone()));
        pairs.push((
            url.clone(),
            format!("{url}{separator}application_name=second"),
        ));
        name
    });
    // MySQL: the same URL twice, and the same database reached as another user.
    let mysql = crate::helpers::mysql_admin_url().map(|admin_url| {
        let name = format!("multidb_test_same_{}", std::process::id());
        let user = format!("multidb_second_{}", std::process::id());
        crate::helpers::mysql_admin_execute(&format!(
            "DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name}; \
             CREATE USER IF NOT EXISTS '{user}'@'%'; GRANT ALL ON {name}.* TO '{user}'@'%'"
        ));
        let url = crate::helpers::postgres_url_for(&admin_url, &name);
        let (_, server) = url.rsplit_once('@').expect("a user in the MySQL test URL");
        pairs.push((url.clone(), url.clone()));
        pairs.push((url.clone(), format!("mysql://{user}@{server}")));
        (name, user)
    });

    for (db1, db2) in &pairs {
        let (code, stderr) = start_up_outcome(db1, db2);
        let last = stderr.lines().last().unwrap_or("");
        assert_eq!(code, Some(1), "{db1} and {db2}: {stderr}");
        assert!(
            last.starts_with("multidb: DATABASE_URL_1 and DATABASE_URL_2: ")
                && last.contains("same database"),
            "{db1} and {db2}: {stderr}"
        );
    }
    // Refused before migrating: the database is as it was.
    use diesel::{Connection, RunQueryDsl};
    let mut sqlite = diesel::SqliteConnection::establish(&file).unwrap();
    let tables: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "(SELECT COUNT(*) FROM sqlite_master)",
    ))
    .get_result(&mut sqlite)
    .unwrap();
    assert_eq!(tables, 0, "the refused start-up created tables");
    if let Some(name) = postgres {
        crate::helpers::admin_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    }
    if let Some((name, user)) = mysql {
        crate::helpers::mysql_admin_execute(&format!(
            "DROP DATABASE IF EXISTS {name}; DROP USER IF EXISTS '{user}'@'%'"
        ));
    }
    let _ = std::fs::remove_dir_all(&directory);
}

/// A start-up that fails after a PostgreSQL pool was built exits with status 1, never by
/// a signal: the pools' own threads may be opening TLS connections at that moment, and
/// a normal exit used to crash under them (SIGSEGV in about one run in six). Repeated,
/// since it was a race.
#[test]
fn a_failed_start_up_exits_1_and_is_never_killed_by_a_signal() {
    let Some(admin_url) = crate::helpers::needed(crate::helpers::Server::Postgres) else {
        return;
    };
    let name = format!("multidb_test_exit_{}", std::process::id());
    crate::helpers::admin_execute(&format!("DROP DATABASE IF EXISTS {name}"));
    crate::helpers::admin_execute(&format!("CREATE DATABASE {name}"));
    let url = crate::helpers::postgres_url_for(&admin_url, &name);
    let separator = if url.contains('?') { '&' } else { '?' };
    let same = format!("{url}{separator}application_name=second");
    for attempt in 0..20 {
        let (code, stderr) = start_up_outcome(&url, &same);
        assert_eq!(code, Some(1), "attempt {attempt}: {stderr}");
    }
    crate::helpers::admin_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
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
    app.order(user).create();

    let held = app.databases.db1.begin::<Read>().unwrap();
    let response = app.get(&format!("/users/{user}"));
    response.assert_error(503, "database_unavailable");
    assert_eq!(response.header("retry-after"), Some("1"));
    // The database answers: `/health` probes it on the connection kept for upkeep.
    assert_eq!(app.get("/health").body["databases"]["db1"], "ok");
    // db2 requests go on while db1 has no free connection.
    let orders = app.get(&format!("/orders?user_id={user}"));
    assert_eq!(orders.status, 200);
    assert_eq!(orders.body["items"].as_array().unwrap().len(), 1);

    drop(held);
    assert_eq!(app.get(&format!("/users/{user}")).status, 200);
    app.assert_pools_idle();
}

/// Requests that read both databases wait for db2's turn holding db1's: they may hold
/// only part of db1's pool, so db1's own reads are served while db2 has no connection
/// free. (db2's checkout timeout is longer than db1's, so a summary that held db1's
/// last connection would make `GET /users/{id}` wait out db1's timeout: 503.)
fn reads_of_both_databases_waiting_for_one_leave_the_other_serving(stack: Stack) {
    let app = spawn_app_with(stack, |settings| {
        settings.db1.pool.max_size = 2;
        settings.db1.pool.min_idle = 2;
        settings.db1.pool.checkout_timeout = std::time::Duration::from_millis(300);
        settings.db2.pool.max_size = 1;
        settings.db2.pool.min_idle = 1;
        settings.db2.pool.checkout_timeout = std::time::Duration::from_secs(3);
    });
    let user = app.create_user("ada@example.com", "Ada")["id"]
        .as_i64()
        .unwrap();
    let held = app.databases.db2.begin::<Read>().unwrap();
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| {
                app.get(&format!("/users/{user}/summary"))
                    .assert_error(503, "database_unavailable");
            });
        }
        // Give the summaries time to queue for db2 (if they have not, this proves less,
        // but cannot fail wrongly).
        std::thread::sleep(std::time::Duration::from_millis(500));
        for _ in 0..3 {
            let found = app.get(&format!("/users/{user}"));
            assert_eq!(found.status, 200, "{}", found.text);
        }
    });
    drop(held);

    // Queued summaries are served in full once db2 frees up (the first one waits for
    // db2's connection on its own thread; the second queues for db2's turn, then reads
    // both databases one after the other).
    let held = app.databases.db2.begin::<Read>().unwrap();
    std::thread::scope(|scope| {
        let summaries: Vec<_> = (0..2)
            .map(|_| scope.spawn(|| app.get(&format!("/users/{user}/summary"))))
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(held);
        for summary in summaries {
            let summary = summary.join().unwrap();
            assert_eq!(summary.status, 200, "{}", summary.text);
            assert_eq!(summary.body["user"]["id"], user);
            assert_eq!(summary.body["order_count"], 0);
        }
    });
    app.assert_pools_idle();
}

/// The real binary, stopped by SIGTERM while a request is in flight: the request is
/// finished and answered, then the process exits 0.
#[test]
fn sigterm_finishes_in_flight_requests_then_exits_zero() {
    let storage = crate::helpers::Storage::create(Stack::sqlite());
    let server = crate::helpers::ChildServer::start(&[
        ("DATABASE_URL_1", storage.raw_url(1)),
        ("DATABASE_URL_2", storage.raw_url(2)),
        // Every db1 commit takes a while: a request that is surely in flight.
        ("MULTIDB_FAULTS", "db1.commit=sleep:1500"),
    ]);
    let in_flight = std::thread::spawn({
        let base = server.base_url().to_owned();
        move || {
            ureq::post(&format!("{base}/users"))
                .send_json(serde_json::json!({"email": "late@example.com", "name": "Late"}))
                .map(|response| response.status())
                .map_err(|error| error.to_string())
        }
    });
    // The fault point announces itself when the request reaches its commit.
    assert!(server.wait_for_stderr("fault injected at db1.commit"));
    let status = server.terminate();
    assert_eq!(
        in_flight
            .join()
            .unwrap()
            .expect("the in-flight request was answered"),
        201
    );
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
    storage.remove();
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
    let run = |vars: &[(&str, &str)]| crate::helpers::start_up_outcome(vars);
    for (vars, variable) in [
        (
            vec![("DATABASE_URL_1", "mongodb://127.0.0.1/x")],
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

fn db1_down_leaves_db2_serving(stack: Stack) {
    an_outage_of_one_database_leaves_the_other_serving(stack, 1)
}

fn db2_down_leaves_db1_serving(stack: Stack) {
    an_outage_of_one_database_leaves_the_other_serving(stack, 2)
}

// Only a server can be taken away and brought back from outside the process.
on_stacks!([postgres, postgres_sqlite, mysql, mysql_sqlite, mysql_postgres] =>
    a_database_that_goes_away_gives_503_and_the_service_recovers,
    db1_down_leaves_db2_serving,
);
on_stacks!([postgres, sqlite_postgres, mysql, sqlite_mysql, postgres_mysql] => db2_down_leaves_db1_serving);

on_every_backend!(
    an_exhausted_pool_answers_503_and_does_not_block_the_other_database,
    reads_of_both_databases_waiting_for_one_leave_the_other_serving,
);

/// Without two-phase commit on db1's server, writes to both databases are refused with
/// 503 instead of losing atomicity; everything else works.
#[test]
fn without_prepared_transactions_cross_database_writes_are_refused() {
    // A server whose `max_prepared_transactions` is 0.
    let Some(db1) = crate::helpers::ScratchDatabase::on_server(
        crate::helpers::Server::PostgresWithout2pc,
        "no2pc",
    ) else {
        return;
    };
    let db1_url = db1.url.clone();
    {
        let app = spawn_app_with(Stack::sqlite(), |settings| {
            settings.db1.url = multidb::db::DatabaseUrl::parse(&db1_url).unwrap();
        });
        let user = app.create_user("ada@example.com", "Ada")["id"]
            .as_i64()
            .unwrap();
        app.order(user).create();
        let response = app.delete(&format!("/users/{user}"));
        response.assert_error(503, "database_unavailable");
        assert_eq!(response.header("retry-after"), Some("1"));
        assert_eq!((app.count_users(), app.count_orders()), (1, 1));
        assert_eq!(app.get(&format!("/users/{user}/summary")).status, 200);
    }
}

/// Which database a URL reaches is recognised before the service serves: the two URLs
/// swapped, or db1's migrations applied to db2's database (as the diesel CLI does when
/// pointed at the wrong directory), stop the start-up with one line saying which, before
/// any migration adds to the mix-up.
#[test]
fn a_database_holding_the_other_ones_tables_is_refused_at_start_up() {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let storage = crate::helpers::Storage::create(Stack::sqlite());
    let migrated = crate::helpers::ChildServer::start(&[
        ("DATABASE_URL_1", storage.raw_url(1)),
        ("DATABASE_URL_2", storage.raw_url(2)),
    ]);
    migrated.kill();
    let (code, stderr) = start_up_outcome(storage.raw_url(2), storage.raw_url(1));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("db1 reaches db2's database (it has db2's table `orders`)"),
        "{stderr}"
    );

    let wrong = std::env::temp_dir().join(format!("multidb_wrong_{}.sqlite", std::process::id()));
    let mut db1_migrations: Vec<_> = std::fs::read_dir("migrations_db1/sqlite")
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    db1_migrations.sort();
    let mut conn = diesel::SqliteConnection::establish(wrong.to_str().unwrap()).unwrap();
    for migration in db1_migrations {
        conn.batch_execute(&std::fs::read_to_string(migration.join("up.sql")).unwrap())
            .unwrap();
    }
    drop(conn);
    let (code, stderr) = start_up_outcome(storage.raw_url(1), wrong.to_str().unwrap());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("db2 reaches db1's database (it has db1's table `users`)"),
        "{stderr}"
    );
    let _ = std::fs::remove_file(&wrong);
    storage.remove();
}

/// A PostgreSQL database whose server writes its messages in German (`lc_messages`
/// set for the database, as a server installed with a German locale has it) stops the
/// start-up with one line saying what to set, before anything is served: the service
/// tells transient errors by PostgreSQL's English messages, and would answer them 500.
fn german_locale_installed() -> bool {
    std::process::Command::new("locale")
        .arg("-a")
        .output()
        .is_ok_and(|output| {
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .any(|locale| locale == "de_DE.utf8")
        })
}

/// Needs the OS locale named by `MULTIDB_TEST_GERMAN_LOCALE` (`.ci/run` generates it and
/// sets the variable), or `de_DE.UTF-8` installed; skipped without, except under CI.
#[test]
fn a_postgresql_database_with_german_messages_is_refused_at_start_up() {
    let Some(stack) = Stack::postgres() else {
        return;
    };
    let locale = match std::env::var("MULTIDB_TEST_GERMAN_LOCALE") {
        Ok(locale) => locale,
        _ if std::env::var_os("CI").is_some() => {
            panic!("MULTIDB_TEST_GERMAN_LOCALE must be set under CI")
        }
        // Installed already (`locale -a` lists it): no need to name it.
        Err(_) if german_locale_installed() => "de_DE.UTF-8".to_owned(),
        Err(_) => {
            crate::helpers::not_run(
                "a German locale",
                "set MULTIDB_TEST_GERMAN_LOCALE to one (localedef -i de_DE -f UTF-8 de_DE.UTF-8 makes it)",
            );
            return;
        }
    };
    let storage = crate::helpers::Storage::create(stack);
    let db1 = &storage.postgres_names()[0];
    crate::helpers::admin_execute(&format!(
        "ALTER DATABASE \"{db1}\" SET lc_messages = '{locale}'"
    ));
    let (code, stderr) = start_up_outcome(storage.raw_url(1), storage.raw_url(2));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("DATABASE_URL_1")
            && stderr.contains("Division durch Null")
            && stderr.contains("SET lc_messages = 'C'"),
        "{stderr}"
    );
    storage.remove();
}
