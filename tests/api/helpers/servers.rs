//! The database servers the tests run against. A variable names each (`.ci/run` sets
//! them all, on servers of its own). Where one is not set, a plain `cargo test` starts a
//! throwaway server for the run — PostgreSQL where its server binaries are installed,
//! MariaDB likewise — on loopback, in a directory under the temp dir, the first time a
//! test needs it. A watchdog process of its own session stops the server and removes
//! its directory once this process is gone, however it ended: at the end of the run,
//! at Ctrl-C, at `kill -9`. Where no server can be had, the tests that need one do not
//! run; how many, and why, is said after the test summary (libtest hides what a passing
//! test prints).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::child::free_port;

/// A server a test may need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Server {
    /// PostgreSQL with two-phase commit (`max_prepared_transactions = 64`).
    Postgres,
    /// PostgreSQL without it (its default, 0).
    PostgresWithout2pc,
    /// PostgreSQL with two prepared transactions at most.
    PostgresWith2Slots,
    /// MySQL or MariaDB.
    Mysql,
}

impl Server {
    /// The variable that names it.
    pub fn variable(self) -> &'static str {
        match self {
            Server::Postgres => "MULTIDB_TEST_POSTGRES_URL",
            Server::PostgresWithout2pc => "MULTIDB_TEST_POSTGRES_NO2PC_URL",
            Server::PostgresWith2Slots => "MULTIDB_TEST_POSTGRES_FEW2PC_URL",
            Server::Mysql => "MULTIDB_TEST_MYSQL_URL",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Server::Postgres => "PostgreSQL",
            Server::PostgresWithout2pc => "PostgreSQL without two-phase commit",
            Server::PostgresWith2Slots => "PostgreSQL with two prepared-transaction slots",
            Server::Mysql => "MariaDB",
        }
    }

    fn all() -> [Server; 4] {
        [
            Server::Postgres,
            Server::PostgresWithout2pc,
            Server::PostgresWith2Slots,
            Server::Mysql,
        ]
    }
}

/// Where each server came from, for the note after the summary.
#[derive(Debug, Clone)]
enum Origin {
    Variable,
    Started { version: String },
    Missing { why: String },
}

struct Found {
    url: Option<String>,
    origin: Origin,
}

fn servers() -> &'static [OnceLock<Found>; 4] {
    static SERVERS: [OnceLock<Found>; 4] = [
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
        OnceLock::new(),
    ];
    &SERVERS
}

/// The URL of an administrator on `server`, starting it on first use if need be; `None`
/// where it cannot be had. Under CI a missing variable fails the test instead: CI must
/// run everything.
pub fn url(server: Server) -> Option<String> {
    let slot = &servers()[server as usize];
    slot.get_or_init(|| find(server)).url.clone()
}

/// [`url`] for a test that needs `server` to run at all: when it cannot be had, the test
/// is counted as not run, with why.
pub fn needed(server: Server) -> Option<String> {
    let url = url(server);
    if url.is_none() {
        if let Some(Found {
            origin: Origin::Missing { why },
            ..
        }) = servers()[server as usize].get()
        {
            not_run(server.label(), why);
        }
    }
    url
}

/// Set, no server is started for the run: only those named by their variables are used.
const NO_OWN_SERVERS: &str = "MULTIDB_TEST_NO_OWN_SERVERS";

fn find(server: Server) -> Found {
    let variable = server.variable();
    match std::env::var(variable) {
        Ok(url) if !url.trim().is_empty() => {
            return Found {
                url: Some(url),
                origin: Origin::Variable,
            }
        }
        _ if std::env::var_os("CI").is_some() => {
            panic!("{variable} must be set under CI: its tests would not run")
        }
        _ => {}
    }
    say_at_exit();
    if std::env::var_os(NO_OWN_SERVERS).is_some() {
        return Found {
            url: None,
            origin: Origin::Missing {
                why: format!("{NO_OWN_SERVERS} is set; set {variable} to name one"),
            },
        };
    }
    let started = match server {
        Server::Mysql => start_mariadb(),
        Server::Postgres => start_postgres(
            server,
            &["max_prepared_transactions=64", "max_connections=300"],
        ),
        Server::PostgresWithout2pc => start_postgres(server, &["max_prepared_transactions=0"]),
        Server::PostgresWith2Slots => start_postgres(server, &["max_prepared_transactions=2"]),
    };
    match started {
        Ok((url, version)) => Found {
            url: Some(url),
            origin: Origin::Started { version },
        },
        Err(why) => Found {
            url: None,
            origin: Origin::Missing {
                why: format!("{why}, or set {variable}"),
            },
        },
    }
}

