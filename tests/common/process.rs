//! Real `cometd` processes for cluster tests, and a small WebSocket client speaking jii's
//! wire protocol to them.
//!
//! A process is spawned from the binary cargo built for the tests, with `--bind
//! 127.0.0.1:0`; it says on stdout where it listens and when it is ready, which is what
//! [`Cometd::spawn`] waits for. Its log goes to a file under cargo's tmp dir (the path is
//! in every failure message). Dropping a `Cometd` kills it.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a process may take to say it is ready.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// One running `cometd`.
pub struct Cometd {
    child: Option<Child>,
    /// The node id it printed.
    pub node: String,
    /// `127.0.0.1:<port>` for role `server`.
    pub addr: Option<String>,
    /// Where its log goes.
    pub log: PathBuf,
    /// Its `cometd ready: …` line: role, hub, prefix, routes.
    pub ready_line: String,
    /// Its stdout, line by line; disconnected once the process exited (the pipe closed).
    stdout: mpsc::Receiver<String>,
}

impl Cometd {
    /// Starts `cometd` with `args` (plus `--bind 127.0.0.1:0` unless they bind) and waits
    /// until it is ready.
    pub fn spawn(name: &str, args: &[&str]) -> Cometd {
        Cometd::spawn_with_env(name, args, &[])
    }

    /// As [`spawn`](Self::spawn), with `env` added to its environment.
    pub fn spawn_with_env(name: &str, args: &[&str], env: &[(&str, &str)]) -> Cometd {
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "cometd-{name}-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let log_file = std::fs::File::create(&log).expect("cannot create the process log");
        let bind: &[&str] = if args.contains(&"--bind") {
            &[]
        } else {
            &["--bind", "127.0.0.1:0"]
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_cometd"))
            .args(args)
            .args(bind)
            .env("RUST_LOG", "info,comet_actors=debug")
            .env_remove("COMET_CONFIG")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .spawn()
            .expect("cannot start cometd");
        let stdout = child.stdout.take().expect("cometd stdout is piped");
        let (lines, ready) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut process = Cometd {
            child: Some(child),
            node: String::new(),
            addr: None,
            log,
            ready_line: String::new(),
            stdout: ready,
        };
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match process.stdout.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => panic!(
                    "cometd {name} did not get ready within {READY_WITHIN:?}; log: {}",
                    process.log.display()
                ),
            };
            if let Some(rest) = line.strip_prefix("cometd listening on http://") {
                process.addr = rest.split('/').next().map(str::to_owned);
            } else if let Some(rest) = line.strip_prefix("cometd ready: node ") {
                process.node = rest.split(',').next().unwrap_or_default().to_owned();
                process.ready_line = line;
                return process;
            }
        }
    }

    /// A `--role server` process with the demo actions on the Redis of the flags `redis`
    /// (`--redis URL` or `--redis-cluster URLS`) under `prefix`, plus `extra` flags.
    pub fn server(name: &str, redis: &[String], prefix: &str, extra: &[&str]) -> Cometd {
        let mut args = vec!["--role", "server", "--demo", "--prefix", prefix];
        args.extend(redis.iter().map(String::as_str));
        args.extend_from_slice(extra);
        Cometd::spawn(name, &args)
    }

    /// A `--role hub` process (actions only: the demo actions) on `redis` under `prefix`,
    /// plus `extra`.
    pub fn hub(name: &str, redis: &[String], prefix: &str, extra: &[&str]) -> Cometd {
        let mut args = vec!["--role", "hub", "--demo", "--prefix", prefix];
        args.extend(redis.iter().map(String::as_str));
        args.extend_from_slice(extra);
        Cometd::spawn(name, &args)
    }

    /// The WebSocket URL of a `server` process.
    pub fn ws_url(&self) -> String {
        let addr = self
            .addr
            .as_deref()
            .unwrap_or_else(|| panic!("cometd {} holds no connections", self.node));
        format!("ws://{addr}/comet/websocket")
    }

    /// Connects a client to this process.
    pub async fn connect(&self) -> Client {
        Client::connect(&self.ws_url()).await
    }

    /// Asks the process to stop gracefully (SIGTERM), as an orchestrator does.
    pub fn terminate(&self) {
        let child = self.child.as_ref().expect("the process was killed already");
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("cannot run kill");
        assert!(sent.success(), "kill -TERM failed");
    }

    /// Waits (up to `within`) for the process to exit; its exit status, or `None` if it
    /// still runs.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        // The process's stdout closes when it exits: that is the event waited for.
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(_) => continue,
                Err(mpsc::RecvTimeoutError::Timeout) => return None,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let status = child.wait().expect("cannot wait for cometd");
        self.child = None;
        Some(status)
    }

    /// Its action queue's consumer id, from its log (`redis queue: consumer <id> serves …`).
    pub fn consumer(&self) -> String {
        let logged = self.logged();
        let line = logged
            .lines()
            .find_map(|line| line.split("redis queue: consumer ").nth(1))
            .unwrap_or_else(|| panic!("no consumer in {}", self.log.display()));
        line.split(' ').next().unwrap_or_default().to_owned()
    }

    /// What the process logged so far (its stderr, in [`log`](Self::log)).
    pub fn logged(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the process at once (SIGKILL): no goodbye, no cleanup.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// How a `cometd` that was run to its end ended.
pub struct Exit {
    /// Its exit status.
    pub status: std::process::ExitStatus,
    /// What it printed on stdout.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
}

/// Runs `cometd` with `args` (and no `COMET_*` variable of the test's environment) until
/// it exits, for at most `within`: for start-up failures, which end the process.
pub fn run_to_exit(args: &[&str], within: Duration) -> Exit {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cometd"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("COMET_") {
            command.env_remove(name);
        }
    }
    let child = command
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start cometd");
    let pid = child.id();
    let (done, exit) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match exit.recv_timeout(within) {
        Ok(Ok(output)) => Exit {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        },
        Ok(Err(err)) => panic!("cannot wait for cometd {args:?}: {err}"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("cometd {args:?} still ran after {within:?}")
        }
    }
}

