//! The admin page at `<prefix>/admin`: the cluster's processes, live charts of
//! connections and messages per second, the busiest channels, a form to publish and to
//! look up presence and history. Off unless `--admin-password` or an API key is set;
//! the page signs in with either, and talks to `<prefix>/admin/api/<method>`, which
//! takes the same methods as the HTTP server API (see docs/API.md) plus `stats`.
//!
//! Its files (`index.html`, `admin.js`, `chart.js`, `admin.css` beside this one) are
//! ours, embedded in the binary and served as they are: no build step, no CDN, nothing
//! third-party. `chart.js` draws the charts on SVG.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use comet_actors::metrics::METRICS;
use serde_json::{json, Value};

use crate::Comet;

/// One file of the page.
struct Asset {
    path: &'static str,
    body: &'static str,
    content_type: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "/admin",
        body: include_str!("index.html"),
        content_type: "text/html; charset=utf-8",
    },
    Asset {
        path: "/admin/admin.js",
        body: include_str!("admin.js"),
        content_type: "text/javascript; charset=utf-8",
    },
    Asset {
        path: "/admin/chart.js",
        body: include_str!("chart.js"),
        content_type: "text/javascript; charset=utf-8",
    },
    Asset {
        path: "/admin/admin.css",
        body: include_str!("admin.css"),
        content_type: "text/css; charset=utf-8",
    },
];

/// Adds the page's files and `POST /admin/api/{method}` to comet's scope.
pub(crate) fn configure(config: &mut web::ServiceConfig) {
    for asset in ASSETS {
        config.route(
            asset.path,
            web::get().to(move |comet: web::Data<Comet>| async move {
                if secrets(&comet).is_empty() {
                    return HttpResponse::NotFound().finish();
                }
                HttpResponse::Ok()
                    .content_type(asset.content_type)
                    .insert_header((header::CACHE_CONTROL, "no-cache"))
                    // The page runs our files only, and talks to its own origin only.
                    .insert_header((
                        header::CONTENT_SECURITY_POLICY,
                        "default-src 'self'; style-src 'self'; img-src 'self' data:",
                    ))
                    .insert_header((header::X_FRAME_OPTIONS, "DENY"))
                    .body(asset.body)
            }),
        );
    }
    config.route("/admin/api/{method}", web::post().to(call));
}

/// What signs in: the admin password and the API key, whichever are set.
fn secrets(comet: &Comet) -> Vec<String> {
    let settings = comet.settings();
    [&settings.admin_password, &settings.api_key]
        .into_iter()
        .flatten()
        .cloned()
        .collect()
}

async fn call(
    comet: web::Data<Comet>,
    request: HttpRequest,
    method: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let secrets = secrets(&comet);
    if secrets.is_empty() {
        return HttpResponse::NotFound().finish();
    }
    let keys: Vec<&str> = secrets.iter().map(String::as_str).collect();
    crate::api::answer(&comet, &request, &method, payload, &keys, stats).await
}

/// `stats`: this process's message counters, for the page's messages-per-second chart.
fn stats(comet: &Comet, method: &str) -> Option<Value> {
    (method == "stats").then(|| {
        json!({
            "process": comet.id(),
            "received": METRICS.messages_received.get(),
            "published": METRICS.messages_published.get(),
            "delivered": METRICS.messages_delivered.get(),
        })
    })
}
