//! A `redis-server` of a test's own, on a free port: started, stopped (as by a crash),
//! started again on the same port, and killed when dropped. Never the machine's 6379.
//!
//! `scripts/test` makes sure `redis-server` is installed; run alone, a test that needs it
//! and cannot find it fails with a message saying so.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// One private Redis.
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Running,
}

/// Starts `redis-server` on 127.0.0.1 without persistence, with `args` (its port, its
/// directory, …); `None` if it did not come up. Waits for its "Ready to accept
/// connections" line (or the end of its output, if it exits, e.g. because the port was
/// taken meanwhile).
pub fn launch(args: &[&str]) -> Option<Child> {
    let mut child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1"])
        .args(["--save", ""])
        .args(["--appendonly", "no"])
        .args(["--loglevel", "notice"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| {
            panic!(
                "cannot run redis-server ({err}): install it (Debian: apt-get install \
                 redis-server), or run ./scripts/test, which does"
            )
        });
    let stdout = child.stdout.take().expect("redis-server stdout is piped");
    let (lines, said) = mpsc::channel();
    // Reads to the end, so that Redis never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut told = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !told && line.contains("Ready to accept connections") {
                told = true;
                let _ = lines.send(());
            }
        }
    });
    if said.recv_timeout(Duration::from_secs(10)).is_ok() {
        Some(child)
    } else {
        // It exited without getting ready, or hangs.
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

/// A `redis-server` this test started (or none): killed, frozen, resumed.
#[derive(Default)]
pub struct Running(Option<Child>);

impl Running {
    /// The process `launch` started, if it did.
    pub fn new(child: Option<Child>) -> Running {
        Running(child)
    }

    /// Whether it runs.
    pub fn is_running(&self) -> bool {
        self.0.is_some()
    }

    /// Kills it at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes it (SIGSTOP): connections stay open, nothing is answered until
    /// [`resume`](Self::resume).
    pub fn stop(&self) {
        self.signal("-STOP");
    }

    /// Lets it run again (SIGCONT); it answers what waited meanwhile.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.0.as_ref().expect("redis-server is not running");
        let sent = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("cannot run kill");
        assert!(sent.success(), "kill {signal} failed");
    }
}

/// A port nobody listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("cannot find a free port")
}

impl RedisServer {
    /// Starts a Redis with no persistence on a free port and waits until it answers.
    pub fn start() -> RedisServer {
        for _ in 0..5 {
            let port = free_port();
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("redis-{port}"));
            std::fs::create_dir_all(&dir).expect("cannot make the Redis directory");
            let mut server = RedisServer {
                port,
                dir,
                child: Running::default(),
            };
            if server.launch() {
                return server;
            }
        }
        panic!("could not start redis-server on a free port after 5 tries");
    }

    /// Starts `redis-server` on this server's port; false if it did not come up. Waits
    /// for its "Ready to accept connections" line (or the end of its output, if it
    /// exits, e.g. because the port was taken meanwhile).
    fn launch(&mut self) -> bool {
        let dir = self.dir.to_string_lossy().into_owned();
        self.child = Running::new(launch(&["--port", &self.port.to_string(), "--dir", &dir]));
        self.child.is_running()
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The `cometd` flags that put a process on it: `--redis <url>`.
    pub fn args(&self) -> Vec<String> {
        vec!["--redis".into(), self.url()]
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills Redis at once (SIGKILL), as a crash would; everything in it is lost.
    pub fn kill(&mut self) {
        self.child.kill();
    }

    /// Freezes Redis (SIGSTOP), as a stalled server: connections stay open, nothing is
    /// answered until [`resume`](Self::resume).
    pub fn stop(&self) {
        self.child.stop();
    }

    /// Lets a stopped Redis run again (SIGCONT); it answers what waited meanwhile.
    pub fn resume(&self) {
        self.child.resume();
    }

    /// Starts Redis again on the same port, empty.
    pub fn restart(&mut self) {
        self.kill();
        // Each try waits for Redis to say it is ready, or to exit (the port still
        // held by a connection of the old one, e.g.): a few tries, no pause between.
        for _ in 0..20 {
            if self.launch() {
                return;
            }
        }
        panic!("redis-server did not come back on port {}", self.port);
    }

    /// Tells, through Redis' `MONITOR`, each time the queue reaper of `consumer` (under
    /// `prefix`) runs, once per heartbeat: an event per pass, so that a test lets passes
    /// go by instead of waiting by the clock. Its thread ends when Redis goes away or the
    /// receiver is dropped (at the next command).
    pub fn reaper_passes(
        &self,
        prefix: &str,
        consumer: &str,
    ) -> tokio::sync::mpsc::UnboundedReceiver<()> {
        // The reap script's arguments start with the prefix and the reaping consumer.
        monitor(self.connection(), format!("\"{prefix}\" \"{consumer}\""))
    }

    /// A fresh connection, for checks (`PUBSUB`, `LLEN`, …).
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|client| client.get_connection_with_timeout(Duration::from_secs(2)))
            .expect("cannot connect to the test Redis")
    }

    /// Runs one command and reads its answer as `T`.
    pub fn query<T: redis::FromRedisValue>(&self, command: &redis::Cmd) -> T {
        command
            .query(&mut self.connection())
            .expect("a Redis check failed")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Tells each time `MONITOR` on `connection` shows a command containing `marker`. Its
/// thread ends when Redis goes away or the receiver is dropped (at the next command).
pub fn monitor(
    mut connection: redis::Connection,
    marker: String,
) -> tokio::sync::mpsc::UnboundedReceiver<()> {
    redis::cmd("MONITOR")
        .query::<()>(&mut connection)
        .expect("MONITOR is accepted");
    let (passes, heard) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        while let Ok(line) = connection.recv_response() {
            let line = match line {
                redis::Value::SimpleString(line) => line,
                redis::Value::BulkString(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                _ => continue,
            };
            if line.contains(&marker) && passes.send(()).is_err() {
                break;
            }
        }
    });
    heard
}
