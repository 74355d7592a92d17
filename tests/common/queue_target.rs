//! Where the Redis queue's tests run: a single Redis or a Redis Cluster of the test's own,
//! each mode in `COMET_TEST_REDIS` (`single`, `cluster` or `both`; unset = `both`), with
//! the queue's keys as each layout names them, and the answers and notices the queue
//! sends to other processes, heard where each layout sends them.
//!
//! Included with `#[path]` beside `redis.rs` and `redis_cluster.rs`.

#![allow(dead_code)]

use std::sync::mpsc;
use std::time::Duration;

use actix::{Actor, Context, Handler};
use comet::actors::actions::queue::QueueLink;
use comet::actors::hub::{HubMessage, HubNames};
use comet::actors::{Hub, MemoryBroker, ProcessMessage};
use comet::{Queue, RedisConfig, RedisQueue};

use comet::actors::actions::queue::unix_millis;
use comet::actors::protocol::RequestUid;
use comet::actors::{ActionCall, Claimed};
use comet::{ConnectionId, ConnectionInfo};
use serde_json::Map;

use super::redis_cluster::{slot_of, RedisCluster};
use super::redis_server::RedisServer;

/// Call `n` of `route`, from a caller on process `p1`, with a minute to run.
pub fn call(route: &str, n: u64) -> ActionCall {
    ActionCall {
        id: format!("call-{route}-{n}"),
        route: route.to_owned(),
        request_uid: RequestUid::from(format!("r{n}").as_str()),
        params: Map::new(),
        connection: ConnectionInfo::new(ConnectionId::new("p1", n), "websocket"),
        deadline_ms: unix_millis() + 60_000,
    }
}

/// Route names as the queue takes them.
pub fn routes(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

/// The ids of claimed calls, in order.
pub fn ids(calls: &[Claimed]) -> Vec<&str> {
    calls
        .iter()
        .map(|claimed| claimed.call.id.as_str())
        .collect()
}

/// A single Redis or a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One `redis-server`.
    Single,
    /// A Redis Cluster of three masters.
    Cluster,
}

/// The modes `COMET_TEST_REDIS` asks for.
pub fn modes() -> Vec<Mode> {
    match std::env::var("COMET_TEST_REDIS").as_deref() {
        Ok("single") => vec![Mode::Single],
        Ok("cluster") => vec![Mode::Cluster],
        Ok("both") | Err(_) => vec![Mode::Single, Mode::Cluster],
        Ok(other) => panic!("COMET_TEST_REDIS is `{other}`: single, cluster or both"),
    }
}

/// A Redis of the test's own, in one mode.
pub enum Target {
    /// One Redis.
    Single(RedisServer),
    /// A cluster.
    Cluster(RedisCluster),
}

impl Target {
    /// Starts a Redis in `mode`.
    pub fn start(mode: Mode) -> Target {
        match mode {
            Mode::Single => Target::Single(RedisServer::start()),
            Mode::Cluster => Target::Cluster(RedisCluster::start(3)),
        }
    }

