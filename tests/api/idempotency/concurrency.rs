//! Concurrent requests with one key make one row; a duplicate that waits too long is told to retry.

#[allow(unused_imports)]
use super::*;

const STORM: usize = 20;

/// An application whose requests wait as long as a storm of them needs: its timeouts
/// (statement, checkout, SQLite busy) are 30 s.
fn patient_app(stack: Stack) -> TestApp {
    spawn_app_with(stack, |settings| {
        for database in [&mut settings.db1, &mut settings.db2] {
            database.pool.connection.statement_timeout = Duration::from_secs(30);
            database.pool.connection.busy_timeout = Duration::from_secs(30);
            database.pool.checkout_timeout = Duration::from_secs(30);
        }
    })
}

/// Sends `STORM` requests at once, `send(n)` the `n`th, with every commit slowed down
/// by 100 ms: the first request still holds its key when the others arrive.
fn storm(app: &TestApp, send: impl Fn(usize) -> Response + Sync) -> Vec<Response> {
    for commit in ["db1.commit", "db2.commit"] {
        app.faults.arm(commit, FaultAction::Sleep(100));
    }
    let answers = concurrently(STORM, send);
    app.faults.disarm_all();
    answers
}

/// Twenty identical requests with one key, at once: exactly one row; one answer is the
/// first (201, no `Idempotent-Replayed`) and every other one is its replay or 409
/// `idempotency_key_in_use` with `Retry-After`.
fn concurrent_duplicates_create_one_row(stack: Stack) {
    let app = patient_app(stack);
    for create in Create::both(&app) {
        let path = create.path();
        let key = format!("storm{path}");
        let body = create.body(0).to_string();
        let before = Rows::of(&app);
        let answers = storm(&app, |_| post_keyed(&app, path, &key, &body));
        assert_eq!(Rows::of(&app), before.plus_one(create), "POST {path}");

        let (firsts, others): (Vec<&Response>, Vec<&Response>) = answers
            .iter()
            .partition(|answer| answer.status == 201 && answer.header(REPLAYED).is_none());
        assert_eq!(
            firsts.len(),
            1,
            "POST {path}: one first answer: {:?}",
            statuses(&answers)
        );
        let first = firsts[0];
        assert_created(first, path);
        for answer in others {
            if answer.status == 201 {
                assert_replay_of(answer, first);
            } else {
                assert_in_use(answer);
            }
        }
        assert_replay_of(&post_keyed(&app, path, &key, &body), first);
        assert_eq!(Rows::of(&app), before.plus_one(create));
    }
}

/// Twenty requests with one key and twenty different bodies, at once: exactly one row,
/// the one of the single 201; every other answer is 422 `idempotency_key_reused` or 409
/// `idempotency_key_in_use`, never a replay of another body's answer.
fn concurrent_requests_with_one_key_and_different_bodies_create_one_row(stack: Stack) {
    let app = patient_app(stack);
    for create in Create::both(&app) {
        let path = create.path();
        let key = format!("mixed{path}");
        let before = Rows::of(&app);
        let answers = storm(&app, |n| {
            post_keyed(&app, path, &key, &create.body(n).to_string())
        });
        assert_eq!(Rows::of(&app), before.plus_one(create), "POST {path}");
        let created: Vec<usize> = (0..STORM).filter(|&n| answers[n].status == 201).collect();
        assert_eq!(
            created.len(),
            1,
            "POST {path}: one 201: {:?}",
            statuses(&answers)
        );
        let winner = created[0];
        assert_created(&answers[winner], path);
        let sent = create.body(winner);
        for (field, value) in sent.as_object().unwrap() {
            assert_eq!(&answers[winner].body[field], value, "the winner's row");
        }
        for (n, answer) in answers.iter().enumerate().filter(|&(n, _)| n != winner) {
            match answer.status {
                422 => assert_reused(answer),
                409 => assert_in_use(answer),
                _ => panic!("POST {path} #{n}: {} {}", answer.status, answer.text),
            }
        }
        assert_replay_of(
            &post_keyed(&app, path, &key, &sent.to_string()),
            &answers[winner],
        );
    }
}

fn statuses(answers: &[Response]) -> Vec<(u16, Option<&str>)> {
    answers
        .iter()
        .map(|answer| (answer.status, answer.header(REPLAYED)))
        .collect()
}

/// While the first request holds its key (its commit slowed down) for longer than a
/// duplicate will wait, the duplicate is told to retry: with both databases on
/// PostgreSQL, where it waits for the key's lock in db2 up to db2's statement timeout,
/// 409 `idempotency_key_in_use`; where a database is SQLite, whose write lock it waits
/// for first (up to the checkout and busy timeouts), 503 `database_unavailable`. Both
/// carry `Retry-After`, and the retry then replays. Which of the two requests comes
/// first does not matter.
fn a_duplicate_that_waits_too_long_is_told_to_retry(stack: Stack) {
    let app = spawn_app_with(stack, |settings| {
        for database in [&mut settings.db1, &mut settings.db2] {
            database.pool.connection.statement_timeout = Duration::from_millis(300);
            database.pool.connection.busy_timeout = Duration::from_millis(300);
            database.pool.checkout_timeout = Duration::from_millis(300);
        }
    });
    for (create, commit) in [
        (Create::Users, "db1.commit"),
        (
            Create::Orders(id_of(&app.create_user("ada@example.com", "Ada"))),
            "db2.commit",
        ),
    ] {
        let path = create.path();
        let key = format!("slow-{}", create.tag());
        let body = create.body(0).to_string();
        let before = Rows::of(&app);
        // Long beside the 300 ms the duplicate waits, so that it is still held when the
        // duplicate comes on a loaded machine.
        app.faults.arm(commit, FaultAction::Sleep(3000));
        let answers = concurrently(2, |_| post_keyed(&app, path, &key, &body));
        app.faults.disarm_all();

        let Some(first) = answers.iter().position(|answer| answer.status == 201) else {
            panic!("POST {path}: no 201: {answers:?}");
        };
        assert_created(&answers[first], path);
        let waiter = &answers[1 - first];
        if (stack.db1, stack.db2) == (Backend::Postgres, Backend::Postgres) {
            assert_in_use(waiter);
        } else {
            waiter.assert_error(503, "database_unavailable");
            assert_eq!(waiter.header("retry-after"), Some("1"));
        }
        let after = before.plus_one(create);
        assert_eq!(Rows::of(&app), after);
        assert_replay_of(&post_keyed(&app, path, &key, &body), &answers[first]);
        assert_eq!(Rows::of(&app), after);
    }
}

// ---------------------------------------------------------------------------------------
// Failures store nothing.

on_stacks!([sqlite, postgres, postgres_sqlite, sqlite_postgres] =>
    concurrent_duplicates_create_one_row,
    concurrent_requests_with_one_key_and_different_bodies_create_one_row,
    a_duplicate_that_waits_too_long_is_told_to_retry,
);
