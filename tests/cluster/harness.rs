//! A cluster of the real binary, started by `deploy/local/cluster.sh`: two PostgreSQL
//! servers, PgBouncer in transaction mode, three instances and haproxy, all on loopback
//! in a directory of their own, torn down when the test ends.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Text};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use serde_json::Value;

/// The lease and recovery interval the cluster's instances run with (short, so that a
/// test sees a dead instance's work resolved soon).
pub const LEASE: Duration = Duration::from_millis(3000);
pub const RECOVERY_INTERVAL: Duration = Duration::from_millis(1000);
/// Every request is answered within this (the instances' `REQUEST_TIMEOUT_MS`).
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(4000);

pub struct Cluster {
    dir: PathBuf,
    env: HashMap<String, String>,
    agent: ureq::Agent,
}

/// What the client saw.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: Value,
    pub text: String,
}

impl Answer {
    pub fn code(&self) -> Option<&str> {
        self.body["code"].as_str()
    }

    pub fn id(&self) -> i64 {
        self.body["id"]
            .as_i64()
            .unwrap_or_else(|| panic!("no id in {}", self.text))
    }
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

impl Cluster {
    /// Starts a cluster named `name` on ports from `port`, with extra environment for
    /// instance `i` (1–3) from `instance_env`. Blocks until haproxy sees all three.
    pub fn up(name: &str, port: u16, instance_env: &[(usize, &str)]) -> Self {
        let dir =
            std::env::temp_dir().join(format!("multidb-cluster-{name}-{}", std::process::id()));
        let mut command = Command::new("bash");
        command
            .arg(repo().join("deploy/local/cluster.sh"))
            .arg("up")
            .env("MULTIDB_CLUSTER_DIR", &dir)
            .env("MULTIDB_CLUSTER_PORT", port.to_string())
            .env("MULTIDB_BIN", env!("CARGO_BIN_EXE_multidb"))
            .env("MULTIDB_LEASE_MS", LEASE.as_millis().to_string())
            .env(
                "MULTIDB_RECOVERY_INTERVAL_MS",
                RECOVERY_INTERVAL.as_millis().to_string(),
            )
            .env(
                "MULTIDB_REQUEST_TIMEOUT_MS",
                REQUEST_TIMEOUT.as_millis().to_string(),
            )
            .env("RUST_LOG", "info");
        for (instance, env) in instance_env {
            command.env(format!("MULTIDB_INSTANCE_ENV_{instance}"), env);
        }
        let mut cluster = Self {
            env: HashMap::new(),
            dir,
            agent: ureq::AgentBuilder::new()
                .timeout(REQUEST_TIMEOUT * 3)
                .build(),
        };
        let output = command.output().expect("run cluster.sh");
        assert!(
            output.status.success(),
            "cluster.sh up failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let env = std::fs::read_to_string(cluster.dir.join("cluster.env")).expect("cluster.env");
        cluster.env = env
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        cluster
    }

    pub fn var(&self, name: &str) -> &str {
        self.env
            .get(name)
            .unwrap_or_else(|| panic!("{name} not in cluster.env"))
    }

    fn port(&self, name: &str) -> u16 {
        self.var(name).parse().expect("a port")
    }

    /// Runs a subcommand of the cluster script.
    pub fn script(&self, args: &[&str]) {
        let output = Command::new("bash")
            .arg(repo().join("deploy/local/cluster.sh"))
            .args(args)
            .env("MULTIDB_CLUSTER_DIR", &self.dir)
            .output()
            .expect("run cluster.sh");
        assert!(
            output.status.success(),
            "cluster.sh {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// A request through haproxy.
    pub fn request(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        self.request_to(self.port("HAPROXY_PORT"), method, path, body)
    }

    /// A request to instance `i` directly.
    pub fn request_instance(
        &self,
        i: usize,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Answer {
        self.request_to(self.port(&format!("INSTANCE{i}_PORT")), method, path, body)
    }

    /// A request, or the transport error that stood in its way.
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Answer, String> {
        send(&self.agent, self.port("HAPROXY_PORT"), method, path, body)
    }

    fn request_to(&self, port: u16, method: &str, path: &str, body: Option<Value>) -> Answer {
        send(&self.agent, port, method, path, body)
            .unwrap_or_else(|error| panic!("{method} {path}: {error}"))
    }

    pub fn create_user(&self, email: &str) -> i64 {
        let answer = self.request(
            "POST",
            "/users",
            Some(serde_json::json!({"email": email, "name": "Someone"})),
        );
        assert_eq!(answer.status, 201, "{}", answer.text);
        answer.id()
    }

    pub fn create_order(&self, user: i64) -> i64 {
        let answer = self.request("POST", "/orders", Some(order_for(user)));
        assert_eq!(answer.status, 201, "{}", answer.text);
        answer.id()
    }

    pub fn instance_pid(&self, i: usize) -> i32 {
        read_pid(&self.dir.join(format!("instance{i}.pid")))
    }

    pub fn instance_log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.join(format!("instance{i}.log"))).unwrap_or_default()
    }

    /// The pid of PostgreSQL server `n`'s postmaster.
    pub fn postmaster_pid(&self, n: u8) -> i32 {
        read_pid(&Path::new(self.var(&format!("PG{n}_DATA"))).join("postmaster.pid"))
    }

    /// A connection straight to database `n` (not through PgBouncer).
    pub fn db(&self, n: u8) -> PgConnection {
        let url = self.var(&format!("DB{n}_DIRECT_URL"));
        PgConnection::establish(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    pub fn count(&self, n: u8, sql: &str) -> i64 {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        diesel::sql_query(sql)
            .get_result::<Count>(&mut self.db(n))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .n
    }

    pub fn prepared_transactions(&self) -> Vec<String> {
        #[derive(QueryableByName)]
        struct Gid {
            #[diesel(sql_type = Text)]
            gid: String,
        }
        diesel::sql_query("SELECT gid FROM pg_prepared_xacts")
            .load::<Gid>(&mut self.db(1))
            .expect("pg_prepared_xacts")
            .into_iter()
            .map(|row| row.gid)
            .collect()
    }

    pub fn ids(&self, n: u8, sql: &str) -> Vec<i64> {
        #[derive(QueryableByName)]
        struct Id {
            #[diesel(sql_type = BigInt)]
            id: i64,
        }
        diesel::sql_query(sql)
            .load::<Id>(&mut self.db(n))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .into_iter()
            .map(|row| row.id)
            .collect()
    }

    /// The integrity of the two databases together: no prepared transaction left, and
    /// no order whose user is gone.
    pub fn assert_consistent(&self) {
        assert_eq!(self.prepared_transactions(), Vec::<String>::new());
        let users = self.ids(1, "SELECT id FROM users");
        let orphans: Vec<i64> = self
            .ids(2, "SELECT DISTINCT user_id AS id FROM orders")
            .into_iter()
            .filter(|user| !users.contains(user))
            .collect();
        assert_eq!(orphans, Vec::<i64>::new(), "orders whose user is gone");
    }

    pub fn execute(&self, n: u8, sql: &str) {
        self.db(n)
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for log in [
                "instance1.log",
                "instance2.log",
                "instance3.log",
                "pgbouncer.log",
            ] {
                let text = std::fs::read_to_string(self.dir.join(log)).unwrap_or_default();
                let lines: Vec<&str> = text
                    .lines()
                    .filter(|line| !line.contains(" INFO "))
                    .collect();
                eprintln!(
                    "--- {log}, last warnings and errors:\n{}",
                    lines[lines.len().saturating_sub(15)..].join("\n")
                );
            }
        }
        // Nothing of ours stays stopped: a SIGSTOPped process would not stop on SIGTERM.
        for pid in self.stopped_pids() {
            signal(pid, "CONT");
        }
        let _ = Command::new("bash")
            .arg(repo().join("deploy/local/cluster.sh"))
            .arg("down")
            .env("MULTIDB_CLUSTER_DIR", &self.dir)
            .status();
    }
}

impl Cluster {
    fn stopped_pids(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = (1..=3)
            .filter_map(|i| std::fs::read_to_string(self.dir.join(format!("instance{i}.pid"))).ok())
            .filter_map(|pid| pid.trim().parse().ok())
            .collect();
        for n in 1..=2 {
            if let Some(data) = self.env.get(&format!("PG{n}_DATA")) {
                if let Ok(text) = std::fs::read_to_string(Path::new(data).join("postmaster.pid")) {
                    if let Some(pid) = text.lines().next().and_then(|p| p.trim().parse().ok()) {
                        pids.push(pid);
                        pids.extend(children(pid));
                    }
                }
            }
        }
        pids
    }
}

fn read_pid(path: &Path) -> i32 {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .next()
        .and_then(|pid| pid.trim().parse().ok())
        .unwrap_or_else(|| panic!("{}: no pid", path.display()))
}

/// `kill -<name> <pid>`.
pub fn signal(pid: i32, name: &str) {
    let _ = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status();
}

/// The processes whose parent is `pid` (PostgreSQL's backends under its postmaster).
pub fn children(pid: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|stat| {
                    // The command may hold spaces: the fields after its closing paren.
                    let rest = &stat[stat.rfind(')')? + 2..];
                    rest.split(' ').nth(1)?.parse::<i32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

pub fn order_for(user: i64) -> Value {
    serde_json::json!({"user_id": user, "item": "book", "quantity": 1, "amount_cents": 100})
}

fn send(
    agent: &ureq::Agent,
    port: u16,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Answer, String> {
    let url = format!("http://127.0.0.1:{port}{path}");
    let request = agent.request(method, &url);
    let result = match body {
        Some(body) => request.send_json(body),
        None => request.call(),
    };
    let response = match result {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(error) => return Err(error.to_string()),
    };
    let status = response.status();
    let retry_after = response.header("retry-after").map(str::to_owned);
    let text = response.into_string().unwrap_or_default();
    Ok(Answer {
        status,
        retry_after,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    })
}

/// Polls `check` every 50 ms until it gives a value; the bound (120 s) is only reached
/// when something hangs. Returns the value and how long it took.
pub fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> (T, Duration) {
    let started = Instant::now();
    for _ in 0..2400 {
        if let Some(value) = check() {
            return (value, started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("never happened: {what}");
}
