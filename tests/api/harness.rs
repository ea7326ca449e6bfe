//! The harness itself: what a killed run leaves behind is removed by the next one.

use std::path::Path;

use crate::helpers::{admin_execute, owner_is_gone, postgres_admin_url, remove_leftovers};

#[test]
fn the_leftovers_of_a_killed_run_are_removed_and_a_live_runs_are_not() {
    let dead = (100_000..4_000_000_u32)
        .rev()
        .find(|pid| !Path::new(&format!("/proc/{pid}")).exists())
        .expect("a pid no process has");
    let leftover = std::env::temp_dir().join(format!("multidb_test_{dead}_0_0_db0"));
    let ours_name = format!("multidb_test_{}_9_9_db0", std::process::id());
    let ours = std::env::temp_dir().join(&ours_name);
    for directory in [&leftover, &ours] {
        std::fs::create_dir_all(directory).unwrap();
    }
    let database = format!("multidb_test_{dead}_0_0_db1");
    let postgres = postgres_admin_url().is_some();
    if postgres {
        admin_execute(&format!("DROP DATABASE IF EXISTS {database}"));
        admin_execute(&format!("CREATE DATABASE {database}"));
    }
    assert!(owner_is_gone(&database) && !owner_is_gone(&ours_name));

    remove_leftovers();

    assert!(!leftover.exists(), "a dead run's directory was kept");
    assert!(ours.exists(), "a live run's directory was removed");
    std::fs::remove_dir_all(&ours).unwrap();
    if postgres {
        let left = crate::helpers::admin_count(&format!(
            "SELECT COUNT(*) AS count FROM pg_database WHERE datname = '{database}'"
        ));
        assert_eq!(left, 0, "a dead run's database was kept");
    }
}

/// The checks of `TestApp`'s drop can fail: a test that leaves an orphan order behind
/// fails, though it asserts nothing itself.
#[test]
#[should_panic(expected = "after the test: orders of missing users")]
fn a_test_that_leaves_an_orphan_order_fails() {
    let app = crate::helpers::spawn_app(crate::helpers::Stack::sqlite());
    crate::helpers::execute(
        &app.databases.db2,
        "INSERT INTO orders (user_id, item, quantity, amount_cents, created_at) \
         VALUES (999, 'orphan', 1, 1, CURRENT_TIMESTAMP)",
    );
}
