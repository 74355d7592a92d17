//! The layering of [`Settings`]: flag, environment variable, config file, default.

use super::*;
use clap::Command;

fn command() -> Command {
    Settings::augment_args(Command::new("test"))
}

fn parse_with(command: Command, args: &[&str]) -> Result<Settings, SettingsError> {
    let matches = command
        .try_get_matches_from(std::iter::once("test").chain(args.iter().copied()))
        .map_err(|err| one_line(&err))?;
    Settings::from_matches(&matches)
}

fn parse(args: &[&str]) -> Result<Settings, SettingsError> {
    parse_with(command(), args)
}

/// A config file of its own for one test, removed on drop.
struct File(PathBuf);

impl File {
    fn new(name: &str, text: &str) -> File {
        let path =
            std::env::temp_dir().join(format!("comet-cli-{name}-{}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        File(path)
    }

    fn arg(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for File {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn the_defaults_are_the_nodes() {
    let defaults = Settings::default();
    let node = NodeConfig::default();
    assert_eq!(defaults.role, Role::Server);
    assert_eq!(
        (defaults.bind.as_str(), defaults.path.as_str()),
        ("127.0.0.1:4100", "/comet")
    );
    assert_eq!(defaults.prefix, node.prefix);
    assert_eq!(defaults.workers, node.workers);
    assert_eq!(defaults.action_timeout(), node.action_timeout);
    assert_eq!(defaults.queue_poll_interval(), node.queue_poll_interval);
    assert_eq!(defaults.shutdown_timeout(), node.shutdown_timeout);
    assert_eq!(defaults.process_ttl(), RedisConfig::new("").process_ttl);
    assert_eq!(defaults.origins, crate::SockJsConfig::default().origins);
    assert!(defaults.listen_actions && !defaults.demo && !defaults.trust_proxy_headers);
    assert_eq!(defaults.redis, None);
    assert_eq!(parse(&[]).unwrap(), defaults);
}

#[test]
fn a_flag_beats_its_env_var_which_beats_the_file_which_beats_the_default() {
    // The same settings under environment variables of their own (`COMET_X_LAYERING`),
    // so that no other test reads what this one sets. (clap reads a variable when the
    // argument is given its name.)
    std::env::set_var("COMET_WORKERS_LAYERING", "5");
    std::env::set_var("COMET_PREFIX_LAYERING", "env:");
    std::env::set_var("COMET_DEMO_LAYERING", "true");
    let renamed = command().mut_args(|arg| match arg.get_env() {
        Some(name) => {
            let name = format!("{}_LAYERING", name.to_string_lossy());
            arg.env(&*Box::leak(name.into_boxed_str()))
        }
        None => arg,
    });
    let file = File::new(
        "layering",
        "workers = 3\nprefix = \"file:\"\nqueue_poll_ms = 7\nrole = \"hub\"\ndemo = false\n",
    );
    let settings = parse_with(renamed, &["--config", file.arg(), "--workers", "9"]).unwrap();
    assert_eq!(settings.workers, 9, "the flag beats env and file");
    assert_eq!(settings.prefix, "env:", "env beats the file");
    assert!(settings.demo, "env beats the file");
    assert_eq!(settings.queue_poll_ms, 7, "the file beats the default");
    assert_eq!(settings.role, Role::Hub, "the file beats the default");
    assert_eq!(settings.action_timeout_ms, 30_000, "the default");
    assert_eq!(settings.config.as_deref(), Some(file.0.as_path()));
}

#[test]
fn flags_override_the_file_and_a_hub_always_listens() {
    let file = File::new(
        "override",
        "role = \"hub\"\nredis = \"redis://127.0.0.1:7/\"\nprefix = \"f:\"\nworkers = 3\n",
    );
    let from_file = parse(&["--config", file.arg()]).unwrap();
    assert_eq!(from_file.role, Role::Hub);
    assert!(from_file.listen_actions);
    assert_eq!(from_file.redis.as_deref(), Some("redis://127.0.0.1:7/"));
    assert_eq!((from_file.prefix.as_str(), from_file.workers), ("f:", 3));
    assert_eq!(from_file.bind, "127.0.0.1:4100");

    let overridden = parse(&[
        "--config",
        file.arg(),
        "--role",
        "server",
        "--listen-actions",
        "false",
        "--prefix",
        "x:",
        "--redis",
        "",
    ])
    .unwrap();
    assert_eq!(overridden.role, Role::Server);
    assert!(!overridden.listen_actions);
    assert_eq!((overridden.prefix.as_str(), overridden.workers), ("x:", 3));
    assert_eq!(overridden.redis, None, "an empty URL is the in-memory hub");

    let err = parse(&["--role", "hub", "--listen-actions", "false"]).unwrap_err();
    assert!(matches!(err, SettingsError::Invalid(_)), "{err}");
}

#[test]
fn a_mistake_in_the_file_is_named_with_its_line() {
    let file = File::new("unknown", "workers = 2\n\nrol = \"hub\"\n");
    let err = parse(&["--config", file.arg()]).unwrap_err();
    assert!(matches!(err, SettingsError::Parse { line: 3, .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("line 3") && text.contains("`rol`"), "{text}");
    assert!(!text.contains('\n'), "one line: {text}");

    let file = File::new("type", "workers = \"many\"\n");
    let err = parse(&["--config", file.arg()]).unwrap_err();
    assert!(matches!(err, SettingsError::Parse { line: 1, .. }), "{err}");

    let file = File::new("config-key", "config = \"other.toml\"\n");
    let err = parse(&["--config", file.arg()]).unwrap_err();
    assert!(err.to_string().contains("`config`"), "{err}");

    let err = parse(&["--config", "/nonexistent/cometd.toml"]).unwrap_err();
    assert!(matches!(err, SettingsError::Read { .. }), "{err}");

    let err = parse(&["--workers", "many"]).unwrap_err();
    assert!(matches!(err, SettingsError::Args(_)), "{err}");
    assert!(!err.to_string().contains('\n'), "one line: {err}");
}

#[test]
fn the_demo_actions_are_off_unless_asked_for() {
    assert!(!parse(&[]).unwrap().demo);
    assert!(parse(&["--demo"]).unwrap().demo);
    assert!(parse(&["--demo", "--workers", "2"]).unwrap().demo);
    assert!(parse(&["--demo=true"]).unwrap().demo);
    assert!(!parse(&["--demo", "false"]).unwrap().demo);
    assert!(
        parse(&["--demo-actions", "true"]).unwrap().demo,
        "deprecated spelling"
    );
    let file = File::new("demo", "demo = true\n");
    assert!(parse(&["--config", file.arg()]).unwrap().demo);
    let file = File::new("demo-actions", "demo_actions = true\n");
    assert!(
        parse(&["--config", file.arg()]).unwrap().demo,
        "deprecated key"
    );
    assert!(
        !parse(&["--config", file.arg(), "--demo", "false"])
            .unwrap()
            .demo
    );
}

#[test]
fn the_slow_consumer_policy_comes_from_a_flag_or_the_file() {
    assert_eq!(parse(&[]).unwrap().slow_consumer, SlowConsumerPolicy::Close);
    let flagged = parse(&["--slow-consumer", "drop-oldest"]).unwrap();
    assert_eq!(flagged.slow_consumer, SlowConsumerPolicy::DropOldest);
    assert!(parse(&["--slow-consumer", "ignore"]).is_err());

    let file = File::new("slow", "slow_consumer = \"drop-oldest\"\n");
    let from_file = parse(&["--config", file.arg()]).unwrap();
    assert_eq!(from_file.slow_consumer, SlowConsumerPolicy::DropOldest);
    let file = File::new("slow-bad", "\nslow_consumer = \"never\"\n");
    let err = parse(&["--config", file.arg()]).unwrap_err();
    assert!(matches!(err, SettingsError::Parse { line: 2, .. }), "{err}");
    assert!(err.to_string().contains("never"), "{err}");
}

#[actix_web::test]
async fn origins_and_proxy_headers_come_from_flags_or_the_file_and_bad_origins_are_refused() {
    let plain = parse(&[]).unwrap();
    assert_eq!(plain.origins, ["*:*"]);
    assert!(!plain.trust_proxy_headers);
    let flagged = parse(&[
        "--origins",
        "example.com:*, *:8080",
        "--trust-proxy-headers",
        "true",
    ])
    .unwrap();
    assert_eq!(flagged.origins, ["example.com:*", "*:8080"]);
    assert!(flagged.trust_proxy_headers);
    let comet = flagged.builder().build().unwrap();
    assert!(comet.settings().trust_proxy_headers);
    assert!(!comet
        .settings()
        .sockjs
        .origin_allowed(Some("http://evil.test")));
    assert!(comet
        .settings()
        .sockjs
        .origin_allowed(Some("https://example.com")));

    let file = File::new(
        "origins",
        "origins = [\"a.test:443\"]\ntrust_proxy_headers = true\n",
    );
    let from_file = parse(&["--config", file.arg()]).unwrap();
    assert_eq!(from_file.origins, ["a.test:443"]);
    assert!(from_file.trust_proxy_headers);

    // A pattern without a port part is a mistake, said at build time.
    let bad = parse(&["--origins", "example.com"]).unwrap();
    match bad.builder().build() {
        Err(err) => assert!(err.to_string().contains("example.com"), "{err}"),
        Ok(_) => panic!("an origin without a port part was taken"),
    }
}

#[actix_web::test]
async fn the_builder_takes_every_setting() {
    let settings = parse(&[
        "--prefix",
        "b:",
        "--listen-actions",
        "false",
        "--workers",
        "4",
        "--action-timeout-ms",
        "1500",
        "--queue-poll-ms",
        "250",
        "--shutdown-timeout-ms",
        "700",
        "--heartbeat-ms",
        "900",
        "--client-timeout-ms",
        "2700",
        "--slow-consumer",
        "drop-oldest",
    ])
    .unwrap();
    let comet = settings.builder().build().unwrap();
    let config = comet.config();
    assert_eq!(config.prefix, "b:");
    assert!(!config.listen_actions);
    assert_eq!(config.workers, 4);
    assert_eq!(config.action_timeout, Duration::from_millis(1500));
    assert_eq!(config.queue_poll_interval, Duration::from_millis(250));
    assert_eq!(config.shutdown_timeout, Duration::from_millis(700));
    assert_eq!(config.heartbeat_interval, Duration::from_millis(900));
    assert_eq!(config.client_timeout, Duration::from_millis(2700));
    assert_eq!(config.limits.slow_consumer, SlowConsumerPolicy::DropOldest);
    assert!(parse(&["--redis", "http://nope"])
        .unwrap()
        .builder()
        .build()
        .is_err());
}

#[actix_web::test]
async fn identity_rate_limits_and_namespaces_come_from_flags_and_the_file() {
    use crate::auth::{PublishRule, Rate, SubscribeRule};
    let file = File::new(
        "security",
        r#"
anonymous = false
publish_rate = 5
flood_limit = 0

[namespaces.chat]
subscribe = "authenticated"
publish = "server"

[namespaces.dm]
publish = "subscribers"
max_payload_bytes = 512

[namespaces.""]
user_channels = false
subscribe = "none"
"#,
    );
    let settings = parse(&[
        "--config",
        file.arg(),
        "--token-hmac-secret",
        "a secret of thirty-two bytes or more",
        "--max-connections-per-ip",
        "3",
    ])
    .unwrap();
    let comet = settings.builder().build().unwrap();
    let config = comet.config();
    let security = &config.security;
    assert!(!security.anonymous);
    assert_eq!(security.tokens.as_ref().unwrap().algorithm(), "HS256");
    assert_eq!(security.per_ip.max_connections, 3);
    assert!(!security.per_ip.connect_rate.is_limited());
    assert_eq!(config.limits.publish_rate, Rate::new(5, 1000));
    assert_eq!(config.limits.flood_limit, 0);
    let chat = security.namespaces.of("chat:lobby");
    assert_eq!(
        (chat.subscribe, chat.publish),
        (SubscribeRule::Authenticated, PublishRule::Server)
    );
    assert!(chat.user_channels);
    let dm = security.namespaces.of("dm:#a,b");
    assert_eq!(
        (dm.publish, dm.max_payload_bytes),
        (PublishRule::Subscribers, Some(512))
    );
    assert_eq!(
        security.namespaces.of("lobby").subscribe,
        SubscribeRule::None
    );
    assert_eq!(
        security.namespaces.of("other:x").subscribe,
        SubscribeRule::Anyone
    );
    comet.shutdown().await;

    let bad_rule = File::new("bad-rule", "[namespaces.chat]\nsubscribe = \"everyone\"\n");
    let err = parse(&["--config", bad_rule.arg()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 2") && err.contains("everyone"), "{err}");
    // Identity required, but nothing to check it with: refused at build.
    let nobody = parse(&["--anonymous", "false"]).unwrap().builder().build();
    assert!(matches!(nobody, Err(crate::BuildError::Invalid(why)) if why.contains("nobody")));
    let short = parse(&["--token-hmac-secret", "short"])
        .unwrap()
        .builder()
        .build();
    assert!(matches!(short, Err(crate::BuildError::Invalid(why)) if why.contains("32 bytes")));
    let missing = parse(&["--token-public-key", "/nonexistent.pem"]).unwrap();
    assert!(missing.builder().build().is_err());
}

#[actix_web::test]
async fn history_settings_come_from_the_file_and_need_each_other() {
    let file = File::new(
        "history",
        "[namespaces.feed]\nhistory_size = 1000\nhistory_ttl = 300\nrecover = true\n\n[namespaces.ticker]\nhistory_size = 1\nsend_latest = true\n",
    );
    let settings = parse(&["--config", file.arg()]).unwrap();
    let comet = settings.builder().build().unwrap();
    let namespaces = &comet.config().security.namespaces;
    let feed = namespaces.of("feed:news");
    let history = feed.history.expect("history");
    assert_eq!(
        (history.size, history.ttl),
        (1000, Duration::from_secs(300))
    );
    assert!(feed.recover && !feed.send_latest);
    let ticker = namespaces.of("ticker:eur");
    assert_eq!(
        ticker.history.map(|h| h.ttl),
        Some(Duration::from_secs(300))
    );
    assert!(ticker.send_latest && !ticker.recover);
    assert!(namespaces.of("other").history.is_none());
    comet.shutdown().await;
    let orphan = File::new("orphan", "[namespaces.feed]\nrecover = true\n");
    let built = parse(&["--config", orphan.arg()])
        .unwrap()
        .builder()
        .build();
    assert!(matches!(built, Err(crate::BuildError::Invalid(why)) if why.contains("history_size")));
}

#[actix_web::test]
async fn presence_settings_come_from_the_file_and_need_each_other() {
    let file = File::new(
        "presence",
        "[namespaces.room]\npresence = true\njoin_leave = true\npresence_ttl = 3\njoin_leave_max_clients = 500\njoin_leave_window_ms = 50\n",
    );
    let settings = parse(&["--config", file.arg()]).unwrap();
    let comet = settings.builder().build().unwrap();
    let room = comet.config().security.namespaces.of("room:1");
    assert!(room.presence && room.join_leave);
    assert_eq!(room.presence_ttl, Duration::from_secs(3));
    assert_eq!(room.join_leave_max_clients, Some(500));
    assert_eq!(room.join_leave_window, Duration::from_millis(50));
    let other = comet.config().security.namespaces.of("other:1");
    assert!(!other.presence && !other.join_leave);
    comet.shutdown().await;
    let orphan = File::new("orphan-jl", "[namespaces.room]\njoin_leave = true\n");
    let built = parse(&["--config", orphan.arg()])
        .unwrap()
        .builder()
        .build();
    assert!(
        matches!(built, Err(crate::BuildError::Invalid(why)) if why.contains("join_leave needs presence"))
    );
    let zero = File::new(
        "zero-ttl",
        "[namespaces.room]\npresence = true\npresence_ttl = 0\n",
    );
    let built = parse(&["--config", zero.arg()]).unwrap().builder().build();
    assert!(matches!(built, Err(crate::BuildError::Invalid(why)) if why.contains("presence_ttl")));
}

#[test]
fn a_redis_cluster_comes_from_a_flag_list_or_a_file_list_never_with_redis() {
    let seeds = [
        "redis://127.0.0.1:7000/".to_owned(),
        "redis://127.0.0.1:7001/".to_owned(),
    ];
    let flagged = parse(&[
        "--redis-cluster",
        "redis://127.0.0.1:7000/, redis://127.0.0.1:7001/",
        "--redis-partitions",
        "32",
    ])
    .unwrap();
    assert_eq!(flagged.redis_cluster, seeds);
    assert_eq!(flagged.redis_partitions, 32);
    assert!(flagged.clustered());
    assert!(
        flagged.describe().contains("redis cluster"),
        "{}",
        flagged.describe()
    );

    let file = File::new(
        "cluster",
        "redis_cluster = [\"redis://127.0.0.1:7000/\", \"redis://127.0.0.1:7001/\"]\n\
         redis_probe_ms = 500\n",
    );
    let from_file = parse(&["--config", file.arg()]).unwrap();
    assert_eq!(from_file.redis_cluster, seeds);
    assert_eq!(from_file.redis_partitions, 16);
    assert_eq!(from_file.redis_probe_ms, 500);

    for wrong in [
        &["--redis", "redis://a/", "--redis-cluster", "redis://b/"][..],
        &["--redis-cluster", "redis://b/", "--redis-partitions", "0"][..],
        &["--redis-cluster", "redis://b/", "--redis-probe-ms", "0"][..],
    ] {
        let err = parse(wrong).unwrap_err();
        assert!(matches!(err, SettingsError::Invalid(_)), "{wrong:?}: {err}");
    }
}
