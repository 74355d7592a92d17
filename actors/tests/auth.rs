//! Identity and permissions at actor level (no sockets; paused time for the timers):
//! authentication at connect and in band, refusals and their codes, refresh and expiry,
//! namespaces' rules, user channels, subscription tokens, hooks, rate limits, per-ip
//! limits, `send_user` and `disconnect_user`, and actions that need a user.

mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use comet_actors::auth::{
    unix_now, AuthError, Authenticate, Claims, Hook, Identity, IpLimits, Namespace, PublishCheck,
    PublishRule, PublishVerdict, Rate, Refusal, SubscribeCheck, SubscribeRule, TokenSigner,
    TokenVerifier,
};
use comet_actors::protocol::{parse_server_frame, ServerFrame};
use comet_actors::{handler_fn, Action, CloseCode, ConnectionEvent, NodeConfig, Outlet, Router};
use serde_json::{json, Value};
use support::{added, node, Client};

const SECRET: &[u8] = b"the test secret, 32 bytes or more";

fn signer() -> TokenSigner {
    TokenSigner::hmac(SECRET).unwrap()
}

/// A connection token for `user`, expiring in `ttl` seconds.
fn token(user: &str, ttl: u64) -> String {
    signer()
        .sign(&Claims {
            sub: Some(user.into()),
            exp: Some(unix_now() + ttl),
            ..Claims::default()
        })
        .unwrap()
}

fn config(anonymous: bool) -> NodeConfig {
    let mut config = NodeConfig {
        listen_actions: false,
        ..NodeConfig::default()
    };
    config.security.tokens = Some(TokenVerifier::hmac(SECRET).unwrap());
    config.security.anonymous = anonymous;
    // Short enough for the harness's patience on paused time.
    config.security.auth_timeout = Duration::from_secs(3);
    config.security.refresh_ahead = Duration::from_secs(2);
    config.security.expiry_grace = Duration::from_secs(1);
    config
}

fn with_query(node: &comet_actors::Node, query: &str) -> Client {
    let query = query.to_owned();
    Client::start_with(node, Outlet::new(&node.config().limits), move |info| {
        info.query = query;
    })
}

fn error_code(frame: &str) -> String {
    match parse_server_frame(frame) {
        Ok(ServerFrame::Error(body)) => body["code"].as_str().unwrap_or_default().to_owned(),
        _ => panic!("expected an error frame, got {frame}"),
    }
}

#[actix_rt::test]
async fn a_connection_that_must_authenticate_may_send_only_auth() {
    let node = node(config(false), Router::new());
    let mut client = Client::start(&node);
    client.send("subscribe news");
    let (code, frames) = client.closed().await;
    assert_eq!(code, CloseCode::Unauthorized);
    assert_eq!(error_code(&frames[0]), "unauthorized");
    assert!(node.connections().await.unwrap().is_empty());
}

#[actix_rt::test]
async fn auth_as_the_first_frame_identifies_the_connection_and_later_frames_see_it() {
    let node = node(config(false), Router::new());
    let mut events = node.events();
    let mut client = Client::start(&node);
    client.send(&format!("auth {}", token("alice", 600)));
    client.send("subscribe news");
    let answer = client.frame().await;
    let Ok(ServerFrame::Authenticated(body)) = parse_server_frame(&answer) else {
        panic!("expected authenticated, got {answer}");
    };
    assert_eq!(body["user"], "alice");
    assert_eq!(body["connection"], client.id.as_str());
    assert!(body["exp"].as_u64().unwrap() > unix_now());
    assert_eq!(client.frame().await, "subscribed news");
    added(&mut events).await;
    let listed = node.connections().await.unwrap();
    assert_eq!(listed[0].user(), Some("alice"));
}

#[actix_rt::test]
async fn a_token_in_the_query_identifies_the_connection_at_once() {
    let node = node(config(false), Router::new());
    let mut events = node.events();
    let mut client = with_query(&node, &format!("x=1&token={}", token("bob", 600)));
    added(&mut events).await;
    assert_eq!(node.connections().await.unwrap()[0].user(), Some("bob"));
    client.subscribe("news").await;
}

