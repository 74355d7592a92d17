//! Engine.IO v4 packets: `<type>[<data>]` in a WebSocket message, several joined by the
//! record separator `\x1e` in a long-polling body, binary ones as `b<base64>` there.
//!
//! | type | packet |
//! | --- | --- |
//! | `0` | open (the handshake, server → client) |
//! | `1` | close |
//! | `2` | ping (`2probe` in an upgrade) |
//! | `3` | pong (`3probe`) |
//! | `4` | message |
//! | `5` | upgrade |
//! | `6` | noop |

use actix_web::web::Bytes;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytestring::ByteString;
use thiserror::Error;

/// The record separator between the packets of a long-polling body.
pub const SEPARATOR: char = '\x1e';

/// An Engine.IO message (packet type `4`, or a binary message): what an application
/// sends and receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EioMessage {
    /// A text message (a Socket.IO packet, for Socket.IO).
    Text(ByteString),
    /// A binary message (a Socket.IO attachment, for Socket.IO).
    Binary(Bytes),
}

/// One Engine.IO packet from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Packet {
    /// `1`: the client closes the session.
    Close,
    /// `2` with its payload (`probe` during an upgrade).
    Ping(ByteString),
    /// `3`: the answer to a ping.
    Pong,
    /// `4<text>` or a binary message.
    Message(EioMessage),
    /// `5`: the upgrade to WebSocket is complete.
    Upgrade,
    /// `6`: nothing.
    Noop,
}

/// A packet that is none of the protocol's: the session is closed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid Engine.IO packet: {0}")]
pub struct BadPacket(pub &'static str);

/// Decodes one text packet (a WebSocket text message, or one record of a polling body
/// that is not binary).
pub(crate) fn decode_text(text: ByteString) -> Result<Packet, BadPacket> {
    let Some(kind) = text.as_bytes().first().copied() else {
        return Err(BadPacket("empty packet"));
    };
    let rest = || text.slice_ref(&text[1..]);
    Ok(match kind {
        b'1' => Packet::Close,
        b'2' => Packet::Ping(rest()),
        b'3' => Packet::Pong,
        b'4' => Packet::Message(EioMessage::Text(rest())),
        b'5' => Packet::Upgrade,
        b'6' => Packet::Noop,
        b'0' => return Err(BadPacket("the client sent an open packet")),
        _ => return Err(BadPacket("unknown packet type")),
    })
}

/// Decodes a long-polling request body: packets separated by `\x1e`, binary ones as
/// `b<base64>`.
pub(crate) fn decode_payload(body: ByteString) -> Result<Vec<Packet>, BadPacket> {
    let mut packets = Vec::new();
    for record in body.split(SEPARATOR) {
        if let Some(encoded) = record.strip_prefix('b') {
            let bytes = BASE64
                .decode(encoded)
                .map_err(|_| BadPacket("bad base64 in a binary packet"))?;
            packets.push(Packet::Message(EioMessage::Binary(Bytes::from(bytes))));
        } else {
            packets.push(decode_text(body.slice_ref(record))?);
        }
    }
    Ok(packets)
}

/// Appends `message` to a long-polling body (`4<text>`, or `b<base64>`).
pub(crate) fn encode_polling(message: &EioMessage, body: &mut String) {
    match message {
        EioMessage::Text(text) => {
            body.push('4');
            body.push_str(text);
        }
        EioMessage::Binary(bytes) => {
            body.push('b');
            BASE64.encode_string(bytes, body);
        }
    }
}

/// A binary message as an outlet frame: `\0` and its base64 (outlets hold text), for
/// [`decode_frame`] to turn back. No jii frame starts with `\0`.
pub fn binary_frame(bytes: &[u8]) -> ByteString {
    let mut frame = String::with_capacity(1 + bytes.len().div_ceil(3) * 4);
    frame.push('\0');
    BASE64.encode_string(bytes, &mut frame);
    ByteString::from(frame)
}

/// An outlet frame that [`binary_frame`] made, back as bytes; `None` for any other frame.
pub fn decode_frame(frame: &str) -> Option<Bytes> {
    let encoded = frame.strip_prefix('\0')?;
    BASE64.decode(encoded).ok().map(Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_polling_body_splits_into_packets() {
        let packets = decode_payload("4hello\x1ebAQIDBA==\x1e3\x1e2probe".into()).unwrap();
        assert_eq!(
            packets,
            [
                Packet::Message(EioMessage::Text("hello".into())),
                Packet::Message(EioMessage::Binary(Bytes::from_static(&[1, 2, 3, 4]))),
                Packet::Pong,
                Packet::Ping("probe".into()),
            ]
        );
        assert!(decode_payload("abc".into()).is_err());
        assert!(decode_payload("".into()).is_err());
        assert!(decode_payload("b!!".into()).is_err());
    }

    #[test]
    fn messages_encode_for_polling() {
        let mut body = String::new();
        encode_polling(&EioMessage::Text("hi".into()), &mut body);
        body.push(SEPARATOR);
        encode_polling(
            &EioMessage::Binary(Bytes::from_static(&[1, 2, 3, 4])),
            &mut body,
        );
        assert_eq!(body, "4hi\x1ebAQIDBA==");
    }

    #[test]
    fn binary_frames_go_through_an_outlet_and_back() {
        let frame = binary_frame(&[0, 255, 7]);
        assert_eq!(decode_frame(&frame).as_deref(), Some(&[0u8, 255, 7][..]));
        assert_eq!(decode_frame("channel x y"), None);
    }
}
