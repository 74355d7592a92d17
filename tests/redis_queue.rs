//! The Redis queue's contract against a real Redis of the test's own, single and Redis
//! Cluster (each test runs for the modes in `COMET_TEST_REDIS`: `single`, `cluster` or
//! `both`, the default): served routes, first come first served per route,
//! acknowledgement, the reaper putting back exactly the calls of dead processes,
//! unreadable entries set aside. What only a cluster has is in `redis_queue_cluster.rs`.

#[path = "common/eventually.rs"]
mod eventually;
#[path = "common/queue_target.rs"]
mod queue_target;
#[path = "common/redis_cluster.rs"]
mod redis_cluster;
#[path = "common/redis.rs"]
mod redis_server;

use std::future::Future;
use std::time::Duration;

use comet::actors::actions::queue::unix_millis;
use comet::actors::hub::HubNames;
use comet::actors::protocol::RequestUid;
use comet::actors::{Claimed, MemoryBroker, Popped, ProcessMessage, QueueError};
use comet::{Queue, RedisConfig, RedisQueue};
use eventually::eventually;
use futures_util::FutureExt;
use queue_target::{call, ids, modes, routes, Mode, Target};
use serde_json::json;

/// Pops one call, which must be there.
async fn pop_one(queue: &RedisQueue, route: &str) -> Claimed {
    let popped = queue.pop(&routes(&[route]), 1).await.unwrap();
    popped.calls.into_iter().next().expect("a call waits")
}

/// Runs `body` on a Redis of its own, once per mode asked for.
async fn each_mode<F, Fut>(body: F)
where
    F: Fn(Target) -> Fut,
    Fut: Future<Output = ()>,
{
    for mode in modes() {
        body(Target::start(mode)).await;
    }
}

#[tokio::test]
async fn calls_wait_per_route_first_come_first_served() {
    each_mode(calls_wait_per_route).await;
}

async fn calls_wait_per_route(redis: Target) {
    let queue = redis.queue("q1:", 10_000);
    let keys = redis.keys("q1:");

    let refused = queue.push(call("a", 1)).await;
    assert_eq!(refused, Err(QueueError::NotServed("a".into())));
    assert_eq!(
        redis.llen(&keys.queue("a")),
        0,
        "a refused call leaves nothing"
    );

    queue.serve(&routes(&["a", "b"])).await.unwrap();
    for n in 1..=3 {
        queue.push(call("a", n)).await.unwrap();
    }
    queue.push(call("b", 9)).await.unwrap();

    assert_eq!(
        queue.pop(&routes(&["c"]), 8).await.unwrap(),
        Popped::default()
    );
    // The first route with a call wins; within a route, the oldest call.
    let popped = queue.pop(&routes(&["b", "a"]), 1).await.unwrap();
    assert!(popped.more, "calls for `a` still wait");
    let [first]: [Claimed; 1] = popped.calls.try_into().unwrap();
    assert_eq!(first.call.id, "call-b-9");
    // One pop takes several calls, oldest first, and says whether more wait.
    let two = queue.pop(&routes(&["b", "a"]), 2).await.unwrap();
    assert_eq!(ids(&two.calls), ["call-a-1", "call-a-2"]);
    assert!(two.more);
    let last = queue.pop(&routes(&["b", "a"]), 2).await.unwrap();
    assert_eq!(ids(&last.calls), ["call-a-3"]);
    assert!(!last.more);
    for claimed in two.calls.iter().chain(&last.calls) {
        queue.ack(claimed).await.unwrap();
    }

    // Only the unacknowledged call is still held by this process.
    let processing = keys.processing("b", queue.consumer());
    assert_eq!(redis.llen(&processing), 1);
    if redis.is_cluster() {
        // One processing list per route there.
        assert_eq!(redis.llen(&keys.processing("a", queue.consumer())), 0);
    }
    queue.ack(&first).await.unwrap();
    assert_eq!(redis.llen(&processing), 0);
    assert_eq!(redis.llen(&keys.processing("a", queue.consumer())), 0);

    // A retired route is no longer served.
    queue.retire(&routes(&["b"])).await.unwrap();
    assert_eq!(
        queue.push(call("b", 10)).await,
        Err(QueueError::NotServed("b".into()))
    );
    queue.push(call("a", 11)).await.unwrap();
    assert_eq!(queue.depth(&routes(&["a", "b"])).await.unwrap(), 1);
    assert_eq!(queue.ping().await, Ok(()));
}

