//! The wire protocol's frames, one by one, including every malformed kind.

use comet_actors::codes::ErrorCode;
use comet_actors::protocol::*;
use serde_json::json;
use serde_json::Value;

fn parse(text: &str) -> Result<ClientFrame<'_>, FrameError> {
    parse_client_frame(text, &ParseLimits::default())
}

fn code(text: &str) -> ErrorCode {
    parse(text).expect_err(text).code
}

#[test]
fn subscribe_and_unsubscribe() {
    assert_eq!(parse("subscribe chat"), Ok(ClientFrame::Subscribe("chat")));
    assert_eq!(
        parse("unsubscribe a:b/c"),
        Ok(ClientFrame::Unsubscribe("a:b/c"))
    );
    assert_eq!(code("subscribe"), ErrorCode::BadFrame);
    assert_eq!(code("subscribe "), ErrorCode::BadFrame);
    assert_eq!(code("unsubscribe"), ErrorCode::BadFrame);
    let err = parse("subscribe two words").unwrap_err();
    assert_eq!(err.code, ErrorCode::BadChannel);
    assert_eq!(err.channel.as_deref(), Some("two words"));
    assert_eq!(code("subscribe tab\there"), ErrorCode::BadChannel);
    assert_eq!(
        code(&format!("subscribe {}", "x".repeat(257))),
        ErrorCode::BadChannel
    );
    assert!(parse(&format!("subscribe {}", "x".repeat(256))).is_ok());
}

