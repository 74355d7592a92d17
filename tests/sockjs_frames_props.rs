//! Property tests of the SockJS decoders and framings: no input makes a decoder panic,
//! every list of messages round-trips through `a[…]`, and every framing can be undone by a
//! client.

use comet::transport::sockjs::frames::{
    close_frame, decode_messages, decode_websocket_message, messages_frame, valid_callback,
    Framing, PayloadError, MAX_CALLBACK_LEN,
};
use proptest::prelude::*;
use serde_json::Value;

/// Messages with every kind of character, escapes and surrogate-adjacent ranges included.
fn messages() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(".{0,40}", 0..6)
}

/// The JSON string inside `start…end` of `text`, decoded.
fn json_string_between(text: &str, start: &str, end: &str) -> String {
    let inner = text
        .strip_prefix(start)
        .and_then(|rest| rest.strip_suffix(end))
        .unwrap_or_else(|| panic!("{text:?} is not {start}…{end}"));
    serde_json::from_str::<String>(inner).expect("a JSON string")
}

fn percent_decoded(text: &str) -> String {
    text.replace("%0D", "\r")
        .replace("%0A", "\n")
        .replace("%00", "\0")
        .replace("%25", "%")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_send_body_is_decoded_or_refused(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        match decode_messages(&bytes) {
            Ok(_) | Err(PayloadError::Empty) | Err(PayloadError::BrokenJson) => {}
        }
    }

    #[test]
    fn any_websocket_message_is_decoded_or_refused(text in ".{0,200}") {
        let _ = decode_websocket_message(&text);
    }

    #[test]
    fn message_lists_round_trip(messages in messages()) {
        let frame = messages_frame(messages.iter().map(String::as_str));
        let array = frame.strip_prefix('a').expect("an `a` frame");
        prop_assert_eq!(decode_messages(array.as_bytes()), Ok(messages.clone()));
        prop_assert_eq!(decode_websocket_message(array), Ok(messages.clone()));
        // Whatever the client may parse with, it is valid JSON.
        let parsed: Vec<String> = serde_json::from_str(array).expect("valid JSON");
        prop_assert_eq!(parsed, messages);
    }

    #[test]
    fn mutated_send_bodies_never_panic(
        messages in messages(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let frame = messages_frame(messages.iter().map(String::as_str));
        let mut bytes = frame.as_bytes()[1..].to_vec();
        for (at, byte) in edits {
            if bytes.is_empty() {
                bytes.push(byte);
            } else {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
        }
        let _ = decode_messages(&bytes);
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = decode_websocket_message(text);
        }
    }

    #[test]
    fn close_frames_are_json(code in any::<u16>(), reason in ".{0,40}") {
        let frame = close_frame(code, &reason);
        let body: Value = serde_json::from_str(frame.strip_prefix('c').expect("a `c` frame"))
            .expect("valid JSON");
        prop_assert_eq!(body, serde_json::json!([code, reason]));
    }

    #[test]
    fn every_framing_can_be_undone(messages in messages(), callback in "[A-Za-z0-9_.]{1,20}") {
        let frame = messages_frame(messages.iter().map(String::as_str));
        let xhr = Framing::Xhr.wrap(&frame);
        prop_assert_eq!(xhr.strip_suffix('\n'), Some(&*frame));

        let event = Framing::EventSource.wrap(&frame);
        let data = event.strip_prefix("data: ").and_then(|e| e.strip_suffix("\r\n\r\n"));
        let data = data.expect("an event");
        prop_assert!(!data.contains(['\r', '\n', '\0']), "one line per event");
        prop_assert_eq!(percent_decoded(data), frame.to_string());

        let jsonp = Framing::Jsonp { callback: callback.clone() }.wrap(&frame);
        prop_assert_eq!(json_string_between(&jsonp, &format!("/**/{callback}("), ");\r\n"), frame.to_string());

        let script = Framing::HtmlFile.wrap(&frame);
        let inner = json_string_between(&script, "<script>\np(", ");\n</script>\r\n");
        prop_assert_eq!(inner, frame.to_string());
        prop_assert!(!script[8..script.len() - 12].contains('<'), "no tag can end the script early");
    }

    #[test]
    fn callbacks_are_only_word_characters_and_dots(
        name in prop_oneof![".{0,40}", "[A-Za-z0-9_.]{0,40}"],
    ) {
        let expected = !name.is_empty()
            && name.len() <= MAX_CALLBACK_LEN
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
        prop_assert_eq!(valid_callback(&name), expected);
    }
}
