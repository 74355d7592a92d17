//! A connection at actor level, without sockets: what it answers to bad frames and
//! limits, the server API reaching it, and how it ends (the transport gone, a
//! disconnect, a shutdown), releasing its subscriptions.

mod support;

use comet_actors::protocol::{parse_server_frame, ServerFrame};
use comet_actors::{CloseCode, Limits, NodeConfig, Out, Router, TransportClosed};
use serde_json::{Map, Value};
use support::{added, node, removed, Client};

fn no_actions() -> NodeConfig {
    NodeConfig {
        listen_actions: false,
        ..NodeConfig::default()
    }
}

/// The object of an `error {…}` frame.
fn error_of(frame: &str) -> Map<String, Value> {
    match parse_server_frame(frame) {
        Ok(ServerFrame::Error(object)) => object,
        _ => panic!("expected an error frame, got {frame}"),
    }
}

#[actix_rt::test]
async fn bad_frames_are_answered_and_the_connection_lives_on() {
    let node = node(no_actions(), Router::new());
    let mut client = Client::start(&node);
    client.send("nonsense");
    assert_eq!(error_of(&client.frame().await)["code"], "bad_frame");
    client.send("action site/test {broken");
    assert_eq!(error_of(&client.frame().await)["code"], "bad_json");
    client.subscribe("still-here").await;
}

#[actix_rt::test]
async fn channels_per_connection_are_limited() {
    let config = NodeConfig {
        limits: Limits {
            max_channels_per_connection: 2,
            ..Limits::default()
        },
        ..no_actions()
    };
    let node = node(config, Router::new());
    let mut client = Client::start(&node);
    client.subscribe("one").await;
    client.subscribe("two").await;
    client.send("subscribe three");
    let refused = error_of(&client.frame().await);
    assert_eq!(refused["code"], "too_many_channels");
    assert_eq!(refused["channel"], "three");
    // Subscribing again to one it has is not one more.
    client.subscribe("one").await;
}

#[actix_rt::test]
async fn pending_calls_are_limited_and_their_uids_unique() {
    let router = support::never_answers();
    let config = NodeConfig {
        limits: Limits {
            max_pending_actions: 1,
            ..Limits::default()
        },
        ..NodeConfig::default()
    };
    let node = node(config, router);
    let mut client = Client::start(&node);
    client.send(r#"action test/never {"requestUid":"a"}"#);
    client.send(r#"action test/never {"requestUid":"a"}"#);
    let duplicate = client.answer().await;
    assert_eq!(duplicate["requestUid"], "a");
    assert_eq!(duplicate["error"]["code"], "bad_frame");
    client.send(r#"action test/never {"requestUid":"b"}"#);
    let refused = client.answer().await;
    assert_eq!(refused["requestUid"], "b");
    assert_eq!(refused["error"]["code"], "too_many_pending");
}

#[actix_rt::test]
async fn the_server_api_reaches_a_connection_and_disconnect_closes_it_normally() {
    let node = node(no_actions(), Router::new());
    let mut events = node.events();
    let mut client = Client::start(&node);
    added(&mut events).await;
    node.send(&client.id, "hello from the server")
        .await
        .expect("sent");
    assert_eq!(client.frame().await, "hello from the server");
    node.subscribe(&client.id, "news").await.expect("routed");
    assert_eq!(client.frame().await, "subscribed news");
    node.publish("news", "hi").await.expect("published");
    assert_eq!(client.frame().await, "channel news hi");
    node.unsubscribe(&client.id, "news").await.expect("routed");
    assert_eq!(client.frame().await, "unsubscribed news");

    node.disconnect(&client.id).await.expect("routed");
    assert_eq!(client.next().await, Out::Close(CloseCode::Normal));
    removed(&mut events).await;
}

#[actix_rt::test]
async fn a_gone_transport_releases_the_connection_and_its_subscriptions() {
    let node = node(no_actions(), Router::new());
    let mut events = node.events();
    let mut client = Client::start(&node);
    client.subscribe("room").await;
    assert_eq!(
        node.channel_subscribers("room").await.expect("subscribers"),
        [client.id.clone()]
    );
    client.outlet.finish();
    client.connection.do_send(TransportClosed);
    added(&mut events).await;
    removed(&mut events).await;
    assert!(node
        .channel_subscribers("room")
        .await
        .expect("subscribers")
        .is_empty());
    assert!(node.connections().await.expect("connections").is_empty());
}

#[actix_rt::test]
async fn a_shutdown_closes_every_connection_with_1001() {
    let node = node(no_actions(), Router::new());
    let mut events = node.events();
    let mut a = Client::start(&node);
    let mut b = Client::start(&node);
    added(&mut events).await;
    added(&mut events).await;
    node.shutdown().await;
    assert_eq!(a.next().await, Out::Close(CloseCode::GoingAway));
    assert_eq!(b.next().await, Out::Close(CloseCode::GoingAway));
    assert_eq!(CloseCode::GoingAway.code(), 1001);
}
