//! Turns the HTTP request that opened a connection into a
//! [`ConnectionInfo`]: peer ip, headers, query.

use std::collections::BTreeMap;

use actix_web::HttpRequest;
use comet_actors::{ConnectionId, ConnectionInfo};

/// What a handler may learn of the caller. With `trust_proxy_headers`, the ip is the
/// first `X-Forwarded-For` entry (only safe behind a proxy that sets it).
pub fn connection_info(
    req: &HttpRequest,
    id: ConnectionId,
    transport: &str,
    trust_proxy_headers: bool,
) -> ConnectionInfo {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in req.headers() {
        let value = String::from_utf8_lossy(value.as_bytes());
        headers
            .entry(name.as_str().to_owned())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    let forwarded = trust_proxy_headers
        .then(|| headers.get("x-forwarded-for"))
        .flatten()
        .and_then(|list| list.split(',').next())
        .map(|ip| ip.trim().to_owned())
        .filter(|ip| !ip.is_empty());
    let ip = forwarded.or_else(|| req.peer_addr().map(|addr| addr.ip().to_string()));
    let mut info = ConnectionInfo::new(id, transport);
    info.ip = ip;
    info.headers = headers;
    info.query = req.query_string().to_owned();
    info
}
