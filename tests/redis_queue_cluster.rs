//! The Redis queue on a Redis Cluster of the test's own, what only a cluster has: a busy
//! route's slot migrating, a reaper dying midway, a master dying under one route while
//! the others go on. Skipped when `COMET_TEST_REDIS` is `single`.

#[path = "common/eventually.rs"]
mod eventually;
#[path = "common/queue_target.rs"]
mod queue_target;
#[path = "common/redis_cluster.rs"]
mod redis_cluster;
#[path = "common/redis.rs"]
mod redis_server;

use std::time::Duration;

use comet::actors::actions::queue::unix_millis;
use comet::actors::{MemoryBroker, ProcessMessage, QueueError};
use comet::{Queue, RedisConfig, RedisQueue};
use eventually::eventually;
use queue_target::{call, ids, modes, routes, Mode, Target};

/// Workers taking calls of `route` off `queue` and answering each with its id, until
/// `stop`; every queue error is recorded in `errors`. A worker with nothing to do looks
/// again after its poll interval (10 ms), as a process's supervisor does.
fn work(
    queue: RedisQueue,
    route: &str,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    errors: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) -> tokio::task::JoinHandle<()> {
    let route = routes(&[route]);
    tokio::spawn(async move {
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            match queue.pop(&route, 4).await {
                Ok(popped) => {
                    for claimed in &popped.calls {
                        let frame =
                            bytestring::ByteString::from(format!("action {}", claimed.call.id));
                        if let Err(err) = queue.answer(claimed, frame).await {
                            errors.lock().unwrap().push(format!("answer: {err}"));
                        }
                    }
                    if !popped.more && popped.calls.is_empty() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
                Err(err) => {
                    errors.lock().unwrap().push(format!("pop: {err}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    })
}

#[actix_web::test]
async fn on_a_cluster_the_slot_of_a_busy_route_migrates_and_every_call_is_answered_once() {
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    if !modes().contains(&Mode::Cluster) {
        return;
    }
    let redis = Target::start(Mode::Cluster);
    let keys = redis.keys("qm:");
    let broker = MemoryBroker::new();
    let mut hearing = redis.hear_process(&broker, "qm:", "p1");
    let pusher = redis.queue("qm:", 10_000);
    redis.attach(&pusher, &broker, "qm:");
    let (stop, errors) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(Mutex::new(Vec::new())),
    );
    let mut workers = Vec::new();
    let mut consumers = Vec::new();
    for _ in 0..2 {
        let worker = redis.queue("qm:", 10_000);
        redis.attach(&worker, &broker, "qm:");
        worker.serve(&routes(&["busy"])).await.unwrap();
        consumers.push(worker.consumer().to_owned());
        workers.push(work(worker, "busy", stop.clone(), errors.clone()));
    }

    let push = |from: u64, to: u64| {
        let pusher = pusher.clone();
        async move {
            for n in from..to {
                pusher
                    .push(call("busy", n))
                    .await
                    .unwrap_or_else(|err| panic!("push {n}: {err}"));
            }
        }
    };
    let answer_of = |payload: Vec<u8>| match ProcessMessage::decode(&payload) {
        Ok(ProcessMessage::Answer { frame, .. }) => frame,
        other => panic!("not an answer: {other:?}"),
    };
    push(0, 100).await;
    let mut answers = vec![answer_of(hearing.next().await)];
    // The first answer is in: the route's slot moves, three times over, while calls are
    // pushed, taken and answered.
    let slot = redis_cluster::slot_of(&keys.queue("busy"));
    // Keys of the test's own in the slot, so that the slot takes a while to move (in
    // MIGRATE batches of 100), and the queue's keys move in the middle of it.
    let filler = (0..3000).fold(redis::pipe(), |mut pipe, i| {
        pipe.cmd("SET")
            .arg(format!("qm:{{r:busy}}filler:{i}"))
            .arg("x")
            .ignore();
        pipe
    });
    if let Target::Cluster(cluster) = &redis {
        let _: () = filler
            .query(&mut cluster.node(cluster.owner(slot)).connection())
            .expect("the filler goes in");
    }
    let migrated = Arc::new(AtomicBool::new(false));
    let done = migrated.clone();
    let migration = tokio::task::spawn_blocking(move || {
        let Target::Cluster(cluster) = &redis else {
            unreachable!("started as a cluster")
        };
        let start = cluster.owner(slot);
        for to in [(start + 1) % 3, (start + 2) % 3, start] {
            cluster.migrate_slot(slot, to);
        }
        done.store(true, Ordering::Relaxed);
        redis
    });
    // Calls go in for as long as the slot moves, then some more.
    let pusher_during = pusher.clone();
    let pushing = tokio::spawn(async move {
        let mut n = 100;
        while !migrated.load(Ordering::Relaxed) {
            let pushes = (n..n + 10).map(|n| pusher_during.push(call("busy", n)));
            for (i, pushed) in futures_util::future::join_all(pushes)
                .await
                .into_iter()
                .enumerate()
            {
                pushed.unwrap_or_else(|err| {
                    panic!("push {} during the migration: {err}", n + i as u64)
                });
            }
            n += 10;
        }
        n
    });
    let redis = migration.await.expect("the slot migrates");
    let pushed = pushing.await.expect("every push is taken");
    push(pushed, pushed + 50).await;
    let total = (pushed + 50) as usize;
    while answers.len() < total {
        answers.push(answer_of(hearing.next().await));
    }
    let unique: BTreeSet<&String> = answers.iter().collect();
    assert_eq!(unique.len(), total, "an answer came twice");

    // Nothing more comes: the marker is next, and nothing is left in Redis.
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.expect("a worker stops");
    }
    redis.mark(&hearing, "marker");
    assert_eq!(hearing.next().await, b"marker", "an answer came late");
    assert_eq!(redis.llen(&keys.queue("busy")), 0);
    for consumer in &consumers {
        assert_eq!(redis.llen(&keys.processing("busy", consumer)), 0);
    }
    let errors = errors.lock().unwrap();
    assert!(errors.is_empty(), "queue errors: {errors:?}");
}

#[tokio::test]
async fn on_a_cluster_a_reaper_that_died_midway_leaves_the_rest_to_the_next_once_its_claim_lapses()
{
    if !modes().contains(&Mode::Cluster) {
        return;
    }
    let redis = Target::start(Mode::Cluster);
    let keys = redis.keys("qr:");
    let ttl = 400;
    let dying = redis.queue("qr:", ttl);
    dying.serve(&routes(&["a", "b"])).await.unwrap();
    for n in 1..=2 {
        dying.push(call("a", n)).await.unwrap();
        dying.push(call("b", n)).await.unwrap();
    }
    let held = dying.pop(&routes(&["a", "b"]), 3).await.unwrap().calls;
    assert_eq!(ids(&held), ["call-a-1", "call-a-2", "call-b-1"]);
    let dead = dying.consumer().to_owned();
    drop(dying);
    drop(held);
    eventually("the dying process's heartbeat expires", || async {
        let alive = keys.alive(&dead);
        redis.query::<i64>(&alive, redis::cmd("EXISTS").arg(&alive)) == 0
    })
    .await;
    // A reaper claimed it and died: it is out of the consumers, its claim has lapsed.
    let (consumers, reaping) = (keys.consumers(), keys.reaping());
    let _: i64 = redis.query(&consumers, redis::cmd("SREM").arg(&consumers).arg(&dead));
    let _: i64 = redis.query(&reaping, redis::cmd("ZADD").arg(&reaping).arg(1).arg(&dead));
    // Another reaper's claim that has not lapsed is not touched.
    let ghost = keys.processing("a", "ghost");
    let _: i64 = redis.query(
        &ghost,
        redis::cmd("RPUSH").arg(&ghost).arg("{\"route\":\"a\"}"),
    );
    let ghost_routes = "qr:{consumers}routes:ghost";
    let _: i64 = redis.query(ghost_routes, redis::cmd("SADD").arg(ghost_routes).arg("a"));
    let far = unix_millis() + 3_600_000;
    let _: i64 = redis.query(
        &reaping,
        redis::cmd("ZADD").arg(&reaping).arg(far).arg("ghost"),
    );

    let living = redis.queue("qr:", ttl);
    let mut passes = redis.reaper_passes("qr:", living.consumer());
    living.serve(&routes(&["a", "b"])).await.unwrap();
    for _ in 0..3 {
        passes
            .recv()
            .await
            .expect("the living process's reaper runs");
    }
    drop(passes);
    // Every call of the dead process is back, in order, once; its claim and routes gone.
    assert_eq!(redis.llen(&keys.queue("a")), 2);
    assert_eq!(redis.llen(&keys.queue("b")), 2);
    let order = living.pop(&routes(&["a", "b"]), 10).await.unwrap().calls;
    assert_eq!(
        ids(&order),
        ["call-a-1", "call-a-2", "call-b-1", "call-b-2"]
    );
    let claims: Vec<String> =
        redis.query(&reaping, redis::cmd("ZRANGE").arg(&reaping).arg(0).arg(-1));
    assert_eq!(claims, ["ghost"]);
    assert!(redis
        .members(&format!("qr:{{consumers}}routes:{dead}"))
        .is_empty());
    assert_eq!(redis.llen(&ghost), 1, "a live claim was taken over");
}

#[tokio::test]
async fn on_a_cluster_a_dead_master_fails_only_the_calls_of_its_routes() {
    if !modes().contains(&Mode::Cluster) {
        return;
    }
    let mut redis = Target::start(Mode::Cluster);
    let keys = redis.keys("qd:");
    let Target::Cluster(cluster) = &mut redis else {
        unreachable!("started as a cluster")
    };
    // Two routes whose slots are on different masters.
    let owner = |route: &str| cluster.owner(redis_cluster::slot_of(&keys.queue(route)));
    let names: Vec<String> = (0..100).map(|n| format!("r{n}")).collect();
    let lost = names
        .iter()
        .find(|route| owner(route) != owner("r0"))
        .expect("routes on two masters")
        .clone();
    let kept = "r0".to_owned();
    let dead_master = owner(&lost);
    let both = vec![kept.clone(), lost.clone()];
    let queue = {
        let mut config = RedisConfig::cluster(cluster.urls());
        config.process_ttl = Duration::from_secs(10);
        RedisQueue::new(&config, "qd:").expect("valid seeds")
    };
    queue.serve(&both).await.unwrap();
    queue.push(call(&kept, 1)).await.unwrap();
    cluster.kill(dead_master);

    // Both pushes go in one batch (submitted before the batching task runs): the one for
    // the dead master's route fails, the other goes through.
    let (to_kept, to_lost) = (queue.push(call(&kept, 2)), queue.push(call(&lost, 3)));
    let (to_kept, to_lost) = futures_util::join!(to_kept, to_lost);
    assert_eq!(to_kept, Ok(()));
    assert!(
        matches!(to_lost, Err(QueueError::Unavailable(_))),
        "{to_lost:?}"
    );
    // A take through both routes hands over what the first gave.
    let popped = queue.pop(&both, 10).await.unwrap();
    assert_eq!(ids(&popped.calls), ["call-r0-1", "call-r0-2"]);
}
