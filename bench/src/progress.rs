//! Progress bars for the workloads while they run (the results are `report.rs`'s).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

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
