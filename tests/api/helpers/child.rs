//! The real binary as a child process, for tests that kill it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::client::{send, Response};

/// A server process on a free port; killed (SIGKILL) when dropped.
pub struct ChildServer {
    child: Child,
    base: String,
    stderr: mpsc::Receiver<String>,
    agent: ureq::Agent,
}

/// A port nothing listens on right now, for a server to bind.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

impl ChildServer {
    /// Starts the binary with `env` and waits until `/health` answers 200.
    pub fn start(env: &[(&str, &str)]) -> Self {
        let address = format!("127.0.0.1:{}", free_port());
        let mut command = Command::new(env!("CARGO_BIN_EXE_multidb"));
        command
            .env("BIND_ADDRESS", &address)
            .env("RUST_LOG", "warn")
            .env("HTTP_WORKERS", "2")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("start the server");
        let (lines, stderr) = mpsc::channel();
        let pipe = child.stderr.take().expect("piped stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                eprintln!("[server] {line}");
                let _ = lines.send(line);
            }
        });
        let server = Self {
            child,
            base: format!("http://{address}"),
            stderr,
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(30))
                .build(),
        };
        let ready = (0..400).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            server
                .agent
                .get(&format!("{}/health", server.base))
                .call()
                .is_ok()
        });
        assert!(ready, "the server did not come up");
        server
    }

    /// `http://127.0.0.1:<port>`, for clients of other threads (a `ChildServer` stays on
    /// the thread that reads its stderr).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn request(&self, method: &str, path: &str, body: Option<serde_json::Value>) -> Response {
        self.request_with(method, path, &[], body)
    }

    /// A request with `headers` (name, value) too, e.g. `Authorization`.
    pub fn request_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> Response {
        let body = body.map(|json| ("application/json", json.to_string().into_bytes()));
        send(
            &self.agent,
            method,
            &format!("{}{path}", self.base),
            headers,
            body,
        )
    }

    /// Sends a request that is expected never to be answered (the server dies first).
    pub fn request_in_background(&self, method: &str, path: &str) -> std::thread::JoinHandle<()> {
        self.request_with_in_background(method, path, &[], None)
    }

    /// Like [`request_in_background`](Self::request_in_background), with `headers`
    /// (name, value) and a JSON body sent as [`request_with`](Self::request_with) sends it.
    pub fn request_with_in_background(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> std::thread::JoinHandle<()> {
        let request = headers.iter().fold(
            self.agent.request(method, &format!("{}{path}", self.base)),
            |request, (name, value)| request.set(name, value),
        );
        std::thread::spawn(move || {
            let _ = match body {
                Some(json) => request
                    .set("Content-Type", "application/json")
                    .send_string(&json.to_string()),
                None => request.call(),
            };
        })
    }

    /// Waits until the server writes a stderr line containing `needle`.
    pub fn wait_for_stderr(&self, needle: &str) -> bool {
        self.wait_for_stderr_line(|line| line.contains(needle))
            .is_some()
    }

    /// Waits until the server writes a stderr line that `wanted` accepts, and returns it.
    pub fn wait_for_stderr_line(&self, wanted: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.stderr.recv_timeout(left) {
                Ok(line) if wanted(&line) => return Some(line),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    }

    /// Kills the server (`kill -9`) and returns every stderr line it wrote that no wait
    /// for a line has consumed: all of them, since the pipe is read to its end.
    pub fn stderr_until_killed(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stderr.iter().collect()
    }

    /// `kill -9`: no destructor, no shutdown, no flush runs in the server.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, as a supervisor stops the service, and the exit status once it is gone.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        self.child.wait().expect("wait for the server")
    }
}

/// Starts the binary with nothing but `env` (and `PATH`), in the temporary directory,
/// for a start-up that must fail: its exit code and stderr once it exits. Fails the test
/// if it starts serving instead.
pub fn start_up_outcome(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let address = format!("127.0.0.1:{}", free_port());
    let mut command = Command::new(env!("CARGO_BIN_EXE_multidb"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BIND_ADDRESS", &address)
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut server = command.spawn().expect("start the server");
    let health = format!("http://{address}/health");
    let status = loop {
        if let Some(status) = server.try_wait().expect("the server's status") {
            break status;
        }
        if !matches!(ureq::get(&health).call(), Err(ureq::Error::Transport(_))) {
            let _ = server.kill();
            let _ = server.wait();
            panic!("started serving with {env:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = server.stderr.take() {
        use std::io::Read;
        let _ = pipe.read_to_string(&mut stderr);
    }
    (status.code(), stderr)
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
