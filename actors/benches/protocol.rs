//! Micro-benchmarks of the frame parser and formatter: the per-frame cost on every
//! connection. `cargo bench -p comet-actors --bench protocol`.

use comet_actors::protocol::{
    action_response_frame, channel_frame, parse_client_frame, ParseLimits, RequestUid,
};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;

fn parse(c: &mut Criterion) {
    let limits = ParseLimits::default();
    let mut group = c.benchmark_group("parse");
    for (name, frame) in [
        ("publish 64 B", format!("channel chat {}", "x".repeat(52))),
        (
            "publish 1 KiB",
            format!("channel chat {}", "x".repeat(1012)),
        ),
        ("subscribe", "subscribe chat:room-42".to_owned()),
        (
            "action",
            r#"action site/test {"requestUid":"k3j2h1","text":"hello","n":42}"#.to_owned(),
        ),
        ("bad frame", "nonsense here".to_owned()),
    ] {
        group.throughput(Throughput::Bytes(frame.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| parse_client_frame(black_box(&frame), &limits).is_ok())
        });
    }
    group.finish();
}

fn format(c: &mut Criterion) {
    let mut group = c.benchmark_group("format");
    let payload = "x".repeat(52);
    group.bench_function("channel frame 64 B", |b| {
        b.iter(|| channel_frame(black_box("chat"), black_box(&payload)))
    });
    let uid = RequestUid::from("k3j2h1");
    group.bench_function("action answer", |b| {
        b.iter(|| action_response_frame(&uid, json!({ "echo": { "text": "hello" } })))
    });
    group.finish();
}

criterion_group!(benches, parse, format);
criterion_main!(benches);
