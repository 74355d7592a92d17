//! The settings of a comet process from flags, environment and a config file, shared by
//! the `cometd` binary and the chat demo so that both run as a cluster the same way.
//!
//! Every setting is written once, as a field of [`Settings`]: its flag, its `COMET_*`
//! environment variable and its default are the field's `#[arg]` attributes, its config
//! file key is the field's name. Each setting is looked up in this order, the first found
//! wins: the command-line flag, its environment variable, the TOML config file
//! (`--config`), the default.
//!
//! | flag | env | file key | default |
//! | --- | --- | --- | --- |
//! | `--config PATH` | `COMET_CONFIG` | | none |
//! | `--role server\|hub` | `COMET_ROLE` | `role` | `server` |
//! | `--bind ADDR` | `COMET_BIND` | `bind` | `127.0.0.1:4100` |
//! | `--path PATH` | `COMET_PATH` | `path` | `/comet` |
//! | `--redis URL` | `COMET_REDIS` | `redis` | none: in-memory hub and queue |
//! | `--redis-cluster URL,URL…` | `COMET_REDIS_CLUSTER` | `redis_cluster` (a list) | none (not with `--redis`) |
//! | `--redis-partitions N` | `COMET_REDIS_PARTITIONS` | `redis_partitions` | `16` |
//! | `--redis-probe-ms MS` | `COMET_REDIS_PROBE_MS` | `redis_probe_ms` | `2000` |
//! | `--prefix P` | `COMET_PREFIX` | `prefix` | `comet:` |
//! | `--listen-actions true\|false` | `COMET_LISTEN_ACTIONS` | `listen_actions` | `true` |
//! | `--workers N` | `COMET_WORKERS` | `workers` | `32` |
//! | `--action-timeout-ms MS` | `COMET_ACTION_TIMEOUT_MS` | `action_timeout_ms` | `30000` |
//! | `--queue-poll-ms MS` | `COMET_QUEUE_POLL_MS` | `queue_poll_ms` | `1000` |
//! | `--heartbeat-ms MS` | `COMET_HEARTBEAT_MS` | `heartbeat_ms` | `25000` |
//! | `--client-timeout-ms MS` | `COMET_CLIENT_TIMEOUT_MS` | `client_timeout_ms` | `60000` |
//! | `--process-ttl-ms MS` | `COMET_PROCESS_TTL_MS` | `process_ttl_ms` | `10000` |
//! | `--shutdown-timeout-ms MS` | `COMET_SHUTDOWN_TIMEOUT_MS` | `shutdown_timeout_ms` | `10000` |
//! | `--demo [true\|false]` | `COMET_DEMO` | `demo` | `false` |
//! | `--slow-consumer close\|drop-oldest` | `COMET_SLOW_CONSUMER` | `slow_consumer` | `close` |
//! | `--origins P,P…` | `COMET_ORIGINS` | `origins` (a list) | `*:*` (every origin) |
//! | `--trust-proxy-headers true\|false` | `COMET_TRUST_PROXY_HEADERS` | `trust_proxy_headers` | `false` |
//! | `--token-hmac-secret S` | `COMET_TOKEN_HMAC_SECRET` | `token_hmac_secret` | none |
//! | `--token-public-key FILE` | `COMET_TOKEN_PUBLIC_KEY` | `token_public_key` | none |
//! | `--anonymous true\|false` | `COMET_ANONYMOUS` | `anonymous` | `true` |
//! | `--auth-timeout-ms MS` | `COMET_AUTH_TIMEOUT_MS` | `auth_timeout_ms` | `10000` |
//! | `--publish-rate N` / `--publish-burst N` | `COMET_PUBLISH_RATE` / `_BURST` | `publish_rate` / `publish_burst` | `200` / `1000` |
//! | `--action-rate N` / `--action-burst N` | `COMET_ACTION_RATE` / `_BURST` | `action_rate` / `action_burst` | `100` / `500` |
//! | `--subscribe-rate N` / `--subscribe-burst N` | `COMET_SUBSCRIBE_RATE` / `_BURST` | `subscribe_rate` / `subscribe_burst` | `100` / `500` |
//! | `--flood-limit N` | `COMET_FLOOD_LIMIT` | `flood_limit` | `1000` (refusals within ~10 s) |
//! | `--admin-password P` | `COMET_ADMIN_PASSWORD` | `admin_password` | none: the admin page is off unless an API key is set |
//! | `--metrics-bind ADDR` | `COMET_METRICS_BIND` | `metrics_bind` | none: no metrics served |
//! | `--api-key KEY` | `COMET_API_KEY` | `api_key` | none: the HTTP server API is off |
//! | `--process-heartbeat-ms MS` | `COMET_PROCESS_HEARTBEAT_MS` | `process_heartbeat_ms` | `5000` (at most) |
//! | `--max-connections-per-ip N` | `COMET_MAX_CONNECTIONS_PER_IP` | `max_connections_per_ip` | `0` (off) |
//! | `--connect-rate-per-ip N` / `--connect-burst-per-ip N` | `COMET_CONNECT_RATE_PER_IP` / `…_BURST_…` | `connect_rate_per_ip` / `connect_burst_per_ip` | `0` (off) / `20` |
//! | | | `[namespaces.NAME]` tables (file only) | none: every channel open |
//!
//! A rate of 0 turns its limit off. A namespace table takes `subscribe` (`anyone`,
//! `authenticated`, `token`, `none`), `publish` (`anyone`, `authenticated`,
//! `subscribers`, `server`), `user_channels` (true/false, default true),
//! `max_payload_bytes`, and for history `history_size` (publications kept per channel; 0,
//! the default, keeps none), `history_ttl` (seconds after the last publication, default
//! 300), `recover` and `send_latest` (true/false), and for presence `presence` and
//! `join_leave` (true/false), `presence_ttl` (seconds, default 5),
//! `join_leave_max_clients` and `join_leave_window_ms` (default 100);
//! `[namespaces.""]` is the default namespace (channels without `:`). See
//! docs/SECURITY.md and docs/PROTOCOL.md.
//!
//! `--demo-actions true|false` and the file key `demo_actions` are deprecated spellings
//! of `--demo` / `demo` (they defaulted to on; `demo` defaults to off).
//!
//! ```toml
//! # cometd.toml: a process that only runs actions
//! role = "hub"
//! redis = "redis://127.0.0.1:6379/"
//! prefix = "myapp:"
//! workers = 16
//! ```
//!
//! ```toml
//! # cometd.toml: identity required, a chat namespace only the server publishes to
//! token_hmac_secret = "change me: at least 32 bytes of secret"
//! anonymous = false
//!
//! [namespaces.chat]
//! subscribe = "authenticated"
//! publish = "server"
//!
//! [namespaces.dm]
//! publish = "subscribers"
//! user_channels = true
//! ```
//!
//! A program takes these settings by flattening [`Settings`] into its own clap command
//! and reading them with [`Settings::from_args`] (or [`Settings::from_matches`]); a key
//! the file does not know is refused with its line, e.g. `invalid config file
//! cometd.toml, line 1: unknown field `rol`, expected one of …`.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use actix_web::web;
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Args, FromArgMatches, ValueEnum};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{
    Comet, CometBuilder, HubServer, Limits, Listeners, NodeConfig, RedisConfig, Running, Server,
    SlowConsumerPolicy,
};
pub use namespaces::NamespaceSettings;

