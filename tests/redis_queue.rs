//! The Redis queue's contract against a real Redis of the test's own: served routes,
//! first come first served per route, acknowledgement, the reaper putting back exactly
//! the calls of dead processes, unreadable entries set aside.

#[path = "common/redis.rs"]
mod redis_server;

use std::time::Duration;

use comet::actors::protocol::RequestUid;
use comet::actors::queue::unix_millis;
use comet::actors::{ActionCall, QueueError};
use comet::{ConnectionId, ConnectionInfo, Queue, RedisConfig, RedisQueue};
use redis_server::RedisServer;
use serde_json::Map;

fn call(route: &str, n: u64) -> ActionCall {
    ActionCall {
        id: format!("call-{route}-{n}"),
        route: route.to_owned(),
        request_uid: RequestUid::from(format!("r{n}").as_str()),
        params: Map::new(),
        connection: ConnectionInfo {
            id: ConnectionId::new("p1", n),
            ip: None,
            headers: Default::default(),
            query: String::new(),
            transport: "websocket".into(),
        },
        deadline_ms: unix_millis() + 60_000,
    }
}

fn queue(redis: &RedisServer, prefix: &str, ttl_ms: u64) -> RedisQueue {
    let mut config = RedisConfig::new(redis.url());
    config.process_ttl = Duration::from_millis(ttl_ms);
    RedisQueue::new(&config, prefix).expect("a valid URL")
}

fn routes(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

fn llen(redis: &RedisServer, key: &str) -> i64 {
    redis.query(redis::cmd("LLEN").arg(key))
}

#[tokio::test]
async fn calls_wait_per_route_first_come_first_served() {
    let redis = RedisServer::start();
    let queue = queue(&redis, "q1:", 10_000);

    let refused = queue.push(call("a", 1)).await;
    assert_eq!(refused, Err(QueueError::NotServed("a".into())));
    assert_eq!(
        llen(&redis, "q1:queue:a"),
        0,
        "a refused call leaves nothing"
    );

    queue.serve(&routes(&["a", "b"])).await.unwrap();
    for n in 1..=3 {
        queue.push(call("a", n)).await.unwrap();
    }
    queue.push(call("b", 9)).await.unwrap();

    assert_eq!(queue.pop(&routes(&["c"])).await.unwrap(), None);
    // The first route with a call wins; within a route, the oldest call.
    let first = queue.pop(&routes(&["b", "a"])).await.unwrap().unwrap();
    assert_eq!(first.call.id, "call-b-9");
    assert!(first.more, "calls for `a` still wait");
    let mut popped = Vec::new();
    while let Some(claimed) = queue.pop(&routes(&["b", "a"])).await.unwrap() {
        popped.push((claimed.call.id.clone(), claimed.more));
        queue.ack(&claimed).await.unwrap();
    }
    assert_eq!(
        popped,
        [
            ("call-a-1".to_owned(), true),
            ("call-a-2".to_owned(), true),
            ("call-a-3".to_owned(), false)
        ]
    );

    // Only the unacknowledged call is still held by this process.
    let processing = format!("q1:processing:{}", queue.consumer());
    assert_eq!(llen(&redis, &processing), 1);
    queue.ack(&first).await.unwrap();
    assert_eq!(llen(&redis, &processing), 0);

    // A retired route is no longer served.
    queue.retire(&routes(&["b"])).await.unwrap();
    assert_eq!(
        queue.push(call("b", 10)).await,
        Err(QueueError::NotServed("b".into()))
    );
    queue.push(call("a", 11)).await.unwrap();
}

#[tokio::test]
async fn calls_of_a_dead_process_are_put_back_in_order_and_a_live_ones_are_not() {
    let redis = RedisServer::start();
    let ttl = 400;
    let dying = queue(&redis, "q2:", ttl);
    let living = queue(&redis, "q2:", ttl);
    dying.serve(&routes(&["a"])).await.unwrap();
    living.serve(&routes(&["a"])).await.unwrap();
    for n in 1..=4 {
        dying.push(call("a", n)).await.unwrap();
    }
    let taken_by_dying = [
        dying.pop(&routes(&["a"])).await.unwrap().unwrap(),
        dying.pop(&routes(&["a"])).await.unwrap().unwrap(),
    ];
    assert_eq!(taken_by_dying[0].call.id, "call-a-1");
    let taken_by_living = living.pop(&routes(&["a"])).await.unwrap().unwrap();
    assert_eq!(taken_by_living.call.id, "call-a-3");

    // Both alive well past the TTL: nothing moves.
    tokio::time::sleep(Duration::from_millis(ttl * 3)).await;
    assert_eq!(llen(&redis, "q2:queue:a"), 1);
    assert_eq!(
        llen(&redis, &format!("q2:processing:{}", dying.consumer())),
        2
    );

    // The dying one stops (its heartbeat with it); the living one's reaper puts its two
    // calls back at the head of the queue, oldest first.
    let dead = dying.consumer().to_owned();
    drop(dying);
    drop(taken_by_dying);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while llen(&redis, "q2:queue:a") < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the dead process's calls never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut order = Vec::new();
    while let Some(claimed) = living.pop(&routes(&["a"])).await.unwrap() {
        order.push(claimed.call.id.clone());
        living.ack(&claimed).await.unwrap();
    }
    assert_eq!(order, ["call-a-1", "call-a-2", "call-a-4"]);
    assert_eq!(llen(&redis, &format!("q2:processing:{dead}")), 0);
    let consumers: Vec<String> = redis.query(redis::cmd("SMEMBERS").arg("q2:consumers"));
    assert_eq!(consumers, [living.consumer().to_owned()]);
    living.ack(&taken_by_living).await.unwrap();
}

#[tokio::test]
async fn an_unreadable_entry_is_set_aside_not_retried() {
    let redis = RedisServer::start();
    let queue = queue(&redis, "q3:", 10_000);
    queue.serve(&routes(&["a"])).await.unwrap();
    let _: i64 = redis.query(redis::cmd("RPUSH").arg("q3:queue:a").arg("{not json"));
    queue.push(call("a", 1)).await.unwrap();

    let err = queue.pop(&routes(&["a"])).await.unwrap_err();
    assert!(matches!(err, QueueError::Corrupt(_)), "{err}");
    let dead: Vec<String> = redis.query(redis::cmd("LRANGE").arg("q3:dead").arg(0).arg(-1));
    assert_eq!(dead, ["{not json"]);
    let next = queue.pop(&routes(&["a"])).await.unwrap().unwrap();
    assert_eq!(next.call.id, "call-a-1");
    queue.ack(&next).await.unwrap();
    assert_eq!(
        llen(&redis, &format!("q3:processing:{}", queue.consumer())),
        0
    );
}

#[tokio::test]
async fn redis_down_is_an_error_not_a_hang_or_a_panic() {
    let mut redis = RedisServer::start();
    let queue = queue(&redis, "q4:", 10_000);
    queue.serve(&routes(&["a"])).await.unwrap();
    redis.kill();
    let started = std::time::Instant::now();
    let err = queue.push(call("a", 1)).await.unwrap_err();
    assert!(matches!(err, QueueError::Unavailable(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(
        queue.pop(&routes(&["a"])).await,
        Err(QueueError::Unavailable(_))
    ));
    redis.restart();
    // Redis came back empty: the routes are declared again by the next heartbeat.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while queue.push(call("a", 2)).await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the route never came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
