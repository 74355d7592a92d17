//! Channel deliveries at actor level, without sockets: the order of `subscribed`,
//! messages and `unsubscribed`, a publish held until its subscribe is in effect, and the
//! bounded outbound queue under both slow-consumer policies.

mod support;

use std::sync::Arc;

use bytes::Bytes;
use comet_actors::{
    CloseCode, Hub, HubError, HubMessage, Limits, MemoryHub, NodeConfig, Out, Outlet, Router,
    SlowConsumerPolicy,
};
use futures::future::BoxFuture;
use support::{node, node_on, removed, Client};
use tokio::sync::{mpsc, oneshot};

fn no_actions() -> NodeConfig {
    NodeConfig {
        listen_actions: false,
        ..NodeConfig::default()
    }
}

fn bounded(queue: usize, policy: SlowConsumerPolicy) -> NodeConfig {
    NodeConfig {
        limits: Limits {
            outbound_queue: queue,
            slow_consumer: policy,
            ..Limits::default()
        },
        ..no_actions()
    }
}

#[actix_rt::test]
async fn subscribed_comes_before_messages_and_nothing_after_unsubscribed() {
    let node = node(no_actions(), Router::new());
    let mut client = Client::start(&node);
    client.subscribe("marker").await;
    client.send("subscribe news");
    client.send("channel news mine");
    assert_eq!(client.frame().await, "subscribed news");
    assert_eq!(client.frame().await, "channel news mine");
    node.publish("news", "from the server")
        .await
        .expect("published");
    assert_eq!(client.frame().await, "channel news from the server");

    client.send("unsubscribe news");
    assert_eq!(client.frame().await, "unsubscribed news");
    // Published after `unsubscribed`: never delivered. The marker, published after it on
    // a channel the client still has, comes first, so nothing of `news` is in between.
    node.publish("news", "late").await.expect("published");
    node.publish("marker", "after").await.expect("published");
    assert_eq!(client.frame().await, "channel marker after");
    assert!(!client.has_output());
}

/// A hub whose subscriptions of channel `held` take effect only when the test opens the
/// gate handed to it, as over a network; everything else at once.
struct GatedHub {
    hub: Arc<MemoryHub>,
    gates: mpsc::UnboundedSender<oneshot::Sender<()>>,
}

impl Hub for GatedHub {
    fn start(
        &self,
        sink: actix::Recipient<HubMessage>,
    ) -> BoxFuture<'static, Result<(), HubError>> {
        self.hub.start(sink)
    }

    fn publish(&self, channel: &str, payload: Bytes) -> BoxFuture<'static, Result<(), HubError>> {
        self.hub.publish(channel, payload)
    }

    fn subscribe(&self, channel: &str) -> BoxFuture<'static, Result<(), HubError>> {
        if !channel.ends_with("channel:held") {
            return self.hub.subscribe(channel);
        }
        let (hub, channel) = (self.hub.clone(), channel.to_owned());
        let (open, gate) = oneshot::channel();
        let told = self.gates.send(open);
        Box::pin(async move {
            if told.is_ok() {
                let _ = gate.await;
            }
            hub.subscribe(&channel).await
        })
    }

    fn unsubscribe(&self, channel: &str) -> BoxFuture<'static, Result<(), HubError>> {
        self.hub.unsubscribe(channel)
    }

    fn name(&self) -> &'static str {
        "gated"
    }
}

#[actix_rt::test]
async fn a_publish_waits_for_the_subscribe_before_it() {
    let (gates, mut subscribes) = mpsc::unbounded_channel();
    let hub = GatedHub {
        hub: Arc::new(MemoryHub::new()),
        gates,
    };
    let node = node_on(no_actions(), Arc::new(hub), Router::new());
    let mut client = Client::start(&node);
    client.send("subscribe held");
    client.send("channel held mine");
    let gate = subscribes
        .recv()
        .await
        .expect("the subscribe reaches the hub");
    // The connection handled both frames (it answers a later one), and nothing went out:
    // the publish waits for the subscription.
    client.send("hello {}");
    assert!(client.frame().await.starts_with("hello {"));
    assert!(!client.has_output());

    gate.send(()).expect("the hub waits for the gate");
    assert_eq!(client.frame().await, "subscribed held");
    assert_eq!(client.frame().await, "channel held mine");
}

#[actix_rt::test]
async fn a_client_that_stops_reading_is_closed_with_4001_and_released() {
    let node = node(bounded(4, SlowConsumerPolicy::Close), Router::new());
    let mut events = node.events();
    let mut stalled = Client::start(&node);
    stalled.subscribe("flood").await;
    // It reads nothing more: the fifth queued message is one too many.
    for n in 0..10 {
        node.publish("flood", format!("m{n}"))
            .await
            .expect("published");
    }
    removed(&mut events).await;
    assert!(node
        .channel_subscribers("flood")
        .await
        .expect("subscribers")
        .is_empty());
    // What it had queued is dropped: the close is next.
    assert_eq!(stalled.next().await, Out::Close(CloseCode::SlowConsumer));
    assert_eq!(CloseCode::SlowConsumer.code(), 4001);
}

#[actix_rt::test]
async fn under_drop_oldest_a_slow_client_gets_a_notice_then_the_newest() {
    let node = node(bounded(4, SlowConsumerPolicy::DropOldest), Router::new());
    let mut stalled = Client::start(&node);
    // The reader's outlet has room for everything (an outlet's bound is its own).
    let mut reader = Client::start_on(&node, Outlet::new(&Limits::default()));
    stalled.subscribe("flood").await;
    reader.subscribe("flood").await;
    for n in 0..10 {
        node.publish("flood", format!("m{n}"))
            .await
            .expect("published");
    }
    // Each message is written to every subscriber of the thread in one go: once the
    // reader has the last one, so has the stalled client's queue.
    for n in 0..10 {
        assert_eq!(reader.frame().await, format!("channel flood m{n}"));
    }
    let notice = stalled.frame().await;
    assert!(
        notice.starts_with(r#"error {"code":"messages_dropped""#)
            && notice.contains(r#""dropped":6"#),
        "{notice}"
    );
    for n in 6..10 {
        assert_eq!(stalled.frame().await, format!("channel flood m{n}"));
    }
    // Still a working connection.
    stalled.send("unsubscribe flood");
    assert_eq!(stalled.frame().await, "unsubscribed flood");
}
