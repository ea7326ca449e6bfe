//! The session guard, used directly: commit keeps, and every other way out of a
//! session — `?`, an early return, a panic — rolls back and returns a clean connection.

use crate::helpers::{spawn_app, spawn_app_with, Backend, Stack, TestApp};
use multidb::db::{self, DbError, Pool, Write};
use multidb::db1::Db1;
use multidb::domain::ParseId;
use multidb::domain::{Email, Text};
use multidb::users::{self, NewUser, WriteError};

fn new_user(email: &str) -> NewUser {
    NewUser {
        email: Email::parse(email).unwrap(),
        name: Text::parse("name", "Guard").unwrap(),
    }
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    actix_web::rt::System::new().block_on(future)
}

/// Every connection back in the pool, idle, and none left inside a transaction.
fn assert_clean(app: &TestApp) {
    app.assert_pools_idle();
    assert_eq!(
        app.idle_in_transaction(),
        0,
        "a session was left idle in transaction"
    );
}

fn insert_then_return_early(pool: &Pool<Db1>, stop_early: bool) -> Result<(), WriteError> {
    let mut session = pool.begin::<Write>()?;
    users::insert(&mut session, &new_user("early@example.com"))?;
    if stop_early {
        return Ok(());
    }
    Ok(session.commit()?)
}

fn insert_then_fail(pool: &Pool<Db1>) -> Result<(), WriteError> {
    let mut session = pool.begin::<Write>()?;
    users::insert(&mut session, &new_user("failing@example.com"))?;
    // The second insert violates the unique email: `?` leaves with the session open.
    users::insert(&mut session, &new_user("failing@example.com"))?;
    Ok(session.commit()?)
}

fn commit_keeps_the_writes(stack: Stack) {
    let app = spawn_app(stack);
    let pool = &app.databases.db1;
    let mut session = pool.begin::<Write>().unwrap();
    users::insert(&mut session, &new_user("kept@example.com")).unwrap();
    session.commit().unwrap();
    assert_eq!(app.count_users(), 1);
    assert_clean(&app);
}

fn an_error_returned_with_question_mark_rolls_back(stack: Stack) {
    let app = spawn_app(stack);
    let error = insert_then_fail(&app.databases.db1).unwrap_err();
    assert!(matches!(error, WriteError::EmailTaken), "{error:?}");
    assert_eq!(app.count_users(), 0, "the first insert survived the error");
    assert_clean(&app);
}

fn an_early_return_without_commit_rolls_back(stack: Stack) {
    let app = spawn_app(stack);
    insert_then_return_early(&app.databases.db1, true).unwrap();
    assert_eq!(app.count_users(), 0, "an uncommitted session was kept");
    insert_then_return_early(&app.databases.db1, false).unwrap();
    assert_eq!(app.count_users(), 1);
    assert_clean(&app);
}

#[derive(diesel::QueryableByName)]
struct BackendPid {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pid: i32,
}

/// The server process id of the connection a session holds (PostgreSQL only).
fn backend_pid(session: &mut multidb::db::Session<Db1, Write>) -> Result<i32, DbError> {
    use diesel::RunQueryDsl;
    diesel::sql_query("SELECT pg_backend_pid() AS pid")
        .get_result::<BackendPid>(session.connection())
        .map(|row| row.pid)
        .map_err(|e| DbError::from_diesel("db1", e))
}

fn a_panic_inside_the_blocking_runner_rolls_back_and_discards_the_connection(stack: Stack) {
    // One connection only, so that "the next session" is "the same connection" unless
    // the panicking one was discarded.
    let app = spawn_app_with(stack, |settings| {
        settings.db1.pool.max_size = 1;
        settings.db1.pool.min_idle = 1;
    });
    let pid_before = (stack.db1 == Backend::Postgres)
        .then(|| block_on(db::write(&app.databases.db1, backend_pid)).unwrap());
    let outcome: Result<(), WriteError> = block_on(db::write(&app.databases.db1, |session| {
        users::insert(session, &new_user("panic@example.com"))?;
        panic!("a bug in the middle of a session");
    }));
    assert!(
        matches!(outcome, Err(WriteError::Database(DbError::Panicked))),
        "{outcome:?}"
    );
    assert_eq!(
        app.count_users(),
        0,
        "the panicking session's insert survived"
    );
    assert_clean(&app);
    if let Some(pid_before) = pid_before {
        let pid_after = block_on(db::write(&app.databases.db1, backend_pid)).unwrap();
        assert_ne!(
            pid_before, pid_after,
            "the connection of a panicking session was reused"
        );
    }
    // The pool replaces the discarded connection and keeps serving.
    let user = block_on(db::write(&app.databases.db1, |session| {
        users::insert(session, &new_user("after@example.com"))
    }))
    .unwrap();
    assert_eq!(user.email, "after@example.com");
}

