//! Presence at actor level, on the in-memory hub and paused time: entries follow
//! subscriptions, two tabs of one user, join and leave events (coalesced, never about
//! oneself, limited per namespace), requests and their refusals, a new identity in band,
//! a dead process's entries reaped within `presence_ttl`, and writes that fail while the
//! hub is away are written once it is back.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::Recipient;
use bytes::Bytes;
use comet_actors::auth::{Authenticate, Hook, Identity, Namespace, SubscribeRule};
use comet_actors::hub::presence::{
    Events, Member, PresenceEntry, PresenceStats, PresenceUpdate, PresenceWritten,
};
use comet_actors::hub::PresenceKeys;
use comet_actors::{Hub, HubError, HubMessage, MemoryHub, NodeConfig, Router};
use futures::future::BoxFuture;
use serde_json::{json, Value};
use support::{node, node_on, since, Client};

const TTL: Duration = Duration::from_secs(3);

fn config() -> NodeConfig {
    let mut config = NodeConfig {
        listen_actions: false,
        ..NodeConfig::default()
    };
    // `auth <user>` signs in as that user with a display name; `auth anon` stays
    // anonymous.
    config.security.authenticate = Some(Hook::from_fn(|request: Authenticate| async move {
        Ok(match request.token.as_deref() {
            None | Some("anon") => Identity::anonymous(),
            Some(user) => Identity::user(user).with_info(json!({ "name": user.to_uppercase() })),
        })
    }));
    let namespaces = &mut config.security.namespaces;
    namespaces.declare(
        "room",
        Namespace::new()
            .presence(true)
            .join_leave(true)
            .presence_ttl(TTL)
            .join_leave_window(Duration::from_millis(200)),
    );
    namespaces.declare(
        "big",
        Namespace::new()
            .presence(true)
            .join_leave(true)
            .join_leave_max_clients(2),
    );
    namespaces.declare("quiet", Namespace::new().presence(true));
    namespaces.declare(
        "both",
        Namespace::new()
            .presence(true)
            .join_leave(true)
            .history(10, Duration::from_secs(60))
            .recover(true),
    );
    namespaces.declare(
        "closed",
        Namespace::new()
            .presence(true)
            .subscribe(SubscribeRule::None),
    );
    config
}

/// A client signed in as `user` (`None`: anonymous).
async fn client(node: &comet_actors::Node, user: Option<&str>) -> Client {
    let mut client = Client::start(node);
    client.send(&format!("auth {}", user.unwrap_or("anon")));
    assert!(client.frame().await.starts_with("authenticated "));
    client
}

/// `join <ch> [...]` / `leave <ch> [...]` → (kind, entries).
fn event(frame: &str, channel: &str) -> (String, Vec<Value>) {
    let (kind, rest) = frame.split_once(' ').expect("a frame with a keyword");
    let entries = rest
        .strip_prefix(&format!("{channel} "))
        .unwrap_or_else(|| panic!("expected an event of {channel}, got {frame}"));
    (kind.to_owned(), serde_json::from_str(entries).unwrap())
}

fn entry(client: &Client, user: Option<&str>) -> Value {
    json!({
        "connection": client.id.as_str(),
        "user": user,
        "info": user.map(|u| json!({ "name": u.to_uppercase() })),
    })
}

