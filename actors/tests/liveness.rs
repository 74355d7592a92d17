//! A connection's liveness at actor level, without sockets, on paused time (the outlet's
//! `last_seen` is on tokio's clock): heartbeats, the idle timeout (close 4000) and a
//! transport that vouches for its client. The tests wait for events (a heartbeat, the
//! close), never for a fixed time.

mod support;

use std::time::Duration;

use comet_actors::{CloseCode, NodeConfig, Out, Outlet, Router};
use support::since;
use support::{node, removed, Client};
use tokio::time::Instant;

fn config(heartbeat: Duration, client_timeout: Duration) -> NodeConfig {
    NodeConfig {
        heartbeat_interval: heartbeat,
        client_timeout,
        listen_actions: false,
        ..NodeConfig::default()
    }
}

/// Whether `elapsed` on the paused clock is `due`, give or take the timers' 1 ms grain
/// (a few ticks' worth); never earlier.
fn on_time(elapsed: Duration, due: Duration) -> bool {
    (due..due + Duration::from_millis(10)).contains(&elapsed)
}

#[actix_rt::test]
async fn a_heartbeat_is_due_every_interval_and_not_before() {
    tokio::time::pause();
    let interval = Duration::from_secs(3);
    let node = node(config(interval, Duration::from_secs(3600)), Router::new());
    let mut client = Client::start(&node);
    let started = Instant::now();
    for n in 1..=4 {
        // The paused clock jumps to the next timer while nothing else is to be done: the
        // heartbeat comes when due (timers have a 1 ms grain), never earlier.
        assert_eq!(client.next().await, Out::Heartbeat);
        assert!(on_time(since(started), interval * n), "heartbeat {n}");
    }
}

#[actix_rt::test]
async fn a_client_that_asked_for_pings_gets_a_ping_frame_with_each_heartbeat() {
    tokio::time::pause();
    let interval = Duration::from_secs(2);
    let node = node(config(interval, Duration::from_secs(3600)), Router::new());
    let mut client = Client::start(&node);
    client.send(r#"hello {"heartbeat":true}"#);
    let hello = client.frame().await;
    assert!(
        hello.starts_with(r#"hello {"heartbeat":2000,"#),
        "the answer tells the interval: {hello}"
    );
    let started = Instant::now();
    for n in 1..=2 {
        assert_eq!(client.next().await, Out::Heartbeat);
        assert_eq!(client.next().await, Out::Frame("ping".into()));
        assert!(on_time(since(started), interval * n), "heartbeat {n}");
    }
}

#[actix_rt::test]
async fn a_silent_client_is_closed_with_4000_and_released() {
    tokio::time::pause();
    let client_timeout = Duration::from_secs(3);
    let node = node(
        config(Duration::from_secs(1), client_timeout),
        Router::new(),
    );
    let mut events = node.events();
    let mut client = Client::start(&node);
    client.subscribe("quiet").await;
    let started = Instant::now();
    // Heartbeats while it is within the timeout, then the close.
    let end = loop {
        match client.next().await {
            Out::Heartbeat => continue,
            other => break other,
        }
    };
    assert_eq!(end, Out::Close(CloseCode::HeartbeatTimeout));
    assert_eq!(CloseCode::HeartbeatTimeout.code(), 4000);
    // At the first heartbeat after the timeout (4 s), never before it.
    assert!(since(started) >= client_timeout, "{:?}", since(started));
    removed(&mut events).await;
    assert!(node
        .channel_subscribers("quiet")
        .await
        .expect("subscribers")
        .is_empty());
}

#[actix_rt::test]
async fn a_client_its_transport_vouches_for_is_never_closed_for_silence() {
    tokio::time::pause();
    let (interval, client_timeout) = (Duration::from_secs(1), Duration::from_secs(3));
    let node = node(config(interval, client_timeout), Router::new());
    let outlet = Outlet::new(&node.config().limits);
    outlet.vouch();
    let mut client = Client::start_on(&node, outlet);
    // Six heartbeats: 6 s of silence, twice the client timeout, and the
    // connection checked the silence at each of those ticks.
    for _ in 0..6 {
        assert_eq!(client.next().await, Out::Heartbeat);
    }
    // Still open: it answers.
    client.send("hello {}");
    assert!(client.frame().await.starts_with("hello {"));
    assert!(client.outlet.closing().is_none());
}

#[actix_rt::test]
async fn the_client_s_frames_keep_it_alive() {
    tokio::time::pause();
    let (interval, client_timeout) = (Duration::from_secs(1), Duration::from_secs(3));
    let node = node(config(interval, client_timeout), Router::new());
    let mut client = Client::start(&node);
    // A frame at every heartbeat: never silent for a whole timeout, however long this
    // goes on (40 heartbeats: 40 s, many times the timeout).
    for _ in 0..40 {
        assert_eq!(client.next().await, Out::Heartbeat);
        client.send("hello {}");
        assert!(client.frame().await.starts_with("hello {"));
    }
    assert!(client.outlet.closing().is_none());
}
