//! [`CometBuilder`]: every part swappable, every setting with a default.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use actix::Recipient;
use comet_actors::auth::{
    AuthError, Authenticate, Hook, IpLimits, Namespace, Security, TokenVerifier,
};
use comet_actors::{
    handler_fn, Action, ActionHandler, ActionResult, Hub, Limits, MemoryHub, MemoryQueue, Node,
    NodeConfig, Queue, RedisClusterHub, RedisConfig, RedisHub, RedisQueue, RedisSetupError, Router,
    SlowConsumerPolicy,
};
use thiserror::Error;

use crate::cli::Settings;
use crate::transport::socketio::{CometSocketIo, EioConfig, SocketIo};
use crate::transport::sockjs::{ConnectionService, SockJs, SockJsConfig};
use crate::{Comet, HubServer, WebSettings};

/// Why a comet could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BuildError {
    /// `build` was called outside a running actix system (e.g. before
    /// `#[actix_web::main]` took over).
    #[error("Comet::build must run inside an actix system (e.g. in #[actix_web::main])")]
    NoSystem,
    /// A setting is out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// The Redis hub or queue could not be set up (a bad URL; nothing is connected yet).
    #[error(transparent)]
    Redis(#[from] RedisSetupError),
}

/// Configures and starts a [`Comet`].
///
/// Defaults: in-memory hub and queue, `listen_actions` on with 32 workers, the limits of
/// [`Limits::default`], timeouts of [`NodeConfig::default`]. With
/// [`redis`](Self::redis), the processes of a cluster share a Redis hub and queue.
///
/// ```
/// use comet::{Action, Comet};
/// use serde_json::json;
///
/// # actix::System::new().block_on(async {
/// let comet = Comet::builder()
///     .workers(4)
///     .action_fn("chat/nick", |action: Action| async move {
///         Ok(json!({ "nick": action.str_param("nick") }))
///     })
///     .build()
///     .unwrap();
/// assert_eq!(comet.routes(), ["chat/nick".to_string()]);
/// # });
/// ```
pub struct CometBuilder {
    config: NodeConfig,
    hub: Option<Arc<dyn Hub>>,
    queue: Option<Arc<dyn Queue>>,
    redis: Option<RedisConfig>,
    router: Router,
    web: WebSettings,
    /// A setting that could not be applied (e.g. an unreadable key file), reported by
    /// [`build`](Self::build).
    invalid: Option<String>,
}

impl Default for CometBuilder {
    fn default() -> Self {
        CometBuilder::new()
    }
}

impl CometBuilder {
    /// A builder with every default.
    pub fn new() -> CometBuilder {
        CometBuilder {
            config: NodeConfig::default(),
            hub: None,
            queue: None,
            redis: None,
            router: Router::new(),
            web: WebSettings::default(),
            invalid: None,
        }
    }