/// Tests that did not run, by what they needed and why.
fn skipped() -> &'static Mutex<BTreeMap<(String, String), usize>> {
    static SKIPPED: OnceLock<Mutex<BTreeMap<(String, String), usize>>> = OnceLock::new();
    SKIPPED.get_or_init(Mutex::default)
}

/// Counts a test that returns without running because `what` is missing, for the note
/// after the summary.
pub fn not_run(what: &str, why: &str) {
    say_at_exit();
    let mut skipped = skipped().lock().unwrap_or_else(|e| e.into_inner());
    *skipped
        .entry((what.to_owned(), why.to_owned()))
        .or_default() += 1;
}

/// Registers, once, the note printed when the process exits: after libtest's summary.
fn say_at_exit() {
    static REGISTERED: OnceLock<()> = OnceLock::new();
    REGISTERED.get_or_init(|| {
        // SAFETY: registers a plain function; it runs once, at exit, on the main thread.
        unsafe {
            libc::atexit(say);
        }
    });
}

extern "C" fn say() {
    let mut lines = Vec::new();
    for server in Server::all() {
        if let Some(Found {
            origin: Origin::Started { version },
            ..
        }) = servers()[server as usize].get()
        {
            lines.push(format!(
                "note: {} tests ran on {version} started for this run (removed at exit); {} names a server of your own",
                server.label(),
                server.variable()
            ));
        }
    }
    let skipped = skipped().lock().unwrap_or_else(|e| e.into_inner());
    let total: usize = skipped.values().sum();
    if total > 0 {
        lines.push(format!("note: {total} tests did not run:"));
        for ((what, why), count) in skipped.iter() {
            lines.push(format!("  {count} need {what}: {why}"));
        }
    }
    if lines.is_empty() {
        return;
    }
    let text = format!("\n{}\n", lines.join("\n"));
    // Straight to the file descriptor: libtest captures the print macros, and std's
    // handles may be gone at exit.
    // SAFETY: writes a valid buffer of its length to stderr.
    unsafe {
        libc::write(2, text.as_ptr().cast(), text.len());
    }
}

/// A directory for one server of this run, under the temp dir.
fn directory(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("multidb_test_{}_{name}", std::process::id()))
}

/// A process of its own session (Ctrl-C does not reach it) that waits for this process
/// to end, then runs `cleanup` in a shell.
fn watch(cleanup: &str) -> Result<(), String> {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {cleanup}",
        pid = std::process::id()
    );
    Command::new("setsid")
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(drop)
        .map_err(|e| format!("cannot start the watchdog (setsid): {e}"))
}

