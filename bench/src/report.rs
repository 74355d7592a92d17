//! How results are shown: a summary table at the end, and one JSON line for scripts
//! (the progress bars while running are `progress.rs`'s).

use serde_json::Value;

use crate::fanout::Outcome;

/// Prints fan-out outcomes as a table; with a baseline, each comet figure also as a ratio.
pub fn print_fanout(outcomes: &[Outcome], baseline: Option<&Outcome>) {
    println!(
        "\n{:<22} {:>6} {:>6} {:>11} {:>9} {:>8} {:>8} {:>8} {:>6} {:>5} {:>10} {:>11} {:>8}",
        "run",
        "subs",
        "msgs",
        "deliveries",
        "deliv/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "lost",
        "dup",
        "cpu µs/dl",
        "sched µs/dl",
        "rss MiB"
    );
    for o in outcomes {
        println!(
            "{:<22} {:>6} {:>6} {:>11} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>6} {:>5} {:>10} {:>11} {:>8}",
            o.label,
            o.subscribers,
            o.messages,
            o.deliveries,
            o.deliveries_per_s,
            o.p50_us as f64 / 1000.0,
            o.p99_us as f64 / 1000.0,
            o.max_us as f64 / 1000.0,
            o.lost,
            o.duplicated,
            o.cpu_us_per_delivery
                .map_or("-".into(), |cpu| format!("{cpu:.3}")),
            o.sched_us_per_delivery
                .map_or("-".into(), |cpu| format!("{cpu:.3}")),
            o.rss_mib.map_or("-".into(), |rss| format!("{rss:.1}")),
        );
    }
    if let Some(base) = baseline {
        for o in outcomes.iter().filter(|o| o.label != base.label) {
            println!(
                "{:<22} deliveries/s {:.0}% of baseline; cpu per delivery {} (scheduler's count {}); user-space cpu {}",
                format!("{} / {}", o.label, base.label),
                100.0 * o.deliveries_per_s / base.deliveries_per_s.max(1e-9),
                ratio(o.cpu_us_per_delivery, base.cpu_us_per_delivery),
                ratio(o.sched_us_per_delivery, base.sched_us_per_delivery),
                ratio(o.user_us_per_delivery, base.user_us_per_delivery),
            );
        }
    }
}

/// `a / b` as "N× baseline", or `-`.
fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}× baseline", a / b),
        _ => "-".into(),
    }
}

/// Prints one JSON line: `{"workload": …, …}`.
pub fn print_json(workload: &str, body: Value) {
    let mut line = serde_json::json!({ "workload": workload });
    if let (Value::Object(line), Value::Object(body)) = (&mut line, body) {
        line.extend(body);
    }
    println!("{line}");
}

/// Prints each pair's second outcome against its first (e.g. a server with permissions
/// against the same server without, measured in the same invocation).
pub fn print_against(pairs: &[(Outcome, Outcome)]) {
    for (reference, o) in pairs {
        println!(
            "{:<22} deliveries/s {:.0}%; cpu per delivery {} (scheduler's count {}); user-space cpu {}",
            format!("{} / {}", o.label, reference.label),
            100.0 * o.deliveries_per_s / reference.deliveries_per_s.max(1e-9),
            ratio_to(o.cpu_us_per_delivery, reference.cpu_us_per_delivery, "×"),
            ratio_to(o.sched_us_per_delivery, reference.sched_us_per_delivery, "×"),
            ratio_to(o.user_us_per_delivery, reference.user_us_per_delivery, "×"),
        );
    }
}

/// `a / b` followed by `unit`, or `-`.
fn ratio_to(a: Option<f64>, b: Option<f64>, unit: &str) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}{unit}", a / b),
        _ => "-".into(),
    }
}
