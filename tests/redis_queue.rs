//! The Redis queue's contract against a real Redis of the test's own: served routes,
//! first come first served per route, acknowledgement, the reaper putting back exactly
//! the calls of dead processes, unreadable entries set aside.

#[path = "common/eventually.rs"]
mod eventually;
#[path = "common/redis.rs"]
mod redis_server;

use std::time::Duration;

use comet::actors::actions::queue::unix_millis;
use comet::actors::protocol::RequestUid;
use comet::actors::{ActionCall, Claimed, Popped, QueueError};
use comet::{ConnectionId, ConnectionInfo, Queue, RedisConfig, RedisQueue};
use eventually::eventually;
use futures_util::FutureExt;
use redis_server::RedisServer;
use serde_json::{json, Map};

fn call(route: &str, n: u64) -> ActionCall {
    ActionCall {
        id: format!("call-{route}-{n}"),
        route: route.to_owned(),
        request_uid: RequestUid::from(format!("r{n}").as_str()),
        params: Map::new(),
        connection: ConnectionInfo::new(ConnectionId::new("p1", n), "websocket"),
        deadline_ms: unix_millis() + 60_000,
    }
}

fn queue(redis: &RedisServer, prefix: &str, ttl_ms: u64) -> RedisQueue {
    let mut config = RedisConfig::new(redis.url());
    config.process_ttl = Duration::from_millis(ttl_ms);
    RedisQueue::new(&config, prefix).expect("a valid URL")
}

/// Everything published on `channel` from now on, as it comes: subscribed when this
/// returns.
fn listen(redis: &RedisServer, channel: &str) -> std::sync::mpsc::Receiver<Vec<u8>> {
    let (heard, hearing) = std::sync::mpsc::channel();
    let (subscribed, ready) = std::sync::mpsc::channel();
    let mut connection = redis.connection();
    let channel = channel.to_owned();
    std::thread::spawn(move || {
        let mut pubsub = connection.as_pubsub();
        pubsub.subscribe(&channel).expect("SUBSCRIBE");
        let _ = subscribed.send(());
        while let Ok(message) = pubsub.get_message() {
            if heard.send(message.get_payload_bytes().to_vec()).is_err() {
                break;
            }
        }
    });
    ready
        .recv_timeout(Duration::from_secs(10))
        .expect("subscribed");
    hearing
}