    /// Whether this is a cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Target::Cluster(_))
    }

    /// The queue's settings for this Redis.
    pub fn config(&self) -> RedisConfig {
        match self {
            Target::Single(redis) => RedisConfig::new(redis.url()),
            Target::Cluster(cluster) => RedisConfig::cluster(cluster.urls()),
        }
    }

    /// A queue under `prefix` with this `process_ttl`.
    pub fn queue(&self, prefix: &str, ttl_ms: u64) -> RedisQueue {
        let mut config = self.config();
        config.process_ttl = Duration::from_millis(ttl_ms);
        RedisQueue::new(&config, prefix).expect("a valid URL")
    }

    /// The queue's keys under `prefix`, as this layout names them.
    pub fn keys(&self, prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_owned(),
            cluster: self.is_cluster(),
        }
    }

    /// Runs `command` about `key` (on the node that serves its slot, on a cluster).
    pub fn query<T: redis::FromRedisValue>(&self, key: &str, command: &redis::Cmd) -> T {
        match self {
            Target::Single(redis) => redis.query(command),
            Target::Cluster(cluster) => cluster.query_key(key, command),
        }
    }

    /// `LLEN key`.
    pub fn llen(&self, key: &str) -> i64 {
        self.query(key, redis::cmd("LLEN").arg(key))
    }

    /// `SMEMBERS key`, sorted.
    pub fn members(&self, key: &str) -> Vec<String> {
        let mut members: Vec<String> = self.query(key, redis::cmd("SMEMBERS").arg(key));
        members.sort();
        members
    }

    /// Tells each time the queue reaper of `consumer` (under `prefix`) runs, through
    /// `MONITOR` on the node of the reaper's script.
    pub fn reaper_passes(
        &self,
        prefix: &str,
        consumer: &str,
    ) -> tokio::sync::mpsc::UnboundedReceiver<()> {
        let cluster = match self {
            Target::Single(redis) => return redis.reaper_passes(prefix, consumer),
            Target::Cluster(cluster) => cluster,
        };
        let reaping = format!("{prefix}{{consumers}}reaping");
        let mut monitor = cluster.node(cluster.owner(slot_of(&reaping))).connection();
        redis::cmd("MONITOR")
            .query::<()>(&mut monitor)
            .expect("MONITOR is accepted");
        // The claim script's last key is the reaping set, its first argument the reaper.
        let marker = format!("\"{reaping}\" \"{consumer}\"");
        let (passes, heard) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            while let Ok(line) = monitor.recv_response() {
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

    /// Links `queue` to a hub of `broker` (the node's hub, as `Node::start` would), as
    /// process `this`, under `prefix`.
    pub fn attach(&self, queue: &RedisQueue, broker: &MemoryBroker, prefix: &str) {
        queue.attach(QueueLink {
            hub: std::sync::Arc::new(broker.hub()),
            names: HubNames::new(prefix),
            process_id: "this".into(),
            local: Inbox.start().recipient(),
        });
    }

    /// Everything published from now on to process `process`'s hub channel under
    /// `prefix` (see [`hear`](Target::hear)).
    pub fn hear_process(&self, broker: &MemoryBroker, prefix: &str, process: &str) -> Hearing {
        self.hear(broker, &HubNames::new(prefix).process(process))
    }

    /// Everything published from now on to the hub channel `channel`, where the queue
    /// sends it: on one Redis a `PUBLISH` in Redis, on a cluster through the node's hub
    /// (`broker`). Subscribed when this returns.
    pub fn hear(&self, broker: &MemoryBroker, channel: &str) -> Hearing {
        match self {
            Target::Single(redis) => Hearing {
                heard: listen(redis, channel),
                hub: None,
                channel: channel.to_owned(),
            },
            Target::Cluster(_) => hear_hub(broker, channel),
        }
    }

    /// Publishes `payload` where `hearing` hears.
    pub fn mark(&self, hearing: &Hearing, payload: &str) {
        let channel = &hearing.channel;
        match (&hearing.hub, self) {
            (Some(hub), _) => {
                use futures_util::FutureExt;
                let _ = hub
                    .publish(channel, payload.to_owned().into())
                    .now_or_never();
            }
            (None, Target::Single(redis)) => {
                let _: i64 = redis.query(redis::cmd("PUBLISH").arg(channel).arg(payload));
            }
            (None, Target::Cluster(_)) => unreachable!("a cluster hears through a hub"),
        }
    }
}

/// What a test hears on one channel.
pub struct Hearing {
    heard: tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
    /// The hub it hears through, kept alive (on a cluster).
    hub: Option<comet::MemoryHub>,
    /// The channel.
    channel: String,
}

impl Hearing {
    /// The next payload, within 10 s.
    pub async fn next(&mut self) -> Vec<u8> {
        tokio::time::timeout(Duration::from_secs(10), self.heard.recv())
            .await
            .expect("a message comes in time")
            .expect("the hearing goes on")
    }
}

/// The queue's key names (the table in `actions/queue/redis.rs`).
pub struct Keys {
    prefix: String,
    cluster: bool,
}

impl Keys {
    fn route(&self, kind: &str, route: &str) -> String {
        if self.cluster {
            format!("{}{{r:{route}}}{kind}", self.prefix)
        } else {
            format!("{}{kind}:{route}", self.prefix)
        }
    }

    fn consumers_key(&self, name: &str) -> String {
        if self.cluster {
            format!("{}{{consumers}}{name}", self.prefix)
        } else {
            format!("{}{name}", self.prefix)
        }
    }

    /// Calls waiting for `route`.
    pub fn queue(&self, route: &str) -> String {
        self.route("queue", route)
    }

    /// Processes serving `route`.
    pub fn served(&self, route: &str) -> String {
        self.route("served", route)
    }

    /// Calls of `route` held by `consumer` (one list for every route on one Redis).
    pub fn processing(&self, route: &str, consumer: &str) -> String {
        if self.cluster {
            format!("{}{{r:{route}}}processing:{consumer}", self.prefix)
        } else {
            format!("{}processing:{consumer}", self.prefix)
        }
    }

    /// Unreadable entries taken from `route` (one list on one Redis).
    pub fn dead(&self, route: &str) -> String {
        if self.cluster {
            self.route("dead", route)
        } else {
            format!("{}dead", self.prefix)
        }
    }

    /// `consumer`'s heartbeat.
    pub fn alive(&self, consumer: &str) -> String {
        self.consumers_key(&format!("alive:{consumer}"))
    }

    /// The consumers.
    pub fn consumers(&self) -> String {
        self.consumers_key("consumers")
    }

    /// On a cluster, the dead consumers being reaped.
    pub fn reaping(&self) -> String {
        self.consumers_key("reaping")
    }
}

/// Everything published on `channel` of a single Redis from now on.
fn listen(redis: &RedisServer, channel: &str) -> tokio::sync::mpsc::UnboundedReceiver<Vec<u8>> {
    let (heard, hearing) = tokio::sync::mpsc::unbounded_channel();
    let (subscribed, ready) = mpsc::channel();
    let mut connection = redis.connection();
    let channel = channel.to_owned();
    std::thread::spawn(move || {
        let mut pubsub = connection.as_pubsub();
        pubsub.subscribe(&channel).expect("SUBSCRIBE");
        let _ = subscribed.send(());
        while let Ok(message) = pubsub.get_message() {
            if heard.send(message.get_payload_bytes().to_vec()).is_err() {
                break;
            }
        }
    });
    ready
        .recv_timeout(Duration::from_secs(10))
        .expect("subscribed");
    hearing
}

/// Everything published on `channel` of `broker` from now on (needs an actix system).
fn hear_hub(broker: &MemoryBroker, channel: &str) -> Hearing {
    use futures_util::FutureExt;
    let (heard, hearing) = tokio::sync::mpsc::unbounded_channel();
    let hub = broker.hub();
    let _ = hub.start(Forward(heard).start().recipient()).now_or_never();
    let _ = hub.subscribe(channel).now_or_never();
    Hearing {
        heard: hearing,
        hub: Some(hub),
        channel: channel.to_owned(),
    }
}

/// Forwards what a hub delivers to a test.
struct Forward(tokio::sync::mpsc::UnboundedSender<Vec<u8>>);

impl Actor for Forward {
    type Context = Context<Self>;
}

impl Handler<HubMessage> for Forward {
    type Result = ();

    fn handle(&mut self, message: HubMessage, _: &mut Context<Self>) {
        let _ = self.0.send(message.payload.to_vec());
    }
}

/// Takes the answers the queue hands to "this process's" connections (none in these
/// tests: the callers are on process `p1`, which is not this one).
struct Inbox;

impl Actor for Inbox {
    type Context = Context<Self>;
}

impl Handler<ProcessMessage> for Inbox {
    type Result = ();

    fn handle(&mut self, message: ProcessMessage, _: &mut Context<Self>) {
        panic!("an answer for a caller on another process was delivered here: {message:?}");
    }
}
