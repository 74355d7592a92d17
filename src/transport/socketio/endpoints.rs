//! The HTTP side of an Engine.IO endpoint, `<path>/?EIO=4&transport=…[&sid=…]`:
//!
//! | request | answer |
//! | --- | --- |
//! | `GET …transport=polling` | a new long-polling session: `0{"sid":…,"upgrades":["websocket"],…}` |
//! | `GET …transport=polling&sid=S` | a poll: waits for packets, `\x1e`-separated |
//! | `POST …transport=polling&sid=S` | the client's packets; `ok` |
//! | `GET …transport=websocket` (upgrade) | a WebSocket session: `0{…,"upgrades":[]}` first |
//! | `GET …transport=websocket&sid=S` (upgrade) | upgrades session `S` (probe, then `5`) |
//! | `OPTIONS` | CORS preflight |
//!
//! Anything else is 400 with Engine.IO's error object (`{"code":…,"message":…}`): a
//! missing or other `EIO` than 4, an unknown transport, an unknown `sid` (or one that was
//! upgraded), a wrong method, a body that breaks the protocol (which also closes the
//! session). 413 for a body over `maxPayload` (and the session is closed), 503 beyond
//! `max_sessions`, 403 for an origin not allowed.

use std::collections::HashMap;
use std::sync::Arc;

use actix::Actor;
use actix_web::http::header;
use actix_web::http::{Method, StatusCode};
use actix_web::web::{self, BytesMut};
use actix_web::{HttpRequest, HttpResponse};
use bytestring::ByteString;
use comet_actors::Outlet;
use futures::StreamExt;
use tokio::sync::oneshot;

use super::app::new_sid;
use super::eio::decode_payload;
use super::framing::{open_app, EioFraming};
use super::requests::{Kill, Poll, Post};
use super::session::{PollReply, Session};
use super::upgrade::upgrade;
use super::Endpoint;
use crate::transport::service::SessionSink;
use crate::transport::socket;
use crate::transport::sockjs::headers::{cors, refuse_origin, TEXT};

/// Engine.IO's error answer: 400 with `{"code":…,"message":…}`.
fn refuse(status: StatusCode, code: u8, message: &str, req: &HttpRequest) -> HttpResponse {
    let mut res = HttpResponse::build(status);
    cors(&mut res, req);
    res.content_type("application/json")
        .body(format!("{{\"code\":{code},\"message\":\"{message}\"}}"))
}

