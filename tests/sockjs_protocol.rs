//! SockJS protocol conformance, byte for byte, over real HTTP: the greeting, `/info`, the
//! iframe page, session URLs, xhr-polling and sending, CORS, methods, cookies and origins,
//! with the cases of the current sockjs-protocol suite (status, headers, body), against the
//! protocol's test services. Streaming transports: `sockjs_streaming.rs`.

mod sockjs_support;

use sockjs_support::{session, start};

#[actix_web::test]
async fn greeting_answers_on_both_urls() {
    let server = start().await;
    for url in ["/echo", "/echo/"] {
        let r = server.get(url).await;
        assert_eq!(r.status, 200);
        r.assert_content_type("text/plain; charset=UTF-8");
        assert_eq!(r.body, "Welcome to SockJS!\n");
        assert_eq!(r.header("set-cookie"), None);
    }
    for suffix in ["/a", "/a.html", "//", "///", "/a/a", "/a/a/"] {
        let r = server.get(&format!("/echo{suffix}")).await;
        assert_eq!(r.status, 404, "{suffix}");
    }
}

/// The iframe page, byte for byte: the client library first, then the bootstrap (the
/// layout the current sockjs-protocol suite and sockjs-node have).
const IFRAME_PAGE: &str = r#"<!DOCTYPE html>
<html>
<head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
  <script src="https://cdn.jsdelivr.net/npm/sockjs-client@1.6.1/dist/sockjs.min.js"></script>
  <script>
    document.domain = document.domain;
    SockJS.bootstrap_iframe();
  </script>
</head>
<body>
  <h2>Don't panic!</h2>
  <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>
</body>
</html>"#;

#[actix_web::test]
async fn iframe_page_is_cacheable_and_versioned() {
    let server = start().await;
    let mut etags = Vec::new();
    for suffix in [
        "/iframe.html",
        "/iframe-a.html",
        "/iframe-.html",
        "/iframe-0.1.2.html",
        "/iframe-0.1.2abc-dirty.2144.html",
        "/iframe-a.html?t=1234",
    ] {
        let r = server.get(&format!("/echo{suffix}")).await;
        assert_eq!(r.status, 200, "{suffix}");
        r.assert_content_type("text/html; charset=UTF-8");
        r.assert_cached_for_a_year();
        assert_eq!(r.header("last-modified"), None);
        assert_eq!(r.header("set-cookie"), None);
        assert_eq!(r.body, IFRAME_PAGE);
        etags.push(r.header("etag").expect("etag").to_owned());
    }
    assert!(etags.windows(2).all(|w| w[0] == w[1]), "one page, one etag");
    for suffix in [
        "/iframe.htm",
        "/iframe",
        "/IFRAME.HTML",
        "/IFRAME",
        "/iframe.HTML",
        "/iframe.xml",
        "/iframe-/.html",
    ] {
        assert_eq!(
            server.get(&format!("/echo{suffix}")).await.status,
            404,
            "{suffix}"
        );
    }
    let r = server
        .request(
            "GET",
            "/echo/iframe.html",
            &[("If-None-Match", &etags[0])],
            "",
        )
        .await
        .read_all()
        .await;
    assert_eq!(r.status, 304);
    assert_eq!(r.header("content-type"), None);
    assert_eq!(r.body, "");
}

#[actix_web::test]
async fn info_describes_the_server() {
    let server = start().await;
    let r = server.get("/echo/info").await;
    assert_eq!(r.status, 200);
    r.assert_content_type("application/json; charset=UTF-8");
    r.assert_not_cached();
    r.assert_cors(None);
    assert_eq!(r.header("set-cookie"), None);
    let info: serde_json::Value = serde_json::from_str(&r.body).expect("json");
    assert_eq!(info["websocket"], true);
    assert_eq!(info["cookie_needed"], false);
    assert_eq!(info["origins"], serde_json::json!(["*:*"]));
    let entropy = info["entropy"].as_u64().expect("entropy is an integer");
    assert!(entropy <= u64::from(u32::MAX));
    let again: serde_json::Value =
        serde_json::from_str(&server.get("/echo/info").await.body).expect("json");
    assert_ne!(again["entropy"], info["entropy"], "entropy is random");

    // A browser's request gets its origin back, with credentials.
    let r = server
        .request("GET", "/echo/info", &[("Origin", "test")], "")
        .await
        .read_all()
        .await;
    assert_eq!(r.status, 200);
    r.assert_not_cached();
    r.assert_cors(Some("test"));

    let off: serde_json::Value =
        serde_json::from_str(&server.get("/disabled_websocket_echo/info").await.body)
            .expect("json");
    assert_eq!(off["websocket"], false);
    let r = server.get("/cookie_needed_echo/info").await;
    assert_eq!(r.header("set-cookie"), None);
    let cookie: serde_json::Value = serde_json::from_str(&r.body).expect("json");
    assert_eq!(cookie["cookie_needed"], true);
}