    /// Applies a process's [`Settings`] (flags, environment, config file: see
    /// [`crate::cli`]): prefix, `listen_actions`, workers, the action, queue-poll and
    /// shutdown timeouts, the slow-consumer policy, origins, proxy headers and, with a
    /// `redis` URL, the Redis hub and queue with its `process_ttl`. The URL is checked at
    /// [`build`](Self::build). Role, bind address, path and `demo` are for the program
    /// (see [`Settings::start`]).
    pub fn settings(mut self, settings: &Settings) -> Self {
        self.config.prefix = settings.prefix.clone();
        self.config.listen_actions = settings.listen_actions;
        self.config.workers = settings.workers;
        self.config.action_timeout = settings.action_timeout();
        self.config.queue_poll_interval = settings.queue_poll_interval();
        self.config.heartbeat_interval = settings.heartbeat_interval();
        self.config.client_timeout = settings.client_timeout();
        self.config.shutdown_timeout = settings.shutdown_timeout();
        settings.apply_limits(&mut self.config.limits);
        let security = &mut self.config.security;
        security.anonymous = settings.anonymous;
        security.auth_timeout = settings.auth_timeout();
        security.per_ip = IpLimits {
            max_connections: settings.max_connections_per_ip,
            connect_rate: comet_actors::auth::Rate::new(
                settings.connect_rate_per_ip,
                settings.connect_burst_per_ip,
            ),
        };
        let tokens = match (&settings.token_hmac_secret, &settings.token_public_key) {
            (Some(secret), _) => Some(TokenVerifier::hmac(secret.as_bytes())),
            (None, Some(path)) => Some(TokenVerifier::public_key_file(path)),
            (None, None) => None,
        };
        match tokens {
            Some(Ok(verifier)) => security.tokens = Some(verifier),
            Some(Err(err)) => self.invalid = Some(err.to_string()),
            None => {}
        }
        for (name, namespace) in &settings.namespaces {
            security
                .namespaces
                .declare(name.clone(), namespace.namespace());
        }
        self.web.sockjs.origins = settings.origins.clone();
        self.web.trust_proxy_headers = settings.trust_proxy_headers;
        if let Some(key) = &settings.api_key {
            self = self.api_key(key.clone());
        }
        if let Some(password) = &settings.admin_password {
            self = self.admin_password(password.clone());
        }
        self.config.process_heartbeat = settings.process_heartbeat();
        let redis = match &settings.redis {
            Some(url) => Some(RedisConfig::new(url.clone())),
            None if !settings.redis_cluster.is_empty() => {
                let mut cluster = RedisConfig::cluster(settings.redis_cluster.clone());
                cluster.partitions = settings.redis_partitions;
                cluster.probe_interval = Duration::from_millis(settings.redis_probe_ms);
                Some(cluster)
            }
            None => None,
        };
        if let Some(mut redis) = redis {
            redis.process_ttl = settings.process_ttl();
            self.redis = Some(redis);
        }
        self
    }

    /// Replaces the whole node configuration.
    pub fn config(mut self, config: NodeConfig) -> Self {
        self.config = config;
        self
    }

    /// What happens to a client whose outbound queue is full (`Limits::slow_consumer`):
    /// closed with 4001 (the default), or its oldest frames dropped with a
    /// `messages_dropped` notice. Over the raw WebSocket and SockJS alike.
    pub fn slow_consumer(mut self, policy: SlowConsumerPolicy) -> Self {
        self.config.limits.slow_consumer = policy;
        self
    }