fn ok_text(body: String, req: &HttpRequest) -> HttpResponse {
    let mut res = HttpResponse::Ok();
    cors(&mut res, req);
    res.content_type(TEXT)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

/// Every request to the endpoint's path.
pub(crate) async fn engine_io(
    req: HttpRequest,
    payload: web::Payload,
    endpoint: web::Data<Endpoint>,
) -> actix_web::Result<HttpResponse> {
    if let Some(refusal) = refuse_origin(&endpoint.origins, &req) {
        return Ok(refusal);
    }
    if req.method() == Method::OPTIONS {
        let mut res = HttpResponse::NoContent();
        cors(&mut res, &req);
        res.insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS"));
        return Ok(res.finish());
    }
    let query: HashMap<String, String> =
        serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    if query.get("EIO").map(String::as_str) != Some("4") {
        return Ok(refuse(
            StatusCode::BAD_REQUEST,
            5,
            "Unsupported protocol version",
            &req,
        ));
    }
    let sid = query.get("sid");
    let method = req.method().clone();
    match (query.get("transport").map(String::as_str), sid, method) {
        (Some("websocket"), None, Method::GET) => websocket(&req, payload, &endpoint),
        (Some("websocket"), Some(sid), Method::GET) => match endpoint.sessions.find(sid) {
            Some(session) => upgrade(req, payload, session, &endpoint.limits).await,
            None => Ok(refuse(
                StatusCode::BAD_REQUEST,
                1,
                "Session ID unknown",
                &req,
            )),
        },
        (Some("polling"), None, Method::GET) => Ok(handshake(&req, &endpoint)),
        (Some("polling"), Some(sid), Method::GET) => Ok(poll(&req, sid, &endpoint).await),
        (Some("polling"), Some(sid), Method::POST) => Ok(post(&req, payload, sid, &endpoint).await),
        (Some("polling" | "websocket"), _, _) => Ok(refuse(
            StatusCode::BAD_REQUEST,
            2,
            "Bad handshake method",
            &req,
        )),
        _ => Ok(refuse(
            StatusCode::BAD_REQUEST,
            0,
            "Transport unknown",
            &req,
        )),
    }
}

/// A WebSocket session.
fn websocket(
    req: &HttpRequest,
    payload: web::Payload,
    endpoint: &Endpoint,
) -> actix_web::Result<HttpResponse> {
    let framing = EioFraming::new(endpoint.config.handshake(&new_sid(), false));
    let config = endpoint.config.clone();
    let service = endpoint.service.clone();
    let outlet = Outlet::new(&endpoint.limits);
    socket::serve_with(
        req,
        payload,
        framing.clone(),
        outlet,
        &endpoint.limits,
        |sink, req| open_app(&framing, &*service, config, sink, req),
    )
}

/// A new long-polling session: its actor, on this thread, and the open packet.
fn handshake(req: &HttpRequest, endpoint: &Endpoint) -> HttpResponse {
    if !endpoint.sessions.has_room(endpoint.config.max_sessions) {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, 3, "Too many sessions", req);
    }
    let sid: Arc<str> = Arc::from(new_sid());
    let outlet = Outlet::new(&endpoint.limits);
    let app = endpoint
        .service
        .open(SessionSink::new(outlet.clone(), "socketio-polling"), req);
    let session = Session::new(
        sid.clone(),
        endpoint.sessions.clone(),
        endpoint.config.clone(),
        outlet,
        app,
    )
    .start();
    if !endpoint
        .sessions
        .insert(sid.clone(), session, endpoint.config.max_sessions)
    {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, 3, "Too many sessions", req);
    }
    ok_text(endpoint.config.handshake(&sid, true), req)
}

async fn poll(req: &HttpRequest, sid: &str, endpoint: &Endpoint) -> HttpResponse {
    let Some(session) = endpoint.sessions.find(sid) else {
        return refuse(StatusCode::BAD_REQUEST, 1, "Session ID unknown", req);
    };
    let (reply, answer) = oneshot::channel();
    session.do_send(Poll(reply));
    match answer.await {
        Ok(PollReply::Payload(body)) => ok_text(body, req),
        Ok(PollReply::Refused) | Err(_) => {
            refuse(StatusCode::BAD_REQUEST, 1, "Session ID unknown", req)
        }
    }
}

async fn post(
    req: &HttpRequest,
    mut payload: web::Payload,
    sid: &str,
    endpoint: &Endpoint,
) -> HttpResponse {
    let Some(session) = endpoint.sessions.find(sid) else {
        return refuse(StatusCode::BAD_REQUEST, 1, "Session ID unknown", req);
    };
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let Ok(chunk) = chunk else {
            return refuse(StatusCode::BAD_REQUEST, 3, "Bad request", req);
        };
        if body.len() + chunk.len() > endpoint.config.max_payload {
            session.do_send(Kill);
            return refuse(StatusCode::PAYLOAD_TOO_LARGE, 3, "Payload too large", req);
        }
        body.extend_from_slice(&chunk);
    }
    let packets = ByteString::try_from(body.freeze())
        .ok()
        .and_then(|text| decode_payload(text).ok());
    let Some(packets) = packets else {
        session.do_send(Kill);
        return refuse(StatusCode::BAD_REQUEST, 3, "Bad request", req);
    };
    match session.send(Post(packets)).await {
        Ok(true) => ok_text("ok".to_owned(), req),
        _ => refuse(StatusCode::BAD_REQUEST, 3, "Bad request", req),
    }
}