/// OPTIONS answers: 204, cacheable, CORS for no origin (`*`, no credentials), a real one
/// and `null` (both echoed, with credentials: `file://` pages send `null`).
async fn assert_options(server: &sockjs_support::TestServer, path: &str, methods: &str) {
    for origin in [None, Some("test"), Some("null")] {
        let headers: Vec<(&str, &str)> = origin.iter().map(|o| ("Origin", *o)).collect();
        let r = server
            .request("OPTIONS", path, &headers, "")
            .await
            .read_all()
            .await;
        assert_eq!(r.status, 204, "{path}");
        r.assert_cached_for_a_year();
        let max_age: u64 = r
            .header("access-control-max-age")
            .expect("max-age")
            .parse()
            .expect("number");
        assert!(max_age > 1_000_000);
        assert_eq!(r.header("access-control-allow-methods"), Some(methods));
        assert_eq!(r.body, "");
        r.assert_cors(origin);
    }
}

#[actix_web::test]
async fn options_are_answered_for_info_and_xhr() {
    let server = start().await;
    assert_options(&server, "/echo/info", "OPTIONS, GET").await;
    for suffix in ["xhr", "xhr_send", "xhr_streaming"] {
        assert_options(&server, &format!("/echo/abc/abc/{suffix}"), "OPTIONS, POST").await;
    }
}

#[actix_web::test]
async fn session_urls_take_any_id_but_no_dots() {
    let server = start().await;
    for part in ["/a/a", "/_/_", "/1/1", "/abcdefgh_i-j%20/abcdefg_i-j%20"] {
        let r = server.post(&format!("/echo{part}/xhr"), "").await;
        assert_eq!((r.status, r.body.as_str()), (200, "o\n"), "{part}");
    }
    for part in ["//", "/a./a", "/a/a.", "/./.", "/", "///"] {
        let url = format!("/echo{part}/xhr");
        assert_eq!(server.get(&url).await.status, 404, "GET {part}");
        assert_eq!(server.post(&url, "").await.status, 404, "POST {part}");
    }
    // Only the session id names a session; the server id is for load balancers.
    let id = uuid::Uuid::new_v4().simple().to_string();
    assert_eq!(
        server.post(&format!("/echo/000/{id}/xhr"), "").await.body,
        "o\n"
    );
    assert_eq!(
        server
            .post(&format!("/echo/000/{id}/xhr_send"), "[\"a\"]")
            .await
            .status,
        204
    );
    assert_eq!(
        server.post(&format!("/echo/999/{id}/xhr"), "").await.body,
        "a[\"a\"]\n"
    );
}

#[actix_web::test]
async fn xhr_polling_session() {
    let server = start().await;
    let url = session("/echo");
    let r = server.post(&format!("{url}/xhr"), "").await;
    assert_eq!((r.status, r.body.as_str()), (200, "o\n"));
    r.assert_content_type("application/javascript; charset=UTF-8");
    r.assert_cors(None);
    r.assert_not_cached();

    // A frame without messages (a client's heartbeat) is taken and delivers nothing.
    let r = server.post(&format!("{url}/xhr_send"), "[]").await;
    assert_eq!((r.status, r.body.as_str()), (204, ""));
    let r = server.post(&format!("{url}/xhr_send"), "[\"x\"]").await;
    assert_eq!((r.status, r.body.as_str()), (204, ""));
    r.assert_content_type("text/plain; charset=UTF-8");
    r.assert_cors(None);
    r.assert_not_cached();

    let r = server.post(&format!("{url}/xhr"), "").await;
    assert_eq!((r.status, r.body.as_str()), (200, "a[\"x\"]\n"));

    // Sending to a session that does not exist is 404.
    assert_eq!(
        server
            .post("/echo/000/bad_session/xhr_send", "[\"x\"]")
            .await
            .status,
        404
    );

    // A second receiver while one waits gets 2010; the first stays.
    let first = server.request("POST", &format!("{url}/xhr"), &[], "").await;
    let r = server.post(&format!("{url}/xhr"), "").await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (200, "c[2010,\"Another connection still open\"]\n")
    );
    assert_eq!(
        server
            .post(&format!("{url}/xhr_send"), "[\"y\"]")
            .await
            .status,
        204
    );
    assert_eq!(first.read_all().await.body, "a[\"y\"]\n");
}

