//! `GET /metrics` of a real `cometd` (`--metrics-bind`), parsed with a Prometheus
//! text-format parser: its gauges and counters match what the test did.

#[path = "common/eventually.rs"]
mod eventually;
#[path = "common/process.rs"]
mod process;
#[path = "common/redis.rs"]
mod redis_server;

use std::time::Duration;

use eventually::eventually;
use process::Cometd;
use prometheus_parse::{Scrape, Value};
use serde_json::json;

const LONG: Duration = Duration::from_secs(15);

async fn scrape(addr: &str) -> Scrape {
    let mut response = awc::Client::new()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(response.status().as_u16(), 200);
    let body = response.body().limit(1 << 20).await.expect("a body");
    let text = String::from_utf8(body.to_vec()).expect("text");
    Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).expect("Prometheus text")
}

/// The value of `metric` with `labels` (all of them), or 0 when absent.
fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|sample| sample.metric == metric)
        .filter(|sample| {
            labels
                .iter()
                .all(|(name, value)| sample.labels.get(name) == Some(*value))
        })
        .map(|sample| match &sample.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(_) | Value::Summary(_) => f64::NAN,
        })
        .sum()
}

#[actix_web::test]
async fn counters_and_gauges_match_what_clients_did() {
    let metrics = format!("127.0.0.1:{}", redis_server::free_port());
    let server = Cometd::spawn("metrics", &["--demo", "--metrics-bind", &metrics]);
    let public = server.addr.clone().unwrap();

    // Off the public port.
    let public_metrics = awc::Client::new()
        .get(format!("http://{public}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(public_metrics.status().as_u16(), 404);

    let before = scrape(&metrics).await;
    assert_eq!(value(&before, "comet_connections", &[]), 0.0);

    let mut subscribers = vec![server.connect().await, server.connect().await];
    for client in &mut subscribers {
        client.subscribe("m").await; // 2 frames received
    }
    let mut publisher = server.connect().await;
    for n in 0..5 {
        publisher.publish("m", &format!("msg{n}")).await; // 5 frames received
    }
    for client in &mut subscribers {
        for n in 0..5 {
            assert!(client.receives("m", &format!("msg{n}"), LONG).await);
        }
    }
    let answer = publisher
        .call_and_wait("site/test", json!({"a": 1}), LONG) // 1 frame received
        .await;
    assert_eq!(answer["echo"]["a"], 1);

    let now = scrape(&metrics).await;
    assert_eq!(
        value(&now, "comet_connections", &[("transport", "websocket")]),
        3.0
    );
    assert_eq!(value(&now, "comet_subscriptions", &[]), 2.0);
    assert_eq!(value(&now, "comet_channels", &[]), 1.0);
    let counted = |metric: &str| value(&now, metric, &[]) - value(&before, metric, &[]);
    assert_eq!(
        counted("comet_connections_opened_total"),
        3.0,
        "opened by every transport"
    );
    assert_eq!(counted("comet_messages_received_total"), 8.0);
    assert_eq!(counted("comet_messages_published_total"), 5.0);
    assert_eq!(counted("comet_messages_delivered_total"), 10.0);
    assert_eq!(
        counted("comet_bytes_delivered_total"),
        10.0 * "channel m msg0".len() as f64
    );
    assert_eq!(
        value(
            &now,
            "comet_actions_total",
            &[("route", "site/test"), ("outcome", "ok")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &now,
            "comet_action_duration_seconds_count",
            &[("route", "site/test")]
        ),
        1.0
    );

    // A client gone: the gauge follows.
    drop(subscribers.pop());
    eventually("the gauge counts 2 connections", || {
        let metrics = metrics.clone();
        async move {
            let now = scrape(&metrics).await;
            value(&now, "comet_connections", &[("transport", "websocket")]) == 2.0
        }
    })
    .await;
    let now = scrape(&metrics).await;
    // Every close is counted, by code: the client's own too (over WebSocket under the code
    // of the close the server answered with; `client` where the transport just ended).
    let closed = |scrape: &Scrape| value(scrape, "comet_connections_closed_total", &[]);
    assert_eq!(
        closed(&now) - closed(&before),
        1.0,
        "the client's close, counted"
    );
}

#[actix_web::test]
async fn queue_depth_and_calls_running_follow_the_queue() {
    let metrics = format!("127.0.0.1:{}", redis_server::free_port());
    let server = Cometd::spawn(
        "metrics-queue",
        &["--demo", "--workers", "1", "--metrics-bind", &metrics],
    );
    let mut client = server.connect().await;
    // One worker: the first call runs, two wait in the queue.
    let uids = [
        client.call("site/sleep", json!({"ms": 3000})).await,
        client.call("site/sleep", json!({"ms": 10})).await,
        client.call("site/sleep", json!({"ms": 10})).await,
    ];
    eventually("1 call running, 2 waiting", || {
        let metrics = metrics.clone();
        async move {
            let now = scrape(&metrics).await;
            value(&now, "comet_actions_running", &[]) == 1.0
                && value(&now, "comet_queue_depth", &[]) == 2.0
        }
    })
    .await;
    client.answers(&uids, LONG).await;
    let now = scrape(&metrics).await;
    assert_eq!(value(&now, "comet_queue_depth", &[]), 0.0);
    assert_eq!(value(&now, "comet_actions_running", &[]), 0.0);
}
