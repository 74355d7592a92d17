//! The settings of a comet process from flags, environment and a config file, shared by
//! the `cometd` binary and the chat demo so that both run as a cluster the same way.
//!
//! Each setting is looked up in this order, the first found wins: the command-line flag,
//! its `COMET_*` environment variable, the TOML config file (`--config`), the default.
//!
//! | flag | env | file key | default |
//! | --- | --- | --- | --- |
//! | `--config PATH` | `COMET_CONFIG` | | none |
//! | `--role server\|hub` | `COMET_ROLE` | `role` | `server` |
//! | `--bind ADDR` | `COMET_BIND` | `bind` | `127.0.0.1:4100` |
//! | `--path PATH` | `COMET_PATH` | `path` | `/comet` |
//! | `--redis URL` | `COMET_REDIS` | `redis` | none: in-memory hub and queue |
//! | `--prefix P` | `COMET_PREFIX` | `prefix` | `comet:` |
//! | `--listen-actions true\|false` | `COMET_LISTEN_ACTIONS` | `listen_actions` | `true` |
//! | `--workers N` | `COMET_WORKERS` | `workers` | `32` |
//! | `--action-timeout-ms MS` | `COMET_ACTION_TIMEOUT_MS` | `action_timeout_ms` | `30000` |
//! | `--queue-poll-ms MS` | `COMET_QUEUE_POLL_MS` | `queue_poll_ms` | `1000` |
//! | `--process-ttl-ms MS` | `COMET_PROCESS_TTL_MS` | `process_ttl_ms` | `10000` |
//! | `--shutdown-timeout-ms MS` | `COMET_SHUTDOWN_TIMEOUT_MS` | `shutdown_timeout_ms` | `10000` |
//! | `--demo-actions true\|false` | `COMET_DEMO_ACTIONS` | `demo_actions` | `true` |
//! | `--slow-consumer close\|drop-oldest` | `COMET_SLOW_CONSUMER` | `slow_consumer` | `close` |
//! | `--origins P,P…` | `COMET_ORIGINS` | `origins` (a list) | `*:*` (every origin) |
//! | `--trust-proxy-headers true\|false` | `COMET_TRUST_PROXY_HEADERS` | `trust_proxy_headers` | `false` |
//!
//! ```toml
//! # cometd.toml: a process that only runs actions
//! role = "hub"
//! redis = "redis://127.0.0.1:6379/"
//! prefix = "myapp:"
//! workers = 16
//! ```

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use actix_web::web;
use clap::{ArgAction, Args, ValueEnum};
use serde::Deserialize;
use thiserror::Error;

use crate::transport::sockjs::SockJsConfig;
use crate::{
    BuildError, Comet, CometBuilder, HubServer, NodeConfig, RedisConfig, Running, Server,
    SlowConsumerPolicy,
};

/// Which of the seed's process roles to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Deserialize)]
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