#[actix_rt::test]
async fn entries_follow_subscriptions_and_listeners_hear_joins_and_leaves() {
    tokio::time::pause();
    let node = node(config(), Router::new());
    let mut ann = client(&node, Some("ann")).await;
    ann.send(r#"subscribe room:1 {"joinLeave":true}"#);
    assert_eq!(ann.frame().await, "subscribed room:1");
    // Right after `subscribed`, the presence has the subscriber.
    ann.send(r#"presence room:1 {"requestUid":1}"#);
    let answer = ann.answer().await;
    assert_eq!(answer["clients"][ann.id.as_str()], entry(&ann, Some("ann")));
    assert_eq!(answer["clients"].as_object().unwrap().len(), 1);

    let mut anonymous = client(&node, None).await;
    anonymous.subscribe("room:1").await;
    let (kind, entries) = event(&ann.frame().await, "room:1");
    assert_eq!(
        (kind.as_str(), entries),
        ("join", vec![entry(&anonymous, None)])
    );
    let stats = node.presence_stats("room:1").await.unwrap();
    assert_eq!(
        stats,
        PresenceStats {
            clients: 2,
            users: 1
        }
    );
    ann.send(r#"presence_stats room:1 {"requestUid":"s"}"#);
    let answer = ann.answer().await;
    assert_eq!(
        (answer["clients"].clone(), answer["users"].clone()),
        (json!(2), json!(1))
    );

    anonymous.send("unsubscribe room:1");
    assert_eq!(anonymous.frame().await, "unsubscribed room:1");
    let (kind, entries) = event(&ann.frame().await, "room:1");
    assert_eq!(
        (kind.as_str(), entries),
        ("leave", vec![entry(&anonymous, None)])
    );

    // A connection that ends leaves too.
    let mut bob = client(&node, Some("bob")).await;
    bob.subscribe("room:1").await;
    assert_eq!(event(&ann.frame().await, "room:1").0, "join");
    bob.connection
        .do_send(comet_actors::Close(comet_actors::CloseCode::Normal));
    let (kind, entries) = event(&ann.frame().await, "room:1");
    assert_eq!(
        (kind.as_str(), entries),
        ("leave", vec![entry(&bob, Some("bob"))])
    );
    let presence = node.presence("room:1").await.unwrap();
    assert_eq!(
        presence.clients.keys().collect::<Vec<_>>(),
        vec![ann.id.as_str()]
    );
    assert_eq!(
        presence.clients[ann.id.as_str()].user.as_deref(),
        Some("ann")
    );
    // Only the listener heard anything; it never heard of itself.
    assert!(!ann.has_output());
}

#[actix_rt::test]
async fn two_tabs_of_one_user_are_two_entries_and_one_user() {
    tokio::time::pause();
    let node = node(config(), Router::new());
    let mut watcher = client(&node, Some("ann")).await;
    watcher.send(r#"subscribe room:2 {"joinLeave":true}"#);
    assert_eq!(watcher.frame().await, "subscribed room:2");
    let mut tab1 = client(&node, Some("bob")).await;
    let mut tab2 = client(&node, Some("bob")).await;
    tab1.subscribe("room:2").await;
    tab2.subscribe("room:2").await;
    // Both joins within one window: one frame.
    let (kind, entries) = event(&watcher.frame().await, "room:2");
    assert_eq!(kind, "join");
    assert_eq!(entries.len(), 2);
    assert!(entries.contains(&entry(&tab1, Some("bob"))));
    assert!(entries.contains(&entry(&tab2, Some("bob"))));
    assert_eq!(
        node.presence_stats("room:2").await.unwrap(),
        PresenceStats {
            clients: 3,
            users: 2
        }
    );
    tab1.send("unsubscribe room:2");
    assert_eq!(tab1.frame().await, "unsubscribed room:2");
    assert_eq!(event(&watcher.frame().await, "room:2").0, "leave");
    assert_eq!(
        node.presence_stats("room:2").await.unwrap(),
        PresenceStats {
            clients: 2,
            users: 2
        }
    );
    tab2.send("unsubscribe room:2");
    assert_eq!(tab2.frame().await, "unsubscribed room:2");
    assert_eq!(event(&watcher.frame().await, "room:2").0, "leave");
    assert_eq!(
        node.presence_stats("room:2").await.unwrap(),
        PresenceStats {
            clients: 1,
            users: 1
        }
    );
}

#[actix_rt::test]
async fn joins_and_leaves_within_a_window_go_out_as_one_frame_without_oneself() {
    tokio::time::pause();
    let node = node(config(), Router::new());
    let mut early = client(&node, Some("early")).await;
    early.send(r#"subscribe room:3 {"joinLeave":true}"#);
    assert_eq!(early.frame().await, "subscribed room:3");
    // A read writes what waits first: `early`'s own join goes out now, not with the
    // batch below.
    assert_eq!(node.presence_stats("room:3").await.unwrap().clients, 1);
    let mut members = Vec::new();
    for n in 0..5 {
        let mut member = client(&node, Some(&format!("u{n}"))).await;
        member.send(r#"subscribe room:3 {"joinLeave":true}"#);
        assert_eq!(member.frame().await, "subscribed room:3");
        members.push(member);
    }
    // One coalesced frame with the five; a visitor who came and went within the window
    // is in none.
    let mut visitor = client(&node, Some("visitor")).await;
    visitor.subscribe("room:3").await;
    visitor.send("unsubscribe room:3");
    assert_eq!(visitor.frame().await, "unsubscribed room:3");
    let (kind, entries) = event(&early.frame().await, "room:3");
    assert_eq!((kind.as_str(), entries.len()), ("join", 5));
    // Each of the five joined in that batch: it hears of the four others, not of itself.
    for member in &mut members {
        let (kind, entries) = event(&member.frame().await, "room:3");
        assert_eq!((kind.as_str(), entries.len()), ("join", 4));
        assert!(entries
            .iter()
            .all(|e| e["connection"] != member.id.as_str()));
    }
    assert!(!early.has_output());
    assert_eq!(node.presence_stats("room:3").await.unwrap().clients, 6);
    // Three leave at once: one leave frame.
    for member in members.drain(..3) {
        member.send("unsubscribe room:3");
    }
    let (kind, entries) = event(&early.frame().await, "room:3");
    assert_eq!((kind.as_str(), entries.len()), ("leave", 3));
}

#[actix_rt::test]
async fn events_stop_above_the_namespace_limit_and_refusals_are_clear() {
    tokio::time::pause();
    let node = node(config(), Router::new());
    let mut watcher = client(&node, Some("w")).await;
    watcher.send(r#"subscribe big:1 {"joinLeave":true}"#);
    assert_eq!(watcher.frame().await, "subscribed big:1");
    let mut second = client(&node, Some("two")).await;
    second.subscribe("big:1").await;
    assert_eq!(event(&watcher.frame().await, "big:1").0, "join");
    let mut third = client(&node, Some("three")).await;
    third.subscribe("big:1").await;
    // Three clients, at most two for events: the third's join is not announced, but it is
    // an entry.
    assert_eq!(node.presence_stats("big:1").await.unwrap().clients, 3);
    third.send("unsubscribe big:1");
    assert_eq!(third.frame().await, "unsubscribed big:1");
    // Back at two: its leave goes out.
    let (kind, entries) = event(&watcher.frame().await, "big:1");
    assert_eq!(
        (kind.as_str(), entries),
        ("leave", vec![entry(&third, Some("three"))])
    );

    // joinLeave where the namespace has none: refused, not subscribed.
    watcher.send(r#"subscribe quiet:1 {"joinLeave":true}"#);
    let error = watcher.frame().await;
    assert!(
        error.starts_with("error ") && error.contains(r#""code":"not_found""#),
        "{error}"
    );
    assert!(error.contains("join_leave"), "{error}");
    watcher.send("channel quiet:1 nobody-hears");
    // Presence where the namespace has none, and where the client may not subscribe.
    watcher.send(r#"presence plain {"requestUid":1}"#);
    let answer = watcher.answer().await;
    assert_eq!(answer["error"]["code"], "not_found");
    watcher.send(r#"presence_stats closed:1 {"requestUid":2}"#);
    assert_eq!(watcher.answer().await["error"]["code"], "forbidden");
    watcher.send(r#"presence room:1 {}"#);
    let error = watcher.frame().await;
    assert!(error.contains("requestUid"), "{error}");
    watcher.send(r#"presence room:1 {"requestUid":3,"extra":[1]}"#);
    assert!(watcher.answer().await["clients"].is_object());
    assert_eq!(node.presence("quiet:1").await.unwrap().clients.len(), 0);
    assert!(node.presence("plain").await.is_err());
    assert!(node.presence("bad name").await.is_err());
}

#[actix_rt::test]
async fn a_new_identity_in_band_rewrites_the_entry() {
    tokio::time::pause();
    let node = node(config(), Router::new());
    let mut watcher = client(&node, Some("w")).await;
    watcher.send(r#"subscribe room:4 {"joinLeave":true}"#);
    assert_eq!(watcher.frame().await, "subscribed room:4");
    let mut guest = client(&node, None).await;
    guest.subscribe("room:4").await;
    assert_eq!(
        event(&watcher.frame().await, "room:4").1,
        vec![entry(&guest, None)]
    );
    guest.send("auth carol");
    assert!(guest.frame().await.starts_with("authenticated "));
    // The old entry leaves, the new one joins (in that order).
    assert_eq!(
        event(&watcher.frame().await, "room:4"),
        ("leave".to_owned(), vec![entry(&guest, None)])
    );
    assert_eq!(
        event(&watcher.frame().await, "room:4"),
        ("join".to_owned(), vec![entry(&guest, Some("carol"))])
    );
    assert_eq!(
        node.presence_stats("room:4").await.unwrap(),
        PresenceStats {
            clients: 2,
            users: 2
        }
    );
}

fn ghost_update(
    hub: &dyn Hub,
    keys: &PresenceKeys,
    gone: bool,
) -> BoxFuture<'static, Result<PresenceWritten, HubError>> {
    let ghost = Member::new(&PresenceEntry {
        connection: "ghost.1".into(),
        user: Some("ghost".into()),
        info: None,
    });
    hub.presence_update(
        keys,
        PresenceUpdate {
            process: "ghost".into(),
            leaves: Vec::new(),
            joins: if gone { Vec::new() } else { vec![ghost] },
            events: Events::On,
            ttl: TTL,
            gone,
        },
    )
}

#[actix_rt::test]
async fn a_dead_processs_entries_are_reaped_within_the_ttl_and_announced() {
    tokio::time::pause();
    let hub = Arc::new(MemoryHub::new());
    let node = node_on(config(), hub.clone(), Router::new());
    let mut watcher = client(&node, Some("w")).await;
    watcher.send(r#"subscribe room:5 {"joinLeave":true}"#);
    assert_eq!(watcher.frame().await, "subscribed room:5");
    // Another process wrote an entry, and then died: it never renews it.
    let keys = node.names().presence("room:5");
    ghost_update(hub.as_ref(), &keys, false).await.unwrap();
    let died = tokio::time::Instant::now();
    let (kind, entries) = event(&watcher.frame().await, "room:5");
    assert_eq!(
        (kind.as_str(), entries[0]["connection"].clone()),
        ("join", json!("ghost.1"))
    );
    assert_eq!(node.presence_stats("room:5").await.unwrap().users, 2);
    // This process's renewals reap it, within the ttl of its death.
    let (kind, entries) = event(&watcher.frame().await, "room:5");
    assert_eq!(
        (kind.as_str(), entries[0]["connection"].clone()),
        ("leave", json!("ghost.1"))
    );
    assert!(since(died) <= TTL, "reaped after {:?}", since(died));
    assert!(
        since(died) >= TTL * 2 / 3,
        "reaped too soon: {:?}",
        since(died)
    );
    assert_eq!(
        node.presence_stats("room:5").await.unwrap(),
        PresenceStats {
            clients: 1,
            users: 1
        }
    );
    // The live process's own entry stayed: it renewed it all along.
    // Paused time: three ttls of renewals go by (virtual time, no wait).
    tokio::time::sleep(TTL * 3).await;
    assert_eq!(node.presence("room:5").await.unwrap().clients.len(), 1);
}

/// A memory hub whose presence writes fail while `failing` is above zero (counting down).
struct Flaky {
    inner: MemoryHub,
    failing: AtomicUsize,
}

impl Hub for Flaky {
    fn start(&self, sink: Recipient<HubMessage>) -> BoxFuture<'static, Result<(), HubError>> {
        self.inner.start(sink)
    }
    fn publish(&self, channel: &str, payload: Bytes) -> BoxFuture<'static, Result<(), HubError>> {
        self.inner.publish(channel, payload)
    }
    fn subscribe(&self, channel: &str) -> BoxFuture<'static, Result<(), HubError>> {
        self.inner.subscribe(channel)
    }
    fn unsubscribe(&self, channel: &str) -> BoxFuture<'static, Result<(), HubError>> {
        self.inner.unsubscribe(channel)
    }
    fn presence_update(
        &self,
        keys: &PresenceKeys,
        update: PresenceUpdate,
    ) -> BoxFuture<'static, Result<PresenceWritten, HubError>> {
        let failing = self
            .failing
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        match failing {
            Ok(_) => Box::pin(async { Err(HubError::Unavailable("flaky".into())) }),
            Err(_) => self.inner.presence_update(keys, update),
        }
    }
    fn presence(
        &self,
        keys: &PresenceKeys,
        events: Events,
    ) -> BoxFuture<'static, Result<Vec<Arc<str>>, HubError>> {
        self.inner.presence(keys, events)
    }
    fn presence_stats(
        &self,
        keys: &PresenceKeys,
        events: Events,
    ) -> BoxFuture<'static, Result<PresenceStats, HubError>> {
        self.inner.presence_stats(keys, events)
    }
    fn name(&self) -> &'static str {
        "flaky"
    }
}

#[actix_rt::test]
async fn writes_that_failed_are_written_when_the_hub_is_back() {
    tokio::time::pause();
    let hub = Arc::new(Flaky {
        inner: MemoryHub::new(),
        failing: AtomicUsize::new(0),
    });
    let node = node_on(config(), hub.clone(), Router::new());
    let mut watcher = client(&node, Some("w")).await;
    watcher.send(r#"subscribe room:6 {"joinLeave":true}"#);
    assert_eq!(watcher.frame().await, "subscribed room:6");
    // The next two writes fail: a join, then its retry at the next renewal.
    hub.failing.store(2, Ordering::Release);
    let mut late = client(&node, Some("late")).await;
    late.subscribe("room:6").await;
    let (kind, entries) = event(&watcher.frame().await, "room:6");
    assert_eq!(
        (kind.as_str(), entries),
        ("join", vec![entry(&late, Some("late"))])
    );
    assert_eq!(hub.failing.load(Ordering::Acquire), 0);
    // A leave that fails is written later too.
    hub.failing.store(1, Ordering::Release);
    late.send("unsubscribe room:6");
    assert_eq!(late.frame().await, "unsubscribed room:6");
    let (kind, _) = event(&watcher.frame().await, "room:6");
    assert_eq!(kind, "leave");
    assert_eq!(node.presence_stats("room:6").await.unwrap().clients, 1);
}

#[actix_rt::test]
async fn a_store_that_lost_this_processs_entries_gets_them_again() {
    tokio::time::pause();
    let hub = Arc::new(MemoryHub::new());
    let node = node_on(config(), hub.clone(), Router::new());
    let mut member = client(&node, Some("m")).await;
    member.subscribe("room:7").await;
    assert_eq!(node.presence_stats("room:7").await.unwrap().clients, 1);
    // Another process reaps this one as if it had been silent too long: it stops
    // vouching for it (the store forgets the process) and removes the entry.
    let keys = node.names().presence("room:7");
    let me = node.id().to_owned();
    let forget = |hub: &MemoryHub| {
        hub.presence_update(
            &keys,
            PresenceUpdate {
                process: me.clone(),
                leaves: vec![Member::new(&PresenceEntry {
                    connection: member.id.as_str().into(),
                    user: Some("m".into()),
                    info: Some(json!({"name": "M"})),
                })],
                joins: Vec::new(),
                events: Events::On,
                ttl: TTL,
                gone: true,
            },
        )
    };
    forget(&hub).await.unwrap();
    assert_eq!(node.presence_stats("room:7").await.unwrap().clients, 0);
    // The next renewal finds out and writes the entry again.
    support::eventually_async(|| async {
        node.presence_stats("room:7").await.unwrap().clients == 1
    })
    .await;
}

#[actix_rt::test]
async fn a_list_too_big_for_the_clients_queue_is_refused_not_a_slow_consumer_close() {
    tokio::time::pause();
    let mut config = config();
    config.limits.outbound_queue_bytes = 4096;
    let node = node(config, Router::new());
    let mut members = Vec::new();
    for n in 0..40 {
        let mut member = client(&node, Some(&format!("member-{n}"))).await;
        member.subscribe("quiet:big").await;
        members.push(member);
    }
    let asker = &mut members[0];
    asker.send(r#"presence quiet:big {"requestUid":1}"#);
    let answer = asker.answer().await;
    assert_eq!(answer["error"]["code"], "too_large", "{answer:?}");
    asker.send(r#"presence_stats quiet:big {"requestUid":2}"#);
    let answer = asker.answer().await;
    assert_eq!(
        (answer["clients"].clone(), answer["users"].clone()),
        (json!(40), json!(40))
    );
    // The server side reads it whole.
    assert_eq!(node.presence("quiet:big").await.unwrap().clients.len(), 40);
}

#[actix_rt::test]
async fn a_subscription_with_recovery_hears_joins_and_leaves_too() {
    tokio::time::pause();
    let node = node(config(), Router::new());
    node.publish("both:1", "before").await.unwrap();
    let mut watcher = client(&node, Some("w")).await;
    watcher.send(r#"subscribe both:1 {"recover":true,"joinLeave":true}"#);
    assert!(watcher.frame().await.starts_with("subscribed both:1 {"));
    let mut other = client(&node, Some("o")).await;
    other.subscribe("both:1").await;
    assert_eq!(
        event(&watcher.frame().await, "both:1"),
        ("join".to_owned(), vec![entry(&other, Some("o"))])
    );
    node.publish("both:1", "after").await.unwrap();
    assert_eq!(watcher.frame().await, "pub both:1 2 after");
    other.send("unsubscribe both:1");
    assert_eq!(event(&watcher.frame().await, "both:1").0, "leave");
}
