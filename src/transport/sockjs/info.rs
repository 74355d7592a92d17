//! The endpoint's static resources: the greeting (`<prefix>` and `<prefix>/`), `/info`
//! (what the server supports, and the client's round-trip probe) and the iframe page
//! (`/iframe.html`, `/iframe-<version>.html`) used by the iframe-based transports.

use actix_web::http::{header, Method};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use sha1::{Digest, Sha1};

use super::headers::{self, HTML, TEXT};
use super::Endpoint;

/// `GET <prefix>` and `GET <prefix>/`.
pub(crate) async fn greeting() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(TEXT)
        .body("Welcome to SockJS!\n")
}

/// `GET|OPTIONS <prefix>/info`.
pub(crate) async fn info(req: HttpRequest, endpoint: web::Data<Endpoint>) -> HttpResponse {
    let config = &endpoint.config;
    if let Some(refusal) = headers::refuse_origin(config, &req) {
        return refusal;
    }
    match *req.method() {
        Method::GET => {
            let body = json!({
                "websocket": config.websocket,
                "cookie_needed": config.cookie_needed,
                "origins": config.origins,
                "entropy": rand::random::<u32>(),
            });
            let mut res = HttpResponse::Ok();
            res.content_type("application/json; charset=UTF-8");
            headers::no_cache(&mut res);
            headers::cors(&mut res, &req);
            res.body(body.to_string())
        }
        Method::OPTIONS => headers::options(&req, "OPTIONS, GET").finish(),
        _ => headers::method_not_allowed("OPTIONS, GET"),
    }
}

/// The iframe page, rendered once per endpoint with its strong ETag.
pub(crate) struct IframePage {
    body: String,
    etag: String,
}

impl IframePage {
    /// The page loading the client library from `sockjs_url`.
    pub(crate) fn new(sockjs_url: &str) -> IframePage {
        let body = format!(
            r#"<!DOCTYPE html>
<html>
<head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
  <script src="{sockjs_url}"></script>
  <script>
    document.domain = document.domain;
    SockJS.bootstrap_iframe();
  </script>
</head>
<body>
  <h2>Don't panic!</h2>
  <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>
</body>
</html>"#
        );
        let digest = Sha1::digest(body.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        IframePage {
            body,
            etag: format!("\"{hex}\""),
        }
    }
}

/// `GET <prefix>/iframe*.html`.
pub(crate) async fn iframe(req: HttpRequest, endpoint: web::Data<Endpoint>) -> HttpResponse {
    let page = &endpoint.iframe;
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .is_some_and(|tag| tag.as_bytes() == page.etag.as_bytes());
    if fresh {
        return HttpResponse::NotModified().finish();
    }
    let mut res = HttpResponse::Ok();
    res.content_type(HTML);
    headers::cache_for_a_year(&mut res);
    res.insert_header((header::ETAG, page.etag.clone()));
    res.body(page.body.clone())
}