#[actix_web::test]
async fn closed_session_keeps_answering_its_close_frame() {
    let server = start().await;
    let url = session("/close");
    assert_eq!(server.post(&format!("{url}/xhr"), "").await.body, "o\n");
    for _ in 0..2 {
        let r = server.post(&format!("{url}/xhr"), "").await;
        assert_eq!((r.status, r.body.as_str()), (200, "c[3000,\"Go away!\"]\n"));
    }
    let url = session("/close");
    assert_eq!(
        server.get(&format!("{url}/jsonp?c=x")).await.body,
        "/**/x(\"o\");\r\n"
    );
    for _ in 0..2 {
        let r = server.get(&format!("{url}/jsonp?c=x")).await;
        assert_eq!(r.body, "/**/x(\"c[3000,\\\"Go away!\\\"]\");\r\n");
    }
}

#[actix_web::test]
async fn xhr_send_refuses_bad_payloads() {
    let server = start().await;
    let url = session("/echo");
    assert_eq!(server.post(&format!("{url}/xhr"), "").await.body, "o\n");
    let r = server.post(&format!("{url}/xhr_send"), "[\"x").await;
    assert_eq!((r.status, r.body.as_str()), (500, "Broken JSON encoding."));
    for empty in ["", "null", "{}"] {
        let r = server.post(&format!("{url}/xhr_send"), empty).await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (500, "Payload expected."),
            "{empty:?}"
        );
    }
    let content_types = [
        "text/plain",
        "T",
        "application/json",
        "application/xml",
        "",
        "application/json; charset=utf-8",
        "text/xml; charset=utf-8",
        "text/xml",
    ];
    for content_type in content_types {
        let headers = [("Content-Type", content_type)];
        let r = server
            .request("POST", &format!("{url}/xhr_send"), &headers, "[\"a\"]")
            .await
            .read_all()
            .await;
        assert_eq!((r.status, r.body.as_str()), (204, ""), "{content_type}");
    }
    let r = server.post(&format!("{url}/xhr"), "").await;
    let expected = format!("a[{}]\n", vec!["\"a\""; content_types.len()].join(","));
    assert_eq!(r.body, expected);
    // Bodies above the transport cap (`Limits::transport_cap`, 1 MiB by default) are
    // refused before they are read whole.
    let url = session("/echo");
    assert_eq!(server.post(&format!("{url}/xhr"), "").await.body, "o\n");
    let big = format!("[\"{}\"]", "x".repeat(1024 * 1024));
    assert_eq!(
        server.post(&format!("{url}/xhr_send"), &big).await.status,
        413
    );
}

#[actix_web::test]
async fn cors_echoes_requested_headers() {
    let server = start().await;
    let cases = [
        (Some("a, b, c"), Some("a, b, c")),
        (Some(""), None),
        (None, None),
    ];
    for (asked, allowed) in cases {
        let headers: Vec<(&str, &str)> = asked
            .iter()
            .map(|a| ("Access-Control-Request-Headers", *a))
            .collect();
        let r = server
            .request("POST", &format!("{}/xhr", session("/echo")), &headers, "")
            .await
            .read_all()
            .await;
        assert_eq!(r.status, 200);
        r.assert_cors(None);
        assert_eq!(r.header("access-control-allow-headers"), allowed);
    }
    let origin = [("Origin", "http://example.test")];
    let r = server
        .request("POST", &format!("{}/xhr", session("/echo")), &origin, "")
        .await
        .read_all()
        .await;
    r.assert_cors(Some("http://example.test"));
}