fn an_error_inside_the_blocking_runner_rolls_back(stack: Stack) {
    let app = spawn_app(stack);
    let outcome: Result<(), WriteError> = block_on(db::write(&app.databases.db1, |session| {
        users::insert(session, &new_user("runner@example.com"))?;
        Err(DbError::NotFound.into())
    }));
    assert!(matches!(
        outcome,
        Err(WriteError::Database(DbError::NotFound))
    ));
    assert_eq!(app.count_users(), 0);
    // (A read session cannot write at all: that does not compile; see the doc tests
    // of `multidb::db::Session`.)
    assert_clean(&app);
}

on_every_backend!(
    commit_keeps_the_writes,
    an_error_returned_with_question_mark_rolls_back,
    an_early_return_without_commit_rolls_back,
    a_panic_inside_the_blocking_runner_rolls_back_and_discards_the_connection,
    an_error_inside_the_blocking_runner_rolls_back,
    connections_get_their_backend_settings,
    the_key_of_an_insert_is_read_back_without_returning,
);

/// How a backend without RETURNING reads back the row it inserted (see
/// `Session::write_returning`): a plain insert, then the key by
/// `Session::last_insert_id`, in the same transaction. Checked here on the backends that
/// have RETURNING too, so that each backend's `last_insert_id` is known to be right.
fn the_key_of_an_insert_is_read_back_without_returning(stack: Stack) {
    let app = spawn_app(stack);
    let mut session = app.databases.db1.begin::<Write>().unwrap();
    users::insert(&mut session, &new_user("first@example.com")).unwrap();
    let inserted = session
        .execute(diesel::sql_query(
            "INSERT INTO users (email, name, created_at) \
             VALUES ('plain@example.com', 'Plain', CURRENT_TIMESTAMP)",
        ))
        .unwrap();
    assert_eq!(inserted, 1);
    let key = session.last_insert_id();
    let id: i64 = session.get_result(diesel::select(key)).unwrap();
    let found = users::find(&mut session, multidb::domain::UserId::new(id).unwrap())
        .unwrap()
        .expect("the row of the last insert");
    assert_eq!(found.email, "plain@example.com");
    session.commit().unwrap();
    assert_clean(&app);
}

#[derive(diesel::QueryableByName)]
struct JournalMode {
    #[diesel(sql_type = diesel::sql_types::Text)]
    journal_mode: String,
}

/// Connections are set up per backend when opened: WAL and a busy timeout on SQLite,
/// the statement timeout on PostgreSQL and MySQL.
fn connections_get_their_backend_settings(stack: Stack) {
    use diesel::RunQueryDsl;
    let app = spawn_app_with(stack, |settings| {
        settings.db1.pool.connection.statement_timeout = std::time::Duration::from_millis(200);
    });
    let mut session = app.databases.db1.begin::<Write>().unwrap();
    match stack.db1 {
        Backend::Sqlite => {
            let mode = diesel::sql_query("PRAGMA journal_mode")
                .get_result::<JournalMode>(session.connection())
                .unwrap();
            assert_eq!(mode.journal_mode, "wal");
        }
        Backend::Postgres => {
            let slow = diesel::sql_query("SELECT pg_sleep(2)").execute(session.connection());
            let error = DbError::from_diesel("db1", slow.unwrap_err());
            assert!(matches!(error, DbError::Unavailable { .. }), "{error:?}");
        }
        Backend::Mysql => {
            let slow = diesel::sql_query("SELECT SLEEP(2)").execute(session.connection());
            let error = DbError::from_diesel("db1", slow.unwrap_err());
            assert!(matches!(error, DbError::Unavailable { .. }), "{error:?}");
        }
    }
    drop(session);
    assert_clean(&app);
}
