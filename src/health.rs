//! Health checks for load balancers and orchestrators, under comet's scope:
//!
//! | request | answer |
//! | --- | --- |
//! | `GET <prefix>/health/live` | 200 `{"status":"live"}` while the process serves HTTP |
//! | `GET <prefix>/health/ready` | 200 `{"status":"ready","hub":"ok","queue":"ok","draining":false}` when the hub and the queue answer a ping (Redis `PING`, at most 2 s each) and the process is not shutting down; else 503 `{"status":"unavailable",…}` with each failing part's reason |
//!
//! Liveness never looks at Redis: a process that lost Redis keeps serving its own clients
//! and catches up when Redis is back, so restarting it would not help; readiness takes it
//! out of a load balancer meanwhile.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::Comet;

/// Adds `/health/live` and `/health/ready` to comet's scope.
pub(crate) fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/health/live", web::get().to(live))
        .route("/health/ready", web::get().to(ready));
}

async fn live() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(json!({ "status": "live" }))
}

async fn ready(comet: web::Data<Comet>) -> HttpResponse {
    let health = comet.node().health().await;
    let draining = comet.is_draining();
    let part = |result: &Result<(), String>| match result {
        Ok(()) => "ok".to_owned(),
        Err(why) => why.clone(),
    };
    let ready = health.is_ready() && !draining;
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "hub": part(&health.hub),
        "queue": part(&health.queue),
        "draining": draining,
    });
    let mut response = if ready {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    response
        .insert_header(("cache-control", "no-store"))
        .json(body)
}
