//! SockJS conformance, byte for byte, for the streaming and script transports
//! (xhr-streaming, eventsource, htmlfile, jsonp), string escaping, and HTTP/1.0 and 1.1
//! framing: the cases of the current sockjs-protocol suite, read chunk by chunk.

mod sockjs_support;

use sockjs_support::{session, start};

#[actix_web::test]
async fn xhr_streaming_prelude_frames_and_response_limit() {
    let server = start().await;
    let url = session("/echo");
    let mut r = server
        .request("POST", &format!("{url}/xhr_streaming"), &[], "")
        .await;
    assert_eq!(r.status, 200);
    r.assert_content_type("application/javascript; charset=UTF-8");
    r.assert_cors(None);
    r.assert_not_cached();
    assert_eq!(
        r.chunk().await.as_deref(),
        Some(&*format!("{}\n", "h".repeat(2048)))
    );
    assert_eq!(r.chunk().await.as_deref(), Some("o\n"));
    // 31 messages of 130 bytes framed take the stream past the 4,096-byte limit.
    let message = format!("\"{}\"", "x".repeat(128));
    for _ in 0..31 {
        let sent = server
            .post(&format!("{url}/xhr_send"), &format!("[{message}]"))
            .await;
        assert_eq!(sent.status, 204);
        assert_eq!(r.chunk().await, Some(format!("a[{message}]\n")));
    }
    assert_eq!(r.chunk().await, None, "the stream ends after the limit");
    // The session lives on: the next request picks up.
    assert_eq!(
        server
            .post(&format!("{url}/xhr_send"), "[\"z\"]")
            .await
            .status,
        204
    );
    assert_eq!(
        server.post(&format!("{url}/xhr"), "").await.body,
        "a[\"z\"]\n"
    );
}

#[actix_web::test]
async fn eventsource_frames_and_response_limit() {
    let server = start().await;
    let url = session("/echo");
    let mut r = server
        .request("GET", &format!("{url}/eventsource"), &[], "")
        .await;
    assert_eq!(r.status, 200);
    // Exactly this, without a charset (EventSource is always UTF-8).
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    r.assert_not_cached();
    assert_eq!(r.chunk().await.as_deref(), Some("\r\n"));
    assert_eq!(r.chunk().await.as_deref(), Some("data: o\r\n\r\n"));
    assert_eq!(
        server
            .post(&format!("{url}/xhr_send"), "[\"x\"]")
            .await
            .status,
        204
    );
    assert_eq!(r.chunk().await.as_deref(), Some("data: a[\"x\"]\r\n\r\n"));
    let tricky = r#"["  \u0000\n\r 100%"]"#;
    assert_eq!(
        server.post(&format!("{url}/xhr_send"), tricky).await.status,
        204
    );
    assert_eq!(
        r.chunk().await.as_deref(),
        Some("data: a[\"  \\u0000\\n\\r 100%25\"]\r\n\r\n")
    );
    let big = "x".repeat(4096);
    assert_eq!(
        server
            .post(&format!("{url}/xhr_send"), &format!("[\"{big}\"]"))
            .await
            .status,
        204
    );
    assert_eq!(r.chunk().await, Some(format!("data: a[\"{big}\"]\r\n\r\n")));
    assert_eq!(r.chunk().await, None);
}

