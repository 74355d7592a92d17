//! Every limit, timeout and buffer size of a node, with its default and why it exists.

use std::time::Duration;

use crate::auth::rate_limit::Rate;
use crate::auth::security::Security;
use crate::protocol::{
    ParseLimits, DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_JSON_DEPTH, DEFAULT_MAX_NAME_BYTES,
};

/// What one connection may do. Each exceeded limit answers a clear error frame (see
/// [`crate::ErrorCode`]); none of them closes the connection except a full outbound
/// queue under [`SlowConsumerPolicy::Close`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame a client may send, in bytes; larger ones answer `too_large`.
    /// Default 64 KiB.
    pub max_frame_bytes: usize,
    /// Longest channel name or action route, in bytes. Default 256.
    pub max_name_bytes: usize,
    /// Deepest nesting of an action's JSON object (the object is level 1, each array or
    /// object inside one more); deeper calls answer `bad_json` at once. One limit for
    /// every process of a cluster, well below what any process can read back (serde_json
    /// stops at 128, and a queued call or an echoed answer wraps the params a few levels
    /// deeper), so that no call accepted here is unreadable elsewhere. Default 64.
    pub max_json_depth: usize,
    /// Most channels one connection may be subscribed to at once; one more answers
    /// `too_many_channels`. Default 128.
    pub max_channels_per_connection: usize,
    /// Most action calls one connection may wait on at once; one more answers
    /// `too_many_pending`. Default 64.
    pub max_pending_actions: usize,
    /// Most action calls of one connection in the queue or running at once, so that one
    /// connection cannot take every action worker of the cluster: its further calls wait
    /// in the connection, in order, and go to the queue one by one as earlier ones are
    /// answered (their `action_timeout` runs from when they came). Other connections'
    /// calls meanwhile find the queue short and workers free. At least 1. Default 8
    /// (with the default 32 workers of a process, one connection takes a quarter).
    pub max_running_actions_per_connection: usize,
    /// Frames buffered for a client that reads slowly; when full, `slow_consumer` says
    /// what happens, so that memory stays bounded. Default 1024.
    pub outbound_queue: usize,
    /// Bytes of frames buffered for a client that reads slowly, the other bound of the
    /// same queue (whichever fills first): 1,024 frames of 64 KiB would be 64 MiB per
    /// connection. A single frame larger than this is still taken into an empty queue.
    /// Default 1 MiB.
    pub outbound_queue_bytes: usize,
    /// What happens when a client's outbound queue is full. Default
    /// [`SlowConsumerPolicy::Close`].
    pub slow_consumer: SlowConsumerPolicy,
    /// Publishes one connection may send: beyond it each is answered `rate_limited` and
    /// dropped. Default 200 per second, bursts of 1,000 (5,000 at once meet it).
    pub publish_rate: Rate,
    /// Action calls one connection may send, the same way. Default 100 per second,
    /// bursts of 500.
    pub action_rate: Rate,
    /// Subscribes one connection may send, the same way. Default 100 per second, bursts
    /// of 500.
    pub subscribe_rate: Rate,
    /// A connection refused `rate_limited` more than this many times within about 10 s (a
    /// leaky count: it drains at a tenth of this a second) is closed with 4002: it keeps
    /// flooding. Keep it below `outbound_queue`, so that the refusals a flooder does not
    /// read cannot close it as a slow consumer first. 0 never closes. Default 1,000.
    pub flood_limit: u32,
}

/// What the server does with a client whose outbound queue (`outbound_queue`,
/// `outbound_queue_bytes`) is full: it reads more slowly than messages come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SlowConsumerPolicy {
    /// Close the connection with 4001 "Slow consumer"; the client reconnects and knows
    /// that it missed messages. The default: nothing is ever lost silently.
    #[default]
    Close,
    /// Drop the oldest queued frames to make room, and tell the client: before the frames
    /// that follow the gap it gets `error {"code":"messages_dropped","message":…,
    /// "dropped":N}`. The connection lives on; for clients that only want the latest
    /// state (tickers, positions).
    DropOldest,
}

