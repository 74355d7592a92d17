//! Micro-benchmark of fan-out inside one process: one publish reaching N connections
//! through the hub, the bridge and the registry, which writes to each connection's
//! outlet, drained by a writer that only counts. No sockets: this is the actors' own cost.
//! `cargo bench -p comet-actors --bench fanout`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytestring::ByteString;
use comet_actors::{
    Connection, ConnectionInfo, Drained, Inbound, Limits, MemoryHub, MemoryQueue, Node, NodeConfig,
    Out, Outlet, Router,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tokio::sync::Notify;

/// A transport's writer that only counts: it drains the outlet when woken, counts the
/// channel frames, and wakes the benchmark at a target.
async fn counting(
    outlet: Outlet,
    delivered: Arc<AtomicUsize>,
    target: Arc<AtomicUsize>,
    done: Arc<Notify>,
) {
    futures::future::poll_fn(|cx| loop {
        let drained = outlet.drain(64 * 1024, |out| {
            if let Out::Frame(frame) = out {
                if frame.starts_with("channel ") {
                    let now = delivered.fetch_add(1, Ordering::Relaxed) + 1;
                    if now == target.load(Ordering::Relaxed) {
                        done.notify_one();
                    }
                }
            }
        });
        match drained {
            Drained::More => continue,
            Drained::Idle => {
                outlet.wait(cx.waker());
                return Poll::<()>::Pending;
            }
            Drained::Closed => return Poll::Ready(()),
        }
    })
    .await
}

fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout");
    group.measurement_time(Duration::from_secs(5));
    for subscribers in [100usize, 1000] {
        group.throughput(Throughput::Elements(subscribers as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(subscribers),
            &subscribers,
            |b, &subscribers| {
                b.iter_custom(|iterations| {
                    let system = System::new();
                    system.block_on(async move {
                        let node = Node::start(
                            NodeConfig::default(),
                            Arc::new(MemoryHub::new()),
                            Arc::new(MemoryQueue::new()),
                            Router::new(),
                        );
                        let delivered = Arc::new(AtomicUsize::new(0));
                        let target = Arc::new(AtomicUsize::new(usize::MAX));
                        let done = Arc::new(Notify::new());
                        for _ in 0..subscribers {
                            let info = ConnectionInfo::new(node.next_connection_id(), "counting");
                            let outlet = Outlet::new(&Limits::default());
                            actix::spawn(counting(
                                outlet.clone(),
                                delivered.clone(),
                                target.clone(),
                                done.clone(),
                            ));
                            let connection = Connection::new(node.clone(), info, outlet).start();
                            connection.do_send(Inbound(ByteString::from_static("subscribe bench")));
                        }
                        while node
                            .channel_subscribers("bench")
                            .await
                            .unwrap_or_default()
                            .len()
                            < subscribers
                        {
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                        let started = Instant::now();
                        for i in 1..=iterations as usize {
                            target.store(i * subscribers, Ordering::Relaxed);
                            let waiting = done.notified();
                            node.publish("bench", "x".repeat(52))
                                .await
                                .expect("published");
                            waiting.await;
                        }
                        started.elapsed()
                    })
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
