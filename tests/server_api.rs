//! The server API app code uses: publish, send to a connection, server-side subscribe,
//! listing, connection events, server-side channel listeners, and two nodes acting as one
//! over a shared in-memory hub.

mod common;

use actix::prelude::*;
use comet::{ChannelMessage, Comet, ConnectionEvent, MemoryBroker, MemoryQueue, NodeError};
use common::{eventually, Ended, TestServer};
use serde_json::json;
use tokio::sync::mpsc;

/// Collects what a server-side listener hears.
struct Collector(mpsc::UnboundedSender<ChannelMessage>);

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<ChannelMessage> for Collector {
    type Result = ();

    fn handle(&mut self, message: ChannelMessage, _: &mut Context<Self>) {
        let _ = self.0.send(message);
    }
}

#[actix_web::test]
async fn the_server_publishes_text_and_json() {
    let server = TestServer::start(Comet::builder()).await;
    let mut client = server.client().await;
    client.subscribe("news").await;
    server.comet.publish("news", "plain words").await.unwrap();
    server
        .comet
        .publish("news", json!({ "from": "server", "n": 1 }))
        .await
        .unwrap();
    assert_eq!(client.recv_on("news").await, "plain words");
    assert_eq!(client.recv_on("news").await, r#"{"from":"server","n":1}"#);
    assert!(matches!(
        server.comet.publish("bad name", "x").await,
        Err(NodeError::BadChannel(..))
    ));
    server.stop().await;
}

#[actix_web::test]
async fn the_server_sends_to_one_connection_and_subscribes_it() {
    let server = TestServer::start(Comet::builder()).await;
    let mut events = server.comet.events();
    let mut client = server.client().await;
    let id = match events.recv().await {
        Ok(ConnectionEvent::Added(info)) => info.id.clone(),
        other => panic!("expected Added, got {other:?}"),
    };
    let mut other = server.client().await;
    other.subscribe("private").await;
    assert_eq!(server.comet.connections().await.unwrap().len(), 2);

    server.comet.send(&id, "hello you").await.unwrap();
    assert_eq!(client.recv().await, "hello you");

    server.comet.subscribe(&id, "private").await.unwrap();
    assert_eq!(client.recv().await, "subscribed private");
    assert_eq!(
        server
            .comet
            .channel_subscribers("private")
            .await
            .unwrap()
            .len(),
        2
    );
    server.comet.publish("private", "both").await.unwrap();
    assert_eq!(client.recv_on("private").await, "both");
    assert_eq!(other.recv_on("private").await, "both");

    server.comet.unsubscribe(&id, "private").await.unwrap();
    assert_eq!(client.recv().await, "unsubscribed private");

    server.comet.disconnect(&id).await.unwrap();
    assert_eq!(client.until_closed().await, Ended::Closed(Some(1000)));
    server.stop().await;
}

#[actix_web::test]
async fn events_announce_connections_coming_and_going() {
    let server = TestServer::start(Comet::builder()).await;
    let mut events = server.comet.events();
    let client = server.client().await;
    let added = match events.recv().await.unwrap() {
        ConnectionEvent::Added(info) => info,
        other => panic!("expected Added, got {other:?}"),
    };
    assert_eq!(added.transport, "websocket");
    client.close().await;
    match events.recv().await.unwrap() {
        ConnectionEvent::Removed(info) => assert_eq!(info.id, added.id),
        other => panic!("expected Removed, got {other:?}"),
    }
    assert!(server.comet.connections().await.unwrap().is_empty());
    server.stop().await;
}

#[actix_web::test]
async fn hub_subscriptions_are_reference_counted() {
    let broker = MemoryBroker::new();
    let server = TestServer::start(Comet::builder().hub(broker.hub())).await;
    let hub_name = "comet:channel:counted";
    let subscribed = || broker.channels().contains(&hub_name.to_owned());
    assert!(!subscribed());

    let mut a = server.client().await;
    let mut b = server.client().await;
    a.subscribe("counted").await;
    assert!(subscribed(), "the first subscriber subscribes the process");
    b.subscribe("counted").await;
    a.unsubscribe("counted").await;
    // b still needs it.
    a.send("channel counted still").await;
    assert_eq!(b.recv_on("counted").await, "still");
    assert!(subscribed());

    // A server-side listener counts too.
    let (tx, mut heard) = mpsc::unbounded_channel();
    let listener = server
        .comet
        .on_channel("counted", Collector(tx).start().recipient())
        .await
        .unwrap();
    b.unsubscribe("counted").await;
    a.send("channel counted for the listener").await;
    let message = heard.recv().await.unwrap();
    assert_eq!(&*message.channel, "counted");
    assert_eq!(&*message.payload, "for the listener");
    assert!(subscribed());

    server.comet.off_channel(listener).await.unwrap();
    eventually("the last user leaving unsubscribes the process", || async {
        !subscribed()
    })
    .await;
    server.stop().await;
}

#[actix_web::test]
async fn a_vanished_client_releases_its_subscriptions() {
    let broker = MemoryBroker::new();
    let server = TestServer::start(Comet::builder().hub(broker.hub())).await;
    let mut events = server.comet.events();
    let mut client = server.client().await;
    client.subscribe("gone-soon").await;
    assert!(matches!(events.recv().await, Ok(ConnectionEvent::Added(_))));
    client.vanish();
    assert!(matches!(
        events.recv().await,
        Ok(ConnectionEvent::Removed(_))
    ));
    eventually("its subscription is released", || async {
        server
            .comet
            .channel_subscribers("gone-soon")
            .await
            .unwrap()
            .is_empty()
            && !broker
                .channels()
                .contains(&"comet:channel:gone-soon".to_owned())
    })
    .await;
    server.stop().await;
}

#[actix_web::test]
async fn two_nodes_on_one_hub_act_as_one() {
    // Node A holds connections only; node B runs the actions. As the seed's two flows.
    let broker = MemoryBroker::new();
    let queue = MemoryQueue::new();
    let a = TestServer::start(
        Comet::builder()
            .hub(broker.hub())
            .queue(queue.clone())
            .listen_actions(false),
    )
    .await;
    let b = TestServer::start(Comet::builder().hub(broker.hub()).queue(queue)).await;

    let mut on_a = a.client().await;
    let mut on_b = b.client().await;
    on_a.subscribe("test").await;
    on_b.subscribe("test").await;
    on_a.send("channel test across").await;
    assert_eq!(on_a.recv_on("test").await, "across");
    assert_eq!(on_b.recv_on("test").await, "across");

    // The call from A is run on B, and the answer finds its way back to A's client.
    let answer = on_a.request("test/whoami", json!({})).await;
    let a_id = a.comet.connections().await.unwrap()[0].id.clone();
    assert_eq!(answer["id"], a_id.as_str());
    assert_eq!(a_id.process(), a.comet.id());

    // The server API reaches a connection on the other node, too.
    b.comet.send(&a_id, "from node b").await.unwrap();
    assert_eq!(on_a.recv().await, "from node b");
    a.stop().await;
    b.stop().await;
}