#[tokio::test]
async fn calls_of_a_dead_process_are_put_back_in_order_and_a_live_ones_are_not() {
    each_mode(dead_processes_calls_come_back).await;
}

async fn dead_processes_calls_come_back(redis: Target) {
    let ttl = 400;
    let keys = redis.keys("q2:");
    let dying = redis.queue("q2:", ttl);
    let living = redis.queue("q2:", ttl);
    dying.serve(&routes(&["a"])).await.unwrap();
    living.serve(&routes(&["a"])).await.unwrap();
    for n in 1..=4 {
        dying.push(call("a", n)).await.unwrap();
    }
    let taken_by_dying = dying.pop(&routes(&["a"]), 2).await.unwrap().calls;
    assert_eq!(ids(&taken_by_dying), ["call-a-1", "call-a-2"]);
    let taken_by_living = pop_one(&living, "a").await;
    assert_eq!(taken_by_living.call.id, "call-a-3");

    // Both alive well past the TTL: nothing moves. Ten passes of the living one's reaper
    // (one per heartbeat, every ttl / 3) span three TTLs.
    let mut passes = redis.reaper_passes("q2:", living.consumer());
    for _ in 0..10 {
        passes
            .recv()
            .await
            .expect("the living process's reaper runs");
    }
    drop(passes);
    assert_eq!(redis.llen(&keys.queue("a")), 1);
    assert_eq!(redis.llen(&keys.processing("a", dying.consumer())), 2);

    // The dying one stops (its heartbeat with it); the living one's reaper puts its two
    // calls back at the head of the queue, oldest first.
    let dead = dying.consumer().to_owned();
    drop(dying);
    drop(taken_by_dying);
    eventually("the dead process's calls come back", || async {
        redis.llen(&keys.queue("a")) >= 3
    })
    .await;
    let order = living.pop(&routes(&["a"]), 10).await.unwrap().calls;
    assert_eq!(ids(&order), ["call-a-1", "call-a-2", "call-a-4"]);
    for claimed in &order {
        living.ack(claimed).await.unwrap();
    }
    assert_eq!(redis.llen(&keys.processing("a", &dead)), 0);
    assert_eq!(
        redis.members(&keys.consumers()),
        [living.consumer().to_owned()]
    );
    if redis.is_cluster() {
        // The reaper's claim goes once the dead process's routes are done.
        eventually("the reaper forgets the dead process", || async {
            let reaping: Vec<String> = redis.query(
                &keys.reaping(),
                redis::cmd("ZRANGE").arg(keys.reaping()).arg(0).arg(-1),
            );
            reaping.is_empty()
        })
        .await;
    }
    living.ack(&taken_by_living).await.unwrap();
}

#[tokio::test]
async fn an_unreadable_entry_is_set_aside_not_retried() {
    each_mode(unreadable_entry_set_aside).await;
}

async fn unreadable_entry_set_aside(redis: Target) {
    let keys = redis.keys("q3:");
    let queue = redis.queue("q3:", 10_000);
    queue.serve(&routes(&["a"])).await.unwrap();
    let waiting = keys.queue("a");
    let _: i64 = redis.query(&waiting, redis::cmd("RPUSH").arg(&waiting).arg("{not json"));
    queue.push(call("a", 1)).await.unwrap();

    // The readable call is taken; the unreadable entry is set aside, not returned.
    let popped = queue.pop(&routes(&["a"]), 10).await.unwrap();
    assert_eq!(ids(&popped.calls), ["call-a-1"]);
    let dead_key = keys.dead("a");
    let dead: Vec<String> = redis.query(
        &dead_key,
        redis::cmd("LRANGE").arg(&dead_key).arg(0).arg(-1),
    );
    assert_eq!(dead, ["{not json"]);
    queue.ack(&popped.calls[0]).await.unwrap();
    assert_eq!(redis.llen(&keys.processing("a", queue.consumer())), 0);
}

#[tokio::test]
async fn redis_down_is_an_error_not_a_hang_or_a_panic() {
    each_mode(redis_down).await;
}