    /// Replaces the per-connection limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.config.limits = limits;
        self
    }

    /// Replaces the whole security configuration: authentication, namespaces, per-ip
    /// limits (see [`Security`] and docs/SECURITY.md).
    pub fn security(mut self, security: Security) -> Self {
        self.config.security = security;
        self
    }

    /// Verifies connection and subscription tokens (JWT) with `verifier`: HS256 with a
    /// shared secret ([`TokenVerifier::hmac`]), RS256/ES256 with a public key
    /// ([`TokenVerifier::public_key_file`]).
    ///
    /// ```
    /// use comet::auth::TokenVerifier;
    /// use comet::Comet;
    ///
    /// # actix::System::new().block_on(async {
    /// let secret = b"a shared secret of 32 bytes or more!";
    /// let comet = Comet::builder()
    ///     .tokens(TokenVerifier::hmac(secret).unwrap())
    ///     .anonymous(false)
    ///     .build()
    ///     .unwrap();
    /// # comet.shutdown().await;
    /// # });
    /// ```
    pub fn tokens(mut self, verifier: TokenVerifier) -> Self {
        self.config.security.tokens = Some(verifier);
        self
    }

    /// Whether connections without a user may do anything (default true). When false, a
    /// token key or an authenticate hook must be set.
    pub fn anonymous(mut self, allowed: bool) -> Self {
        self.config.security.anonymous = allowed;
        self
    }

    /// Authenticates connections with `hook` (an async fn or an actor; see [`Hook`])
    /// instead of the token key: it sees the request (ip, headers, cookies, query,
    /// `Origin`) and the token, if any. Unless [`SockJsConfig::origins`] is set, only the
    /// server's own origin may then connect from a browser.
    pub fn authenticate(mut self, hook: Hook<Authenticate>) -> Self {
        self.config.security.authenticate = Some(hook);
        self
    }

    /// [`authenticate`](Self::authenticate) with an async fn.
    ///
    /// ```
    /// use comet::auth::{AuthError, Authenticate, Identity};
    /// use comet::Comet;
    ///
    /// # actix::System::new().block_on(async {
    /// let comet = Comet::builder()
    ///     .authenticate_fn(|request: Authenticate| async move {
    ///         match request.connection.cookie("session") {
    ///             Some("s3cret") => Ok(Identity::user("alice")),
    ///             _ => Err(AuthError::Refused("no session".into())),
    ///         }
    ///     })
    ///     .build()
    ///     .unwrap();
    /// # comet.shutdown().await;
    /// # });
    /// ```
    pub fn authenticate_fn<F, Fut>(self, hook: F) -> Self
    where
        F: Fn(Authenticate) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<comet_actors::Identity, AuthError>> + Send + 'static,
    {
        self.authenticate(Hook::from_fn(hook))
    }

    /// Declares namespace `name` (`""`: channels without `:`) with its rules.
    ///
    /// ```
    /// use comet::auth::{Namespace, PublishRule, SubscribeRule};
    /// use comet::Comet;
    ///
    /// # actix::System::new().block_on(async {
    /// let comet = Comet::builder()
    ///     .namespace("chat", Namespace::new().publish(PublishRule::Server))
    ///     .namespace("secret", Namespace::new().subscribe(SubscribeRule::Token))
    ///     .build()
    ///     .unwrap();
    /// # comet.shutdown().await;
    /// # });
    /// ```
    pub fn namespace(mut self, name: impl Into<String>, namespace: Namespace) -> Self {
        self.config.security.namespaces.declare(name, namespace);
        self
    }

    /// Per-ip limits on connections (default off).
    pub fn per_ip(mut self, limits: IpLimits) -> Self {
        self.config.security.per_ip = limits;
        self
    }

    /// Makes action `route` answer `not_authenticated` to callers without a user.
    pub fn require_user(mut self, route: impl Into<String>) -> Self {
        self.router.require_user(route);
        self
    }

    /// The hub (default: a private [`MemoryHub`]).
    pub fn hub(mut self, hub: impl Hub) -> Self {
        self.hub = Some(Arc::new(hub));
        self
    }

    /// The action queue (default: a private [`MemoryQueue`]).
    pub fn queue(mut self, queue: impl Queue) -> Self {
        self.queue = Some(Arc::new(queue));
        self
    }

    /// Puts the hub and the queue on the Redis at `url` (e.g. `redis://127.0.0.1:6379/`),
    /// so that every process built with the same URL and [`prefix`](Self::prefix) acts as
    /// one: a [`RedisHub`] and a [`RedisQueue`] with the defaults of
    /// [`RedisConfig::new`]. A [`hub`](Self::hub) or [`queue`](Self::queue) given as well
    /// wins over its Redis one. Fails on a URL the `redis` crate cannot read; nothing is
    /// connected before [`build`](Self::build), and a Redis that is down then is retried
    /// with backoff.
    ///
    /// ```
    /// # fn main() -> Result<(), comet::BuildError> {
    /// let builder = comet::Comet::builder().redis("redis://127.0.0.1:6379/")?.prefix("chat:");
    /// # let _ = builder;
    /// assert!(comet::Comet::builder().redis("http://nope").is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn redis(self, url: impl Into<String>) -> Result<Self, BuildError> {
        let config = RedisConfig::new(url);
        config.check()?;
        Ok(self.redis_config(config))
    }

    /// Hub and queue on a Redis Cluster (Redis 7.0 or later, sharded pub/sub), given some
    /// of its nodes as seeds; see docs/CLUSTER.md. Fails on a URL the `redis` crate
    /// cannot read; nothing is connected before [`build`](Self::build), and
    /// `cometd` refuses a cluster whose nodes run an older Redis
    /// ([`RedisConfig::check_cluster`]).
    ///
    /// ```
    /// # fn main() -> Result<(), comet::BuildError> {
    /// let builder = comet::Comet::builder()
    ///     .redis_cluster(["redis://10.0.0.1:7000/", "redis://10.0.0.2:7000/"])?
    ///     .prefix("chat:");
    /// # let _ = builder;
    /// assert!(comet::Comet::builder().redis_cluster(["http://nope"]).is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn redis_cluster<S: Into<String>>(
        self,
        seeds: impl IntoIterator<Item = S>,
    ) -> Result<Self, BuildError> {
        let config = RedisConfig::cluster(seeds);
        config.check()?;
        Ok(self.redis_config(config))
    }

    /// As [`redis`](Self::redis), with every Redis setting (pool size, timeouts, backoff,
    /// the process heartbeat) given. Checked at [`build`](Self::build).
    pub fn redis_config(mut self, config: RedisConfig) -> Self {
        self.redis = Some(config);
        self
    }

    /// Whether this process runs action calls (default true).
    pub fn listen_actions(mut self, listen: bool) -> Self {
        self.config.listen_actions = listen;
        self
    }

    /// How many action calls run at once (default 32).
    pub fn workers(mut self, workers: usize) -> Self {
        self.config.workers = workers;
        self
    }

    /// The prefix of hub channels and queue keys (default `comet:`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.prefix = prefix.into();
        self
    }

    /// How long a caller waits for an answer (default 30 s).
    pub fn action_timeout(mut self, timeout: Duration) -> Self {
        self.config.action_timeout = timeout;
        self
    }

    /// How often idle workers look at the queue even without a "queue updated" notice
    /// (default 1 s).
    pub fn queue_poll_interval(mut self, interval: Duration) -> Self {
        self.config.queue_poll_interval = interval;
        self
    }

    /// On shutdown, how long running action calls may still run before they are put back
    /// on the queue for another process (default 10 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.config.shutdown_timeout = timeout;
        self
    }

    /// Heartbeat interval and the silence after which a client is dropped (defaults
    /// 25 s and 60 s).
    pub fn heartbeat(mut self, interval: Duration, client_timeout: Duration) -> Self {
        self.config.heartbeat_interval = interval;
        self.config.client_timeout = client_timeout;
        self
    }

    /// The SockJS options (default [`SockJsConfig::default`]): disconnect delay, response
    /// limit, WebSocket on or off, cookies, origins, the client library URL of the iframe
    /// page, most sessions. Heartbeats and the outbound queue are the node's, the same
    /// over every transport ([`heartbeat`](Self::heartbeat), [`limits`](Self::limits)).
    pub fn sockjs(mut self, config: SockJsConfig) -> Self {
        self.web.sockjs = config;
        self
    }

    /// Turns the HTTP server API on (`POST <prefix>/api/<method>`, see docs/API.md):
    /// requests must carry `Authorization: apikey KEY`. Default off. An empty key
    /// leaves it off.
    ///
    /// ```
    /// # actix::System::new().block_on(async {
    /// let comet = comet::Comet::builder().api_key("a long random key").build().unwrap();
    /// assert!(comet.settings().api_key.is_some());
    /// # comet.shutdown().await;
    /// # });
    /// ```
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        let key = key.into();
        self.web.api_key = (!key.is_empty()).then_some(key);
        self
    }

    /// Turns the admin page on (`<prefix>/admin`), signed in with `password` (the API key
    /// signs in too). Default off. An empty password leaves it off.
    pub fn admin_password(mut self, password: impl Into<String>) -> Self {
        let password = password.into();
        self.web.admin_password = (!password.is_empty()).then_some(password);
        self
    }

    /// How often this process tells the cluster what it is, for the server API's `info`
    /// (default and most 5 s; see [`NodeConfig::process_heartbeat`]).
    pub fn process_heartbeat(mut self, every: Duration) -> Self {
        self.config.process_heartbeat = every;
        self
    }

    /// Take the client ip from `X-Forwarded-For` (default off).
    pub fn trust_proxy_headers(mut self, trust: bool) -> Self {
        self.web.trust_proxy_headers = trust;
        self
    }

    /// Registers an actor as the handler of `route`: pass its `Addr` (the actor must
    /// implement `Handler<Action>`).
    pub fn action(
        mut self,
        route: impl Into<String>,
        handler: impl Into<Recipient<Action>>,
    ) -> Self {
        self.router.route(route, handler.into());
        self
    }

    /// Registers an async function as the handler of `route`.
    pub fn action_fn<F, Fut>(mut self, route: impl Into<String>, handler: F) -> Self
    where
        F: Fn(Action) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ActionResult> + 'static,
    {
        self.router.route(route, handler_fn(handler));
        self
    }

    /// Registers any [`ActionHandler`] for `route`.
    pub fn handler(mut self, route: impl Into<String>, handler: impl ActionHandler) -> Self {
        self.router.route(route, handler);
        self
    }

    /// Checks the configuration and starts the node's actors. Must run inside an actix
    /// system.
    pub fn build(self) -> Result<Comet, BuildError> {
        if actix::System::try_current().is_none() {
            return Err(BuildError::NoSystem);
        }
        if let Some(why) = self.invalid {
            return Err(BuildError::Invalid(why));
        }
        validate(&self.config)?;
        let mut web = self.web;
        if self.config.security.authenticate.is_some() && web.sockjs.origins == ["*:*"] {
            // Identity from cookies: a page of another site must not open a connection
            // that carries them (cross-site WebSocket hijacking).
            web.sockjs.origins = vec!["self".to_owned()];
        }
        web.sockjs.validate().map_err(BuildError::Invalid)?;
        if let Some(redis) = &self.redis {
            validate_redis(redis)?;
            if redis.is_cluster() && self.config.prefix.contains(['{', '}']) {
                // The partitions' hash tags follow the prefix: a brace in it would be
                // taken for the tag.
                return Err(BuildError::Invalid(
                    "on a Redis Cluster the prefix must not hold `{` or `}`".into(),
                ));
            }
        }
        let hub: Arc<dyn Hub> = match (self.hub, &self.redis) {
            (Some(hub), _) => hub,
            (None, Some(redis)) if redis.is_cluster() => {
                Arc::new(RedisClusterHub::new(redis, &self.config.prefix)?)
            }
            (None, Some(redis)) => Arc::new(RedisHub::new(redis)?),
            (None, None) => Arc::new(MemoryHub::new()),
        };
        let queue: Arc<dyn Queue> = match (self.queue, &self.redis) {
            (Some(queue), _) => queue,
            (None, Some(redis)) => Arc::new(RedisQueue::new(redis, &self.config.prefix)?),
            (None, None) => Arc::new(MemoryQueue::new()),
        };
        // Every transport bounds its clients by the node's limits: one outbound queue, one
        // slow-consumer policy, one transport cap.
        let limits = self.config.limits.clone();
        let node = Node::start(self.config, hub, queue, self.router);
        let service = ConnectionService::new(node.clone(), web.trust_proxy_headers);
        let socketio = SocketIo::new(
            socketio_config(node.config()),
            limits.clone(),
            web.sockjs.clone(),
            CometSocketIo(ConnectionService::new(
                node.clone(),
                web.trust_proxy_headers,
            )),
        );
        let sockjs = SockJs::with_limits(web.sockjs.clone(), limits, service)
            .map_err(|err| BuildError::Invalid(err.0))?;
        Ok(Comet {
            node,
            settings: Arc::new(web),
            sockjs,
            socketio,
            draining: Arc::default(),
        })
    }
}

