//! The binary's command line: help and version everywhere, and anything it does not
//! know refused with exit status 2 and a usage line, before it touches a database.

use std::process::{Command, Output};

/// `multidb ARGS…` with no database settings at all (nothing may need them).
fn multidb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_multidb"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(std::env::temp_dir())
        .output()
        .expect("run multidb")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_and_version_answer_on_every_command() {
    for args in [
        &["--help"][..],
        &["-h"],
        &["help"],
        &["serve", "--help"],
        &["migrate", "--help"],
        &["migrate", "status", "--help"],
        &["keys", "--help"],
        &["keys", "create", "--help"],
        &["keys", "list", "--help"],
        &["keys", "revoke", "--help"],
    ] {
        let output = multidb(args);
        let printed = text(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {printed}");
        assert!(printed.contains("Usage: multidb"), "{args:?}: {printed}");
    }
    let top = text(&multidb(&["--help"]).stdout);
    for command in ["serve", "migrate", "keys"] {
        assert!(top.contains(command), "{top}");
    }
    let version = env!("CARGO_PKG_VERSION");
    for (args, printed) in [
        (&["--version"][..], format!("multidb {version}\n")),
        (&["-V"], format!("multidb {version}\n")),
        (&["keys", "--version"], format!("multidb-keys {version}\n")),
    ] {
        let output = multidb(args);
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        assert_eq!(text(&output.stdout), printed, "{args:?}");
    }
}

/// What a new user tried: every one of them used to be ignored, or run something else.
#[test]
fn unknown_commands_and_arguments_are_refused_with_a_usage_line() {
    for args in [
        &["migrate", "--dry-run", "status"][..],
        &["migrate", "status", "--all"],
        &["serve", "--port", "9999"],
        &["frobnicate"],
        &["--verbose"],
        &["keys"],
        &["keys", "list", "--all"],
        &["keys", "revoke"],
    ] {
        let output = multidb(args);
        let said = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {said}");
        assert_eq!(text(&output.stdout), "", "{args:?}");
        assert!(said.contains("Usage: multidb"), "{args:?}: {said}");
    }
    // A value it does not take is named, with the ones it does.
    let output = multidb(&["keys", "create", "--name", "x", "--scope", "admin"]);
    let said = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{said}");
    assert!(said.contains("`read` or `write`, not `admin`"), "{said}");
}