async fn redis_down(mut redis: Target) {
    let queue = redis.queue("q4:", 10_000);
    queue.serve(&routes(&["a"])).await.unwrap();
    // On a cluster, the master of the route's slot goes.
    let keys = redis.keys("q4:");
    let kill = |redis: &mut Target| match redis {
        Target::Single(server) => server.kill(),
        Target::Cluster(cluster) => {
            let owner = cluster.owner(redis_cluster::slot_of(&keys.queue("a")));
            cluster.kill(owner);
        }
    };
    kill(&mut redis);
    // An error, at once: not a hang (the test's own patience would end one).
    let err = tokio::time::timeout(Duration::from_secs(30), queue.push(call("a", 1)))
        .await
        .expect("a push with Redis down is answered")
        .unwrap_err();
    assert!(matches!(err, QueueError::Unavailable(_)), "{err}");
    let popped = tokio::time::timeout(Duration::from_secs(30), queue.pop(&routes(&["a"]), 1))
        .await
        .expect("a pop with Redis down is answered");
    assert!(
        matches!(popped, Err(QueueError::Unavailable(_))),
        "{popped:?}"
    );
    match &mut redis {
        Target::Single(server) => server.restart(),
        Target::Cluster(cluster) => {
            let owner = (0..cluster.len())
                .find(|&i| std::net::TcpStream::connect(cluster.node(i).addr()).is_err())
                .expect("a node is down");
            cluster.restart(owner);
        }
    }
    // Redis came back empty: the routes are declared again by the next heartbeat.
    eventually("the route comes back", || async {
        queue.push(call("a", 2)).await.is_ok()
    })
    .await;
}

#[tokio::test]
async fn a_call_is_put_back_once_and_a_leaving_process_gives_back_what_it_holds() {
    each_mode(put_back_once).await;
}

async fn put_back_once(redis: Target) {
    let keys = redis.keys("q5:");
    let (queue, other) = (redis.queue("q5:", 10_000), redis.queue("q5:", 10_000));
    queue.serve(&routes(&["a"])).await.unwrap();
    other.serve(&routes(&["a"])).await.unwrap();
    for n in 1..=4 {
        queue.push(call("a", n)).await.unwrap();
    }
    let held = queue.pop(&routes(&["a"]), 3).await.unwrap().calls;
    assert_eq!(ids(&held), ["call-a-1", "call-a-2", "call-a-3"]);

    // Put back: at the head of the queue, and only once.
    assert!(queue.requeue(&held[1]).await.unwrap());
    assert!(!queue.requeue(&held[1]).await.unwrap(), "put back twice");
    assert_eq!(redis.llen(&keys.queue("a")), 2);
    // Answered and acknowledged: a late put-back does nothing.
    queue.ack(&held[0]).await.unwrap();
    assert!(!queue.requeue(&held[0]).await.unwrap());

    // Leaving gives back what is still held (call 3), ahead of the waiting ones, and
    // removes the process from the queue's books at once.
    assert_eq!(queue.leave().await.unwrap(), 1);
    assert_eq!(redis.llen(&keys.processing("a", queue.consumer())), 0);
    let alive = keys.alive(queue.consumer());
    let exists: i64 = redis.query(&alive, redis::cmd("EXISTS").arg(&alive));
    assert_eq!(exists, 0);
    assert_eq!(
        redis.members(&keys.consumers()),
        [other.consumer().to_owned()]
    );
    let served_key = keys.served("a");
    let served: Vec<String> = redis.query(
        &served_key,
        redis::cmd("ZRANGE").arg(&served_key).arg(0).arg(-1),
    );
    assert_eq!(served, [other.consumer().to_owned()]);
    assert!(!queue.requeue(&held[2]).await.unwrap(), "given back twice");

    let rest = other.pop(&routes(&["a"]), 10).await.unwrap().calls;
    assert_eq!(ids(&rest), ["call-a-3", "call-a-2", "call-a-4"]);
}

#[actix_web::test]
async fn an_answer_goes_with_its_acknowledgement_and_only_for_a_call_still_held() {
    each_mode(answer_with_acknowledgement).await;
}

