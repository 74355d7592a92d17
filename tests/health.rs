//! `GET <prefix>/health/live` and `/health/ready` of a real `cometd` on a Redis of the
//! test's own, while Redis is up, down (killed, as by a crash) and back.

#[path = "common/eventually.rs"]
mod eventually;
#[path = "common/process.rs"]
mod process;
#[path = "common/redis_cluster.rs"]
mod redis_cluster;
#[path = "common/redis.rs"]
mod redis_server;
#[path = "common/test_redis.rs"]
mod test_redis;

use eventually::eventually;
use process::Cometd;
use serde_json::Value;
use test_redis::TestRedis;

/// Status and JSON body of `GET http://<addr><path>`.
async fn get(addr: &str, path: &str) -> (u16, Value) {
    let mut response = awc::Client::new()
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .unwrap_or_else(|err| panic!("GET {path}: {err}"));
    let body = response.body().await.expect("a body");
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|err| panic!("GET {path} answered no JSON ({err}): {body:?}"));
    (response.status().as_u16(), json)
}

async fn ready_follows_redis_down_and_back_while_live_stays(mut redis: TestRedis) {
    let server = Cometd::server("health", &redis.args(), "health:", &[]);
    let addr = server.addr.clone().expect("a server listens");

    assert_eq!(
        get(&addr, "/comet/health/live").await,
        (200, serde_json::json!({ "status": "live" }))
    );
    let (status, body) = get(&addr, "/comet/health/ready").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["hub"], "ok");
    assert_eq!(body["queue"], "ok");
    assert_eq!(body["draining"], false);

    redis.kill();
    let (status, body) = get(&addr, "/comet/health/ready").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable");
    assert_ne!(body["hub"], "ok", "{body}");
    assert_ne!(body["queue"], "ok", "{body}");
    // The process itself still runs and serves.
    assert_eq!(get(&addr, "/comet/health/live").await.0, 200);

    redis.restart();
    // The shared connections retry with backoff: ready again within a few tries.
    eventually("ready again once Redis is back", || {
        let addr = addr.clone();
        async move { get(&addr, "/comet/health/ready").await.0 == 200 }
    })
    .await;
}

#[actix_web::test]
async fn a_process_without_redis_is_ready_at_once() {
    let server = Cometd::spawn("health-memory", &[]);
    let addr = server.addr.clone().expect("a server listens");
    let (status, body) = get(&addr, "/comet/health/ready").await;
    assert_eq!((status, &body["status"]), (200, &Value::from("ready")));
}

redis_tests!(actix: ready_follows_redis_down_and_back_while_live_stays);
