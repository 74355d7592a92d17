//! [`ConnectionService`]: comet's own SockJS application. Every session is a comet
//! [`Connection`] speaking the jii protocol, exactly as over the raw WebSocket.

use std::time::Duration;

use actix::{Actor, Addr};
use actix_web::HttpRequest;
use bytestring::ByteString;
use comet_actors::{Connection, Inbound, Node, Touch, TransportClosed};

use super::service::{SessionHandler, SessionSink, SockJsService};
use crate::request_info::connection_info;

/// Starts a comet [`Connection`] for each SockJS session; the default service of
/// [`Comet::scope`](crate::Comet::scope).
pub struct ConnectionService {
    node: Node,
    trust_proxy_headers: bool,
}

impl ConnectionService {
    /// Connections of `node`; see [`WebSettings::trust_proxy_headers`](crate::WebSettings).
    pub fn new(node: Node, trust_proxy_headers: bool) -> ConnectionService {
        ConnectionService {
            node,
            trust_proxy_headers,
        }
    }
}

impl SockJsService for ConnectionService {
    fn open(&self, sink: SessionSink, request: &HttpRequest) -> Box<dyn SessionHandler> {
        let info = connection_info(
            request,
            self.node.next_connection_id(),
            sink.transport(),
            self.trust_proxy_headers,
        );
        let connection = Connection::new(self.node.clone(), info, Box::new(sink)).start();
        Box::new(ConnectionHandler(connection))
    }

    /// The connection closes a client silent for `client_timeout`; a SockJS client may
    /// rightly be silent longer (it only listens), so its session vouches for it in time.
    fn touch_interval(&self) -> Option<Duration> {
        Some(self.node.config().client_timeout / 3)
    }
}

/// Forwards a session's traffic to its connection actor.
struct ConnectionHandler(Addr<Connection>);

impl SessionHandler for ConnectionHandler {
    fn message(&mut self, message: ByteString) {
        self.0.do_send(Inbound(message));
    }

    fn touch(&mut self) {
        self.0.do_send(Touch);
    }

    fn closed(&mut self) {
        self.0.do_send(TransportClosed);
    }
}
