//! The raw WebSocket framing, served at `<scope>/websocket`: each text message is one
//! frame of the application's protocol (comet's jii frames), no framing around them. It
//! runs on the one WebSocket engine (`socket.rs`), as SockJS's WebSocket does; its route
//! is the endpoint's (`sockjs/websocket.rs`), beside SockJS's own WebSocket.

use bytestring::ByteString;
use comet_actors::CloseCode;

use super::socket::{Framing, Writer};

/// Plain messages both ways: a frame is a WebSocket text message.
#[derive(Clone, Copy)]
pub(crate) struct Raw;

impl Framing for Raw {
    fn name(&self) -> &'static str {
        "websocket"
    }

    fn frames(&self, frames: &[ByteString], out: &mut Writer<'_>) {
        for frame in frames {
            out.text(frame.clone());
        }
    }

    fn decode(
        &self,
        text: ByteString,
        deliver: &mut dyn FnMut(ByteString),
    ) -> Result<(), CloseCode> {
        deliver(text);
        Ok(())
    }
}