impl CometBuilder {
    /// Builds jii's `HubServer`: a process that runs actions and holds no client
    /// connections (no HTTP at all). `listen_actions` is turned on; at least one action
    /// must be registered. Run it with [`HubServer::run`].
    ///
    /// ```no_run
    /// use comet::{Action, Comet};
    /// use serde_json::json;
    ///
    /// #[actix_web::main]
    /// async fn main() -> Result<(), Box<dyn std::error::Error>> {
    ///     let hub = Comet::builder()
    ///         .redis("redis://127.0.0.1:6379/")?
    ///         .action_fn("site/test", |action: Action| async move {
    ///             Ok(json!({ "echo": action.params() }))
    ///         })
    ///         .build_hub_server()?;
    ///     hub.run().await?; // until SIGINT or SIGTERM, then drains
    ///     Ok(())
    /// }
    /// ```
    pub fn build_hub_server(self) -> Result<HubServer, BuildError> {
        if self.router.is_empty() {
            return Err(BuildError::Invalid(
                "a hub server runs actions: register at least one".into(),
            ));
        }
        HubServer::new(self.listen_actions(true).build()?)
    }
}

fn validate(config: &NodeConfig) -> Result<(), BuildError> {
    let invalid = |what: &str| Err(BuildError::Invalid(what.to_owned()));
    if config
        .prefix
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return invalid("prefix must not hold spaces or control characters");
    }
    if config.listen_actions && config.workers == 0 {
        return invalid("workers must be at least 1 when listen_actions is on");
    }
    let limits = &config.limits;
    if limits.max_frame_bytes < 64 || limits.max_name_bytes == 0 || limits.outbound_queue == 0 {
        return invalid(
            "max_frame_bytes must be at least 64, max_name_bytes and outbound_queue at least 1",
        );
    }
    if !(1..=120).contains(&limits.max_json_depth) {
        // serde_json reads at most 128 levels, and a queued call wraps its params in two.
        return invalid("max_json_depth must be 1 to 120");
    }
    if limits.max_running_actions_per_connection == 0 {
        return invalid("max_running_actions_per_connection must be at least 1");
    }
    if config.action_timeout.is_zero() || config.heartbeat_interval.is_zero() {
        return invalid("action_timeout and heartbeat_interval must be above zero");
    }
    if config.process_heartbeat < Duration::from_millis(10)
        || config.process_heartbeat > Duration::from_secs(5)
    {
        return invalid("process_heartbeat must be 10 ms to 5 s");
    }
    if config.queue_poll_interval.is_zero() || config.hub_retry_interval.is_zero() {
        return invalid("queue_poll_interval and hub_retry_interval must be above zero");
    }
    for (name, rate) in [
        ("publish_rate", limits.publish_rate),
        ("action_rate", limits.action_rate),
        ("subscribe_rate", limits.subscribe_rate),
        ("per-ip connect_rate", config.security.per_ip.connect_rate),
    ] {
        if rate.is_limited() && rate.burst == 0 {
            return Err(BuildError::Invalid(format!(
                "{name} has a rate but a burst of 0: nothing could pass"
            )));
        }
    }
    config.security.validate().map_err(BuildError::Invalid)?;
    Ok(())
}