/// The newest installed PostgreSQL's server binaries.
fn postgres_bindir() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| entry.ok().map(|entry| entry.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists() && bin.join("postgres").exists())
        .collect();
    found.sort_by_key(|bin| {
        bin.parent()
            .and_then(|version| version.file_name())
            .and_then(|version| version.to_str())
            .and_then(|version| version.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn run(command: &mut Command, what: &str) -> Result<String, String> {
    let output = command
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// initdb and pg_ctl, as the `postgres` user when this runs as root (PostgreSQL refuses
/// to run as root), as `pg_virtualenv` does.
fn postgres_command(bin: &Path, program: &str) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command
            .args(["-u", "postgres", "--"])
            .arg(bin.join(program));
        command
    } else {
        Command::new(bin.join(program))
    }
}

fn start_postgres(server: Server, settings: &[&str]) -> Result<(String, String), String> {
    let bin = postgres_bindir()
        .ok_or("no PostgreSQL server is installed (Debian: apt install postgresql)".to_owned())?;
    let name = format!("{server:?}").to_ascii_lowercase();
    let dir = directory(&name);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let data = dir.join("data");
    let quoted = dir.display().to_string();
    if is_root() {
        run(
            Command::new("chown").args(["-R", "postgres:", &quoted]),
            "chown",
        )?;
    }
    // The watchdog first: whatever happens next, the directory goes with this process.
    watch(&format!(
        "[ -f {quoted}/data/postmaster.pid ] && kill -QUIT $(head -1 {quoted}/data/postmaster.pid) 2>/dev/null; \
         for _ in $(seq 1 40); do [ -f {quoted}/data/postmaster.pid ] || break; sleep 0.25; done; rm -rf {quoted}"
    ))?;
    run(
        postgres_command(&bin, "initdb")
            .args([
                "--no-sync",
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "-D",
            ])
            .arg(&data),
        "initdb",
    )?;
    let port = free_port();
    let mut options = format!(
        "-p {port} -k {quoted} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    );
    for setting in settings {
        options.push_str(&format!(" -c {setting}"));
    }
    run(
        postgres_command(&bin, "pg_ctl")
            .args(["-w", "-t", "60", "-l"])
            .arg(dir.join("server.log"))
            .args(["-o", &options, "-D"])
            .arg(&data)
            .arg("start"),
        "pg_ctl start",
    )?;
    let version = run(
        Command::new(bin.join("postgres")).arg("--version"),
        "postgres --version",
    )?;
    // `postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)`
    let version = version
        .split_whitespace()
        .nth(2)
        .map_or_else(|| "PostgreSQL".to_owned(), |v| format!("PostgreSQL {v}"));
    Ok((
        format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        version,
    ))
}

const MARIADBD: &str = "/usr/sbin/mariadbd";

fn start_mariadb() -> Result<(String, String), String> {
    if !Path::new(MARIADBD).exists() {
        return Err(
            "no MariaDB server is installed (Debian: apt install mariadb-server-core)".into(),
        );
    }
    let dir = directory("mariadb");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let quoted = dir.display().to_string();
    watch(&format!(
        "[ -f {quoted}/pid ] && kill $(cat {quoted}/pid) 2>/dev/null; \
         for _ in $(seq 1 40); do kill -0 $(cat {quoted}/pid) 2>/dev/null || break; sleep 0.25; done; \
         kill -9 $(cat {quoted}/pid) 2>/dev/null; rm -rf {quoted}"
    ))?;
    let user = if is_root() { "--user=root" } else { "--user=" };
    let mut install = Command::new("mariadb-install-db");
    install.args([
        "--no-defaults",
        "--auth-root-authentication-method=normal",
        "--skip-test-db",
    ]);
    if is_root() {
        install.arg(user);
    }
    run(
        install.arg(format!("--datadir={quoted}/data")),
        "mariadb-install-db",
    )?;
    let port = free_port();
    let mut server = Command::new(MARIADBD);
    server.arg("--no-defaults");
    if is_root() {
        server.arg(user);
    }
    let child = server
        .args([
            format!("--datadir={quoted}/data"),
            format!("--socket={quoted}/sock"),
            format!("--port={port}"),
            "--bind-address=127.0.0.1".to_owned(),
            "--character-set-server=utf8mb4".to_owned(),
            "--collation-server=utf8mb4_bin".to_owned(),
            "--max-connections=1000".to_owned(),
            "--innodb-flush-log-at-trx-commit=0".to_owned(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {MARIADBD}: {e}"))?;
    std::fs::write(dir.join("pid"), child.id().to_string())
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    for _ in 0..600 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let version = run(
                Command::new(MARIADBD).arg("--version"),
                "mariadbd --version",
            )?;
            let version = version
                .split_whitespace()
                .nth(2)
                .map_or_else(|| "MariaDB".to_owned(), |v| format!("MariaDB {v}"));
            return Ok((format!("mysql://root@127.0.0.1:{port}/mysql"), version));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err("MariaDB did not start within a minute".into())
}