impl SlowConsumerPolicy {
    /// The policy's name in configuration files and flags: `close` or `drop-oldest`.
    pub fn as_str(self) -> &'static str {
        match self {
            SlowConsumerPolicy::Close => "close",
            SlowConsumerPolicy::DropOldest => "drop-oldest",
        }
    }
}

impl std::str::FromStr for SlowConsumerPolicy {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "close" => Ok(SlowConsumerPolicy::Close),
            "drop-oldest" | "drop_oldest" => Ok(SlowConsumerPolicy::DropOldest),
            other => Err(format!(
                "slow consumer policy is `close` or `drop-oldest`, not `{other}`"
            )),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            max_name_bytes: DEFAULT_MAX_NAME_BYTES,
            max_json_depth: DEFAULT_MAX_JSON_DEPTH,
            max_channels_per_connection: 128,
            max_pending_actions: 64,
            max_running_actions_per_connection: 8,
            outbound_queue: 1024,
            outbound_queue_bytes: 1024 * 1024,
            slow_consumer: SlowConsumerPolicy::Close,
            publish_rate: Rate::new(200, 1000),
            action_rate: Rate::new(100, 500),
            subscribe_rate: Rate::new(100, 500),
            flood_limit: 1000,
        }
    }
}

impl Limits {
    /// The largest message a transport reads at all (a WebSocket message, a SockJS
    /// request body): max(4 × `max_frame_bytes`, 1 MiB). Frames between
    /// `max_frame_bytes` and this are answered `too_large` and the connection lives on;
    /// beyond it, reading would cost memory, so the connection is closed with 1009.
    pub fn transport_cap(&self) -> usize {
        self.max_frame_bytes.saturating_mul(4).max(1024 * 1024)
    }

    /// The subset the frame parser needs.
    pub fn parse_limits(&self) -> ParseLimits {
        ParseLimits {
            max_frame_bytes: self.max_frame_bytes,
            max_name_bytes: self.max_name_bytes,
            max_json_depth: self.max_json_depth,
        }
    }
}

/// How a node (one process) behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// Prefix of every hub channel and queue key, so that several comet clusters (or
    /// tests) can share one Redis. Default `comet:`.
    pub prefix: String,
    /// Whether this process runs action calls from the queue (jii's `listenActions`).
    /// Default true.
    pub listen_actions: bool,
    /// Action workers when `listen_actions` is on: how many calls run at once. Calls are
    /// taken off the queue for all idle workers at once, so more workers also mean
    /// fewer queue round trips per call under load (jii ran every call at once, without a
    /// bound). Default 32.
    pub workers: usize,
    /// How long a caller waits for an action's answer before it gets `timeout`; a handler
    /// still running then is abandoned. Default 30 s.
    pub action_timeout: Duration,
    /// How often idle workers look at the queue even without a "queue updated" notice, so
    /// that a lost notice strands nothing. Default 1 s.
    pub queue_poll_interval: Duration,
    /// How long to wait before asking the hub again for a channel subscription it refused
    /// (Redis down), so that the channel's subscribers hear `subscribed` once it is back.
    /// Default 1 s.
    pub hub_retry_interval: Duration,
    /// How often the server sends a heartbeat (WebSocket ping). Default 25 s.
    pub heartbeat_interval: Duration,
    /// A connection that sends nothing (not even a pong) for this long is closed with
    /// 4000. Default 60 s.
    pub client_timeout: Duration,
    /// On shutdown, how long in-flight actions may still run; one still running then is
    /// put back on the queue, unanswered, for another process to run. (Then as long
    /// again, at most, for answers and put-backs to reach the queue.) Default 10 s.
    pub shutdown_timeout: Duration,
    /// How often this process tells the others what it is (role, version, uptime,
    /// connections, subscriptions) on `<prefix>processes`, for the server API's `info`;
    /// a process not heard for 2.5 times this long is dropped from the list. At most
    /// 5 s. Default 5 s.
    pub process_heartbeat: Duration,
    /// Per-connection limits.
    pub limits: Limits,
    /// Authentication, permissions and per-ip limits. Default: everything open.
    pub security: Security,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            prefix: "comet:".into(),
            listen_actions: true,
            workers: 32,
            action_timeout: Duration::from_secs(30),
            queue_poll_interval: Duration::from_secs(1),
            hub_retry_interval: Duration::from_secs(1),
            heartbeat_interval: Duration::from_secs(25),
            client_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(10),
            process_heartbeat: Duration::from_secs(5),
            limits: Limits::default(),
            security: Security::default(),
        }
    }
}