fn validate_redis(config: &RedisConfig) -> Result<(), BuildError> {
    config.check()?;
    let invalid = |what: &str| Err(BuildError::Invalid(what.to_owned()));
    if config.is_cluster()
        && (!(1..=comet_actors::hub::partitions::MAX_PARTITIONS).contains(&config.partitions)
            || config.probe_interval.is_zero()
            || config.shards_interval.is_zero())
    {
        return invalid(
            "Redis Cluster partitions must be 1 to 1,024, probe_interval and shards_interval \
             above zero",
        );
    }
    if config.publish_buffer == 0 || config.publish_batch == 0 {
        return invalid("Redis publish_buffer and publish_batch must be at least 1");
    }
    if config.queue_buffer == 0 || !(1..=1000).contains(&config.queue_batch) {
        return invalid("Redis queue_buffer must be at least 1, queue_batch 1 to 1,000");
    }
    if config.connect_timeout.is_zero()
        || config.command_timeout.is_zero()
        || config.ping_interval.is_zero()
    {
        return invalid(
            "Redis connect_timeout, command_timeout and ping_interval must be above zero",
        );
    }
    if config.process_ttl < Duration::from_millis(100) {
        return invalid("Redis process_ttl must be at least 100 ms");
    }
    if config.publish_buffer_bytes == 0 || config.queue_buffer_bytes == 0 || config.batch_bytes == 0
    {
        return invalid(
            "Redis publish_buffer_bytes, queue_buffer_bytes and batch_bytes must be above zero",
        );
    }
    if config.dead_letters_max == 0 || config.dead_letters_ttl.is_zero() {
        return invalid("Redis dead_letters_max and dead_letters_ttl must be above zero");
    }
    Ok(())
}