#[actix_web::test]
async fn htmlfile_frames_callback_checks_and_response_limit() {
    let server = start().await;
    let url = session("/echo");
    let mut r = server
        .request("GET", &format!("{url}/htmlfile?c=%63allback"), &[], "")
        .await;
    assert_eq!(r.status, 200);
    r.assert_content_type("text/html; charset=UTF-8");
    r.assert_not_cached();
    let page = r.chunk().await.expect("prelude");
    assert!(page.len() > 1024);
    let expected_head = "<!doctype html>\n<html><head>\n  <meta http-equiv=\"X-UA-Compatible\" content=\"IE=edge\" />\n  <meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n</head><body><h2>Don't panic!</h2>\n  <script>\n    document.domain = document.domain;\n    var c = parent.callback;\n    c.start();\n    function p(d) {c.message(d);};\n    window.onload = function() {c.stop();};\n  </script>";
    assert_eq!(page.trim(), expected_head);
    assert_eq!(
        r.chunk().await.as_deref(),
        Some("<script>\np(\"o\");\n</script>\r\n")
    );
    assert_eq!(
        server
            .post(&format!("{url}/xhr_send"), "[\"x\"]")
            .await
            .status,
        204
    );
    assert_eq!(
        r.chunk().await.as_deref(),
        Some("<script>\np(\"a[\\\"x\\\"]\");\n</script>\r\n")
    );
    let big = "x".repeat(4096);
    assert_eq!(
        server
            .post(&format!("{url}/xhr_send"), &format!("[\"{big}\"]"))
            .await
            .status,
        204
    );
    assert_eq!(
        r.chunk().await,
        Some(format!("<script>\np(\"a[\\\"{big}\\\"]\");\n</script>\r\n"))
    );
    assert_eq!(r.chunk().await, None);

    for (query, message) in [
        ("", "\"callback\" parameter required"),
        ("?c=", "\"callback\" parameter required"),
        ("?c=alert(1)", "invalid \"callback\" parameter"),
        ("?callback=a-b", "invalid \"callback\" parameter"),
        ("?c=%20", "invalid \"callback\" parameter"),
        ("?c=*", "invalid \"callback\" parameter"),
        ("?c=abc(", "invalid \"callback\" parameter"),
        ("?c=abc%28", "invalid \"callback\" parameter"),
    ] {
        for transport in ["htmlfile", "jsonp"] {
            let r = server.get(&format!("/echo/a/a/{transport}{query}")).await;
            assert_eq!(
                (r.status, r.body.as_str()),
                (500, message),
                "{transport}{query}"
            );
        }
    }
}

#[actix_web::test]
async fn jsonp_polling_and_sending() {
    let server = start().await;
    let url = session("/echo");
    let r = server.get(&format!("{url}/jsonp?c=%63allback")).await;
    assert_eq!(r.status, 200);
    r.assert_content_type("application/javascript; charset=UTF-8");
    r.assert_not_cached();
    // The leading comment guards against Rosetta Flash (a callback that is a SWF file).
    assert_eq!(r.body, "/**/callback(\"o\");\r\n");
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    const FORM: &[(&str, &str)] = &[("Content-Type", "application/x-www-form-urlencoded")];
    let form = FORM;
    let send = |body: &'static str, headers: &'static [(&'static str, &'static str)]| {
        let path = format!("{url}/jsonp_send");
        let server = &server;
        async move {
            server
                .request("POST", &path, headers, body)
                .await
                .read_all()
                .await
        }
    };
    let r = send("d=%5B%22x%22%5D", form).await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    r.assert_content_type("text/plain; charset=UTF-8");
    r.assert_not_cached();
    assert_eq!(
        server.get(&format!("{url}/jsonp?c=%63allback")).await.body,
        "/**/callback(\"a[\\\"x\\\"]\");\r\n"
    );

    // A frame without messages (a client's heartbeat) is fine, and delivers nothing.
    let r = send("d=%5B%5D", form).await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    assert_eq!(send("d=%5B%22y%22%5D", form).await.body, "ok");
    assert_eq!(
        server.get(&format!("{url}/jsonp?c=x")).await.body,
        "/**/x(\"a[\\\"y\\\"]\");\r\n"
    );

    let r = send("d=%5B%22x", form).await;
    assert_eq!((r.status, r.body.as_str()), (500, "Broken JSON encoding."));
    for empty in ["", "d=", "p=p"] {
        let r = server
            .request("POST", &format!("{url}/jsonp_send"), form, empty)
            .await
            .read_all()
            .await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (500, "Payload expected."),
            "{empty:?}"
        );
    }
    assert_eq!(send("d=%5B%22abc%22%5D", form).await.body, "ok");
    assert_eq!(
        send("[\"%61bc\"]", &[("Content-Type", "text/plain")])
            .await
            .body,
        "ok"
    );
    let r = server.get(&format!("{url}/jsonp?c=x")).await;
    assert_eq!(r.body, "/**/x(\"a[\\\"abc\\\",\\\"%61bc\\\"]\");\r\n");
    assert_eq!(send("[\"x\"]", &[]).await.status, 200);
    assert_eq!(
        server
            .request("POST", "/echo/000/nobody/jsonp_send", form, "d=%5B%5D")
            .await
            .status,
        404
    );
}