/// The flags (and their environment variables); `#[command(flatten)]` them into a
/// program's own clap arguments.
#[derive(Debug, Clone, Default, Args)]
pub struct Flags {
    /// A TOML config file; its keys are the long flags with `_` (e.g. `listen_actions`).
    #[arg(long, env = "COMET_CONFIG")]
    pub config: Option<PathBuf>,
    /// `server` holds client connections (HTTP); `hub` only runs actions.
    #[arg(long, env = "COMET_ROLE", value_enum)]
    pub role: Option<Role>,
    /// Address to listen on (role `server`); port 0 picks a free one. [default: 127.0.0.1:4100]
    #[arg(long, env = "COMET_BIND")]
    pub bind: Option<String>,
    /// Where comet is mounted. [default: /comet]
    #[arg(long, env = "COMET_PATH")]
    pub path: Option<String>,
    /// Redis URL for the hub and the queue, e.g. redis://127.0.0.1:6379/ (default: in-memory,
    /// a single process).
    #[arg(long, env = "COMET_REDIS")]
    pub redis: Option<String>,
    /// Prefix of every Redis key and channel, so clusters can share a Redis. [default: comet:]
    #[arg(long, env = "COMET_PREFIX")]
    pub prefix: Option<String>,
    /// Whether this process runs action calls (role `server`). [default: true]
    #[arg(long, env = "COMET_LISTEN_ACTIONS", action = ArgAction::Set)]
    pub listen_actions: Option<bool>,
    /// How many action calls run at once. [default: 32]
    #[arg(long, env = "COMET_WORKERS")]
    pub workers: Option<usize>,
    /// How long a caller waits for an answer, in ms. [default: 30000]
    #[arg(long, env = "COMET_ACTION_TIMEOUT_MS")]
    pub action_timeout_ms: Option<u64>,
    /// How often idle workers look at the queue without a notice, in ms. [default: 1000]
    #[arg(long, env = "COMET_QUEUE_POLL_MS")]
    pub queue_poll_ms: Option<u64>,
    /// With Redis: how long a process that runs actions counts as alive without a heartbeat,
    /// in ms; then its unanswered calls go to another process. [default: 10000]
    #[arg(long, env = "COMET_PROCESS_TTL_MS")]
    pub process_ttl_ms: Option<u64>,
    /// On SIGTERM/Ctrl-C, how long running actions may finish before they are put back on
    /// the queue for another process, in ms. [default: 10000]
    #[arg(long, env = "COMET_SHUTDOWN_TIMEOUT_MS")]
    pub shutdown_timeout_ms: Option<u64>,
    /// Register the demo actions site/test, site/publish and site/sleep. [default: true]
    #[arg(long, env = "COMET_DEMO_ACTIONS", action = ArgAction::Set)]
    pub demo_actions: Option<bool>,
    /// What to do with a client whose outbound queue is full: `close` it with 4001, or
    /// `drop-oldest` frames and tell it (`messages_dropped`). [default: close]
    #[arg(long, env = "COMET_SLOW_CONSUMER")]
    pub slow_consumer: Option<SlowConsumerPolicy>,
    /// The browser origins allowed to connect, as `host:port` patterns with `*` for
    /// either part (`example.com:*`), comma-separated; other origins get 403 on every
    /// transport. Clients that send no `Origin` (not browsers) are not checked.
    /// [default: *:*]
    #[arg(long, env = "COMET_ORIGINS", value_delimiter = ',')]
    pub origins: Option<Vec<String>>,
    /// Take a client's ip from `X-Forwarded-For` (behind a proxy that sets it).
    /// [default: false]
    #[arg(long, env = "COMET_TRUST_PROXY_HEADERS", action = ArgAction::Set)]
    pub trust_proxy_headers: Option<bool>,
}

/// The config file's keys: the flags' names, all optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    role: Option<Role>,
    bind: Option<String>,
    path: Option<String>,
    redis: Option<String>,
    prefix: Option<String>,
    listen_actions: Option<bool>,
    workers: Option<usize>,
    action_timeout_ms: Option<u64>,
    queue_poll_ms: Option<u64>,
    process_ttl_ms: Option<u64>,
    shutdown_timeout_ms: Option<u64>,
    demo_actions: Option<bool>,
    slow_consumer: Option<String>,
    origins: Option<Vec<String>>,
    trust_proxy_headers: Option<bool>,
}

/// Why the settings could not be made.
#[derive(Debug, Error)]
pub enum SettingsError {
    /// The config file cannot be read.
    #[error("cannot read the config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The config file is not valid TOML for these settings.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line.
        message: String,
    },
    /// The settings contradict each other or are out of range.
    #[error("invalid settings: {0}")]
    Invalid(String),
    /// The comet could not be built from them.
    #[error(transparent)]
    Build(#[from] BuildError),
}