/// Which of the seed's process roles to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// jii's `Server`: holds client connections over HTTP; runs actions too unless
    /// `listen_actions` is off.
    #[default]
    Server,
    /// jii's `HubServer`: only runs actions; no HTTP.
    Hub,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Server => "server",
            Role::Hub => "hub",
        })
    }
}

/// The settings of one process: each field is a flag (`--action-timeout-ms`), an
/// environment variable (`COMET_ACTION_TIMEOUT_MS`) and a config file key
/// (`action_timeout_ms`), with its default. `#[command(flatten)]` it into a program's
/// clap arguments and read it with [`Settings::from_matches`]; apply it with
/// [`CometBuilder::settings`].
///
/// A table of the file (e.g. `[namespaces.NAME]`) is a field with `#[arg(skip)]` and a
/// `Deserialize` type: it comes from the file alone.
#[derive(Debug, Clone, PartialEq, Eq, Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// A TOML config file; its keys are the long flags with `_` (e.g. `listen_actions`).
    #[arg(long, env = "COMET_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// `server` holds client connections (HTTP); `hub` only runs actions.
    #[arg(long, env = "COMET_ROLE", value_enum, default_value_t)]
    pub role: Role,
    /// Address to listen on (role `server`); port 0 picks a free one.
    #[arg(long, env = "COMET_BIND", default_value = "127.0.0.1:4100")]
    pub bind: String,
    /// Where comet is mounted.
    #[arg(long, env = "COMET_PATH", default_value = "/comet")]
    pub path: String,
    /// Redis URL for the hub and the queue, e.g. redis://127.0.0.1:6379/ (default: in-memory,
    /// a single process).
    #[arg(long, env = "COMET_REDIS")]
    pub redis: Option<String>,
    /// Seed nodes of a Redis Cluster (7.0 or later) for the hub and the queue, e.g.
    /// redis://10.0.0.1:7000/,redis://10.0.0.2:7000/ (not with --redis): sharded pub/sub,
    /// see docs/CLUSTER.md.
    #[arg(long, env = "COMET_REDIS_CLUSTER", value_delimiter = ',')]
    pub redis_cluster: Vec<String>,
    /// With --redis-cluster: how many partitions the channels are spread over (each one
    /// subscriber connection); the same on every process of a cluster.
    #[arg(
        long,
        env = "COMET_REDIS_PARTITIONS",
        default_value_t = RedisConfig::new("").partitions
    )]
    pub redis_partitions: usize,
    /// With --redis-cluster: after this long with nothing heard on a partition's
    /// connection it probes itself; no answer within as long again rebuilds it, in ms.
    #[arg(
        long,
        env = "COMET_REDIS_PROBE_MS",
        default_value_t = millis(RedisConfig::new("").probe_interval)
    )]
    pub redis_probe_ms: u64,
    /// Prefix of every Redis key and channel, so clusters can share a Redis.
    #[arg(long, env = "COMET_PREFIX", default_value_t = NodeConfig::default().prefix)]
    pub prefix: String,
    /// Whether this process runs action calls (role `server`; role `hub` always does).
    #[arg(long, env = "COMET_LISTEN_ACTIONS", action = ArgAction::Set, default_value_t = true)]
    pub listen_actions: bool,
    /// How many action calls run at once.
    #[arg(long, env = "COMET_WORKERS", default_value_t = NodeConfig::default().workers)]
    pub workers: usize,
    /// How long a caller waits for an answer, in ms.
    #[arg(
        long,
        env = "COMET_ACTION_TIMEOUT_MS",
        default_value_t = millis(NodeConfig::default().action_timeout)
    )]
    pub action_timeout_ms: u64,
    /// How often idle workers look at the queue without a notice, in ms.
    #[arg(
        long,
        env = "COMET_QUEUE_POLL_MS",
        default_value_t = millis(NodeConfig::default().queue_poll_interval)
    )]
    pub queue_poll_ms: u64,
    /// How often a connection gets a heartbeat (a WebSocket ping, SockJS `h`, the `ping`
    /// frame a client asked for with `hello`), in ms.
    #[arg(
        long,
        env = "COMET_HEARTBEAT_MS",
        default_value_t = millis(NodeConfig::default().heartbeat_interval)
    )]
    pub heartbeat_ms: u64,
    /// A connection that sends nothing (not even a pong) for this long is closed with
    /// 4000, in ms.
    #[arg(
        long,
        env = "COMET_CLIENT_TIMEOUT_MS",
        default_value_t = millis(NodeConfig::default().client_timeout)
    )]
    pub client_timeout_ms: u64,
    /// With Redis: how long a process that runs actions counts as alive without a heartbeat,
    /// in ms; then its unanswered calls go to another process.
    #[arg(
        long,
        env = "COMET_PROCESS_TTL_MS",
        default_value_t = millis(RedisConfig::new("").process_ttl)
    )]
    pub process_ttl_ms: u64,
    /// On SIGTERM/Ctrl-C, how long running actions may finish before they are put back on
    /// the queue for another process, in ms.
    #[arg(
        long,
        env = "COMET_SHUTDOWN_TIMEOUT_MS",
        default_value_t = millis(NodeConfig::default().shutdown_timeout)
    )]
    pub shutdown_timeout_ms: u64,
    /// Register the demo actions site/test, site/publish and site/sleep (`--demo` alone
    /// is `--demo true`). `--demo-actions` and the file key `demo_actions` are deprecated
    /// spellings of it.
    #[arg(
        long,
        env = "COMET_DEMO",
        alias = "demo-actions",
        action = ArgAction::Set,
        num_args = 0..=1,
        default_value_t = false,
        default_missing_value = "true"
    )]
    #[serde(alias = "demo_actions")]
    pub demo: bool,
    /// What to do with a client whose outbound queue is full: `close` it with 4001, or
    /// `drop-oldest` frames and tell it (`messages_dropped`).
    #[arg(
        long,
        env = "COMET_SLOW_CONSUMER",
        default_value = SlowConsumerPolicy::default().as_str()
    )]
    #[serde(with = "policy_name")]
    pub slow_consumer: SlowConsumerPolicy,
    /// The browser origins allowed to connect, as `host:port` patterns with `*` for
    /// either part (`example.com:*`), comma-separated; other origins get 403 on every
    /// transport. Clients that send no `Origin` (not browsers) are not checked.
    #[arg(
        long,
        env = "COMET_ORIGINS",
        value_delimiter = ',',
        default_value = "*:*"
    )]
    pub origins: Vec<String>,
    /// Take a client's ip from `X-Forwarded-For` (behind a proxy that sets it).
    #[arg(
        long,
        env = "COMET_TRUST_PROXY_HEADERS",
        action = ArgAction::Set,
        default_value_t = false
    )]
    pub trust_proxy_headers: bool,
    /// Verify connection and subscription tokens (JWT, HS256) with this shared secret (at
    /// least 32 bytes).
    #[arg(long, env = "COMET_TOKEN_HMAC_SECRET", hide_env_values = true)]
    pub token_hmac_secret: Option<String>,
    /// Verify tokens (JWT, RS256 or ES256) with the public key in this PEM file.
    #[arg(long, env = "COMET_TOKEN_PUBLIC_KEY")]
    pub token_public_key: Option<PathBuf>,
    /// Whether connections without a user may do anything; `false` needs a token key.
    #[arg(long, env = "COMET_ANONYMOUS", action = ArgAction::Set, default_value_t = true)]
    pub anonymous: bool,
    /// How long a connection that must authenticate may take to send `auth`, in ms.
    #[arg(
        long,
        env = "COMET_AUTH_TIMEOUT_MS",
        default_value_t = millis(crate::Security::default().auth_timeout)
    )]
    pub auth_timeout_ms: u64,
    /// Publishes per second one connection may send (0: no limit).
    #[arg(long, env = "COMET_PUBLISH_RATE", default_value_t = Limits::default().publish_rate.per_second)]
    pub publish_rate: u32,
    /// Publishes one connection may send at once.
    #[arg(long, env = "COMET_PUBLISH_BURST", default_value_t = Limits::default().publish_rate.burst)]
    pub publish_burst: u32,
    /// Action calls per second one connection may send (0: no limit).
    #[arg(long, env = "COMET_ACTION_RATE", default_value_t = Limits::default().action_rate.per_second)]
    pub action_rate: u32,
    /// Action calls one connection may send at once.
    #[arg(long, env = "COMET_ACTION_BURST", default_value_t = Limits::default().action_rate.burst)]
    pub action_burst: u32,
    /// Subscribes per second one connection may send (0: no limit).
    #[arg(long, env = "COMET_SUBSCRIBE_RATE", default_value_t = Limits::default().subscribe_rate.per_second)]
    pub subscribe_rate: u32,
    /// Subscribes one connection may send at once.
    #[arg(long, env = "COMET_SUBSCRIBE_BURST", default_value_t = Limits::default().subscribe_rate.burst)]
    pub subscribe_burst: u32,
    /// `rate_limited` answers within about 10 s after which a connection is closed (4002);
    /// 0 never.
    #[arg(long, env = "COMET_FLOOD_LIMIT", default_value_t = Limits::default().flood_limit)]
    pub flood_limit: u32,
    /// Most connections one ip may hold at once (0: no limit).
    #[arg(long, env = "COMET_MAX_CONNECTIONS_PER_IP", default_value_t = 0)]
    pub max_connections_per_ip: u32,
    /// New connections per second one ip may open (0: no limit).
    #[arg(long, env = "COMET_CONNECT_RATE_PER_IP", default_value_t = 0)]
    pub connect_rate_per_ip: u32,
    /// New connections one ip may open at once.
    #[arg(long, env = "COMET_CONNECT_BURST_PER_IP", default_value_t = 20)]
    pub connect_burst_per_ip: u32,
    /// The key of the HTTP server API (`POST <path>/api/<method>` with `Authorization:
    /// apikey KEY`, see docs/API.md); without one the API is off.
    #[arg(long, env = "COMET_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// The password of the admin page (`<path>/admin`); the API key signs in too. With
    /// neither, the page is off.
    #[arg(long, env = "COMET_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Serve Prometheus metrics at `GET /metrics` on this address (`host:port`), apart
    /// from the public one; off by default.
    #[arg(long, env = "COMET_METRICS_BIND")]
    pub metrics_bind: Option<String>,
    /// How often this process tells the cluster what it is (for the API's `info`), in
    /// ms; at most 5000.
    #[arg(long, env = "COMET_PROCESS_HEARTBEAT_MS", default_value_t = millis(NodeConfig::default().process_heartbeat))]
    pub process_heartbeat_ms: u64,
    /// The namespaces' rules (`[namespaces.NAME]` tables of the config file).
    #[arg(skip)]
    pub namespaces: BTreeMap<String, NamespaceSettings>,
}

