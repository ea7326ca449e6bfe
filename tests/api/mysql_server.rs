//! db1 on a MariaDB server of the test's own (see `helpers::OwnMariadb`), db2 on SQLite,
//! the real binary in front: the server stopped and started again, crashed with a
//! deletion prepared in it, and frozen. Each time the service answers 503 for what
//! needs db1, keeps serving what needs only db2, and comes back by itself.

use crate::helpers::{eventually, ChildServer, OwnMariadb, Response};
use serde_json::json;

/// Short leases and frequent recovery passes, so that a killed instance's work is
/// resolved soon; a short request deadline for the frozen server.
const LEASE_MS: &str = "300";

struct Setup {
    server: OwnMariadb,
    db2: tempfile_dir::Dir,
}

mod tempfile_dir {
    /// A directory under the system's temporary one, removed when dropped.
    pub struct Dir(pub std::path::PathBuf);

    impl Dir {
        pub fn new() -> Self {
            let path = std::env::temp_dir().join(format!(
                "multidb-own-mariadb-{}-{}",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            ));
            std::fs::create_dir_all(&path).expect("create a test directory");
            Self(path)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Setup {
    fn new() -> Option<Self> {
        let server = OwnMariadb::start()?;
        server.execute("CREATE DATABASE users");
        Some(Self {
            server,
            db2: tempfile_dir::Dir::new(),
        })
    }

    fn start(&self, extra: &[(&str, &str)]) -> ChildServer {
        let db1 = self.server.url("users");
        let db2 = self.db2.0.join("db2.sqlite").display().to_string();
        let mut env = vec![
            ("DATABASE_URL_1", db1.as_str()),
            ("DATABASE_URL_2", db2.as_str()),
            ("INSTANCE_LEASE_MS", LEASE_MS),
            ("RECOVERY_INTERVAL_MS", "200"),
            ("DB1_CHECKOUT_TIMEOUT_MS", "500"),
        ];
        env.extend_from_slice(extra);
        ChildServer::start(&env)
    }
}

fn created(response: Response) -> i64 {
    assert_eq!(response.status, 201, "{}", response.text);
    response.body["id"].as_i64().unwrap()
}

fn user_with_an_order(service: &ChildServer, email: &str) -> i64 {
    let user = created(service.request(
        "POST",
        "/users",
        Some(json!({"email": email, "name": "Someone"})),
    ));
    created(service.request(
        "POST",
        "/orders",
        Some(json!({"user_id": user, "item": "x", "quantity": 1, "amount_cents": 1})),
    ));
    user
}

fn order_count(service: &ChildServer, user: i64) -> usize {
    let listed = service.request("GET", &format!("/orders?user_id={user}"), None);
    assert_eq!(listed.status, 200, "{}", listed.text);
    listed.body["items"].as_array().unwrap().len()
}

/// While db1 is away: what needs it is 503 with `Retry-After`, what needs only db2 is
/// served, and `/health` names db1.
fn assert_db1_away(service: &ChildServer, user: i64) {
    let found = service.request("GET", &format!("/users/{user}"), None);
    found.assert_error(503, "database_unavailable");
    assert!(found.header("retry-after").is_some());
    service
        .request(
            "POST",
            "/orders",
            Some(json!({"user_id": user, "item": "y", "quantity": 1, "amount_cents": 1})),
        )
        .assert_error(503, "database_unavailable");
    assert_eq!(order_count(service, user), 1);
    let health = service.request("GET", "/health", None);
    assert_eq!(health.status, 503, "{}", health.text);
    assert_eq!(health.body["databases"]["db1"], "unavailable");
    assert_eq!(health.body["databases"]["db2"], "ok");
}

/// Once db1 is back, the service reads and writes both databases again by itself.
fn assert_served_again(service: &ChildServer, user: i64) {
    eventually("db1 served again", || {
        (service
            .request("GET", &format!("/users/{user}"), None)
            .status
            == 200)
            .then_some(())
    });
    created(service.request(
        "POST",
        "/orders",
        Some(json!({"user_id": user, "item": "z", "quantity": 1, "amount_cents": 1})),
    ));
    assert_eq!(service.request("GET", "/health", None).status, 200);
    let deleted = service.request("DELETE", &format!("/users/{user}"), None);
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert_eq!(order_count(service, user), 0);
}

#[test]
fn a_mysql_server_stopped_and_started_again() {
    let Some(mut setup) = Setup::new() else {
        return;
    };
    let service = setup.start(&[]);
    let user = user_with_an_order(&service, "ada@example.com");
    setup.server.stop();
    assert_db1_away(&service, user);
    setup.server.run();
    assert_served_again(&service, user);
}

#[test]
fn a_frozen_mysql_server_gets_503_and_service_resumes() {
    let Some(setup) = Setup::new() else {
        return;
    };
    let service = setup.start(&[("REQUEST_TIMEOUT_MS", "1500")]);
    let user = user_with_an_order(&service, "ada@example.com");
    setup.server.freeze();
    assert_db1_away(&service, user);
    setup.server.thaw();
    assert_served_again(&service, user);
}

/// The MariaDB server is killed while a deletion is prepared in it (kill -9 of the
/// server, then of the service paused at `step`): the prepared XA transaction survives
/// the server's crash recovery, and a new instance finishes it by itself, as decided.
fn a_crash_of_the_mysql_server_with_a_deletion_prepared(step: &str, decided: bool) {
    let Some(mut setup) = Setup::new() else {
        return;
    };
    let service = setup.start(&[("MULTIDB_FAULTS", &format!("uow.{step}=pause"))]);
    let user = user_with_an_order(&service, "doomed@example.com");
    let deletion = service.request_in_background("DELETE", &format!("/users/{user}"));
    assert!(service.wait_for_stderr(&format!("multidb fault pause: uow.{step}")));
    setup.server.crash();
    setup.server.run();
    assert_eq!(
        prepared_xa(&setup.server),
        1,
        "the prepared deletion did not survive"
    );
    service.kill();
    deletion.join().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));

    let service = setup.start(&[]);
    let expected = if decided { (404, 0) } else { (200, 1) };
    assert_eq!(
        (
            service
                .request("GET", &format!("/users/{user}"), None)
                .status,
            order_count(&service, user)
        ),
        expected,
        "crashed at {step}"
    );
    eventually("nothing left prepared", || {
        let listed = prepared_xa(&setup.server);
        (listed == 0).then_some(())
    });
}

/// How many XA transactions the server holds prepared.
fn prepared_xa(server: &OwnMariadb) -> usize {
    use diesel::{Connection, QueryableByName, RunQueryDsl};
    #[derive(QueryableByName)]
    struct Listed {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        #[allow(dead_code)]
        #[diesel(column_name = formatID)]
        format: i64,
    }
    let mut conn = diesel::mysql::MysqlConnection::establish(&server.url("mysql"))
        .expect("connect to the test's own MariaDB");
    diesel::sql_query("XA RECOVER")
        .load::<Listed>(&mut conn)
        .expect("XA RECOVER")
        .len()
}

#[test]
fn a_crash_of_the_mysql_server_after_prepare_rolls_the_deletion_back() {
    a_crash_of_the_mysql_server_with_a_deletion_prepared("after_prepare", false);
}

#[test]
fn a_crash_of_the_mysql_server_after_the_decision_completes_the_deletion() {
    a_crash_of_the_mysql_server_with_a_deletion_prepared("after_decision", true);
}