async fn answer_with_acknowledgement(redis: Target) {
    let broker = MemoryBroker::new();
    let queue = redis.queue("q6:", 10_000);
    redis.attach(&queue, &broker, "q6:");
    queue.serve(&routes(&["a"])).await.unwrap();
    let mut hearing = redis.hear_process(&broker, "q6:", "p1");
    let mut notices = redis.hear(&broker, HubNames::new("q6:").actions());
    let frame = |text: &str| bytestring::ByteString::from(format!("action {text}"));

    queue.push(call("a", 1)).await.unwrap();
    queue.push(call("a", 2)).await.unwrap();
    let [answered, given_back]: [Claimed; 2] = queue
        .pop(&routes(&["a"]), 2)
        .await
        .unwrap()
        .calls
        .try_into()
        .unwrap();
    queue.answer(&answered, frame("answer 1")).await.unwrap();
    assert!(queue.requeue(&given_back).await.unwrap());
    // Put back meanwhile: its answer must not go out (whoever runs it next answers).
    queue.answer(&given_back, frame("answer 2")).await.unwrap();
    queue.push(call("a", 3)).await.unwrap();
    let last = queue.pop(&routes(&["a"]), 1).await.unwrap().calls;
    assert_eq!(ids(&last), ["call-a-2"]);
    queue
        .answer(&last[0], frame("answer 2 again"))
        .await
        .unwrap();

    // A marker published after the acknowledgements answered: every answer they sent
    // came before it.
    redis.mark(&hearing, "marker");
    let mut got = Vec::new();
    loop {
        let payload = hearing.next().await;
        if payload == b"marker" {
            break;
        }
        match ProcessMessage::decode(&payload) {
            Ok(ProcessMessage::Answer { frame, .. }) => got.push(frame),
            other => panic!("not an answer: {other:?}"),
        }
    }
    assert_eq!(got, ["action answer 1", "action answer 2 again"]);
    // The workers heard of the route when its list stopped being empty: the first push,
    // and the call put back (in the script on one Redis, through the hub on a cluster).
    redis.mark(&notices, "marker");
    let mut heard = Vec::new();
    loop {
        let notice = notices.next().await;
        if notice == b"marker" {
            break;
        }
        heard.push(String::from_utf8(notice).expect("a route"));
    }
    assert_eq!(heard, ["a", "a"]);
}

/// The byte bound is the batching task's, the same on a cluster: one Redis only (its
/// stall is a `SIGSTOP`).
#[tokio::test]
async fn a_stalled_redis_holds_a_bounded_number_of_bytes_of_calls() {
    if !modes().contains(&Mode::Single) {
        return;
    }
    let redis = redis_server::RedisServer::start();
    let mut config = RedisConfig::new(redis.url());
    // Nothing times out during the stall: only the byte bound may refuse calls.
    config.command_timeout = Duration::from_secs(60);
    config.queue_buffer_bytes = 256 * 1024;
    let queue = RedisQueue::new(&config, "q7:").expect("a valid URL");
    queue.serve(&routes(&["a"])).await.unwrap();

    redis.stop();
    let big = |n: u64| {
        let mut call = call("a", n);
        call.params
            .insert("text".into(), json!("x".repeat(64 * 1024)));
        call
    };
    let (mut waiting, mut refused) = (Vec::new(), 0);
    for n in 0..20 {
        let mut push = queue.push(big(n));
        match (&mut push).now_or_never() {
            None => waiting.push(push),
            Some(Err(QueueError::Unavailable(why))) => {
                assert!(why.contains("queue_buffer_bytes"), "{why}");
                refused += 1;
            }
            Some(other) => panic!("a push was answered while Redis is stalled: {other:?}"),
        }
    }
    // A little over 64 KiB each: three fit in 256 KiB.
    assert_eq!((waiting.len(), refused), (3, 17));

    redis.resume();
    for push in waiting {
        push.await
            .expect("a waiting call goes out once Redis is back");
    }
    for n in 20..23 {
        queue
            .push(big(n))
            .await
            .expect("room again after the stall");
    }
    let llen: i64 = redis.query(redis::cmd("LLEN").arg("q7:queue:a"));
    assert_eq!(llen, 6);
}

