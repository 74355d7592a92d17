//! Micro-benchmark of fan-out inside one process: one publish reaching N connections
//! through the hub, the bridge and the registry, which writes to each connection's
//! transport (here one that only counts). No sockets: this is the actors' own cost.
//! `cargo bench -p comet-actors --bench fanout`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytestring::ByteString;
use comet_actors::{
    CloseCode, Connection, ConnectionInfo, Inbound, MemoryHub, MemoryQueue, Node, NodeConfig,
    Router, Transport, TransportError,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tokio::sync::Notify;

/// A transport that counts channel frames and wakes the benchmark at a target.
struct Counting {
    delivered: Arc<AtomicUsize>,
    target: Arc<AtomicUsize>,
    done: Arc<Notify>,
}

impl Transport for Counting {
    fn send(&mut self, frame: ByteString) -> Result<(), TransportError> {
        if frame.starts_with("channel ") {
            let now = self.delivered.fetch_add(1, Ordering::Relaxed) + 1;
            if now == self.target.load(Ordering::Relaxed) {
                self.done.notify_one();
            }
        }
        Ok(())
    }

    fn close(&mut self, _: CloseCode) {}

    fn name(&self) -> &'static str {
        "counting"
    }
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
                            let transport = Counting {
                                delivered: delivered.clone(),
                                target: target.clone(),
                                done: done.clone(),
                            };
                            let connection =
                                Connection::new(node.clone(), info, Box::new(transport)).start();
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
