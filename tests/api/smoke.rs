use crate::helpers::{spawn_app, Stack};

fn health_reports_both_databases(stack: Stack) {
    let app = spawn_app(stack);
    let response = app.get("/health");
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.body["databases"]["db1"], "ok");
    assert_eq!(app.count_users(), 0);
    assert!(app.orphan_orders().is_empty());
}

on_every_stack!(health_reports_both_databases);