fn routes(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

fn ids(calls: &[Claimed]) -> Vec<&str> {
    calls
        .iter()
        .map(|claimed| claimed.call.id.as_str())
        .collect()
}

/// Pops one call, which must be there.
async fn pop_one(queue: &RedisQueue, route: &str) -> Claimed {
    let popped = queue.pop(&routes(&[route]), 1).await.unwrap();
    popped.calls.into_iter().next().expect("a call waits")
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
    eventually("the dead process's calls come back", || async {
        llen(&redis, "q2:queue:a") >= 3
    })
    .await;
    let order = living.pop(&routes(&["a"]), 10).await.unwrap().calls;
    assert_eq!(ids(&order), ["call-a-1", "call-a-2", "call-a-4"]);
    for claimed in &order {
        living.ack(claimed).await.unwrap();
    }
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

    // The readable call is taken; the unreadable entry is set aside, not returned.
    let popped = queue.pop(&routes(&["a"]), 10).await.unwrap();
    assert_eq!(ids(&popped.calls), ["call-a-1"]);
    let dead: Vec<String> = redis.query(redis::cmd("LRANGE").arg("q3:dead").arg(0).arg(-1));
    assert_eq!(dead, ["{not json"]);
    queue.ack(&popped.calls[0]).await.unwrap();
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
    // An error, at once: not a hang (the test's own patience would end one).
    let err = tokio::time::timeout(Duration::from_secs(30), queue.push(call("a", 1)))
        .await
        .expect("a push with Redis down is answered")
        .unwrap_err();
    assert!(matches!(err, QueueError::Unavailable(_)), "{err}");
    assert!(matches!(
        queue.pop(&routes(&["a"]), 1).await,
        Err(QueueError::Unavailable(_))
    ));
    redis.restart();
    // Redis came back empty: the routes are declared again by the next heartbeat.
    eventually("the route comes back", || async {
        queue.push(call("a", 2)).await.is_ok()
    })
    .await;
}

#[tokio::test]
async fn a_call_is_put_back_once_and_a_leaving_process_gives_back_what_it_holds() {
    let redis = RedisServer::start();
    let (queue, other) = (queue(&redis, "q5:", 10_000), queue(&redis, "q5:", 10_000));
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
    assert_eq!(llen(&redis, "q5:queue:a"), 2);
    // Answered and acknowledged: a late put-back does nothing.
    queue.ack(&held[0]).await.unwrap();
    assert!(!queue.requeue(&held[0]).await.unwrap());

    // Leaving gives back what is still held (call 3), ahead of the waiting ones, and
    // removes the process from the queue's books at once.
    assert_eq!(queue.leave().await.unwrap(), 1);
    assert_eq!(
        llen(&redis, &format!("q5:processing:{}", queue.consumer())),
        0
    );
    let alive: i64 =
        redis.query(redis::cmd("EXISTS").arg(format!("q5:alive:{}", queue.consumer())));
    assert_eq!(alive, 0);
    let consumers: Vec<String> = redis.query(redis::cmd("SMEMBERS").arg("q5:consumers"));
    assert_eq!(consumers, [other.consumer().to_owned()]);
    let served: Vec<String> = redis.query(redis::cmd("ZRANGE").arg("q5:served:a").arg(0).arg(-1));
    assert_eq!(served, [other.consumer().to_owned()]);
    assert!(!queue.requeue(&held[2]).await.unwrap(), "given back twice");

    let rest = other.pop(&routes(&["a"]), 10).await.unwrap().calls;
    assert_eq!(ids(&rest), ["call-a-3", "call-a-2", "call-a-4"]);
}

/// Takes the answers the queue hands to "this process's" connections (none here: the
/// callers are on process `p1`, which is not this one).
struct Inbox;

impl actix::Actor for Inbox {
    type Context = actix::Context<Self>;
}

impl actix::Handler<comet::actors::ProcessMessage> for Inbox {
    type Result = ();

    fn handle(&mut self, message: comet::actors::ProcessMessage, _: &mut actix::Context<Self>) {
        panic!("an answer for a caller on another process was delivered here: {message:?}");
    }
}

#[actix_web::test]
async fn an_answer_goes_with_its_acknowledgement_and_only_for_a_call_still_held() {
    use actix::Actor;
    use comet::actors::actions::queue::QueueLink;
    use comet::actors::hub::HubNames;
    use comet::actors::ProcessMessage;
    let redis = RedisServer::start();
    let queue = queue(&redis, "q6:", 10_000);
    queue.attach(QueueLink {
        hub: std::sync::Arc::new(comet::MemoryHub::new()),
        names: HubNames::new("q6:"),
        process_id: "this".into(),
        local: Inbox.start().recipient(),
    });
    queue.serve(&routes(&["a"])).await.unwrap();
    let hearing = listen(&redis, "q6:process:p1");
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
    let _: i64 = redis.query(redis::cmd("PUBLISH").arg("q6:process:p1").arg("marker"));
    let mut got = Vec::new();
    loop {
        let payload = hearing
            .recv_timeout(Duration::from_secs(10))
            .expect("the marker comes");
        if payload == b"marker" {
            break;
        }
        match ProcessMessage::decode(&payload) {
            Ok(ProcessMessage::Answer { frame, .. }) => got.push(frame),
            other => panic!("not an answer: {other:?}"),
        }
    }
    assert_eq!(got, ["action answer 1", "action answer 2 again"]);
}

#[tokio::test]
async fn a_stalled_redis_holds_a_bounded_number_of_bytes_of_calls() {
    let redis = RedisServer::start();
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
    assert_eq!(llen(&redis, "q7:queue:a"), 6);
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

#[tokio::test]
async fn an_unreadable_call_is_answered_at_once_and_the_dead_list_stays_bounded() {
    use comet::actors::ProcessMessage;
    let redis = RedisServer::start();
    let mut config = RedisConfig::new(redis.url());
    config.dead_letters_max = 3;
    config.dead_letters_ttl = Duration::from_secs(60);
    let queue = RedisQueue::new(&config, "q8:").expect("a valid URL");
    queue.serve(&routes(&["a"])).await.unwrap();
    let hearing = listen(&redis, "q8:process:p1");

    // Too deep for serde_json (128 levels) as a whole call, yet its caller can be read.
    let poison = nested_entry("a", "r7", "p1.7", 130);
    let _: i64 = redis.query(redis::cmd("RPUSH").arg("q8:queue:a").arg(&poison));
    for n in 0..4 {
        let _: i64 = redis.query(
            redis::cmd("RPUSH")
                .arg("q8:queue:a")
                .arg(format!("{{not json {n}")),
        );
    }
    let popped = queue.pop(&routes(&["a"]), 10).await.unwrap();
    assert!(popped.calls.is_empty());

    // The caller hears `bad_json` at once, not `timeout` after action_timeout.
    let answer = hearing
        .recv_timeout(Duration::from_secs(10))
        .expect("the caller of the unreadable call is answered");
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
    let dead: Vec<String> = redis.query(redis::cmd("LRANGE").arg("q8:dead").arg(0).arg(-1));
    assert_eq!(dead, ["{not json 1", "{not json 2", "{not json 3"]);
    let ttl: i64 = redis.query(redis::cmd("PTTL").arg("q8:dead"));
    assert!(ttl > 0 && ttl <= 60_000, "PTTL {ttl}");
    assert_eq!(queue.dead_letters(), 5);
    assert_eq!(
        llen(&redis, &format!("q8:processing:{}", queue.consumer())),
        0
    );
}

#[tokio::test]
async fn a_queue_of_calls_nobody_takes_goes_once_their_callers_gave_up() {
    let redis = RedisServer::start();
    let queue = queue(&redis, "q9:", 10_000);
    queue.serve(&routes(&["a"])).await.unwrap();
    let mut stranded = call("a", 1);
    stranded.deadline_ms = unix_millis() + 1_500;
    queue.push(stranded).await.unwrap();
    let ttl: i64 = redis.query(redis::cmd("PTTL").arg("q9:queue:a"));
    assert!(ttl > 0 && ttl <= 1_500, "PTTL {ttl}");
    // A later call with more time left keeps the queue (and the earlier call) longer.
    queue.push(call("a", 2)).await.unwrap();
    let ttl: i64 = redis.query(redis::cmd("PTTL").arg("q9:queue:a"));
    assert!(ttl > 1_500, "PTTL {ttl}");
}