/// Why the settings could not be made.
#[derive(Debug, Error)]
pub enum SettingsError {
    /// A flag or an environment variable is not valid (clap's message, on one line).
    #[error("{0}")]
    Args(String),
    /// The config file cannot be read.
    #[error("cannot read the config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The config file is not valid TOML for these settings.
    #[error("invalid config file {path}, line {line}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The line of the mistake (from 1).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The settings contradict each other or are out of range.
    #[error("invalid settings: {0}")]
    Invalid(String),
}

impl Default for Settings {
    /// The defaults of the `#[arg]` attributes, whatever the environment holds.
    fn default() -> Self {
        let command = Settings::augment_args(clap::Command::new("comet"))
            .mut_args(|arg| arg.env(None::<&'static str>));
        command
            .try_get_matches_from(["comet"])
            .and_then(|matches| Settings::from_arg_matches(&matches))
            // Only the attributes above are parsed here: a failure is a mistake in them,
            // which every test run would show.
            .expect("the defaults of Settings parse")
    }
}

impl Settings {
    /// Reads the settings from the process's arguments and environment (and the file they
    /// name) with `command`, a program's clap command into which `Settings` is
    /// flattened. `--help` and `--version` print and exit, as with clap.
    pub fn from_args(command: clap::Command) -> Result<Settings, SettingsError> {
        match command.try_get_matches() {
            Ok(matches) => Settings::from_matches(&matches),
            Err(err) if !err.use_stderr() => err.exit(),
            Err(err) => Err(one_line(&err)),
        }
    }

    /// Resolves the settings from parsed arguments: a flag or an environment variable
    /// (clap read both) wins, then the config file, then the default.
    pub fn from_matches(matches: &ArgMatches) -> Result<Settings, SettingsError> {
        let given = Settings::from_arg_matches(matches).map_err(|err| one_line(&err))?;
        let mut settings = match &given.config {
            None => given,
            Some(path) => {
                let file = read_file(path)?;
                // Layer the file under what the command line and environment gave: a field
                // serialises under its arg id, so one loop merges every setting.
                let mut merged = to_json(&file)?;
                let ours = to_json(&given)?;
                for id in matches.ids() {
                    let explicit = matches!(
                        matches.value_source(id.as_str()),
                        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
                    );
                    if let (true, Some(value)) = (explicit, ours.get(id.as_str())) {
                        merged[id.as_str()] = value.clone();
                    }
                }
                let mut settings: Settings = serde_json::from_value(merged)
                    .map_err(|err| SettingsError::Invalid(err.to_string()))?;
                settings.config = given.config;
                settings
            }
        };
        settings.normalise()?;
        Ok(settings)
    }

    /// Checks what the fields cannot say alone, and tidies them.
    fn normalise(&mut self) -> Result<(), SettingsError> {
        if self.role == Role::Hub && !self.listen_actions {
            return Err(SettingsError::Invalid(
                "role `hub` runs actions; `listen_actions = false` contradicts it".into(),
            ));
        }
        if self.redis.as_deref() == Some("") {
            self.redis = None;
        }
        self.redis_cluster.retain(|seed| !seed.trim().is_empty());
        for seed in &mut self.redis_cluster {
            *seed = seed.trim().to_owned();
        }
        if self.redis.is_some() && !self.redis_cluster.is_empty() {
            return Err(SettingsError::Invalid(
                "give redis (one Redis) or redis_cluster (a Redis Cluster), not both".into(),
            ));
        }
        if self.redis_probe_ms == 0 {
            return Err(SettingsError::Invalid(
                "redis_probe_ms must be above zero".into(),
            ));
        }
        if !(1..=comet_actors::hub::partitions::MAX_PARTITIONS).contains(&self.redis_partitions) {
            return Err(SettingsError::Invalid(format!(
                "redis_partitions must be 1 to {}",
                comet_actors::hub::partitions::MAX_PARTITIONS
            )));
        }
        if self.admin_password.as_deref() == Some("") {
            self.admin_password = None;
        }
        if self.metrics_bind.as_deref() == Some("") {
            self.metrics_bind = None;
        }
        if self.api_key.as_deref() == Some("") {
            self.api_key = None;
        }
        if self.token_hmac_secret.as_deref() == Some("") {
            self.token_hmac_secret = None;
        }
        if self.token_hmac_secret.is_some() && self.token_public_key.is_some() {
            return Err(SettingsError::Invalid(
                "give token_hmac_secret or token_public_key, not both".into(),
            ));
        }
        for origin in &mut self.origins {
            *origin = origin.trim().to_owned();
        }
        Ok(())
    }

    /// How long a caller waits for an answer.
    pub fn action_timeout(&self) -> Duration {
        Duration::from_millis(self.action_timeout_ms)
    }

    /// How often idle workers look at the queue.
    pub fn queue_poll_interval(&self) -> Duration {
        Duration::from_millis(self.queue_poll_ms)
    }

    /// How often a connection gets a heartbeat.
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms)
    }