/// The settings of one process, every one resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The process role.
    pub role: Role,
    /// Address to listen on (role `server`).
    pub bind: String,
    /// Where comet is mounted.
    pub path: String,
    /// Redis URL; `None` for the in-memory hub and queue.
    pub redis: Option<String>,
    /// Prefix of Redis keys and channels.
    pub prefix: String,
    /// Whether this process runs actions (always, for role `hub`).
    pub listen_actions: bool,
    /// Action workers.
    pub workers: usize,
    /// How long a caller waits for an answer.
    pub action_timeout: Duration,
    /// How often idle workers look at the queue.
    pub queue_poll_interval: Duration,
    /// With Redis: how long an action process counts as alive without a heartbeat.
    pub process_ttl: Duration,
    /// How long running actions may finish on shutdown.
    pub shutdown_timeout: Duration,
    /// Whether to register the demo actions (the caller does; see [`crate::demo`]).
    pub demo_actions: bool,
    /// What happens to a client whose outbound queue is full.
    pub slow_consumer: SlowConsumerPolicy,
    /// The browser origins allowed, as `host:port` patterns.
    pub origins: Vec<String>,
    /// Whether the client ip comes from `X-Forwarded-For`.
    pub trust_proxy_headers: bool,
}

impl Default for Settings {
    fn default() -> Self {
        let node = NodeConfig::default();
        Settings {
            role: Role::Server,
            bind: "127.0.0.1:4100".into(),
            path: "/comet".into(),
            redis: None,
            prefix: node.prefix,
            listen_actions: true,
            workers: node.workers,
            action_timeout: node.action_timeout,
            queue_poll_interval: node.queue_poll_interval,
            process_ttl: RedisConfig::new("").process_ttl,
            shutdown_timeout: node.shutdown_timeout,
            demo_actions: true,
            slow_consumer: node.limits.slow_consumer,
            origins: SockJsConfig::default().origins,
            trust_proxy_headers: false,
        }
    }
}

impl Flags {
    /// Resolves the settings: flags and environment, then the config file, then defaults.
    pub fn settings(&self) -> Result<Settings, SettingsError> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileSettings::default(),
        };
        let defaults = Settings::default();
        let ms = Duration::from_millis;
        let role = self.role.or(file.role).unwrap_or(defaults.role);
        let listen_actions = self.listen_actions.or(file.listen_actions);
        if role == Role::Hub && listen_actions == Some(false) {
            return Err(SettingsError::Invalid(
                "role `hub` runs actions; `listen_actions = false` contradicts it".into(),
            ));
        }
        let slow_consumer = match (self.slow_consumer, &file.slow_consumer) {
            (Some(policy), _) => policy,
            (None, Some(text)) => text.parse().map_err(SettingsError::Invalid)?,
            (None, None) => defaults.slow_consumer,
        };
        Ok(Settings {
            role,
            slow_consumer,
            bind: self.bind.clone().or(file.bind).unwrap_or(defaults.bind),
            path: self.path.clone().or(file.path).unwrap_or(defaults.path),
            redis: self
                .redis
                .clone()
                .or(file.redis)
                .filter(|url| !url.is_empty()),
            prefix: self
                .prefix
                .clone()
                .or(file.prefix)
                .unwrap_or(defaults.prefix),
            listen_actions: role == Role::Hub || listen_actions.unwrap_or(defaults.listen_actions),
            workers: self.workers.or(file.workers).unwrap_or(defaults.workers),
            action_timeout: self
                .action_timeout_ms
                .or(file.action_timeout_ms)
                .map_or(defaults.action_timeout, ms),
            queue_poll_interval: self
                .queue_poll_ms
                .or(file.queue_poll_ms)
                .map_or(defaults.queue_poll_interval, ms),
            process_ttl: self
                .process_ttl_ms
                .or(file.process_ttl_ms)
                .map_or(defaults.process_ttl, ms),
            shutdown_timeout: self
                .shutdown_timeout_ms
                .or(file.shutdown_timeout_ms)
                .map_or(defaults.shutdown_timeout, ms),
            demo_actions: self
                .demo_actions
                .or(file.demo_actions)
                .unwrap_or(defaults.demo_actions),
            origins: self
                .origins
                .clone()
                .or(file.origins)
                .map(|origins| origins.into_iter().map(|o| o.trim().to_owned()).collect())
                .unwrap_or(defaults.origins),
            trust_proxy_headers: self
                .trust_proxy_headers
                .or(file.trust_proxy_headers)
                .unwrap_or(defaults.trust_proxy_headers),
        })
    }
}

