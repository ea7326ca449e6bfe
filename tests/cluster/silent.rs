//! A network that drops packets instead of refusing them: an instance in a network
//! namespace of its own reaches db1 over a veth link that the test takes down, so its
//! packets vanish without an answer, as with a host that went away.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::{eventually, order_for, Cluster, REQUEST_TIMEOUT};

/// A network namespace with two links to the host: one for HTTP, one for db1's traffic.
struct Namespace {
    name: String,
    children: Vec<Child>,
}

/// The addresses of one end of a link: `10.211.<n>.1` on the host, `.2` inside. Each run
/// takes its own subnets, so that what a killed run left behind cannot answer for it.
fn addresses(link: u32) -> (String, String) {
    let n = std::process::id() % 100 * 2 + link;
    (format!("10.211.{n}.1"), format!("10.211.{n}.2"))
}

/// A process that is killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("ip");
    assert!(status.success(), "ip {args:?}");
}

impl Namespace {
    fn create() -> Self {
        let name = format!("mdb{}", std::process::id());
        ip(&["netns", "add", &name]);
        let namespace = Self {
            name,
            children: Vec::new(),
        };
        for (link, (host, inside)) in [("h", addresses(0)), ("d", addresses(1))] {
            let host_end = namespace.link(link);
            let inside_end = format!("{host_end}n");
            ip(&[
                "link",
                "add",
                &host_end,
                "type",
                "veth",
                "peer",
                "name",
                &inside_end,
            ]);
            ip(&["link", "set", &inside_end, "netns", &namespace.name]);
            ip(&["addr", "add", &format!("{host}/24"), "dev", &host_end]);
            ip(&["link", "set", &host_end, "up"]);
            namespace.exec(&[
                "ip",
                "addr",
                "add",
                &format!("{inside}/24"),
                "dev",
                &inside_end,
            ]);
            namespace.exec(&["ip", "link", "set", &inside_end, "up"]);
        }
        namespace.exec(&["ip", "link", "set", "lo", "up"]);
        namespace
    }

    /// The host end of link `which` ("h" or "d").
    fn link(&self, which: &str) -> String {
        format!("{}{which}", self.name)
    }

    fn exec(&self, args: &[&str]) {
        let status = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .status()
            .expect("ip netns exec");
        assert!(status.success(), "{args:?} in {}", self.name);
    }

    /// Forwards `address:port` on the host to `127.0.0.1:target`.
    fn forward(&mut self, address: &str, port: u16, target: &str) {
        let child = Command::new("socat")
            .arg(format!("TCP-LISTEN:{port},bind={address},fork,reuseaddr"))
            .arg(format!("TCP:127.0.0.1:{target}"))
            .stderr(Stdio::null())
            .spawn()
            .expect("socat");
        self.children.push(child);
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Deleting the namespace deletes its veth ends, and with them the host ends.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// db1's packets dropped in silence: every request is answered 503 within the request
/// deadline, libpq's TCP timeouts (set by default) cut the stuck connections, and the
/// service resumes by itself when the link comes back.
#[test]
fn a_silent_network_to_db1_gets_503_and_its_connections_are_cut() {
    let cluster = Cluster::up("silent", 18740, &[]);
    let user = cluster.create_user("silent@example.com");
    let (host_http, ns_http) = addresses(0);
    let (host_db, _) = addresses(1);
    let mut namespace = Namespace::create();
    namespace.forward(&host_db, 15432, cluster.var("PG1_PORT"));
    namespace.forward(&host_http, 15433, cluster.var("PG2_PORT"));
    for (address, port) in [(&host_db, 15432), (&host_http, 15433)] {
        eventually("the forwarders answer from inside the namespace", || {
            Command::new("ip")
                .args(["netns", "exec", &namespace.name, "bash", "-c"])
                .arg(format!(
                    "timeout 2 bash -c 'exec 3<>/dev/tcp/{address}/{port}'"
                ))
                .stderr(Stdio::null())
                .status()
                .ok()
                .filter(|status| status.success())
        });
    }
    let log = std::env::temp_dir().join(format!("{}.log", namespace.name));
    let instance = Command::new("ip")
        .args([
            "netns",
            "exec",
            &namespace.name,
            env!("CARGO_BIN_EXE_multidb"),
        ])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "DATABASE_URL_1",
            format!("postgres://postgres@{host_db}:15432/multidb_users"),
        )
        .env(
            "DATABASE_URL_2",
            format!("postgres://postgres@{host_http}:15433/multidb_orders"),
        )
        .env("BIND_ADDRESS", format!("{ns_http}:8080"))
        // Not loopback, so authentication would default to on; this test is about
        // silent networks, and the address exists only inside its namespace.
        .env("AUTH", "off")
        .env(
            "REQUEST_TIMEOUT_MS",
            REQUEST_TIMEOUT.as_millis().to_string(),
        )
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let instance = Killed(instance);
    let agent = ureq::AgentBuilder::new()
        .timeout(REQUEST_TIMEOUT * 3)
        .build();
    let get_user = || match agent
        .get(&format!("http://{ns_http}:8080/users/{user}"))
        .call()
    {
        Ok(response) => Some(response.status()),
        Err(ureq::Error::Status(status, _)) => Some(status),
        Err(_) => None,
    };
    eventually("the instance in the namespace serves", || {
        (get_user() == Some(200)).then_some(())
    });

    ip(&["link", "set", &namespace.link("d"), "down"]);
    let silent_since = std::time::Instant::now();
    for _ in 0..3 {
        let status = get_user();
        assert_eq!(status, Some(503), "while db1's packets vanish");
    }
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    // A connection stuck on the silent link fails once tcp_user_timeout (10 s by default)
    // passes without an acknowledgement: its session's rollback fails and the pool
    // discards it, or its statement's error reads "connection lost".
    eventually("libpq cut a connection to the silent server", || {
        let log = read_log();
        (log.contains("db1: rollback failed, discarding the connection")
            || log.contains("db1 connection lost"))
        .then_some(())
    });
    eprintln!(
        "a stuck connection was cut, seen {:?} into the silence",
        silent_since.elapsed()
    );

    ip(&["link", "set", &namespace.link("d"), "up"]);
    let (_, resumed_after) = eventually("service resumed", || {
        let order = agent
            .post(&format!("http://{ns_http}:8080/orders"))
            .send_json(order_for(user))
            .map(|response| response.status())
            .ok();
        (get_user() == Some(200) && order == Some(201)).then_some(())
    });
    eprintln!("service resumed {resumed_after:?} after the link came back");
    drop(instance);
    drop(namespace);
    let _ = std::fs::remove_file(&log);
    std::thread::sleep(Duration::from_millis(100));
    cluster.assert_consistent();
}