/// How a process talks to Redis, for the [`RedisHub`](crate::RedisHub) and the
/// [`RedisQueue`](crate::RedisQueue). Only the URL is required; every other field has a
/// default that suits one Redis on the local network.
///
/// A process holds three connections to Redis: the hub's publisher, the hub's
/// subscriber, and the queue's (shared by all its workers and clients; commands from
/// many callers are pipelined on it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// Where Redis is, e.g. `redis://127.0.0.1:6379/` (see the `redis` crate for the
    /// forms: password, database number, `rediss://` for TLS is not built in).
    pub url: String,
    /// How long opening a connection may take before Redis counts as unreachable.
    /// Default 1 s.
    pub connect_timeout: Duration,
    /// How long one command (or one pipeline of publishes) may take. Default 2 s.
    pub command_timeout: Duration,
    /// First wait before reconnecting after Redis went away; doubled on each failure.
    /// The hub's publisher does not double it: while Redis is down, it fails publishes at
    /// once and tries again this long after each failure (one connect; a refused one
    /// costs nothing), so publishing resumes within this much of Redis's return.
    /// Default 100 ms.
    pub reconnect_min: Duration,
    /// Longest wait between reconnection attempts. Default 5 s.
    pub reconnect_max: Duration,
    /// Publishes waiting for the publisher connection; beyond this a publish fails at once
    /// (`hub unavailable`) instead of holding memory while Redis is slow. Default 65,536.
    pub publish_buffer: usize,
    /// Bytes (channel names and payloads) of the publishes waiting for the publisher
    /// connection or on their way, the other bound of the same buffer (whichever fills
    /// first): 65,536 publishes of 64 KiB would be 4 GiB. Beyond it a publish fails at once
    /// (the client gets `unavailable`), and the bytes are freed as Redis answers. A single
    /// publish larger than this still goes into an empty buffer. Default 16 MiB.
    pub publish_buffer_bytes: usize,
    /// Most publishes sent to Redis in one pipeline (one write, one round trip).
    /// Default 512.
    pub publish_batch: usize,
    /// Most bytes sent to Redis in one pipeline of publishes or one queue script call, the
    /// other bound of `publish_batch` and `queue_batch` (a single larger item still goes,
    /// alone), so that one round trip stays short for Redis and for the calls behind it.
    /// Default 1 MiB.
    pub batch_bytes: usize,
    /// Action calls (and acknowledgements) of this process waiting to be sent to the
    /// queue; beyond this a call fails at once (`unavailable`) instead of holding memory
    /// while Redis is slow. Default 65,536.
    pub queue_buffer: usize,
    /// Bytes of those calls and acknowledgements (entries and answers), the other bound
    /// of the same buffer, whichever fills first. Default 16 MiB.
    pub queue_buffer_bytes: usize,
    /// Most action calls pushed, taken or acknowledged in one Redis command: what piled
    /// up while the previous command was on its way goes out as one. At most 1,000.
    /// Default 256.
    pub queue_batch: usize,
    /// How often the subscriber connection is pinged, so that a connection that died
    /// silently (no FIN, e.g. a network cut) is noticed and replaced. Default 10 s.
    pub ping_interval: Duration,
    /// How long a process that runs actions counts as alive without a heartbeat. When it
    /// passes, the calls that process had taken are put back on the queue for another
    /// process (at-least-once), and its routes stop counting as served. Heartbeats go out
    /// every third of this. Lower means a crashed process's calls come back sooner; too
    /// low risks running a call twice when a live process stalls longer than it.
    /// Default 10 s.
    pub process_ttl: Duration,
    /// Most entries kept in the dead-letter list `<prefix>dead` (queue entries that could
    /// not be read, set aside for an operator); the oldest go first. Default 1,000.
    pub dead_letters_max: usize,
    /// How long the dead-letter list is kept after the last entry was set aside in it.
    /// Default 7 days.
    pub dead_letters_ttl: Duration,
    /// Seed nodes of a Redis Cluster (`redis://host:port/` each). When not empty the hub
    /// and the queue use the cluster (sharded pub/sub, Redis 7.0 or later) and `url` is
    /// not used; see `docs/CLUSTER.md`. Default empty: one Redis at `url`.
    pub cluster: Vec<String>,
    /// On a cluster, how many partitions the hub's channels are spread over, each with
    /// one subscriber connection to the master of its slot. Every process of a cluster
    /// must use the same number. Default 16.
    pub partitions: usize,
    /// On a cluster, how long a partition's connection may hear nothing before it sends
    /// itself a probe; if the probe does not come back within as long again, the
    /// connection is rebuilt (its slot moved without a word, or the master hangs).
    /// Default 2 s.
    pub probe_interval: Duration,
    /// On a cluster, how often `CLUSTER SHARDS` is asked whether a partition's slot has a
    /// new master (a failover or a resharding that was not announced otherwise).
    /// Default 5 s.
    pub shards_interval: Duration,
}