#[test]
fn subscribe_takes_options_and_auth_takes_a_token() {
    use comet_actors::protocol::SubscribeOptions;
    assert_eq!(
        parse(r#"subscribe news:feed {"token":"t.k.n","since":3}"#),
        Ok(ClientFrame::SubscribeWith {
            channel: "news:feed",
            options: SubscribeOptions {
                token: Some("t.k.n".into()),
                ..SubscribeOptions::default()
            }
        })
    );
    assert_eq!(
        parse("subscribe a {}"),
        Ok(ClientFrame::SubscribeWith {
            channel: "a",
            options: SubscribeOptions::default()
        })
    );
    let err = parse("subscribe a {nope").unwrap_err();
    assert_eq!(
        (err.code, err.channel.as_deref()),
        (ErrorCode::BadJson, Some("a"))
    );
    assert_eq!(code(r#"subscribe a {"token":7}"#), ErrorCode::BadJson);
    assert_eq!(code(r#"subscribe a b {}"#), ErrorCode::BadChannel);
    assert_eq!(
        parse("auth  abc.def.ghi "),
        Ok(ClientFrame::Auth("abc.def.ghi"))
    );
    assert_eq!(code("auth"), ErrorCode::BadFrame);
    assert_eq!(code("auth   "), ErrorCode::BadFrame);
}

#[test]
fn publish_passes_the_payload_unchanged() {
    assert_eq!(
        parse("channel test hello  world "),
        Ok(ClientFrame::Publish {
            channel: "test",
            payload: "hello  world "
        })
    );
    assert_eq!(
        parse("channel test {\"a\":[1,2]}"),
        Ok(ClientFrame::Publish {
            channel: "test",
            payload: "{\"a\":[1,2]}"
        })
    );
    assert_eq!(
        parse("channel test "),
        Ok(ClientFrame::Publish {
            channel: "test",
            payload: ""
        })
    );
    assert_eq!(
        parse("channel тест привет"),
        Ok(ClientFrame::Publish {
            channel: "тест",
            payload: "привет"
        })
    );
}

#[test]
fn publish_without_channel_or_payload_is_refused() {
    assert_eq!(code("channel"), ErrorCode::BadFrame);
    assert_eq!(code("channel "), ErrorCode::BadFrame);
    let err = parse("channel test").unwrap_err();
    assert_eq!(err.code, ErrorCode::BadFrame);
    assert_eq!(err.channel.as_deref(), Some("test"));
    assert_eq!(code("channel  payload"), ErrorCode::BadChannel);
}

#[test]
fn action_takes_route_uid_and_params() {
    let frame = parse(r#"action site/test {"requestUid":"r1","a":1}"#).unwrap();
    let ClientFrame::Action(request) = frame else {
        panic!("not an action: {frame:?}")
    };
    assert_eq!(request.route, "site/test");
    assert_eq!(request.request_uid, RequestUid::from("r1"));
    assert_eq!(Value::Object(request.params), json!({"a": 1}));

    let frame = parse(r#"action x {"requestUid":7}"#).unwrap();
    let ClientFrame::Action(request) = frame else {
        panic!("not an action")
    };
    assert_eq!(request.request_uid.as_value(), &json!(7));
}

#[test]
fn malformed_actions_are_refused_with_the_uid_when_known() {
    assert_eq!(code("action"), ErrorCode::BadFrame);
    assert_eq!(code("action "), ErrorCode::BadFrame);
    assert_eq!(code("action site/test"), ErrorCode::BadFrame);
    assert_eq!(code("action site/test {}"), ErrorCode::BadFrame);
    assert_eq!(
        code(r#"action site/test {"requestUid":""}"#),
        ErrorCode::BadFrame
    );
    assert_eq!(
        code(r#"action site/test {"requestUid":null}"#),
        ErrorCode::BadFrame
    );
    assert_eq!(code("action site/test {oops"), ErrorCode::BadJson);
    assert_eq!(code("action site/test [1,2]"), ErrorCode::BadJson);
    assert_eq!(code("action site/test \"s\""), ErrorCode::BadJson);
    let err = parse(&format!(
        r#"action {} {{"requestUid":"r9"}}"#,
        "r".repeat(300)
    ))
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::BadRoute);
    assert_eq!(err.request_uid, Some(RequestUid::from("r9")));
    assert!(err.to_frame().starts_with(r#"action {"#));
    assert!(err.to_frame().contains(r#""requestUid":"r9""#));
}

#[test]
fn empty_unknown_and_huge_frames_are_refused() {
    assert_eq!(code(""), ErrorCode::BadFrame);
    assert_eq!(code(" "), ErrorCode::BadFrame);
    assert_eq!(code("hello"), ErrorCode::BadFrame);
    assert_eq!(code("howdy"), ErrorCode::BadFrame);
    assert_eq!(code("SUBSCRIBE chat"), ErrorCode::BadFrame);
    let huge = format!("channel big {}", "x".repeat(DEFAULT_MAX_FRAME_BYTES));
    assert_eq!(code(&huge), ErrorCode::TooLarge);
    let err = parse(&"\u{7}".repeat(10_000)).unwrap_err();
    assert!(
        err.message.len() < 400,
        "message is bounded: {}",
        err.message
    );
}

#[test]
fn error_frames_say_code_message_and_channel() {
    let frame = parse("subscribe a\u{1}b").unwrap_err().to_frame();
    let ServerFrame::Error(body) = parse_server_frame(&frame).unwrap() else {
        panic!("not an error frame: {frame}")
    };
    assert_eq!(body["code"], "bad_channel");
    assert_eq!(body["channel"], "a\u{1}b");
    assert!(body["message"].as_str().unwrap().contains("control"));
}

#[test]
fn responses_carry_the_request_uid() {
    let uid = RequestUid::from("u1");
    assert_eq!(
        action_response_frame(&uid, json!({"echo": {"a": 1}})).to_string(),
        r#"action {"echo":{"a":1},"requestUid":"u1"}"#
    );
    assert_eq!(
        action_response_frame(&uid, json!([1, 2])).to_string(),
        r#"action {"requestUid":"u1","result":[1,2]}"#
    );
    assert_eq!(
        action_error_frame(&uid, &ErrorCode::NotFound, "no handler").to_string(),
        r#"action {"error":{"code":"not_found","message":"no handler"},"requestUid":"u1"}"#
    );
}

#[test]
fn server_frames_round_trip() {
    assert_eq!(
        parse_server_frame(&channel_frame("c", "p q")),
        Ok(ServerFrame::Channel {
            channel: "c",
            payload: "p q"
        })
    );
    assert_eq!(
        parse_server_frame(&subscribed_frame("c")),
        Ok(ServerFrame::Subscribed("c"))
    );
    assert_eq!(
        parse_server_frame(&unsubscribed_frame("c")),
        Ok(ServerFrame::Unsubscribed("c"))
    );
    let call = action_call_frame("r/x", &RequestUid::from("9"), &json!({"k": "v"}));
    let ClientFrame::Action(request) = parse(&call).unwrap() else {
        panic!("not an action")
    };
    assert_eq!(request.route, "r/x");
    assert_eq!(Value::Object(request.params), json!({"k": "v"}));
    assert_eq!(subscribe_frame("a"), "subscribe a");
    assert_eq!(unsubscribe_frame("a"), "unsubscribe a");
}

#[test]
fn hello_asks_for_heartbeats_and_ignores_unknown_keys() {
    assert_eq!(
        parse(r#"hello {"heartbeat":true}"#),
        Ok(ClientFrame::Hello(Hello { heartbeat: true }))
    );
    assert_eq!(
        parse(r#"hello {"heartbeat":true,"future":[1,2]}"#),
        Ok(ClientFrame::Hello(Hello { heartbeat: true }))
    );
    for off in [
        "hello {}",
        r#"hello {"heartbeat":false}"#,
        r#"hello {"heartbeat":1}"#,
        r#"hello {"heartbeat":"yes"}"#,
    ] {
        assert_eq!(
            parse(off),
            Ok(ClientFrame::Hello(Hello { heartbeat: false })),
            "{off}"
        );
    }
    assert_eq!(code("hello"), ErrorCode::BadFrame);
    assert_eq!(code("hello "), ErrorCode::BadFrame);
    assert_eq!(code("hello [true]"), ErrorCode::BadJson);
    assert_eq!(code("hello {oops"), ErrorCode::BadJson);
    assert_eq!(
        client_hello_frame(&Hello { heartbeat: true }),
        r#"hello {"heartbeat":true}"#
    );
}

#[test]
fn hello_answer_and_ping_frames() {
    let answer = HelloAnswer {
        heartbeat: 25_000,
        max_frame_bytes: 65_536,
        max_pending_actions: 64,
    };
    let frame = hello_frame(&answer);
    assert_eq!(
        frame,
        r#"hello {"heartbeat":25000,"max_frame_bytes":65536,"max_pending_actions":64}"#
    );
    assert_eq!(parse_server_frame(&frame), Ok(ServerFrame::Hello(answer)));
    assert_eq!(PING_FRAME, "ping");
    assert_eq!(parse_server_frame("ping"), Ok(ServerFrame::Ping));
    assert_eq!(
        parse_server_frame("hello [1]").unwrap_err().code,
        ErrorCode::BadJson
    );
}

fn too_large_body(frame: &str) -> (ErrorCode, Value) {
    let err = parse(frame).unwrap_err();
    let answer = err.to_frame();
    let body = match parse_server_frame(&answer) {
        Ok(ServerFrame::Action(body)) | Ok(ServerFrame::Error(body)) => Value::Object(body),
        other => panic!("not an answer: {other:?}"),
    };
    (err.code, body)
}

#[test]
fn too_large_names_the_request_when_its_uid_comes_first() {
    let big = "x".repeat(DEFAULT_MAX_FRAME_BYTES);
    let frame = format!(r#"action site/test {{"requestUid":"st-9","s":"{big}"}}"#);
    let (code, body) = too_large_body(&frame);
    assert_eq!(code, ErrorCode::TooLarge);
    assert!(parse(&frame).unwrap_err().to_frame().starts_with("action "));
    assert_eq!(body["requestUid"], "st-9");
    assert_eq!(body["error"]["code"], "too_large");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("site/test"), "{message}");

    let frame = format!(r#"action site/test {{ "requestUid" : 42 , "s":"{big}"}}"#);
    assert_eq!(too_large_body(&frame).1["requestUid"], 42);
}

#[test]
fn too_large_names_the_route_when_the_uid_is_not_first() {
    let big = "x".repeat(DEFAULT_MAX_FRAME_BYTES);
    // jii's client puts requestUid last; a nested requestUid is not the call's.
    for frame in [
        format!(r#"action site/test {{"s":"{big}","requestUid":"u1"}}"#),
        format!(r#"action site/test {{"a":{{"requestUid":"no"}},"s":"{big}"}}"#),
        format!(r#"action site/test {{"requestUid":"{big}"}}"#),
    ] {
        let (code, body) = too_large_body(&frame);
        assert_eq!(code, ErrorCode::TooLarge);
        assert_eq!(body["route"], "site/test", "{body}");
        assert_eq!(body.get("requestUid"), None);
    }
}

#[test]
fn too_large_names_the_channel_of_a_publish() {
    let frame = format!("channel room {}", "é".repeat(DEFAULT_MAX_FRAME_BYTES));
    let (code, body) = too_large_body(&frame);
    assert_eq!(code, ErrorCode::TooLarge);
    assert_eq!(body["channel"], "room");
    assert_eq!(body["code"], "too_large");

    // Nothing to name: a bad name, or another keyword.
    for frame in [
        format!(
            "channel {} {}",
            "c".repeat(2000),
            "x".repeat(DEFAULT_MAX_FRAME_BYTES)
        ),
        format!("subscribe {}", "c".repeat(DEFAULT_MAX_FRAME_BYTES)),
        "\u{7}".repeat(DEFAULT_MAX_FRAME_BYTES + 1),
    ] {
        let (code, body) = too_large_body(&frame);
        assert_eq!(code, ErrorCode::TooLarge);
        assert_eq!(body.get("channel"), None);
        assert_eq!(body.get("route"), None);
    }
}
