//! The process's metrics, in the `prometheus` crate's registry ([`registry`]), exported
//! by the `comet` crate at `GET /metrics` on `--metrics-bind` (see docs/DEPLOYMENT.md).
//!
//! Counting costs the hot paths one relaxed atomic add each: a fan-out adds its number
//! of deliveries and bytes once per dispatch (not per subscriber), with handles resolved
//! beforehand, never a lock or a label lookup; and only once an exporter asked for them
//! ([`count_deliveries`]). Events that are not per message
//! (connections opening, actions, closes) look their label up in the metric's vector.
//! What is a state rather than an event (connections by transport, subscriptions,
//! channels) is counted when scraped, from the node itself ([`Node::census`]).
//!
//! Metrics are per process: several nodes in one process (tests) share them.
//!
//! [`Node::census`]: crate::Node::census

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{
    exponential_buckets, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};

/// Every metric of the process.
pub struct Metrics {
    registry: Registry,
    /// `comet_connections{transport}`: connections held now (set when scraped).
    pub connections: IntGaugeVec,
    /// `comet_connections_opened_total{transport}`.
    pub connections_opened: IntCounterVec,
    /// `comet_connections_closed_total{code}`: connections closed, by the code of the
    /// close sent (a WebSocket client's own close: the code answered), or `client` when
    /// the transport ended without one (a SockJS or Socket.IO session that went away).
    pub connections_closed: IntCounterVec,
    /// `comet_subscriptions`: subscriptions of this process's connections (when scraped).
    pub subscriptions: IntGauge,
    /// `comet_channels`: channels with subscribers on this process (when scraped).
    pub channels: IntGauge,
    /// `comet_messages_received_total`: frames received from clients.
    pub messages_received: IntCounter,
    /// `comet_messages_published_total`: publishes this process sent to the hub.
    pub messages_published: IntCounter,
    /// `comet_messages_delivered_total`: channel messages written to subscribers.
    pub messages_delivered: IntCounter,
    /// `comet_bytes_delivered_total`: their bytes (frames as queued for the transports).
    pub bytes_delivered: IntCounter,
    /// `comet_actions_total{route,outcome}`: calls run by this process's workers.
    pub actions: IntCounterVec,
    /// `comet_action_duration_seconds{route}`: how long handlers took.
    pub action_duration: HistogramVec,
    /// `comet_actions_running`: calls running in this process's workers now.
    pub actions_running: IntGauge,
    /// `comet_actions_queued`: calls this process put on the queue (pushes).
    pub actions_queued: IntCounter,
    /// `comet_queue_errors_total`: pushes the queue refused (Redis down or stalled).
    pub queue_errors: IntCounter,
    /// `comet_queue_depth`: calls waiting in the queue for the routes this process runs
    /// (cluster-wide, read from the queue when scraped).
    pub queue_depth: IntGauge,
    /// `comet_slow_consumer_closes_total`.
    pub slow_consumer_closes: IntCounter,
    /// `comet_frames_dropped_total`: frames dropped for slow consumers (`drop-oldest`).
    pub frames_dropped: IntCounter,
    /// `comet_rate_limited_total`: frames refused by a rate limit.
    pub rate_limited: IntCounter,
    /// `comet_hub_errors_total`: publishes the hub failed (Redis down or stalled).
    pub hub_errors: IntCounter,
    /// `comet_hub_reconnects_total`: the hub's subscriber connection came back.
    pub hub_reconnects: IntCounter,
    /// `comet_history_reads_total`.
    pub history_reads: IntCounter,
    /// `comet_presence_reads_total`: `presence` and `presence_stats` reads.
    pub presence_reads: IntCounter,
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let counter = IntCounter::new(name, help).expect("a valid metric name");
    registry
        .register(Box::new(counter.clone()))
        .expect("registered once");
    counter
}

fn counters(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let counters = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric");
    registry
        .register(Box::new(counters.clone()))
        .expect("registered once");
    counters
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let gauge = IntGauge::new(name, help).expect("a valid metric name");
    registry
        .register(Box::new(gauge.clone()))
        .expect("registered once");
    gauge
}

