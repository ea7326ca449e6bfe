//! A TCP proxy in front of a database server, for tests of a database that is slow or
//! gone: it can hold every reply for a while, or be killed (its port then refuses
//! connections and every connection through it is cut).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Proxy {
    port: u16,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    upstream: String,
    hold_ms: AtomicU64,
    killed: AtomicBool,
    streams: Mutex<Vec<TcpStream>>,
    /// Chunks sent by clients to the server, in all.
    requests: AtomicUsize,
    /// Replies being held right now, and in all.
    held: AtomicUsize,
    held_in_all: AtomicUsize,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream` (`host:port`).
    pub fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            upstream: upstream.to_owned(),
            ..Shared::default()
        });
        accept(listener, shared.clone());
        Self { port, shared }
    }

    /// Listens again on the same port after [`kill`](Self::kill).
    pub fn revive(&self) {
        // The listener of before may take a moment to close.
        let listener = (0..500)
            .find_map(|_| {
                TcpListener::bind(("127.0.0.1", self.port))
                    .map_err(|_| std::thread::sleep(Duration::from_millis(10)))
                    .ok()
            })
            .expect("bind the proxy again");
        self.shared.killed.store(false, Ordering::SeqCst);
        accept(listener, self.shared.clone());
    }

    /// `url` (a PostgreSQL URL) with its host and port replaced by the proxy's.
    pub fn url_through(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").unwrap();
        let (credentials, after) = rest.rsplit_once('@').unwrap();
        let path = &after[after.find('/').unwrap()..];
        format!("{scheme}://{credentials}@127.0.0.1:{}{path}", self.port)
    }

    /// Holds every reply from the server this long before passing it on (zero: none).
    pub fn hold_replies(&self, hold: Duration) {
        self.shared
            .hold_ms
            .store(u64::try_from(hold.as_millis()).unwrap(), Ordering::SeqCst);
    }

    /// Chunks clients have sent to the server so far.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Replies held right now.
    pub fn held(&self) -> usize {
        self.shared.held.load(Ordering::SeqCst)
    }

    /// Replies held so far, in all.
    pub fn held_in_all(&self) -> usize {
        self.shared.held_in_all.load(Ordering::SeqCst)
    }

    /// Stops accepting (the port refuses connections) and cuts every connection.
    pub fn kill(&self) {
        self.shared.killed.store(true, Ordering::SeqCst);
        // Wakes the accepting thread, which sees `killed` and drops the listener.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        for stream in self.shared.streams.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.kill();
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, shared: &Shared, replies: bool) {
    let mut buffer = [0; 64 * 1024];
    loop {
        let read = match from.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        if replies {
            let hold = shared.hold_ms.load(Ordering::SeqCst);
            if hold > 0 {
                shared.held.fetch_add(1, Ordering::SeqCst);
                shared.held_in_all.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(hold));
                shared.held.fetch_sub(1, Ordering::SeqCst);
            }
        } else {
            shared.requests.fetch_add(1, Ordering::SeqCst);
        }
        if shared.killed.load(Ordering::SeqCst) || to.write_all(&buffer[..read]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

fn accept(listener: TcpListener, shared: Arc<Shared>) {
    std::thread::spawn(move || {
        for client in listener.incoming() {
            if shared.killed.load(Ordering::SeqCst) {
                break;
            }
            let Ok(client) = client else { continue };
            let Ok(server) = TcpStream::connect(&shared.upstream) else {
                continue;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            {
                let mut streams = shared.streams.lock().unwrap();
                streams.push(client.try_clone().unwrap());
                streams.push(server.try_clone().unwrap());
            }
            let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let up = shared.clone();
            std::thread::spawn(move || pump(client, server, &up, false));
            let down = shared.clone();
            std::thread::spawn(move || pump(s2, c2, &down, true));
        }
    });
}