#[actix_rt::test]
async fn bad_tokens_are_refused_each_with_its_code() {
    let rsa_public = include_bytes!("../../tests/keys/rsa-public.pem");
    let mut config = config(false);
    config.security.tokens = Some(TokenVerifier::public_key_pem(rsa_public).unwrap());
    let node = node(config, Router::new());
    let rsa =
        TokenSigner::private_key_pem(include_bytes!("../../tests/keys/rsa-private.pem")).unwrap();
    let ec =
        TokenSigner::private_key_pem(include_bytes!("../../tests/keys/ec-private.pem")).unwrap();
    let claims = |exp: u64| Claims {
        sub: Some("mallory".into()),
        exp: Some(exp),
        ..Claims::default()
    };
    let later = unix_now() + 600;
    let unsigned = {
        // `alg: none`, no signature.
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = b64.encode(serde_json::to_vec(&claims(later)).unwrap());
        format!("{header}.{body}.")
    };
    let cases = [
        // HS256 "signed" with the RSA public key as its secret: the key confusion attack.
        (
            TokenSigner::hmac(rsa_public)
                .unwrap()
                .sign(&claims(later))
                .unwrap(),
            CloseCode::Unauthorized,
        ),
        (unsigned, CloseCode::Unauthorized),
        (ec.sign(&claims(later)).unwrap(), CloseCode::Unauthorized),
        ("not-a-token".to_owned(), CloseCode::Unauthorized),
        (
            {
                // One character of the signature changed (to a different one: a
                // signature's last character carries only a few bits, so change one in
                // its middle).
                let good = rsa.sign(&claims(later)).unwrap();
                let at = good.len() - 20;
                let flipped = if &good[at..=at] == "A" { "B" } else { "A" };
                format!("{}{flipped}{}", &good[..at], &good[at + 1..])
            },
            CloseCode::Unauthorized,
        ),
        (
            rsa.sign(&claims(unix_now() - 1)).unwrap(),
            CloseCode::TokenExpired,
        ),
    ];
    for (n, (token, expected)) in cases.into_iter().enumerate() {
        let mut client = Client::start(&node);
        client.send(&format!("auth {token}"));
        let (code, frames) = client.closed().await;
        assert_eq!(code, expected, "case {n}");
        assert_eq!(error_code(&frames[0]), "unauthorized", "case {n}");
    }
    let mut good = Client::start(&node);
    good.send(&format!("auth {}", rsa.sign(&claims(later)).unwrap()));
    assert!(good.frame().await.starts_with("authenticated "));
}

#[actix_rt::test]
async fn a_connection_that_sends_nothing_is_closed_after_auth_timeout() {
    tokio::time::pause();
    let node = node(config(false), Router::new());
    let start = tokio::time::Instant::now();
    let mut client = Client::start(&node);
    let (code, _) = client.closed().await;
    assert_eq!(code, CloseCode::AuthTimeout);
    assert!(support::since(start) >= node.config().security.auth_timeout);
}