fn read_file(path: &PathBuf) -> Result<FileSettings, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|source| SettingsError::Read {
        path: path.clone(),
        source,
    })?;
    toml::from_str(&text).map_err(|err| SettingsError::Parse {
        path: path.clone(),
        message: err.to_string(),
    })
}

impl Settings {
    /// A builder with these settings applied (hub, queue, prefix, workers, timeouts); add
    /// actions and [`build`](CometBuilder::build) it.
    pub fn builder(&self) -> Result<CometBuilder, SettingsError> {
        let mut builder = Comet::builder()
            .prefix(self.prefix.clone())
            .listen_actions(self.listen_actions)
            .workers(self.workers)
            .action_timeout(self.action_timeout)
            .queue_poll_interval(self.queue_poll_interval)
            .slow_consumer(self.slow_consumer)
            .shutdown_timeout(self.shutdown_timeout)
            .trust_proxy_headers(self.trust_proxy_headers)
            .sockjs(SockJsConfig {
                origins: self.origins.clone(),
                ..SockJsConfig::default()
            });
        if let Some(url) = &self.redis {
            let mut redis = RedisConfig::new(url.clone());
            redis.process_ttl = self.process_ttl;
            redis.check().map_err(BuildError::from)?;
            builder = builder.redis_config(redis);
        }
        Ok(builder)
    }

    /// Starts `comet` in this role: for `server`, binds the HTTP server (with comet at
    /// `path`, plus what `configure` adds); for `hub`, nothing to bind. Then
    /// [`Running::run`] serves until SIGINT or SIGTERM.
    pub fn start<F>(&self, comet: Comet, configure: F) -> io::Result<Running>
    where
        F: Fn(&mut web::ServiceConfig) + Send + Sync + 'static,
    {
        match self.role {
            Role::Server => Server::new(comet)
                .path(self.path.clone())
                .configure(configure)
                .bind(&self.bind),
            Role::Hub => Ok(HubServer::new(comet)
                .map_err(io::Error::other)?
                .into_running()),
        }
    }