/// Socket.IO's handshake figures from the node's: pings every `heartbeat_interval`, a
/// client silent for `client_timeout` closed (`pingTimeout` is the difference, at least
/// 1 s), `maxPayload` the transport cap.
fn socketio_config(config: &NodeConfig) -> EioConfig {
    EioConfig {
        ping_interval: config.heartbeat_interval,
        ping_timeout: config
            .client_timeout
            .saturating_sub(config.heartbeat_interval)
            .max(Duration::from_secs(1)),
        max_payload: config.limits.transport_cap(),
        ..EioConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(config: &NodeConfig) -> String {
        match validate(config) {
            Err(BuildError::Invalid(why)) => why,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn limits_out_of_range_are_refused_by_name() {
        assert_eq!(validate(&NodeConfig::default()), Ok(()));
        let mut config = NodeConfig::default();
        config.limits.max_json_depth = 127;
        assert!(refused(&config).contains("max_json_depth"));
        let mut config = NodeConfig::default();
        config.limits.max_running_actions_per_connection = 0;
        assert!(refused(&config).contains("max_running_actions_per_connection"));
    }

    #[test]
    fn redis_bounds_of_zero_are_refused_by_name() {
        let ok = RedisConfig::new("redis://127.0.0.1:6379/");
        assert_eq!(validate_redis(&ok), Ok(()));
        for (what, config) in [
            (
                "publish_buffer_bytes",
                RedisConfig {
                    publish_buffer_bytes: 0,
                    ..ok.clone()
                },
            ),
            (
                "dead_letters_ttl",
                RedisConfig {
                    dead_letters_ttl: Duration::ZERO,
                    ..ok.clone()
                },
            ),
        ] {
            match validate_redis(&config) {
                Err(BuildError::Invalid(why)) => assert!(why.contains(what), "{why}"),
                other => panic!("{what}: expected a refusal, got {other:?}"),
            }
        }
    }

    #[actix_rt::test]
    async fn a_cluster_refuses_braces_in_the_prefix_and_bad_partitions() {
        let cluster = || Comet::builder().redis_cluster(["redis://127.0.0.1:7000/"]);
        match cluster().unwrap().prefix("a{b}:").build() {
            Err(BuildError::Invalid(why)) => assert!(why.contains("prefix"), "{why}"),
            other => panic!("expected a refusal, got {:?}", other.err()),
        }
        let mut config = RedisConfig::cluster(["redis://127.0.0.1:7000/"]);
        config.partitions = 0;
        match validate_redis(&config) {
            Err(BuildError::Invalid(why)) => assert!(why.contains("partitions"), "{why}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(cluster().unwrap().prefix("ok:").build().is_ok());
    }
}
