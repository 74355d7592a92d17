//! Prometheus metrics at `GET /metrics`, on an address of its own (`cometd
//! --metrics-bind ADDR`, off by default) so that operators keep it off the public port.
//! The counters live in [`comet_actors::metrics`]; what is a state (connections by
//! transport, subscriptions, channels) is counted when scraped. The list, with what each
//! means: docs/DEPLOYMENT.md.
//!
//! An app with its own `HttpServer` mounts [`configure`] wherever it likes (with the
//! comet in the app's data, as [`serve`] does).

use std::io;

use actix_web::{web, App, HttpResponse, HttpServer};
use comet_actors::metrics::{registry, METRICS};
use prometheus::{Encoder, TextEncoder};

use crate::{Comet, Listeners};

/// Adds `GET /metrics` (needs `web::Data<Comet>` in the app) and turns on the counting
/// of fan-out deliveries.
pub fn configure(config: &mut web::ServiceConfig) {
    comet_actors::metrics::count_deliveries();
    config.route("/metrics", web::get().to(scrape));
}

/// Serves `GET /metrics` of `comet` on `listeners` (bound beforehand), in the background
/// of the running actix system, until the system stops.
pub fn serve(comet: Comet, listeners: Listeners) -> io::Result<()> {
    comet_actors::metrics::count_deliveries();
    let mut http = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(comet.clone()))
            .configure(configure)
    })
    .workers(1)
    .disable_signals();
    for socket in listeners.into_sockets() {
        http = http.listen(socket)?;
    }
    actix_web::rt::spawn(http.run());
    Ok(())
}

/// How long a scrape waits for the queue's depth (a Redis round trip) before it answers
/// with the last one.
const QUEUE_DEPTH_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

async fn scrape(comet: web::Data<Comet>) -> HttpResponse {
    let census = comet.node().census().await;
    METRICS.connections.reset();
    for (transport, count) in &census.transports {
        METRICS
            .connections
            .with_label_values(&[transport.as_str()])
            .set(i64::try_from(*count).unwrap_or(i64::MAX));
    }
    METRICS
        .subscriptions
        .set(i64::try_from(census.subscriptions()).unwrap_or(i64::MAX));
    METRICS
        .channels
        .set(i64::try_from(census.channels.len()).unwrap_or(i64::MAX));
    let depth = tokio::time::timeout(QUEUE_DEPTH_WITHIN, comet.node().queue_depth()).await;
    match depth {
        Ok(Ok(depth)) => METRICS
            .queue_depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX)),
        Ok(Err(err)) => log::debug!("metrics: no queue depth: {err}"),
        Err(_) => log::debug!("metrics: no queue depth within {QUEUE_DEPTH_WITHIN:?}"),
    }
    let encoder = TextEncoder::new();
    let mut text = Vec::new();
    match encoder.encode(&registry().gather(), &mut text) {
        Ok(()) => HttpResponse::Ok()
            .content_type(encoder.format_type())
            .body(text),
        Err(err) => {
            log::error!("metrics: cannot encode: {err}");
            HttpResponse::InternalServerError().body(err.to_string())
        }
    }
}