#[actix_rt::test]
async fn a_token_refreshed_in_band_keeps_the_connection_and_its_subscriptions() {
    tokio::time::pause();
    let node = node(config(false), Router::new());
    let mut client = with_query(&node, &format!("token={}", token("carol", 6)));
    client.subscribe("news").await;
    // The refresh notice comes ahead of `exp`; the clock jumps to it.
    let notice = client.frame().await;
    let Ok(ServerFrame::Refresh(body)) = parse_server_frame(&notice) else {
        panic!("expected refresh, got {notice}");
    };
    assert_eq!(body["in"], 2_000);
    client.send(&format!("auth {}", token("carol", 3600)));
    assert!(client
        .frame()
        .await
        .starts_with(r#"authenticated {"connection""#));
    // Long past the first token's expiry and grace, still subscribed.
    tokio::time::advance(Duration::from_secs(30)).await;
    node.publish("news", "still here").await.unwrap();
    loop {
        let frame = client.frame().await;
        if frame.starts_with("channel ") {
            assert_eq!(frame, "channel news still here");
            break;
        }
    }
    // A token of another user is refused in band; the connection keeps its identity.
    client.send(&format!("auth {}", token("mallory", 3600)));
    assert_eq!(error_code(&client.frame().await), "unauthorized");
}

#[actix_rt::test]
async fn a_token_not_refreshed_closes_the_connection_at_exp_plus_grace() {
    tokio::time::pause();
    let node = node(config(false), Router::new());
    let start = tokio::time::Instant::now();
    let mut client = with_query(&node, &format!("token={}", token("dave", 6)));
    let (code, frames) = client.closed().await;
    assert_eq!(code, CloseCode::TokenExpired);
    assert!(frames[0].starts_with("refresh "), "{frames:?}");
    let grace = node.config().security.expiry_grace;
    // `exp` is in whole seconds of the wall clock: 5 to 6 seconds from the start.
    assert!(support::since(start) >= Duration::from_secs(5) + grace);
}

#[actix_rt::test]
async fn anonymous_connections_may_sign_in_later_when_allowed() {
    let node = node(config(true), Router::new());
    let mut events = node.events();
    let mut client = Client::start(&node);
    added(&mut events).await;
    assert_eq!(node.connections().await.unwrap()[0].user(), None);
    client.send(&format!("auth {}", token("erin", 600)));
    assert!(client.frame().await.starts_with("authenticated "));
    loop {
        match events.recv().await.unwrap() {
            ConnectionEvent::Updated(info) => {
                assert_eq!(info.user(), Some("erin"));
                break;
            }
            _ => continue,
        }
    }
}

#[actix_rt::test]
async fn the_tokens_channels_are_subscribed_at_once() {
    let node = node(config(false), Router::new());
    let granted = signer()
        .sign(&Claims {
            sub: Some("frank".into()),
            channels: Some(vec!["feed:#frank".into(), "bad name".into()]),
            ..Claims::default()
        })
        .unwrap();
    let mut client = with_query(&node, &format!("token={granted}"));
    assert_eq!(client.frame().await, "subscribed feed:#frank");
}

fn rules() -> NodeConfig {
    let mut config = config(true);
    let namespaces = &mut config.security.namespaces;
    namespaces.declare(
        "members",
        Namespace::new()
            .subscribe(SubscribeRule::Authenticated)
            .publish(PublishRule::Authenticated),
    );
    namespaces.declare(
        "room",
        Namespace::new()
            .publish(PublishRule::Subscribers)
            .max_payload_bytes(16),
    );
    namespaces.declare("paid", Namespace::new().subscribe(SubscribeRule::Token));
    namespaces.declare(
        "system",
        Namespace::new()
            .subscribe(SubscribeRule::None)
            .publish(PublishRule::Server),
    );
    namespaces.declare("dm", Namespace::new());
    config
}

/// Sends `frame` and returns the answer: `subscribed …`, or the error's code.
async fn outcome(client: &mut Client, frame: &str) -> String {
    client.send(frame);
    let answer = client.frame().await;
    match parse_server_frame(&answer) {
        Ok(ServerFrame::Error(body)) => body["code"].as_str().unwrap().to_owned(),
        _ => answer,
    }
}

#[actix_rt::test]
async fn each_namespace_rule_allows_and_refuses() {
    let node = node(rules(), Router::new());
    let mut anon = Client::start(&node);
    let mut alice = with_query(&node, &format!("token={}", token("alice", 600)));

    assert_eq!(outcome(&mut anon, "subscribe members:x").await, "forbidden");
    assert_eq!(
        outcome(&mut alice, "subscribe members:x").await,
        "subscribed members:x"
    );
    assert_eq!(
        outcome(&mut anon, "channel members:x hi").await,
        "forbidden"
    );

    // `none` and `server`: only the server; its subscribe and publish pass.
    assert_eq!(
        outcome(&mut alice, "subscribe system:news").await,
        "forbidden"
    );
    assert_eq!(
        outcome(&mut alice, "channel system:news hi").await,
        "forbidden"
    );
    node.subscribe(&alice.id, "system:news").await.unwrap();
    assert_eq!(alice.frame().await, "subscribed system:news");
    node.publish("system:news", "from the server")
        .await
        .unwrap();
    assert_eq!(alice.frame().await, "channel system:news from the server");

    // `subscribers` publish, and the payload limit.
    assert_eq!(outcome(&mut anon, "channel room:1 hi").await, "forbidden");
    assert_eq!(
        outcome(&mut anon, "subscribe room:1").await,
        "subscribed room:1"
    );
    anon.send("channel room:1 hi");
    assert_eq!(anon.frame().await, "channel room:1 hi");
    assert_eq!(
        outcome(&mut anon, "channel room:1 a payload over sixteen bytes").await,
        "too_large"
    );

    // A refusal names the channel and says why.
    anon.send("subscribe members:y");
    let Ok(ServerFrame::Error(body)) = parse_server_frame(&anon.frame().await) else {
        panic!("expected an error");
    };
    assert_eq!(body["channel"], "members:y");
    assert!(body["message"].as_str().unwrap().contains("authenticated"));

    // Undeclared namespaces and the default one stay open.
    assert_eq!(
        outcome(&mut anon, "subscribe other:x").await,
        "subscribed other:x"
    );
    assert_eq!(
        outcome(&mut anon, "subscribe plain").await,
        "subscribed plain"
    );
}

#[actix_rt::test]
async fn user_channels_admit_only_their_users() {
    let node = node(rules(), Router::new());
    let mut anon = Client::start(&node);
    let mut alice = with_query(&node, &format!("token={}", token("alice", 600)));
    let mut bob = with_query(&node, &format!("token={}", token("bob", 600)));
    let mut eve = with_query(&node, &format!("token={}", token("eve", 600)));
    let chat = "dm:#alice,bob";
    assert_eq!(
        outcome(&mut alice, &format!("subscribe {chat}")).await,
        format!("subscribed {chat}")
    );
    assert_eq!(
        outcome(&mut bob, &format!("subscribe {chat}")).await,
        format!("subscribed {chat}")
    );
    assert_eq!(
        outcome(&mut eve, &format!("subscribe {chat}")).await,
        "forbidden"
    );
    assert_eq!(
        outcome(&mut anon, &format!("subscribe {chat}")).await,
        "forbidden"
    );
    assert_eq!(
        outcome(&mut eve, &format!("channel {chat} spoof")).await,
        "forbidden"
    );
    bob.send(&format!("channel {chat} hi alice"));
    assert_eq!(alice.frame().await, format!("channel {chat} hi alice"));
    assert_eq!(bob.frame().await, format!("channel {chat} hi alice"));
}

#[actix_rt::test]
async fn subscription_tokens_admit_their_user_to_their_channel() {
    let node = node(rules(), Router::new());
    let mut alice = with_query(&node, &format!("token={}", token("alice", 600)));
    let mut anon = Client::start(&node);
    let grant = |sub: &str, channel: &str, exp: u64| {
        signer()
            .sign(&Claims {
                sub: Some(sub.into()),
                channel: Some(channel.into()),
                exp: Some(exp),
                ..Claims::default()
            })
            .unwrap()
    };
    let later = unix_now() + 600;
    let with = |channel: &str, token: &str| format!(r#"subscribe {channel} {{"token":"{token}"}}"#);
    assert_eq!(outcome(&mut alice, "subscribe paid:x").await, "forbidden");
    assert_eq!(
        outcome(
            &mut alice,
            &with("paid:x", &grant("alice", "paid:x", later))
        )
        .await,
        "subscribed paid:x"
    );
    for (n, token) in [
        grant("alice", "paid:y", later),
        grant("bob", "paid:z", later),
        grant("alice", "paid:z", unix_now() - 1),
        token("alice", 600),
    ]
    .iter()
    .enumerate()
    {
        assert_eq!(
            outcome(&mut alice, &with("paid:z", token)).await,
            "forbidden",
            "case {n}"
        );
    }
    // An anonymous connection with a token issued to nobody.
    assert_eq!(
        outcome(&mut anon, &with("paid:w", &grant("", "paid:w", later))).await,
        "subscribed paid:w"
    );
    // A subscription token cannot authenticate a connection.
    let mut sneaky = Client::start(&node);
    sneaky.send(&format!("auth {}", grant("alice", "paid:x", later)));
    assert_eq!(error_code(&sneaky.frame().await), "unauthorized");
}

#[actix_rt::test]
async fn hooks_refuse_and_rewrite() {
    let mut config = rules();
    config.security.namespaces.declare(
        "hooked",
        Namespace::new()
            .on_subscribe(Hook::from_fn(|check: SubscribeCheck| async move {
                if check.channel.ends_with("closed") {
                    Err(Refusal {
                        code: comet_actors::ErrorCode::Custom("room_closed".into()),
                        message: "the room is closed".into(),
                    })
                } else {
                    Ok(())
                }
            }))
            .on_publish(Hook::from_fn(|check: PublishCheck| async move {
                let text = String::from_utf8_lossy(&check.payload).into_owned();
                if text.contains("spam") {
                    PublishVerdict::Refuse(Refusal::forbidden("no spam"))
                } else {
                    let user = check.connection.user().unwrap_or("anonymous");
                    let stamped = json!({ "from": user, "text": text }).to_string();
                    PublishVerdict::Rewrite(Bytes::from(stamped))
                }
            })),
    );
    let node = node(config, Router::new());
    let mut alice = with_query(&node, &format!("token={}", token("alice", 600)));
    assert_eq!(
        outcome(&mut alice, "subscribe hooked:closed").await,
        "room_closed"
    );
    assert_eq!(
        outcome(&mut alice, "subscribe hooked:open").await,
        "subscribed hooked:open"
    );
    alice.send("channel hooked:open buy spam");
    alice.send("channel hooked:open hello");
    assert_eq!(error_code(&alice.frame().await), "forbidden");
    assert_eq!(
        alice.frame().await,
        r#"channel hooked:open {"from":"alice","text":"hello"}"#
    );
}

#[actix_rt::test]
async fn an_authenticate_hook_sees_the_request_and_may_refuse() {
    let mut config = NodeConfig {
        listen_actions: false,
        ..NodeConfig::default()
    };
    config.security.anonymous = false;
    config.security.authenticate = Some(Hook::from_fn(|request: Authenticate| async move {
        match (
            request.connection.cookie("session"),
            request.token.as_deref(),
        ) {
            (Some("s-alice"), _) => Ok(Identity::user("alice")),
            (_, Some("let-me-in")) => Ok(Identity::user("token-user")),
            (Some(_), _) => Err(AuthError::Refused("unknown session".into())),
            // Nobody yet: the client may still send `auth`.
            (None, _) => Ok(Identity::anonymous()),
        }
    }));
    let node = node(config, Router::new());
    let mut events = node.events();
    let cookie = |value: &'static str| {
        move |info: &mut comet_actors::ConnectionInfo| {
            info.headers
                .insert("cookie".into(), format!("theme=x; session={value}"));
        }
    };
    let _alice = Client::start_with(&node, Outlet::new(&node.config().limits), cookie("s-alice"));
    added(&mut events).await;
    assert_eq!(node.connections().await.unwrap()[0].user(), Some("alice"));
    let mut stranger = Client::start_with(
        &node,
        Outlet::new(&node.config().limits),
        cookie("s-forged"),
    );
    assert_eq!(stranger.closed().await.0, CloseCode::Forbidden);
    let mut later = Client::start(&node);
    later.send("auth let-me-in");
    assert!(later.frame().await.contains(r#""user":"token-user""#));
    let mut wrong = Client::start(&node);
    wrong.send("auth nope");
    assert_eq!(wrong.closed().await.0, CloseCode::Unauthorized);
}

#[actix_rt::test]
async fn rate_limits_answer_and_a_flood_is_closed() {
    let mut config = config(true);
    config.limits.publish_rate = Rate::new(1, 5);
    config.limits.subscribe_rate = Rate::new(1, 3);
    config.limits.flood_limit = 20;
    let node = node(config, Router::new());
    let mut client = Client::start(&node);
    client.subscribe("a").await;
    for n in 0..8 {
        client.send(&format!("channel a {n}"));
    }
    let mut delivered = 0;
    let mut limited = 0;
    for _ in 0..8 {
        let frame = client.frame().await;
        if frame.starts_with("channel a ") {
            delivered += 1;
        } else {
            assert_eq!(error_code(&frame), "rate_limited");
            limited += 1;
        }
    }
    assert_eq!((delivered, limited), (5, 3));
    assert_eq!(outcome(&mut client, "subscribe b").await, "subscribed b");
    assert_eq!(outcome(&mut client, "subscribe c").await, "subscribed c");
    assert_eq!(outcome(&mut client, "subscribe d").await, "rate_limited");
    for n in 0..40 {
        client.send(&format!("channel a flood {n}"));
    }
    let (code, _) = client.closed().await;
    assert_eq!(code, CloseCode::RateLimited);
}

#[actix_rt::test]
async fn an_ip_over_its_limits_is_refused() {
    let mut config = config(true);
    config.security.per_ip = IpLimits {
        max_connections: 2,
        connect_rate: Rate::UNLIMITED,
    };
    let node = node(config, Router::new());
    let from = |ip: &'static str| {
        move |info: &mut comet_actors::ConnectionInfo| info.ip = Some(ip.to_owned())
    };
    let limits = node.config().limits.clone();
    let mut first = Client::start_with(&node, Outlet::new(&limits), from("10.0.0.1"));
    let mut second = Client::start_with(&node, Outlet::new(&limits), from("10.0.0.1"));
    first.subscribe("x").await;
    second.subscribe("x").await;
    let mut third = Client::start_with(&node, Outlet::new(&limits), from("10.0.0.1"));
    assert_eq!(third.closed().await.0, CloseCode::TooManyConnections);
    let mut other = Client::start_with(&node, Outlet::new(&limits), from("10.0.0.2"));
    other.subscribe("x").await;
    // One goes: there is room again.
    first.send("unsubscribe x");
    drop(first);
    let mut events = node.events();
    node.disconnect(&second.id).await.unwrap();
    support::removed(&mut events).await;
    let mut again = Client::start_with(&node, Outlet::new(&limits), from("10.0.0.1"));
    again.subscribe("x").await;
}

#[actix_rt::test]
async fn send_user_and_disconnect_user_reach_every_connection_of_the_user() {
    let node = node(config(true), Router::new());
    let mut events = node.events();
    let mut tab1 = with_query(&node, &format!("token={}", token("gina", 600)));
    let mut tab2 = with_query(&node, &format!("token={}", token("gina", 600)));
    let mut other = with_query(&node, &format!("token={}", token("hank", 600)));
    for _ in 0..3 {
        added(&mut events).await;
    }
    node.send_user("gina", "channel notice for gina")
        .await
        .unwrap();
    assert_eq!(tab1.frame().await, "channel notice for gina");
    assert_eq!(tab2.frame().await, "channel notice for gina");
    node.disconnect_user("gina").await.unwrap();
    assert_eq!(tab1.closed().await.0, CloseCode::Normal);
    assert_eq!(tab2.closed().await.0, CloseCode::Normal);
    other.subscribe("still-here").await;
}

#[actix_rt::test]
async fn actions_know_the_caller_and_may_require_a_user() {
    let mut router = Router::new();
    router.route(
        "me/whoami",
        handler_fn(|action: Action| async move { Ok(json!({ "user": action.user() })) }),
    );
    router.require_user("me/whoami");
    let mut config = config(true);
    config.listen_actions = true;
    config.workers = 2;
    let node = node(config, router);
    let mut anon = Client::start(&node);
    anon.send(r#"action me/whoami {"requestUid":"1"}"#);
    let answer = anon.answer().await;
    assert_eq!(answer["error"]["code"], "not_authenticated");
    let mut ivy = with_query(&node, &format!("token={}", token("ivy", 600)));
    ivy.send(r#"action me/whoami {"requestUid":"2"}"#);
    let answer = ivy.answer().await;
    assert_eq!(answer["user"], Value::from("ivy"));
    let _ = Arc::new(());
}

/// An `on_subscribe` hook written as an actor: it admits the channels it was told of.
struct Doorman(Vec<&'static str>);

impl actix::Actor for Doorman {
    type Context = actix::Context<Self>;
}

impl actix::Handler<SubscribeCheck> for Doorman {
    type Result = Result<(), Refusal>;

    fn handle(&mut self, check: SubscribeCheck, _: &mut actix::Context<Self>) -> Self::Result {
        if self.0.contains(&&*check.channel) {
            Ok(())
        } else {
            Err(Refusal::forbidden("not on the list"))
        }
    }
}

#[actix_rt::test]
async fn a_hook_may_be_an_actor() {
    use actix::Actor;
    let doorman = Doorman(vec!["club:vip"]).start();
    let mut config = config(true);
    config.security.namespaces.declare(
        "club",
        Namespace::new().on_subscribe(Hook::from_actor(doorman.recipient())),
    );
    let node = node(config, Router::new());
    let mut client = Client::start(&node);
    assert_eq!(
        outcome(&mut client, "subscribe club:vip").await,
        "subscribed club:vip"
    );
    assert_eq!(
        outcome(&mut client, "subscribe club:other").await,
        "forbidden"
    );
}

#[actix_rt::test]
async fn shutdown_closes_connections_that_are_still_authenticating() {
    let node = node(config(false), Router::new());
    let mut waiting = Client::start(&node);
    // A round trip to the connection (it has started, and told the directory of itself),
    // then one through the directory (which has heard it).
    waiting
        .connection
        .send(comet_actors::SubscriptionSettled("none".into()))
        .await
        .unwrap();
    assert!(
        node.connections().await.unwrap().is_empty(),
        "not listed yet"
    );
    node.shutdown().await;
    assert_eq!(waiting.closed().await.0, CloseCode::GoingAway);
}