#[actix_web::test]
async fn unicode_is_escaped_as_sockjs_node_does() {
    let server = start().await;
    // Every character the server must escape, from U+00FF up, sent raw.
    let must_escape =
        |c: u32| matches!(c, 0x200c..=0x200f | 0x2028..=0x202f | 0x2060..=0x206f | 0xfff0..=0xffff);
    let chars: Vec<char> = (0xffu32..=0xffff)
        .filter(|&c| must_escape(c))
        .filter_map(char::from_u32)
        .collect();
    let raw: String = chars.iter().collect();
    let escaped: String = chars
        .iter()
        .map(|&c| format!("\\u{:04x}", c as u32))
        .collect();
    let url = session("/echo");
    assert_eq!(server.post(&format!("{url}/xhr"), "").await.body, "o\n");
    assert_eq!(
        server
            .post(&format!("{url}/xhr_send"), &format!("[\"{raw}\"]"))
            .await
            .status,
        204
    );
    let r = server.post(&format!("{url}/xhr"), "").await;
    assert_eq!(r.body, format!("a[\"{escaped}\"]\n"));

    // What clients escape comes back as the same characters (escaped or not).
    let client_escaped: String = (0u32..0x20)
        .chain(0x7f..0xa0)
        .chain([0xad, 0x2000, 0x20ff, 0xfeff, 0xfffe])
        .map(|c| format!("\\u{c:04x}"))
        .collect();
    assert_eq!(
        server
            .post(
                &format!("{url}/xhr_send"),
                &format!("[\"{client_escaped}\"]")
            )
            .await
            .status,
        204
    );
    let r = server.post(&format!("{url}/xhr"), "").await;
    let body = r
        .body
        .strip_prefix('a')
        .and_then(|b| b.strip_suffix('\n'))
        .expect("a frame");
    let got: Vec<String> = serde_json::from_str(body).expect("json array");
    let sent: String = serde_json::from_str(&format!("\"{client_escaped}\"")).expect("json string");
    assert_eq!(got, vec![sent]);
}

#[actix_web::test]
async fn http_1_0_and_1_1_framing() {
    let server = start().await;
    // HTTP/1.0 knows no chunked encoding: a stream ends with its connection.
    let url = session("/close");
    let headers = [("Connection", "Keep-Alive")];
    let r = sockjs_support::request_version(
        server.addr,
        "1.0",
        "POST",
        &format!("{url}/xhr_streaming"),
        &headers,
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("transfer-encoding"), None);
    assert_eq!(r.header("content-length"), None);
    let connection = r.header("connection").map(str::to_ascii_lowercase);
    assert!(
        matches!(connection.as_deref(), None | Some("close")),
        "{connection:?}"
    );
    let body = r.read_all().await.body;
    assert_eq!(
        body,
        format!("{}\no\nc[3000,\"Go away!\"]\n", "h".repeat(2048))
    );
    // HTTP/1.1 streams chunk by chunk.
    let url = session("/close");
    let mut r = server
        .request("POST", &format!("{url}/xhr_streaming"), &headers, "")
        .await;
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.header("content-length"), None);
    assert!(r
        .chunk()
        .await
        .is_some_and(|prelude| prelude.starts_with('h')));
    assert_eq!(r.chunk().await.as_deref(), Some("o\n"));
    assert_eq!(r.chunk().await.as_deref(), Some("c[3000,\"Go away!\"]\n"));
    assert_eq!(r.chunk().await, None);
    // A plain answer to HTTP/1.0 carries its length.
    let r = sockjs_support::request_version(server.addr, "1.0", "GET", "/echo", &headers, "")
        .await
        .read_all()
        .await;
    assert_eq!(
        (r.header("content-length"), r.body.as_str()),
        (Some("19"), "Welcome to SockJS!\n")
    );
}
