//! Channels over the raw WebSocket: subscribe, publish, unsubscribe, limits.

mod common;

use std::sync::Arc;

use actix::Recipient;
use actix_web::web::Bytes;
use comet::actors::{HubError, HubMessage};
use comet::{Comet, Hub, Limits, MemoryHub};
use common::TestServer;
use futures::future::BoxFuture;

#[actix_web::test]
async fn a_message_reaches_every_subscriber_including_the_sender() {
    let server = TestServer::start(Comet::builder()).await;
    let mut a = server.client().await;
    let mut b = server.client().await;
    let mut c = server.client().await;
    a.subscribe("test").await;
    b.subscribe("test").await;
    c.subscribe("other").await;

    a.send(r#"channel test {"text":"hello"}"#).await;
    assert_eq!(a.recv_on("test").await, r#"{"text":"hello"}"#);
    assert_eq!(b.recv_on("test").await, r#"{"text":"hello"}"#);

    // c is not on `test`: the next thing it sees is its own channel's message.
    b.send("channel other marker").await;
    assert_eq!(c.recv_on("other").await, "marker");
    server.stop().await;
}

#[actix_web::test]
async fn payloads_pass_through_unchanged() {
    let server = TestServer::start(Comet::builder()).await;
    let mut a = server.client().await;
    a.subscribe("echo").await;
    for payload in [
        "plain text",
        "  two  spaces and trailing ",
        "",
        r#"{"nested":{"list":[1,2.5,"x"],"null":null}}"#,
        "[1,2,3]",
        "юникод ✓ 🚀",
        "not json {",
        "channel echo looks like a frame",
    ] {
        a.send(&format!("channel echo {payload}")).await;
        assert_eq!(a.recv_on("echo").await, payload);
    }
    server.stop().await;
}

#[actix_web::test]
async fn messages_from_one_sender_arrive_in_order() {
    let server = TestServer::start(Comet::builder()).await;
    let mut a = server.client().await;
    let mut b = server.client().await;
    b.subscribe("seq").await;
    for n in 0..200 {
        a.send(&format!("channel seq {n}")).await;
    }
    for n in 0..200 {
        assert_eq!(b.recv_on("seq").await, n.to_string());
    }
    server.stop().await;
}

#[actix_web::test]
async fn unsubscribe_stops_delivery() {
    let server = TestServer::start(Comet::builder()).await;
    let mut a = server.client().await;
    let mut b = server.client().await;
    b.subscribe("news").await;
    b.subscribe("marker").await;
    b.unsubscribe("news").await;

    a.send("channel news not for b").await;
    a.send("channel marker after").await;
    // Both went through the same hub in this order: b sees the marker, and nothing on
    // `news` before it.
    assert_eq!(b.recv_on("marker").await, "after");
    server.stop().await;
}

#[actix_web::test]
async fn subscribing_twice_is_harmless_and_unsubscribing_a_stranger_channel_too() {
    let server = TestServer::start(Comet::builder()).await;
    let mut a = server.client().await;
    a.subscribe("twice").await;
    a.subscribe("twice").await;
    a.unsubscribe("never-joined").await;
    a.send("channel twice once").await;
    assert_eq!(a.recv_on("twice").await, "once");
    a.send("channel twice again").await;
    // One delivery per message, not one per subscribe.
    assert_eq!(a.recv_on("twice").await, "again");
    server.stop().await;
}

#[actix_web::test]
async fn a_client_can_publish_without_subscribing() {
    let server = TestServer::start(Comet::builder()).await;
    let mut publisher = server.client().await;
    let mut reader = server.client().await;
    reader.subscribe("feed").await;
    publisher.send("channel feed from outside").await;
    assert_eq!(reader.recv_on("feed").await, "from outside");
    server.stop().await;
}

#[actix_web::test]
async fn the_channel_limit_answers_too_many_channels_and_keeps_the_rest() {
    let limits = Limits {
        max_channels_per_connection: 2,
        ..Limits::default()
    };
    let server = TestServer::start(Comet::builder().limits(limits)).await;
    let mut a = server.client().await;
    a.subscribe("one").await;
    a.subscribe("two").await;
    a.send("subscribe three").await;
    let error = a.recv_error().await;
    assert_eq!(error["code"], "too_many_channels");
    assert_eq!(error["channel"], "three");
    // Leaving one makes room again, and the connection is fine.
    a.unsubscribe("one").await;
    a.subscribe("three").await;
    a.send("channel three works").await;
    assert_eq!(a.recv_on("three").await, "works");
    server.stop().await;
}

#[actix_web::test]
async fn many_subscribers_on_both_worker_threads_all_receive() {
    let server = TestServer::start(Comet::builder()).await;
    let mut clients = Vec::new();
    for _ in 0..40 {
        let mut client = server.client().await;
        client.subscribe("crowd").await;
        clients.push(client);
    }
    clients[0].send("channel crowd everyone").await;
    for client in &mut clients {
        assert_eq!(client.recv_on("crowd").await, "everyone");
    }
    assert_eq!(
        server
            .comet
            .channel_subscribers("crowd")
            .await
            .unwrap()
            .len(),
        40
    );
    server.stop().await;
}

/// A hub whose subscriptions take effect only when the test lets them, as over a network
/// (Redis' SUBSCRIBE needs a round trip), while publishes go at once: each subscribe
/// of a channel `eager-…` hands the test a gate and waits for it.
struct GatedSubscribeHub {
    hub: Arc<MemoryHub>,
    gates: tokio::sync::mpsc::UnboundedSender<tokio::sync::oneshot::Sender<()>>,
}

impl Hub for GatedSubscribeHub {
    fn start(&self, sink: Recipient<HubMessage>) -> BoxFuture<'static, Result<(), HubError>> {
        self.hub.start(sink)
    }

    fn publish(&self, channel: &str, payload: Bytes) -> BoxFuture<'static, Result<(), HubError>> {
        self.hub.publish(channel, payload)
    }

    fn subscribe(&self, channel: &str) -> BoxFuture<'static, Result<(), HubError>> {
        let (hub, channel) = (self.hub.clone(), channel.to_owned());
        if !channel.contains("eager-") {
            // The process's own channels (answers, notices): at once.
            return Box::pin(async move { hub.subscribe(&channel).await });
        }
        let (open, gate) = tokio::sync::oneshot::channel();
        let told = self.gates.send(open);
        Box::pin(async move {
            if told.is_ok() {
                // A test gone drops the gate: then subscribe at once.
                let _ = gate.await;
            }
            hub.subscribe(&channel).await
        })
    }

    fn unsubscribe(&self, channel: &str) -> BoxFuture<'static, Result<(), HubError>> {
        self.hub.unsubscribe(channel)
    }

    fn name(&self) -> &'static str {
        "gated-subscribe"
    }
}

