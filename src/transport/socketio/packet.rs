//! Socket.IO v5 packets (the default parser's text encoding), each the text of one
//! Engine.IO message:
//!
//! ```text
//! <type>[<attachments>-][<namespace>,][<ack id>][<JSON payload>]
//! ```
//!
//! Types: `0` CONNECT, `1` DISCONNECT, `2` EVENT, `3` ACK, `4` CONNECT_ERROR,
//! `5` BINARY_EVENT, `6` BINARY_ACK. A binary packet's attachments follow it as binary
//! Engine.IO messages; its payload holds `{"_placeholder":true,"num":<i>}` in their places.

use serde_json::Value;
use thiserror::Error;

/// The packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `0`: connect to a namespace (client: optional auth object; server: `{"sid":…}`).
    Connect,
    /// `1`: leave a namespace.
    Disconnect,
    /// `2`: an event, `["name", args…]`.
    Event,
    /// `3`: the answer to an event that asked for one, `[args…]`.
    Ack,
    /// `4`: a refused CONNECT, `{"message":…, "data":…}`.
    ConnectError,
    /// `5`: an event with binary attachments.
    BinaryEvent,
    /// `6`: an ack with binary attachments.
    BinaryAck,
}

impl Kind {
    fn digit(self) -> char {
        match self {
            Kind::Connect => '0',
            Kind::Disconnect => '1',
            Kind::Event => '2',
            Kind::Ack => '3',
            Kind::ConnectError => '4',
            Kind::BinaryEvent => '5',
            Kind::BinaryAck => '6',
        }
    }

    fn is_binary(self) -> bool {
        matches!(self, Kind::BinaryEvent | Kind::BinaryAck)
    }
}

/// A packet that breaks the format: Socket.IO closes the connection.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid Socket.IO packet: {0}")]
pub struct PacketError(pub &'static str);

/// One Socket.IO packet.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    /// Its type.
    pub kind: Kind,
    /// Its namespace, `/` for the main one.
    pub nsp: String,
    /// The ack id: an EVENT that asks for an answer, or the ACK that gives it.
    pub id: Option<u64>,
    /// The JSON payload, if any.
    pub data: Option<Value>,
    /// How many binary attachments follow (BINARY_EVENT, BINARY_ACK).
    pub attachments: usize,
}

impl Packet {
    /// A packet of `kind` in the main namespace.
    pub fn new(kind: Kind, data: Option<Value>) -> Packet {
        Packet {
            kind,
            nsp: "/".to_owned(),
            id: None,
            data,
            attachments: 0,
        }
    }

    /// Parses a packet, checking the payload its type needs (an EVENT's is a non-empty
    /// array starting with the event's name, an ACK's an array, a CONNECT's an object
    /// if any, a DISCONNECT has none).
    pub fn parse(text: &str) -> Result<Packet, PacketError> {
        let mut rest = text;
        let kind = match rest.as_bytes().first() {
            Some(b'0') => Kind::Connect,
            Some(b'1') => Kind::Disconnect,
            Some(b'2') => Kind::Event,
            Some(b'3') => Kind::Ack,
            Some(b'4') => Kind::ConnectError,
            Some(b'5') => Kind::BinaryEvent,
            Some(b'6') => Kind::BinaryAck,
            _ => return Err(PacketError("unknown packet type")),
        };
        rest = &rest[1..];
        let mut attachments = 0;
        if kind.is_binary() {
            let (count, after) = rest
                .split_once('-')
                .ok_or(PacketError("a binary packet without its attachment count"))?;
            attachments = count
                .parse::<usize>()
                .map_err(|_| PacketError("bad attachment count"))?;
            rest = after;
        }
        let mut nsp = "/".to_owned();
        if rest.starts_with('/') {
            let end = rest.find(',').unwrap_or(rest.len());
            nsp = rest[..end].to_owned();
            rest = rest.get(end + 1..).unwrap_or("");
        }
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let id = if digits > 0 {
            let id = rest[..digits]
                .parse::<u64>()
                .map_err(|_| PacketError("bad ack id"))?;
            rest = &rest[digits..];
            Some(id)
        } else {
            None
        };
        let data = if rest.is_empty() {
            None
        } else {
            Some(serde_json::from_str(rest).map_err(|_| PacketError("payload is not JSON"))?)
        };
        let valid = match (kind, &data) {
            (Kind::Connect, None | Some(Value::Object(_))) => true,
            (Kind::Disconnect, None) => true,
            (Kind::ConnectError, Some(Value::Object(_) | Value::String(_))) => true,
            (Kind::Event | Kind::BinaryEvent, Some(Value::Array(items))) => {
                matches!(items.first(), Some(Value::String(_)))
            }
            (Kind::Ack | Kind::BinaryAck, Some(Value::Array(_))) => true,
            _ => false,
        };
        if !valid {
            return Err(PacketError("payload does not fit the packet type"));
        }
        Ok(Packet {
            kind,
            nsp,
            id,
            data,
            attachments,
        })
    }

