//! A MariaDB server of a test's own, which it can stop, kill, freeze and start again:
//! the shared test server (`MULTIDB_TEST_MYSQL_URL`) must never go away under other
//! tests. Started as `.ci/with-mariadb` starts the shared one, on a free port, in a
//! directory of its own; killed by its pid and removed when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::child::free_port;

const MARIADBD: &str = "/usr/sbin/mariadbd";

pub struct OwnMariadb {
    directory: PathBuf,
    port: u16,
    server: Option<Child>,
}

impl OwnMariadb {
    /// A new server, installed and started; `None` (with a note) where MariaDB's server
    /// is not installed, which under CI fails the test instead.
    pub fn start() -> Option<Self> {
        if !std::path::Path::new(MARIADBD).exists() {
            assert!(
                std::env::var_os("CI").is_none(),
                "{MARIADBD} is missing under CI: a MySQL server test would be skipped"
            );
            super::not_run(
                "a MariaDB server of their own",
                "no MariaDB server is installed (Debian: apt install mariadb-server-core)",
            );
            return None;
        }
        let directory = std::env::temp_dir().join(format!(
            "multidb-mariadb-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&directory).expect("create the server's directory");
        let installed = Command::new("mariadb-install-db")
            .args([
                "--no-defaults",
                "--user=root",
                &format!("--datadir={}", directory.join("data").display()),
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run mariadb-install-db");
        assert!(installed.success(), "mariadb-install-db failed");
        let mut server = Self {
            directory,
            port: free_port(),
            server: None,
        };
        server.run();
        Some(server)
    }

    /// Starts the server on its data directory and waits until it takes connections.
    pub fn run(&mut self) {
        assert!(self.server.is_none(), "the server runs already");
        let log = std::fs::File::create(self.directory.join("server.log")).expect("server log");
        let child = Command::new(MARIADBD)
            .args([
                "--no-defaults",
                "--user=root",
                &format!("--datadir={}", self.directory.join("data").display()),
                &format!("--socket={}", self.directory.join("sock").display()),
                &format!("--port={}", self.port),
                "--bind-address=127.0.0.1",
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_bin",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start mariadbd");
        self.server = Some(child);
        let up = (0..600).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        });
        assert!(
            up,
            "mariadbd did not come up: see {}",
            self.directory.display()
        );
    }

    /// `mysql://root@…/<database>` on this server.
    pub fn url(&self, database: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{database}", self.port)
    }

    /// Runs `sql` as root on this server.
    pub fn execute(&self, sql: &str) {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        diesel::mysql::MysqlConnection::establish(&self.url("mysql"))
            .expect("connect to the test's own MariaDB")
            .batch_execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    fn signal(&self, signal: &str) {
        let pid = self.server.as_ref().expect("the server runs").id();
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{signal} {pid}");
    }

    /// Shuts the server down cleanly (SIGTERM) and waits for it to end.
    pub fn stop(&mut self) {
        self.signal("TERM");
        if let Some(mut server) = self.server.take() {
            let _ = server.wait();
        }
    }

    /// Kills the server (SIGKILL): a crash.
    pub fn crash(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
    }

    /// Freezes the server (SIGSTOP): it keeps its connections and answers nothing.
    pub fn freeze(&self) {
        self.signal("STOP");
    }

    pub fn thaw(&self) {
        self.signal("CONT");
    }
}

impl Drop for OwnMariadb {
    fn drop(&mut self) {
        if self.server.is_some() {
            // A stopped process would not take SIGKILL's exit until continued.
            self.thaw();
            self.crash();
        }
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}