/// A queued call whose params nest `depth` arrays deep, as a client could never send
/// it past the edge's `max_json_depth`, but an older or differently set process might.
fn nested_entry(route: &str, uid: &str, connection: &str, depth: usize) -> String {
    let params = format!("{{\"deep\":{}1{}}}", "[".repeat(depth), "]".repeat(depth));
    format!(
        "{{\"id\":\"poison\",\"route\":\"{route}\",\"requestUid\":\"{uid}\",\"params\":{params},\
         \"connection\":{{\"id\":\"{connection}\",\"ip\":null,\"headers\":{{}},\"query\":\"\",\
         \"transport\":\"websocket\"}},\"deadline_ms\":{}}}",
        unix_millis() + 60_000
    )
}

#[actix_web::test]
async fn an_unreadable_call_is_answered_at_once_and_the_dead_list_stays_bounded() {
    each_mode(unreadable_call_answered).await;
}

async fn unreadable_call_answered(redis: Target) {
    let keys = redis.keys("q8:");
    let mut config = redis.config();
    config.dead_letters_max = 3;
    config.dead_letters_ttl = Duration::from_secs(60);
    let queue = RedisQueue::new(&config, "q8:").expect("a valid URL");
    let broker = MemoryBroker::new();
    redis.attach(&queue, &broker, "q8:");
    queue.serve(&routes(&["a"])).await.unwrap();
    let mut hearing = redis.hear_process(&broker, "q8:", "p1");

    // Too deep for serde_json (128 levels) as a whole call, yet its caller can be read.
    let poison = nested_entry("a", "r7", "p1.7", 130);
    let waiting = keys.queue("a");
    let _: i64 = redis.query(&waiting, redis::cmd("RPUSH").arg(&waiting).arg(&poison));
    for n in 0..4 {
        let _: i64 = redis.query(
            &waiting,
            redis::cmd("RPUSH")
                .arg(&waiting)
                .arg(format!("{{not json {n}")),
        );
    }
    let popped = queue.pop(&routes(&["a"]), 10).await.unwrap();
    assert!(popped.calls.is_empty());

    // The caller hears `bad_json` at once, not `timeout` after action_timeout.
    let answer = hearing.next().await;
    match ProcessMessage::decode(&answer) {
        Ok(ProcessMessage::Answer {
            to,
            request_uid,
            frame,
        }) => {
            assert_eq!(to.as_str(), "p1.7");
            assert_eq!(request_uid, RequestUid::from("r7"));
            assert!(frame.contains("\"code\":\"bad_json\""), "{frame}");
        }
        other => panic!("not an answer: {other:?}"),
    }
    // The dead list keeps the newest three, for a while; every entry was counted.
    let dead_key = keys.dead("a");
    let dead: Vec<String> = redis.query(
        &dead_key,
        redis::cmd("LRANGE").arg(&dead_key).arg(0).arg(-1),
    );
    assert_eq!(dead, ["{not json 1", "{not json 2", "{not json 3"]);
    let ttl: i64 = redis.query(&dead_key, redis::cmd("PTTL").arg(&dead_key));
    assert!(ttl > 0 && ttl <= 60_000, "PTTL {ttl}");
    assert_eq!(queue.dead_letters(), 5);
    assert_eq!(redis.llen(&keys.processing("a", queue.consumer())), 0);
}

#[tokio::test]
async fn a_queue_of_calls_nobody_takes_goes_once_their_callers_gave_up() {
    each_mode(queue_expires).await;
}

async fn queue_expires(redis: Target) {
    let keys = redis.keys("q9:");
    let queue = redis.queue("q9:", 10_000);
    queue.serve(&routes(&["a"])).await.unwrap();
    let mut stranded = call("a", 1);
    stranded.deadline_ms = unix_millis() + 1_500;
    queue.push(stranded).await.unwrap();
    let waiting = keys.queue("a");
    let ttl: i64 = redis.query(&waiting, redis::cmd("PTTL").arg(&waiting));
    assert!(ttl > 0 && ttl <= 1_500, "PTTL {ttl}");
    // A later call with more time left keeps the queue (and the earlier call) longer.
    queue.push(call("a", 2)).await.unwrap();
    let ttl: i64 = redis.query(&waiting, redis::cmd("PTTL").arg(&waiting));
    assert!(ttl > 1_500, "PTTL {ttl}");
}