    /// The packet's text.
    pub fn encode(&self) -> String {
        let data = self.data.as_ref().map(Value::to_string);
        let mut out =
            String::with_capacity(16 + self.nsp.len() + data.as_ref().map_or(0, String::len));
        out.push(self.kind.digit());
        if self.kind.is_binary() {
            out.push_str(&self.attachments.to_string());
            out.push('-');
        }
        if self.nsp != "/" {
            out.push_str(&self.nsp);
            out.push(',');
        }
        if let Some(id) = self.id {
            out.push_str(&id.to_string());
        }
        if let Some(data) = data {
            out.push_str(&data);
        }
        out
    }

    /// An EVENT's name and arguments.
    pub fn event(&self) -> Option<(&str, &[Value])> {
        match (&self.kind, &self.data) {
            (Kind::Event | Kind::BinaryEvent, Some(Value::Array(items))) => {
                let (name, args) = items.split_first()?;
                Some((name.as_str()?, args))
            }
            _ => None,
        }
    }
}

/// `{"message": message}` (and `"data"` if given): a CONNECT_ERROR's payload.
pub fn connect_error(nsp: &str, message: &str, data: Option<Value>) -> Packet {
    let mut payload = serde_json::Map::new();
    payload.insert("message".into(), Value::from(message));
    if let Some(data) = data {
        payload.insert("data".into(), data);
    }
    Packet {
        nsp: nsp.to_owned(),
        ..Packet::new(Kind::ConnectError, Some(Value::Object(payload)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn packets_parse_and_encode_back() {
        for text in [
            "0",
            "0/admin,{\"token\":\"123\"}",
            "1",
            "1/admin,",
            "2[\"foo\"]",
            "212[\"foo\",1]",
            "3/admin,13[\"bar\"]",
            "4{\"message\":\"Not authorized\"}",
            "51-[\"baz\",{\"_placeholder\":true,\"num\":0}]",
            "61-15[\"bar\",{\"_placeholder\":true,\"num\":0}]",
        ] {
            let packet = Packet::parse(text).unwrap();
            assert_eq!(packet.encode(), text);
        }
        let packet = Packet::parse("2/admin,7[\"x\",{}]").unwrap();
        assert_eq!(packet.nsp, "/admin");
        assert_eq!(packet.id, Some(7));
        assert_eq!(packet.event(), Some(("x", &[json!({})][..])));
        assert_eq!(Packet::parse("0/random").unwrap().nsp, "/random");
    }

    #[test]
    fn bad_packets_are_refused() {
        for text in [
            "",
            "abc",
            "7",
            "2{}",
            "2[]",
            "2[1]",
            "2abc[\"x\"]",
            "3{}",
            "0[1]",
            "1{}",
            "5[\"x\"]",
            "5a-[\"x\"]",
        ] {
            assert!(Packet::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn connect_errors_carry_a_message() {
        assert_eq!(
            connect_error("/random", "Invalid namespace", None).encode(),
            "4/random,{\"message\":\"Invalid namespace\"}"
        );
        assert_eq!(
            connect_error("/", "Unauthorized", Some(json!({"code": 4101}))).encode(),
            "4{\"data\":{\"code\":4101},\"message\":\"Unauthorized\"}"
        );
    }
}