#[actix_web::test]
async fn wrong_methods_get_405_with_allow() {
    let server = start().await;
    let cases = [
        ("GET", "xhr", "OPTIONS, POST"),
        ("GET", "xhr_send", "OPTIONS, POST"),
        ("PUT", "xhr_streaming", "OPTIONS, POST"),
        ("POST", "eventsource", "GET"),
        ("POST", "htmlfile", "GET"),
        ("POST", "jsonp", "GET"),
        ("GET", "jsonp_send", "POST"),
        ("POST", "websocket", "GET"),
        ("DELETE", "info", "OPTIONS, GET"),
    ];
    for (method, transport, allow) in cases {
        let path = if transport == "info" {
            "/echo/info".to_owned()
        } else {
            format!("/echo/a/a/{transport}")
        };
        let r = server
            .request(method, &path, &[], "")
            .await
            .read_all()
            .await;
        assert_eq!(r.status, 405, "{method} {transport}");
        assert_eq!(r.header("allow"), Some(allow));
        assert_eq!(r.header("content-type"), None);
        assert_eq!(r.body, "");
    }
    assert_eq!(server.post("/echo/a/a/nothing", "").await.status, 404);
}

#[actix_web::test]
async fn jsessionid_cookie_when_needed() {
    let server = start().await;
    let cookie = |r: &sockjs_support::Response| r.header("set-cookie").map(str::to_owned);
    let url = session("/cookie_needed_echo");
    let r = server.post(&format!("{url}/xhr"), "").await;
    assert_eq!((r.status, r.body.as_str()), (200, "o\n"));
    assert_eq!(cookie(&r).as_deref(), Some("JSESSIONID=dummy; path=/"));
    let r = server
        .request(
            "POST",
            &format!("{}/xhr", session("/cookie_needed_echo")),
            &[("Cookie", "JSESSIONID=abcdef")],
            "",
        )
        .await
        .read_all()
        .await;
    assert_eq!(cookie(&r).as_deref(), Some("JSESSIONID=abcdef; path=/"));
    for (method, transport) in [
        ("POST", "xhr_streaming"),
        ("GET", "eventsource"),
        ("GET", "htmlfile?c=callback"),
        ("GET", "jsonp?c=callback"),
    ] {
        let path = format!("{}/{transport}", session("/cookie_needed_echo"));
        let r = server.request(method, &path, &[], "").await;
        assert_eq!(r.status, 200, "{transport}");
        assert_eq!(
            cookie(&r).as_deref(),
            Some("JSESSIONID=dummy; path=/"),
            "{transport}"
        );
    }
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let url = session("/cookie_needed_echo");
    assert_eq!(
        server.get(&format!("{url}/jsonp?c=x")).await.body,
        "/**/x(\"o\");\r\n"
    );
    let r = server
        .request(
            "POST",
            &format!("{url}/jsonp_send"),
            &form,
            "d=%5B%22x%22%5D",
        )
        .await;
    assert_eq!(cookie(&r).as_deref(), Some("JSESSIONID=dummy; path=/"));
    // Without cookie_needed, none.
    assert_eq!(
        cookie(&server.post(&format!("{}/xhr", session("/echo")), "").await),
        None
    );
}

#[actix_web::test]
async fn origins_restrict_browsers() {
    let server = start().await;
    let evil = [("Origin", "http://evil.test")];
    let good = [("Origin", "https://good.test:8443")];
    let url = session("/strict_echo");
    let r = server
        .request("POST", &format!("{url}/xhr"), &evil, "")
        .await
        .read_all()
        .await;
    assert_eq!((r.status, r.body.as_str()), (403, "Origin not allowed."));
    assert_eq!(
        server
            .request("GET", "/strict_echo/info", &evil, "")
            .await
            .status,
        403
    );
    let r = server
        .request("POST", &format!("{url}/xhr"), &good, "")
        .await
        .read_all()
        .await;
    assert_eq!((r.status, r.body.as_str()), (200, "o\n"));
    r.assert_cors(Some("https://good.test:8443"));
    let info = server
        .request("GET", "/strict_echo/info", &good, "")
        .await
        .read_all()
        .await;
    let info: serde_json::Value = serde_json::from_str(&info.body).expect("json");
    assert_eq!(info["origins"], serde_json::json!(["good.test:*"]));
    // Not a browser: no Origin, no check.
    assert_eq!(
        server
            .post(&format!("{}/xhr", session("/strict_echo")), "")
            .await
            .status,
        200
    );
}