    /// How long a silent connection lives.
    pub fn client_timeout(&self) -> Duration {
        Duration::from_millis(self.client_timeout_ms)
    }

    /// With Redis: how long an action process counts as alive without a heartbeat.
    pub fn process_ttl(&self) -> Duration {
        Duration::from_millis(self.process_ttl_ms)
    }

    /// How often this process tells the cluster what it is.
    pub fn process_heartbeat(&self) -> Duration {
        Duration::from_millis(self.process_heartbeat_ms)
    }

    /// How long a connection may take to authenticate.
    pub fn auth_timeout(&self) -> Duration {
        Duration::from_millis(self.auth_timeout_ms)
    }

    /// How long running actions may finish on shutdown.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_millis(self.shutdown_timeout_ms)
    }

    /// A builder with these settings applied (see [`CometBuilder::settings`]); add
    /// actions and [`build`](CometBuilder::build) it.
    pub fn builder(&self) -> CometBuilder {
        Comet::builder().settings(self)
    }

    /// With `redis_cluster`: refuses a cluster that cannot serve comet (a node older than
    /// Redis 7.0, or a Redis not in cluster mode), asking the first seed that answers; a
    /// cluster that does not answer yet is only logged (the process keeps trying).
    pub async fn check_redis(&self) -> Result<(), comet_actors::RedisSetupError> {
        if self.redis_cluster.is_empty() {
            return Ok(());
        }
        let config = RedisConfig::cluster(self.redis_cluster.clone());
        match config.check_cluster().await? {
            Some(version) => log::info!("Redis Cluster: Redis {version}"),
            None => log::warn!(
                "no seed of the Redis Cluster answers now ({}); starting anyway, retrying",
                self.redis_cluster.join(", ")
            ),
        }
        Ok(())
    }

    /// Whether the hub and queue are in Redis (one, or a cluster): several processes.
    pub fn clustered(&self) -> bool {
        self.redis.is_some() || !self.redis_cluster.is_empty()
    }

    /// Binds the address of role `server` (none for role `hub`). Call it before building
    /// the comet: a busy port or a bad address then fails before any actor starts.
    pub fn listen(&self) -> io::Result<Listeners> {
        match self.role {
            Role::Server => Listeners::bind(&self.bind),
            Role::Hub => Ok(Listeners::none()),
        }
    }

    /// Starts `comet` in this role: for `server`, serves the `listeners` of
    /// [`listen`](Self::listen) (with comet at `path`, plus what `configure` adds); for
    /// `hub`, nothing to serve. Either role serves `GET /metrics` on `metrics_bind` if
    /// set. Then [`Running::run`] serves until SIGINT or SIGTERM.
    pub fn start<F>(&self, listeners: Listeners, comet: Comet, configure: F) -> io::Result<Running>
    where
        F: Fn(&mut web::ServiceConfig) + Send + Sync + 'static,
    {
        if self.role == Role::Server && comet.node().config().security.is_open() {
            let loopback = self
                .bind
                .parse::<std::net::SocketAddr>()
                .map(|addr| addr.ip().is_loopback())
                .unwrap_or(self.bind.starts_with("localhost:"));
            if !loopback {
                log::warn!(
                    "SECURITY: listening on {} with no authentication and no permissions: \
                     anyone who reaches this port may subscribe to, publish to and call \
                     anything. Set a token key (--token-hmac-secret or --token-public-key) \
                     and namespaces; see docs/SECURITY.md",
                    self.bind
                );
            }
        }
        if let Some(addr) = &self.metrics_bind {
            crate::metrics::serve(comet.clone(), Listeners::bind(addr)?)?;
        }
        match self.role {
            Role::Server => Server::new(comet)
                .path(self.path.clone())
                .configure(configure)
                .listen(listeners),
            Role::Hub => Ok(HubServer::new(comet)
                .map_err(io::Error::other)?
                .into_running()),
        }
    }

    /// The per-connection limits these settings give, over `limits`.
    pub fn apply_limits(&self, limits: &mut Limits) {
        use crate::auth::Rate;
        limits.slow_consumer = self.slow_consumer;
        limits.publish_rate = Rate::new(self.publish_rate, self.publish_burst);
        limits.action_rate = Rate::new(self.action_rate, self.action_burst);
        limits.subscribe_rate = Rate::new(self.subscribe_rate, self.subscribe_burst);
        limits.flood_limit = self.flood_limit;
    }

    /// One line for the log: what this process is.
    pub fn describe(&self) -> String {
        let auth = match (&self.token_hmac_secret, &self.token_public_key) {
            (Some(_), _) => "HS256 tokens",
            (None, Some(_)) => "public-key tokens",
            (None, None) => "no tokens",
        };
        format!(
            "role {}, {}, prefix `{}`, listen_actions {}, {auth}, anonymous {}, namespaces {:?}",
            self.role,
            match (&self.redis, self.redis_cluster.is_empty()) {
                (Some(url), _) => format!("redis {url}"),
                (None, false) => format!(
                    "redis cluster {} ({} partitions)",
                    self.redis_cluster.join(","),
                    self.redis_partitions
                ),
                (None, true) => "in-memory hub and queue".to_owned(),
            },
            self.prefix,
            self.listen_actions,
            self.anonymous,
            self.namespaces.keys().collect::<Vec<_>>()
        )
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// clap's message without its `error: ` head and usage lines: one line for stderr.
fn one_line(err: &clap::Error) -> SettingsError {
    let text = err.to_string();
    let first = text.lines().next().unwrap_or_default();
    SettingsError::Args(first.strip_prefix("error: ").unwrap_or(first).to_owned())
}

fn to_json(settings: &Settings) -> Result<serde_json::Value, SettingsError> {
    serde_json::to_value(settings).map_err(|err| SettingsError::Invalid(err.to_string()))
}

/// The file's settings over the defaults.
fn read_file(path: &Path) -> Result<Settings, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|err| SettingsError::Parse {
        path: path.to_owned(),
        line: err
            .span()
            .map_or(1, |span| text[..span.start].matches('\n').count() + 1),
        message: err.message().trim().to_owned(),
    })
}

/// [`SlowConsumerPolicy`] in the file by its name (`close`, `drop-oldest`).
mod policy_name {
    use serde::{de, Deserialize, Deserializer, Serializer};

    use crate::SlowConsumerPolicy;

    pub fn serialize<S: Serializer>(policy: &SlowConsumerPolicy, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(policy.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SlowConsumerPolicy, D::Error> {
        String::deserialize(d)?.parse().map_err(de::Error::custom)
    }
}

mod namespaces;
#[cfg(test)]
mod tests;
