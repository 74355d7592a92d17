//! Property tests of the frame parser: no input makes it panic, every valid frame
//! round-trips, and every refusal is a well-formed answer.

use comet_actors::protocol::*;
use proptest::prelude::*;
use serde_json::{Map, Value};

fn limits() -> ParseLimits {
    ParseLimits::default()
}

/// Names a client may use: no whitespace, no control characters, 1..=256 bytes.
fn name() -> impl Strategy<Value = String> {
    "[^\\s\\p{Cc}]{1,64}".prop_filter("at most 256 bytes", |n| n.len() <= 256)
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        ".{0,20}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn params() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("[a-zA-Z]{1,8}", json_value(), 0..5)
        .prop_map(|m| m.into_iter().filter(|(k, _)| k != "requestUid").collect())
}

fn request_uid() -> impl Strategy<Value = RequestUid> {
    prop_oneof![
        ".{1,16}".prop_map(|s| RequestUid::from(s.as_str())),
        any::<u32>().prop_map(|n| RequestUid::from_value(Value::from(n)).unwrap()),
    ]
}

/// A valid client frame, as text.
fn valid_frame() -> impl Strategy<Value = String> {
    prop_oneof![
        name().prop_map(|c| subscribe_frame(&c)),
        name().prop_map(|c| unsubscribe_frame(&c)),
        (name(), ".{0,64}").prop_map(|(c, p)| channel_frame(&c, &p).to_string()),
        (name(), request_uid(), params()).prop_map(|(r, uid, p)| action_call_frame(
            &r,
            &uid,
            &Value::Object(p)
        )),
    ]
}

/// A refusal must be answerable: its frame parses as an `error` or `action` frame.
fn assert_answerable(err: &FrameError) {
    let frame = err.to_frame();
    match parse_server_frame(&frame) {
        Ok(ServerFrame::Error(body)) => {
            assert_eq!(body["code"], err.code.as_str());
            assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
        Ok(ServerFrame::Action(body)) => {
            assert_eq!(body["error"]["code"], err.code.as_str());
            assert!(body.contains_key("requestUid"));
        }
        other => panic!("refusal {err:?} answered with an unreadable frame {frame:?}: {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_text_is_parsed_or_refused_without_panic(text in ".{0,300}") {
        if let Err(err) = parse_client_frame(&text, &limits()) {
            assert_answerable(&err);
        }
    }

    #[test]
    fn any_bytes_are_parsed_or_refused_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let text = String::from_utf8_lossy(&bytes);
        if let Err(err) = parse_client_frame(&text, &limits()) {
            assert_answerable(&err);
        }
        let _ = parse_server_frame(&text);
    }

    #[test]
    fn subscriptions_round_trip(channel in name()) {
        let (subscribe, unsubscribe) = (subscribe_frame(&channel), unsubscribe_frame(&channel));
        let subscribed = subscribed_frame(&channel);
        prop_assert_eq!(
            parse_client_frame(&subscribe, &limits()),
            Ok(ClientFrame::Subscribe(&channel))
        );
        prop_assert_eq!(
            parse_client_frame(&unsubscribe, &limits()),
            Ok(ClientFrame::Unsubscribe(&channel))
        );
        prop_assert_eq!(parse_server_frame(&subscribed), Ok(ServerFrame::Subscribed(&channel)));
    }

    #[test]
    fn publishes_round_trip_both_ways(channel in name(), payload in ".{0,200}") {
        let frame = channel_frame(&channel, &payload);
        prop_assert_eq!(
            parse_client_frame(&frame, &limits()),
            Ok(ClientFrame::Publish { channel: &channel, payload: &payload })
        );
        prop_assert_eq!(
            parse_server_frame(&frame),
            Ok(ServerFrame::Channel { channel: &channel, payload: &payload })
        );
    }

    #[test]
    fn actions_round_trip(route in name(), uid in request_uid(), params in params()) {
        let frame = action_call_frame(&route, &uid, &Value::Object(params.clone()));
        let parsed = parse_client_frame(&frame, &limits());
        prop_assert_eq!(
            parsed,
            Ok(ClientFrame::Action(ActionRequest { route: route.clone(), request_uid: uid.clone(), params }))
        );
    }

    #[test]
    fn answers_round_trip(uid in request_uid(), result in json_value()) {
        let frame = action_response_frame(&uid, result.clone());
        let Ok(ServerFrame::Action(body)) = parse_server_frame(&frame) else {
            panic!("unreadable answer {frame}");
        };
        prop_assert_eq!(&body["requestUid"], uid.as_value());
        match result {
            Value::Object(map) => for (key, value) in map.iter().filter(|(k, _)| *k != "requestUid") {
                prop_assert_eq!(&body[key], value);
            },
            other => prop_assert_eq!(&body["result"], &other),
        }
    }

    #[test]
    fn mutated_frames_never_panic(
        frame in valid_frame(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<char>(), 0u8..3), 1..6),
    ) {
        let mut chars: Vec<char> = frame.chars().collect();
        for (at, c, kind) in edits {
            let i = if chars.is_empty() { 0 } else { at.index(chars.len()) };
            match kind {
                0 => chars.insert(i, c),
                1 if !chars.is_empty() => { chars.remove(i); }
                _ if !chars.is_empty() => chars[i] = c,
                _ => chars.push(c),
            }
        }
        let mutated: String = chars.into_iter().collect();
        match parse_client_frame(&mutated, &limits()) {
            Ok(_) => {}
            Err(err) => assert_answerable(&err),
        }
    }
}
