//! How results are shown: progress bars while running (on a terminal only), a summary
//! table at the end, and one JSON line for scripts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use crate::fanout::Outcome;

/// A progress bar for `total` steps.
pub fn bar(total: u64, message: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>28} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message.to_owned());
    bar
}

/// A progress bar that follows a shared counter.
pub struct CounterBar {
    bar: ProgressBar,
    ticker: tokio::task::JoinHandle<()>,
}

impl CounterBar {
    /// Stops following and removes the bar.
    pub fn finish_and_clear(self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}

/// A bar of `total` steps that shows `counter` ten times a second.
pub fn counter_bar(total: u64, message: &str, counter: Arc<AtomicU64>) -> CounterBar {
    let bar = bar(total, message);
    let shown = bar.clone();
    let ticker = tokio::spawn(async move {
        loop {
            shown.set_position(counter.load(Ordering::Relaxed));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    CounterBar { bar, ticker }
}

/// Prints fan-out outcomes as a table; with a baseline, each comet figure also as a ratio.
pub fn print_fanout(outcomes: &[Outcome], baseline: Option<&Outcome>) {
    println!(
        "\n{:<22} {:>6} {:>6} {:>11} {:>9} {:>8} {:>8} {:>8} {:>6} {:>5} {:>10} {:>8}",
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
        "rss MiB"
    );
    for o in outcomes {
        println!(
            "{:<22} {:>6} {:>6} {:>11} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>6} {:>5} {:>10} {:>8}",
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
            o.rss_mib.map_or("-".into(), |rss| format!("{rss:.1}")),
        );
    }
    if let Some(base) = baseline {
        for o in outcomes.iter().filter(|o| o.label != base.label) {
            println!(
                "{:<22} deliveries/s {:.0}% of baseline; cpu per delivery {}; user-space cpu {}",
                format!("{} / {}", o.label, base.label),
                100.0 * o.deliveries_per_s / base.deliveries_per_s.max(1e-9),
                ratio(o.cpu_us_per_delivery, base.cpu_us_per_delivery),
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