    /// One line for the log: what this process is.
    pub fn describe(&self) -> String {
        format!(
            "role {}, {}, prefix `{}`, listen_actions {}",
            self.role,
            self.redis
                .as_deref()
                .map_or("in-memory hub and queue".to_owned(), |url| format!(
                    "redis {url}"
                )),
            self.prefix,
            self.listen_actions
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        flags: Flags,
    }

    fn flags(args: &[&str]) -> Flags {
        Cli::parse_from(std::iter::once("test").chain(args.iter().copied())).flags
    }

    #[test]
    fn defaults_then_file_then_flags() {
        let dir = std::env::temp_dir().join(format!("comet-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("cometd.toml");
        std::fs::write(
            &file,
            "role = \"hub\"\nredis = \"redis://127.0.0.1:7/\"\nprefix = \"f:\"\nworkers = 3\n",
        )
        .unwrap();
        let from_file = flags(&["--config", file.to_str().unwrap()])
            .settings()
            .unwrap();
        assert_eq!(from_file.role, Role::Hub);
        assert!(from_file.listen_actions);
        assert_eq!(from_file.redis.as_deref(), Some("redis://127.0.0.1:7/"));
        assert_eq!((from_file.prefix.as_str(), from_file.workers), ("f:", 3));
        assert_eq!(from_file.bind, "127.0.0.1:4100");

        let overridden = flags(&[
            "--config",
            file.to_str().unwrap(),
            "--role",
            "server",
            "--listen-actions",
            "false",
            "--prefix",
            "x:",
        ])
        .settings()
        .unwrap();
        assert_eq!(overridden.role, Role::Server);
        assert!(!overridden.listen_actions);
        assert_eq!((overridden.prefix.as_str(), overridden.workers), ("x:", 3));

        std::fs::write(&file, "rol = \"hub\"\n").unwrap();
        let err = flags(&["--config", file.to_str().unwrap()])
            .settings()
            .unwrap_err();
        assert!(matches!(err, SettingsError::Parse { .. }), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_hub_that_does_not_listen_is_refused() {
        let err = flags(&["--role", "hub", "--listen-actions", "false"])
            .settings()
            .unwrap_err();
        assert!(matches!(err, SettingsError::Invalid(_)));
        let plain = flags(&[]).settings().unwrap();
        assert_eq!(plain, Settings::default());
    }

    #[test]
    fn the_slow_consumer_policy_comes_from_a_flag_or_the_file() {
        assert_eq!(
            flags(&[]).settings().unwrap().slow_consumer,
            SlowConsumerPolicy::Close
        );
        let flagged = flags(&["--slow-consumer", "drop-oldest"])
            .settings()
            .unwrap();
        assert_eq!(flagged.slow_consumer, SlowConsumerPolicy::DropOldest);
        assert!(Cli::try_parse_from(["test", "--slow-consumer", "ignore"]).is_err());

        let dir = std::env::temp_dir().join(format!("comet-cli-slow-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("cometd.toml");
        std::fs::write(&file, "slow_consumer = \"drop-oldest\"\n").unwrap();
        let from_file = flags(&["--config", file.to_str().unwrap()])
            .settings()
            .unwrap();
        assert_eq!(from_file.slow_consumer, SlowConsumerPolicy::DropOldest);
        std::fs::write(&file, "slow_consumer = \"never\"\n").unwrap();
        let err = flags(&["--config", file.to_str().unwrap()])
            .settings()
            .unwrap_err();
        assert!(matches!(err, SettingsError::Invalid(_)), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[actix_web::test]
    async fn origins_and_proxy_headers_come_from_flags_or_the_file_and_bad_origins_are_refused() {
        let plain = flags(&[]).settings().unwrap();
        assert_eq!(plain.origins, ["*:*"]);
        assert!(!plain.trust_proxy_headers);
        let flagged = flags(&[
            "--origins",
            "example.com:*, *:8080",
            "--trust-proxy-headers",
            "true",
        ])
        .settings()
        .unwrap();
        assert_eq!(flagged.origins, ["example.com:*", "*:8080"]);
        assert!(flagged.trust_proxy_headers);
        let comet = flagged.builder().unwrap().build().unwrap();
        assert!(comet.settings().trust_proxy_headers);
        assert!(!comet
            .settings()
            .sockjs
            .origin_allowed(Some("http://evil.test")));
        assert!(comet
            .settings()
            .sockjs
            .origin_allowed(Some("https://example.com")));

        let dir = std::env::temp_dir().join(format!("comet-cli-origins-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("cometd.toml");
        std::fs::write(
            &file,
            "origins = [\"a.test:443\"]\ntrust_proxy_headers = true\n",
        )
        .unwrap();
        let from_file = flags(&["--config", file.to_str().unwrap()])
            .settings()
            .unwrap();
        assert_eq!(from_file.origins, ["a.test:443"]);
        assert!(from_file.trust_proxy_headers);
        std::fs::remove_dir_all(&dir).unwrap();

        // A pattern without a port part is a mistake, said at build time.
        let bad = flags(&["--origins", "example.com"]).settings().unwrap();
        match bad.builder().unwrap().build() {
            Err(err) => assert!(err.to_string().contains("example.com"), "{err}"),
            Ok(_) => panic!("an origin without a port part was taken"),
        }
    }
}