impl Drop for Cometd {
    fn drop(&mut self) {
        self.kill9();
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket client that keeps frames it was not asked for, so none is lost while it
/// waits for another.
pub struct Client {
    socket: Socket,
    unread: Vec<String>,
    next_uid: u64,
}

impl Client {
    /// Connects to a comet WebSocket URL.
    pub async fn connect(url: &str) -> Client {
        let (socket, _) = tokio::time::timeout(
            Duration::from_secs(10),
            tokio_tungstenite::connect_async(url),
        )
        .await
        .unwrap_or_else(|_| panic!("no WebSocket connection to {url} within 10 s"))
        .unwrap_or_else(|err| panic!("cannot connect to {url}: {err}"));
        Client {
            socket,
            unread: Vec::new(),
            next_uid: 1,
        }
    }

    /// Sends a text frame.
    pub async fn send(&mut self, frame: impl Into<String>) {
        let frame: String = frame.into();
        self.socket
            .send(Message::text(frame))
            .await
            .expect("cannot send a frame");
    }

    /// The next frame that `wanted` accepts, within `within`; others stay unread.
    pub async fn find(
        &mut self,
        within: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> Option<String> {
        if let Some(at) = self.unread.iter().position(|frame| wanted(frame)) {
            return Some(self.unread.remove(at));
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let next = tokio::time::timeout_at(deadline, self.socket.next()).await;
            match next {
                Err(_) => return None,
                Ok(None) | Ok(Some(Err(_))) => return None,
                Ok(Some(Ok(Message::Text(text)))) => {
                    let text = text.to_string();
                    if wanted(&text) {
                        return Some(text);
                    }
                    self.unread.push(text);
                }
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// As [`find`](Self::find), failing the test on time-out.
    pub async fn expect(
        &mut self,
        what: &str,
        within: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> String {
        match self.find(within, wanted).await {
            Some(frame) => frame,
            None => panic!(
                "no frame for {what} within {within:?}; unread: {:?}",
                self.unread
            ),
        }
    }

    /// Subscribes and waits for `subscribed <channel>`.
    pub async fn subscribe(&mut self, channel: &str) {
        self.send(format!("subscribe {channel}")).await;
        let ack = format!("subscribed {channel}");
        self.expect(&ack, Duration::from_secs(10), |f| f == ack)
            .await;
    }

    /// Unsubscribes and waits for `unsubscribed <channel>`.
    pub async fn unsubscribe(&mut self, channel: &str) {
        self.send(format!("unsubscribe {channel}")).await;
        let ack = format!("unsubscribed {channel}");
        self.expect(&ack, Duration::from_secs(10), |f| f == ack)
            .await;
    }

    /// Publishes `payload` on `channel`.
    pub async fn publish(&mut self, channel: &str, payload: &str) {
        self.send(format!("channel {channel} {payload}")).await;
    }

    /// Publishes `marker` on `channel` (this client must be subscribed to it) and waits
    /// for it to come back. A channel keeps the order of what reaches the hub, so
    /// whatever was published on it before has arrived by then: a test shows that
    /// something did not come by a later event, not by waiting a while.
    pub async fn round_trip(&mut self, channel: &str, marker: &str) {
        self.publish(channel, marker).await;
        let frame = format!("channel {channel} {marker}");
        let wanted = frame.clone();
        self.expect(&frame, Duration::from_secs(15), move |f| f == wanted)
            .await;
    }

    /// A frame that `wanted` accepts among those already read and not yet asked for
    /// (taken out of them); reads nothing more.
    pub fn already_read(&mut self, wanted: impl Fn(&str) -> bool) -> Option<String> {
        let at = self.unread.iter().position(|frame| wanted(frame))?;
        Some(self.unread.remove(at))
    }

    /// Whether `channel <channel> <payload>` arrives within `within`.
    pub async fn receives(&mut self, channel: &str, payload: &str, within: Duration) -> bool {
        let frame = format!("channel {channel} {payload}");
        self.find(within, |f| f == frame).await.is_some()
    }

    /// Sends an action call; answers its requestUid.
    pub async fn call(&mut self, route: &str, params: Value) -> String {
        let uid = format!("r{}", self.next_uid);
        self.next_uid += 1;
        let mut body = params;
        if let Value::Object(map) = &mut body {
            map.insert("requestUid".into(), json!(uid));
        }
        self.send(format!("action {route} {body}")).await;
        uid
    }

    /// The answer object of call `uid` (with `requestUid`), within `within`.
    pub async fn answer(&mut self, uid: &str, within: Duration) -> Value {
        let frame = self
            .expect(&format!("the answer to {uid}"), within, |frame| {
                answer_uid(frame).as_deref() == Some(uid)
            })
            .await;
        serde_json::from_str(&frame["action ".len()..]).expect("answers are JSON")
    }

    /// Calls and waits for the answer.
    pub async fn call_and_wait(&mut self, route: &str, params: Value, within: Duration) -> Value {
        let uid = self.call(route, params).await;
        self.answer(&uid, within).await
    }

    /// Reads (and keeps) frames until the server closes the connection; the close code,
    /// or `None` if the connection did not close within `within` or ended without one.
    pub async fn close_code(&mut self, within: Duration) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| u16::from(f.code)),
                Ok(Some(Ok(Message::Text(text)))) => self.unread.push(text.to_string()),
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_)) | None) | Err(_) => return None,
            }
        }
    }

    /// Answers to several calls, by requestUid, within `within` in all.
    pub async fn answers(&mut self, uids: &[String], within: Duration) -> HashMap<String, Value> {
        let deadline = Instant::now() + within;
        let mut all = HashMap::new();
        for uid in uids {
            let left = deadline.saturating_duration_since(Instant::now());
            all.insert(uid.clone(), self.answer(uid, left).await);
        }
        all
    }
}

/// The requestUid of an `action {…}` frame, if it is one.
fn answer_uid(frame: &str) -> Option<String> {
    let body: Value = serde_json::from_str(frame.strip_prefix("action ")?).ok()?;
    body.get("requestUid")?.as_str().map(str::to_owned)
}