impl Metrics {
    fn new() -> Metrics {
        let registry = Registry::new();
        let r = &registry;
        let connections = IntGaugeVec::new(
            Opts::new("comet_connections", "Connections held now, by transport"),
            &["transport"],
        )
        .expect("a valid metric");
        r.register(Box::new(connections.clone()))
            .expect("registered once");
        let action_duration = HistogramVec::new(
            HistogramOpts::new(
                "comet_action_duration_seconds",
                "How long action handlers took, by route",
            )
            // 100 µs to ~26 s.
            .buckets(exponential_buckets(0.0001, 4.0, 10).expect("valid buckets")),
            &["route"],
        )
        .expect("a valid metric");
        r.register(Box::new(action_duration.clone()))
            .expect("registered once");
        Metrics {
            connections,
            connections_opened: counters(
                r,
                "comet_connections_opened_total",
                "Connections opened, by transport",
                &["transport"],
            ),
            connections_closed: counters(
                r,
                "comet_connections_closed_total",
                "Connections the server closed, by close code",
                &["code"],
            ),
            subscriptions: gauge(r, "comet_subscriptions", "Subscriptions of connections now"),
            channels: gauge(
                r,
                "comet_channels",
                "Channels with subscribers on this process now",
            ),
            messages_received: counter(
                r,
                "comet_messages_received_total",
                "Frames received from clients",
            ),
            messages_published: counter(
                r,
                "comet_messages_published_total",
                "Messages this process published to channels",
            ),
            messages_delivered: counter(
                r,
                "comet_messages_delivered_total",
                "Channel messages written to subscribers",
            ),
            bytes_delivered: counter(
                r,
                "comet_bytes_delivered_total",
                "Bytes of channel messages written to subscribers",
            ),
            actions: counters(
                r,
                "comet_actions_total",
                "Action calls run here, by route and outcome (ok or the error code)",
                &["route", "outcome"],
            ),
            action_duration,
            actions_running: gauge(r, "comet_actions_running", "Action calls running now"),
            actions_queued: counter(
                r,
                "comet_actions_queued_total",
                "Action calls this process put on the queue",
            ),
            queue_depth: gauge(
                r,
                "comet_queue_depth",
                "Action calls waiting in the queue for the routes this process runs",
            ),
            queue_errors: counter(
                r,
                "comet_queue_errors_total",
                "Action calls the queue refused (Redis down or stalled)",
            ),
            slow_consumer_closes: counter(
                r,
                "comet_slow_consumer_closes_total",
                "Clients closed for not reading (4001)",
            ),
            frames_dropped: counter(
                r,
                "comet_frames_dropped_total",
                "Frames dropped for slow clients (slow_consumer drop-oldest)",
            ),
            rate_limited: counter(
                r,
                "comet_rate_limited_total",
                "Frames refused by a rate limit",
            ),
            hub_errors: counter(
                r,
                "comet_hub_errors_total",
                "Publishes the hub could not take (Redis down or stalled)",
            ),
            hub_reconnects: counter(
                r,
                "comet_hub_reconnects_total",
                "Times the hub's subscriber connection came back after losing Redis",
            ),
            history_reads: counter(r, "comet_history_reads_total", "History reads"),
            presence_reads: counter(
                r,
                "comet_presence_reads_total",
                "Presence reads (presence and presence_stats)",
            ),
            registry,
        }
    }

    /// The registry holding them all, for an exporter.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// A fan-out wrote `deliveries` frames of `bytes` bytes in all: two relaxed adds
    /// while metrics are served ([`count_deliveries`]), one relaxed load otherwise.
    #[inline]
    pub fn delivered(&self, deliveries: usize, bytes: usize) {
        if deliveries > 0 && COUNT_DELIVERIES.load(Ordering::Relaxed) {
            self.messages_delivered.inc_by(deliveries as u64);
            self.bytes_delivered.inc_by(bytes as u64);
        }
    }

    /// An action call ended after `took` with `outcome` (`ok`, or its error code).
    pub fn action_done(&self, route: &str, outcome: &str, took: Duration) {
        self.actions.with_label_values(&[route, outcome]).inc();
        self.action_duration
            .with_label_values(&[route])
            .observe(took.as_secs_f64());
    }
}

/// Whether fan-outs are counted: only while something serves the metrics, so that a
/// process without `--metrics-bind` pays one relaxed load per fan-out and nothing else.
static COUNT_DELIVERIES: AtomicBool = AtomicBool::new(false);

/// Turns on the counting of fan-out deliveries (`comet_messages_delivered_total`,
/// `comet_bytes_delivered_total`); an exporter calls it when it starts serving.
pub fn count_deliveries() {
    COUNT_DELIVERIES.store(true, Ordering::Relaxed);
}

/// The metrics of this process.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The registry of [`METRICS`], for an exporter.
///
/// ```
/// use prometheus::Encoder;
/// comet_actors::metrics::METRICS.messages_received.inc();
/// let mut text = Vec::new();
/// prometheus::TextEncoder::new()
///     .encode(&comet_actors::metrics::registry().gather(), &mut text)
///     .unwrap();
/// assert!(String::from_utf8(text).unwrap().contains("comet_messages_received_total"));
/// ```
pub fn registry() -> &'static Registry {
    METRICS.registry()
}
