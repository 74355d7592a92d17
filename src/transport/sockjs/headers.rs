//! The HTTP side of SockJS responses: CORS, caching (never for session traffic, a year
//! for the iframe page and OPTIONS answers), the `JSESSIONID` cookie, and the plain
//! error responses the protocol specifies.

use std::time::{Duration, SystemTime};

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};

use super::config::SockJsConfig;

/// One year, the cache lifetime SockJS asks for.
const YEAR: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// `text/plain; charset=UTF-8`.
pub(crate) const TEXT: &str = "text/plain; charset=UTF-8";
/// `application/javascript; charset=UTF-8`.
pub(crate) const JAVASCRIPT: &str = "application/javascript; charset=UTF-8";
/// `text/html; charset=UTF-8`.
pub(crate) const HTML: &str = "text/html; charset=UTF-8";

/// The request's `Origin` header, if it has one (empty if it is not text).
fn origin(req: &HttpRequest) -> Option<&str> {
    // An `Origin` that is not text matches no pattern (but is still a browser's).
    req.headers()
        .get(header::ORIGIN)
        .map(|o| o.to_str().unwrap_or(""))
}

/// `Cache-Control` of session traffic and `/info`.
pub(crate) const NO_CACHE: &str = "no-store, no-cache, no-transform, must-revalidate, max-age=0";

/// Session traffic and `/info` must never be cached (iOS 6 even caches POSTs), nor
/// rewritten by a proxy on the way (`no-transform`: a compressing or buffering proxy
/// would hold back a stream's frames).
pub(crate) fn no_cache(res: &mut HttpResponseBuilder) {
    res.insert_header((header::CACHE_CONTROL, NO_CACHE));
}

/// The iframe page and OPTIONS answers are cached for a year.
pub(crate) fn cache_for_a_year(res: &mut HttpResponseBuilder) {
    res.insert_header((
        header::CACHE_CONTROL,
        format!("public, max-age={}", YEAR.as_secs()),
    ));
    res.insert_header(header::Expires((SystemTime::now() + YEAR).into()));
}

/// CORS for the XHR transports and `/info`, as sockjs-node answers: a request with an
/// `Origin` gets that origin back (`null` too, as `file://` pages send it) with
/// credentials allowed, so that cookies (`JSESSIONID`) flow; one without gets `*` and no
/// credentials (a wildcard with credentials is refused by browsers anyway).
pub(crate) fn cors(res: &mut HttpResponseBuilder, req: &HttpRequest) {
    match req.headers().get(header::ORIGIN) {
        Some(origin) => {
            res.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone()));
            res.insert_header((header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true"));
        }
        None => {
            res.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"));
        }
    }
    res.insert_header((header::VARY, "Origin"));
    if let Some(asked) = req
        .headers()
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .filter(|h| !h.is_empty())
    {
        res.insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone()));
    }
}

/// With `cookie_needed`, every session response sets `JSESSIONID` (echoing the client's,
/// or `dummy`), so that a sticky load balancer sees one.
pub(crate) fn session_cookie(
    res: &mut HttpResponseBuilder,
    req: &HttpRequest,
    config: &SockJsConfig,
) {
    if !config.cookie_needed {
        return;
    }
    let value = req
        .cookie("JSESSIONID")
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "dummy".to_owned());
    if let Ok(cookie) = HeaderValue::from_str(&format!("JSESSIONID={value}; path=/")) {
        res.insert_header((header::SET_COOKIE, cookie));
    }
}

/// An OPTIONS answer for a resource allowing `methods`.
pub(crate) fn options(req: &HttpRequest, methods: &'static str) -> HttpResponseBuilder {
    let mut res = HttpResponse::NoContent();
    cache_for_a_year(&mut res);
    cors(&mut res, req);
    res.insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, methods));
    res.insert_header((header::ACCESS_CONTROL_MAX_AGE, YEAR.as_secs().to_string()));
    res
}

/// A plain-text error, as the protocol specifies them (e.g. 500 "Payload expected.").
pub(crate) fn error(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(TEXT)
        .body(message.to_owned())
}

/// 404 without a body.
pub(crate) fn not_found() -> HttpResponse {
    HttpResponse::NotFound().finish()
}

/// 405 with `Allow` and nothing else.
pub(crate) fn method_not_allowed(allow: &'static str) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, allow))
        .finish()
}

/// 403 `Origin not allowed.` for a browser request from an origin not in the allowed
/// `origins`; `None` when the request may go on. Every endpoint of comet asks this, the
/// raw WebSocket one included, so one list of origins guards them all.
pub(crate) fn refuse_origin(config: &SockJsConfig, req: &HttpRequest) -> Option<HttpResponse> {
    let origin = origin(req);
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|host| host.to_str().ok());
    if config.origin_allowed_at(origin, host) {
        return None;
    }
    log::info!("refused a request from origin {origin:?} to {}", req.path());
    Some(error(StatusCode::FORBIDDEN, "Origin not allowed."))
}
