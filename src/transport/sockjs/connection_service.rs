//! [`ConnectionService`]: comet's own application behind every transport. Each client (a
//! raw WebSocket, or a SockJS session over any transport) is a comet [`Connection`]
//! speaking the jii protocol.

use actix::{Actor, Addr};
use actix_web::HttpRequest;
use bytestring::ByteString;
use comet_actors::protocol::FrameError;
use comet_actors::{Connection, Inbound, Node, Refused, TransportClosed};

use crate::request_info::connection_info;
use crate::transport::service::{SessionHandler, SessionSink, SockJsService};

/// Starts a comet [`Connection`] for each client; the service of
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
        let connection = Connection::new(self.node.clone(), info, sink.outlet().clone()).start();
        Box::new(ConnectionHandler(connection))
    }
}

/// Forwards a client's traffic to its connection actor.
struct ConnectionHandler(Addr<Connection>);

impl SessionHandler for ConnectionHandler {
    fn message(&mut self, message: ByteString) {
        comet_actors::metrics::METRICS.messages_received.inc();
        self.0.do_send(Inbound(message));
    }

    fn refused(&mut self, error: FrameError) {
        self.0.do_send(Refused(error));
    }

    fn closed(&mut self) {
        self.0.do_send(TransportClosed);
    }
}