#[actix_web::test]
async fn a_client_that_publishes_right_after_subscribing_gets_its_own_message() {
    let (gates, mut subscribes) = tokio::sync::mpsc::unbounded_channel();
    let hub = GatedSubscribeHub {
        hub: Arc::new(MemoryHub::new()),
        gates,
    };
    let server = TestServer::start(Comet::builder().hub(hub)).await;
    for round in 0..5 {
        let mut client = server.client().await;
        let channel = format!("eager-{round}");
        // No waiting for the ack between the two, as a hasty client does.
        client.send(&format!("subscribe {channel}")).await;
        client.send(&format!("channel {channel} mine")).await;
        client.send(&format!("channel {channel} also mine")).await;
        // The subscription reached the hub and is held there; the `hello` answer shows
        // that the connection took both publishes meanwhile (frames are handled in order).
        let gate = subscribes
            .recv()
            .await
            .expect("the subscribe reaches the hub");
        client.send("hello {}").await;
        assert!(
            client.recv().await.starts_with("hello {"),
            "the hello answer"
        );
        gate.send(()).expect("the subscribe waits");
        assert_eq!(client.recv().await, format!("subscribed {channel}"));
        assert_eq!(client.recv_on(&channel).await, "mine");
        assert_eq!(client.recv_on(&channel).await, "also mine");
    }
    server.stop().await;
}