impl RedisConfig {
    /// The defaults, with Redis at `url`.
    pub fn new(url: impl Into<String>) -> RedisConfig {
        RedisConfig {
            url: url.into(),
            connect_timeout: Duration::from_secs(1),
            command_timeout: Duration::from_secs(2),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            publish_buffer: 65_536,
            publish_buffer_bytes: 16 * 1024 * 1024,
            publish_batch: 512,
            batch_bytes: 1024 * 1024,
            queue_buffer: 65_536,
            queue_buffer_bytes: 16 * 1024 * 1024,
            queue_batch: 256,
            ping_interval: Duration::from_secs(10),
            process_ttl: Duration::from_secs(10),
            dead_letters_max: 1000,
            dead_letters_ttl: Duration::from_secs(7 * 24 * 3600),
            cluster: Vec::new(),
            partitions: 16,
            probe_interval: Duration::from_secs(2),
            shards_interval: Duration::from_secs(5),
        }
    }

    /// The defaults, on the Redis Cluster that `seeds` (at least one of its nodes, as
    /// `redis://host:port/`) belong to.
    ///
    /// ```
    /// use comet_actors::RedisConfig;
    /// let config = RedisConfig::cluster(["redis://127.0.0.1:7000/", "redis://127.0.0.1:7001/"]);
    /// assert!(config.is_cluster());
    /// assert_eq!(config.partitions, 16);
    /// ```
    pub fn cluster<S: Into<String>>(seeds: impl IntoIterator<Item = S>) -> RedisConfig {
        let mut config = RedisConfig::new("");
        config.cluster = seeds.into_iter().map(Into::into).collect();
        config
    }

    /// Whether this is a Redis Cluster (`cluster` is not empty).
    pub fn is_cluster(&self) -> bool {
        !self.cluster.is_empty()
    }

    /// Where Redis is, for logs: the URL, or the seed nodes of the cluster.
    pub fn describe(&self) -> String {
        if self.is_cluster() {
            format!("the Redis Cluster of {}", self.cluster.join(", "))
        } else {
            self.url.clone()
        }
    }

    /// How often a process that runs actions renews its heartbeat and looks for the calls
    /// of dead processes: a third of `process_ttl`.
    pub fn heartbeat_interval(&self) -> Duration {
        (self.process_ttl / 3).max(Duration::from_millis(10))
    }
}
