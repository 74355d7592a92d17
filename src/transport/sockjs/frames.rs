//! The SockJS wire format: the frames a server sends (`o`, `h`, `a[...]`, `c[code,"reason"]`),
//! how each transport wraps a frame on the wire, and the decoding of what clients send
//! (a JSON array of strings, or one JSON string over WebSocket).
//!
//! Strings are JSON-encoded as sockjs-node does: besides what JSON requires, the
//! characters that browsers or proxies mangle (`U+200C–U+200F`, `U+2028–U+202F`,
//! `U+2060–U+206F`, `U+FFF0–U+FFFF`) travel as `\uXXXX` escapes.

use std::fmt::Write as _;
use std::sync::LazyLock;

use actix_web::web::Bytes;

use bytestring::ByteString;
use serde_json::Value;
use thiserror::Error;

/// The open frame: the first frame of every session.
pub const OPEN: &str = "o";
/// The heartbeat frame.
pub const HEARTBEAT: &str = "h";

/// The 2 KiB of `h` (and a newline) that open an xhr-streaming response: some browsers
/// show nothing of a streamed response before that much arrived.
pub fn xhr_streaming_prelude() -> Bytes {
    static PRELUDE: LazyLock<Bytes> = LazyLock::new(|| {
        let mut prelude = vec![b'h'; 2048];
        prelude.push(b'\n');
        Bytes::from(prelude)
    });
    PRELUDE.clone()
}

/// The first line of an eventsource response (Opera wanted one).
pub const EVENTSOURCE_PRELUDE: &str = "\r\n";

/// The longest jsonp/htmlfile callback name taken.
pub const MAX_CALLBACK_LEN: usize = 32;

/// Why a client's payload was refused. The messages are the protocol's own: clients and
/// the conformance suite look for them in the 500 response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PayloadError {
    /// The body is empty, or is JSON but not an array.
    #[error("Payload expected.")]
    Empty,
    /// The body is not JSON (or not UTF-8).
    #[error("Broken JSON encoding.")]
    BrokenJson,
}

/// `c[code,"reason"]`.
pub fn close_frame(code: u16, reason: &str) -> ByteString {
    let mut frame = String::with_capacity(reason.len() + 12);
    let _ = write!(frame, "c[{code},");
    push_quoted(&mut frame, reason);
    frame.push(']');
    frame.into()
}

/// `a[...]`: the messages as one array frame.
pub fn messages_frame<'a>(messages: impl IntoIterator<Item = &'a str>) -> ByteString {
    let mut frame = String::from("a[");
    for (i, message) in messages.into_iter().enumerate() {
        if i > 0 {
            frame.push(',');
        }
        push_quoted(&mut frame, message);
    }
    frame.push(']');
    frame.into()
}

/// Appends `text` as a JSON string, escaping what SockJS escapes.
pub fn push_quoted(out: &mut String, text: &str) {
    out.reserve(text.len() + 2);
    out.push('"');
    // Runs of plain ASCII (most messages are nothing else) are copied whole; only what
    // may need escaping is looked at character by character. Fan-out over SockJS spent
    // most of its time here when every character was.
    let mut rest = text;
    while let Some(at) = rest
        .bytes()
        .position(|b| !(0x20..0x80).contains(&b) || b == b'"' || b == b'\\')
    {
        out.push_str(&rest[..at]);
        let mut chars = rest[at..].chars();
        let Some(c) = chars.next() else {
            break;
        };
        push_char(out, c);
        rest = chars.as_str();
    }
    out.push_str(rest);
    out.push('"');
}

/// Appends one character of a JSON string, escaped if it must be.
fn push_char(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        c if must_escape(c) => {
            let _ = write!(out, "\\u{:04x}", c as u32);
        }
        c => out.push(c),
    }
}

/// The characters sockjs-node escapes beyond JSON's quote and backslash.
fn must_escape(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{200c}'..='\u{200f}'
        | '\u{2028}'..='\u{202f}'
        | '\u{2060}'..='\u{206f}'
        | '\u{fff0}'..='\u{ffff}')
}

/// Reads an `xhr_send` / `jsonp_send` body: a JSON array of messages.
pub fn decode_messages(body: &[u8]) -> Result<Vec<String>, PayloadError> {
    if body.is_empty() {
        return Err(PayloadError::Empty);
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => Ok(items.into_iter().map(message_text).collect()),
        Ok(_) => Err(PayloadError::Empty),
        Err(_) => Err(PayloadError::BrokenJson),
    }
}

/// Reads a SockJS WebSocket message: a JSON array of messages or a single JSON string.
/// `Ok(vec![])` for an empty message, which the protocol says to ignore.
pub fn decode_websocket_message(text: &str) -> Result<Vec<String>, PayloadError> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(items)) => Ok(items.into_iter().map(message_text).collect()),
        Ok(single) => Ok(vec![message_text(single)]),
        Err(_) => Err(PayloadError::BrokenJson),
    }
}

/// A message is a JSON string; anything else a client sends is taken as its JSON text.
fn message_text(value: Value) -> String {
    match value {
        Value::String(text) => text,
        other => other.to_string(),
    }
}

/// Whether a jsonp/htmlfile callback name is safe to write into a script.
pub fn valid_callback(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_CALLBACK_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
}

/// How a transport wraps each frame on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framing {
    /// xhr-polling and xhr-streaming: the frame and a newline.
    Xhr,
    /// `data: <frame>` and a blank line; `%`, CR, LF and NUL percent-encoded (the client
    /// `decodeURI`s each event).
    EventSource,
    /// `<script>p("<frame>");</script>`, inside the htmlfile page.
    HtmlFile,
    /// `/**/callback("<frame>");`: the leading comment keeps the answer from starting
    /// with bytes a Flash player could take for a SWF file (the Rosetta Flash attack).
    Jsonp {
        /// The client's callback name (checked with [`valid_callback`]).
        callback: String,
    },
    /// One WebSocket text message per frame.
    WebSocket,
}

