//! The Redis hub against a real Redis of the test's own: `flush` resolves only once
//! everything published before it reached Redis, so that a message sent afterwards by
//! another connection (as the Redis queue sends an action's answer) arrives after them.

#[path = "common/redis.rs"]
mod redis_server;

use std::sync::mpsc;
use std::time::Duration;

use actix::prelude::*;
use actix_web::web::Bytes;
use comet::actors::HubMessage;
use comet::{Hub, RedisConfig, RedisHub};
use redis_server::RedisServer;

/// The hub's sink; this test hears the channel through a connection of its own.
struct Ignore;

impl Actor for Ignore {
    type Context = Context<Self>;
}

impl Handler<HubMessage> for Ignore {
    type Result = ();

    fn handle(&mut self, _: HubMessage, _: &mut Context<Self>) {}
}

#[actix_web::test]
async fn a_flush_waits_for_every_earlier_publish() {
    let redis = RedisServer::start();
    let hub = RedisHub::new(&RedisConfig::new(redis.url())).expect("a valid URL");
    hub.start(Ignore.start().recipient()).await.unwrap();
    // Nothing published: a flush answers at once.
    hub.flush().await.unwrap();

    // A listener of its own on the channel, in a thread (the sync client blocks).
    let (heard, hearing) = mpsc::channel();
    let (subscribed, ready) = mpsc::channel();
    let mut connection = redis.connection();
    std::thread::spawn(move || {
        let mut pubsub = connection.as_pubsub();
        pubsub.subscribe("flush:c").expect("SUBSCRIBE");
        let _ = subscribed.send(());
        loop {
            let Ok(message) = pubsub.get_message() else {
                break;
            };
            let payload: String = message.get_payload().unwrap_or_default();
            let end = payload == "end";
            if heard.send(payload).is_err() || end {
                break;
            }
        }
    });
    ready.recv_timeout(Duration::from_secs(10)).unwrap();

    // Many publishes, not awaited (each is queued when called), then a flush; then a
    // message through another connection, as the queue's script sends an answer.
    for n in 0..500 {
        drop(hub.publish("flush:c", Bytes::from(n.to_string())));
    }
    hub.flush().await.unwrap();
    let _: i64 = redis.query(redis::cmd("PUBLISH").arg("flush:c").arg("end"));

    let mut got = Vec::new();
    while let Ok(payload) = hearing.recv_timeout(Duration::from_secs(10)) {
        let end = payload == "end";
        got.push(payload);
        if end {
            break;
        }
    }
    let expected: Vec<String> = (0..500)
        .map(|n| n.to_string())
        .chain(["end".to_owned()])
        .collect();
    assert_eq!(got, expected);
}