impl Framing {
    /// The frame as it goes on the wire.
    pub fn wrap(&self, frame: &str) -> ByteString {
        match self {
            Framing::Xhr => {
                let mut out = String::with_capacity(frame.len() + 1);
                out.push_str(frame);
                out.push('\n');
                out.into()
            }
            Framing::EventSource => {
                let mut out = String::with_capacity(frame.len() + 10);
                out.push_str("data: ");
                for c in frame.chars() {
                    match c {
                        '%' => out.push_str("%25"),
                        '\r' => out.push_str("%0D"),
                        '\n' => out.push_str("%0A"),
                        '\0' => out.push_str("%00"),
                        c => out.push(c),
                    }
                }
                out.push_str("\r\n\r\n");
                out.into()
            }
            Framing::HtmlFile => {
                let mut quoted = String::with_capacity(frame.len() + 8);
                push_quoted(&mut quoted, frame);
                // A message holding `</script>` must not end the script element.
                let quoted = quoted.replace('<', "\\u003c");
                format!("<script>\np({quoted});\n</script>\r\n").into()
            }
            Framing::Jsonp { callback } => {
                let mut out = String::with_capacity(frame.len() + callback.len() + 12);
                out.push_str("/**/");
                out.push_str(callback);
                out.push('(');
                push_quoted(&mut out, frame);
                out.push_str(");\r\n");
                out.into()
            }
            Framing::WebSocket => ByteString::from(frame),
        }
    }
}

/// The page that opens an htmlfile response, padded past 1 KiB (Safari renders nothing
/// before that).
pub fn htmlfile_prelude(callback: &str) -> String {
    let mut page = format!(
        r#"
<!doctype html>
<html><head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
</head><body><h2>Don't panic!</h2>
  <script>
    document.domain = document.domain;
    var c = parent.{callback};
    c.start();
    function p(d) {{c.message(d);}};
    window.onload = function() {{c.stop();}};
  </script>
"#
    );
    let padding = 1024usize.saturating_sub(page.len());
    page.extend(std::iter::repeat_n(' ', padding));
    page.push_str("\r\n\r\n");
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_exact() {
        assert_eq!(close_frame(3000, "Go away!"), "c[3000,\"Go away!\"]");
        assert_eq!(messages_frame(["a", "b\"c"]), "a[\"a\",\"b\\\"c\"]");
        assert_eq!(messages_frame([]), "a[]");
        let prelude = xhr_streaming_prelude();
        assert_eq!(prelude.len(), 2049);
        assert!(prelude[..2048].iter().all(|&b| b == b'h'));
        assert_eq!(prelude[2048], b'\n');
    }

    #[test]
    fn escapes_what_sockjs_node_escapes() {
        let mut out = String::new();
        push_quoted(
            &mut out,
            "\u{0}\n\u{1f}\u{7f}é\u{200c}\u{2028}\u{2060}\u{fff0}\u{ffff}x",
        );
        assert_eq!(
            out,
            "\"\\u0000\\n\\u001f\u{7f}é\\u200c\\u2028\\u2060\\ufff0\\uffffx\""
        );
    }

    #[test]
    fn decodes_bodies() {
        assert_eq!(
            decode_messages(b"[\"a\",\"b\"]"),
            Ok(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            decode_messages(b"[1,{\"x\":2}]"),
            Ok(vec!["1".into(), "{\"x\":2}".into()])
        );
        assert_eq!(decode_messages(b""), Err(PayloadError::Empty));
        assert_eq!(decode_messages(b"null"), Err(PayloadError::Empty));
        assert_eq!(decode_messages(b"\"x\""), Err(PayloadError::Empty));
        assert_eq!(decode_messages(b"[\"x"), Err(PayloadError::BrokenJson));
        assert_eq!(decode_messages(b"\xff"), Err(PayloadError::BrokenJson));
        assert_eq!(decode_websocket_message("\"one\""), Ok(vec!["one".into()]));
        assert_eq!(decode_websocket_message(""), Ok(vec![]));
        assert_eq!(
            decode_websocket_message("[\"a"),
            Err(PayloadError::BrokenJson)
        );
    }

    #[test]
    fn callbacks_are_checked() {
        assert!(valid_callback("_jp.a1b2c3"));
        assert!(!valid_callback(""));
        assert!(!valid_callback("alert(1)"));
        assert!(!valid_callback("a-b"));
        assert!(!valid_callback(&"x".repeat(33)));
    }

    #[test]
    fn transports_wrap_frames() {
        assert_eq!(Framing::Xhr.wrap("o"), "o\n");
        assert_eq!(
            Framing::EventSource.wrap("a[\"100%\\n\"]"),
            "data: a[\"100%25\\n\"]\r\n\r\n"
        );
        assert_eq!(
            Framing::HtmlFile.wrap("a[\"x\"]"),
            "<script>\np(\"a[\\\"x\\\"]\");\n</script>\r\n"
        );
        assert_eq!(
            Framing::HtmlFile.wrap("a[\"</script>\"]"),
            "<script>\np(\"a[\\\"\\u003c/script>\\\"]\");\n</script>\r\n"
        );
        let jsonp = Framing::Jsonp {
            callback: "cb".into(),
        };
        assert_eq!(jsonp.wrap("o"), "/**/cb(\"o\");\r\n");
        let page = htmlfile_prelude("callback");
        assert!(page.len() > 1024);
        assert!(page.contains("var c = parent.callback;"));
    }
}
