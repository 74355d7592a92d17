//! The mapping of `comet.rs` and `outbound.rs`, against a recording connection: what
//! the connection is told, and what the client gets for what the connection writes.

use std::cell::RefCell;
use std::rc::Rc;

use bytestring::ByteString;
use comet_actors::{CloseCode, Limits, Out, Outlet};

use super::comet::CometApp;
use super::eio::EioMessage;
use super::EioApp;
use crate::transport::service::SessionHandler;

/// Records the frames the connection is told.
struct Recorder(Rc<RefCell<Vec<String>>>);

impl SessionHandler for Recorder {
    fn message(&mut self, message: ByteString) {
        self.0.borrow_mut().push(message.to_string());
    }
}

struct Harness {
    app: CometApp,
    told: Rc<RefCell<Vec<String>>>,
    outlet: Outlet,
}

impl Harness {
    fn new() -> Harness {
        let told = Rc::new(RefCell::new(Vec::new()));
        let outlet = Outlet::new(&Limits::default());
        let app = CometApp::new(Box::new(Recorder(told.clone())), outlet.clone());
        Harness { app, told, outlet }
    }

    fn send(&mut self, packet: &str) -> Result<(), CloseCode> {
        self.app.message(EioMessage::Text(packet.into()))
    }

    /// What the client gets: the outlet drained, each frame translated (as a transport
    /// does), with the connection's `frames` written first.
    fn client_gets(&mut self, frames: &[&str]) -> Vec<String> {
        for frame in frames {
            self.outlet.send((*frame).into()).unwrap();
        }
        let mut outs = Vec::new();
        self.outlet.drain(usize::MAX, |out| outs.push(out));
        let mut got = Vec::new();
        for out in outs {
            let Out::Frame(frame) = out else { continue };
            self.app.outbound(frame, &mut |m| match m {
                EioMessage::Text(text) => got.push(text.to_string()),
                EioMessage::Binary(_) => got.push("<binary>".into()),
            });
        }
        got
    }

    fn told(&self) -> Vec<String> {
        std::mem::take(&mut *self.told.borrow_mut())
    }
}

#[test]
fn a_connect_without_token_is_answered_at_once() {
    let mut h = Harness::new();
    h.send("0").unwrap();
    assert!(h.told().is_empty());
    let got = h.client_gets(&[]);
    assert_eq!(got, [format!("0{{\"sid\":\"{}\"}}", h.app.sid)]);
    assert!(h.app.connected());
}

#[test]
fn a_connect_with_token_waits_for_authenticated() {
    let mut h = Harness::new();
    h.send("0{\"token\":\" abc.def \"}").unwrap();
    assert_eq!(h.told(), ["auth abc.def"]);
    assert!(h.client_gets(&[]).is_empty());
    let got = h.client_gets(&["authenticated {\"user\":\"42\",\"exp\":null}"]);
    assert_eq!(got, [format!("0{{\"sid\":\"{}\"}}", h.app.sid)]);
    // A later `authenticated` (a refresh nobody asked for with an ack) is an event.
    let got = h.client_gets(&["authenticated {\"user\":\"42\",\"exp\":1}"]);
    assert_eq!(
        got,
        ["2[\"comet:authenticated\",{\"user\":\"42\",\"exp\":1}]"]
    );
}

#[test]
fn a_refused_token_is_a_connect_error_with_its_code() {
    let mut h = Harness::new();
    h.send("0{\"token\":\"bad\"}").unwrap();
    let mut close = Vec::new();
    h.app
        .closing(CloseCode::Other(4101, "Unauthorized"), &mut |m| {
            if let EioMessage::Text(text) = m {
                close.push(text.to_string());
            }
        });
    assert_eq!(
        close,
        [
            "2[\"comet:close\",{\"code\":4101,\"reason\":\"Unauthorized\"}]",
            "4{\"data\":{\"code\":4101},\"message\":\"Unauthorized\"}",
        ]
    );
}

#[test]
fn an_error_while_authenticating_is_a_connect_error() {
    let mut h = Harness::new();
    h.send("0{\"token\":\"bad\"}").unwrap();
    let got = h.client_gets(&["error {\"code\":\"unauthorized\",\"message\":\"bad signature\"}"]);
    assert_eq!(
        got,
        ["4{\"data\":{\"code\":\"unauthorized\"},\"message\":\"bad signature\"}"]
    );
}

#[test]
fn events_become_jii_frames_and_frames_become_events_and_acks() {
    let mut h = Harness::new();
    h.send("0").unwrap();
    h.client_gets(&[]);
    h.send("21[\"subscribe\",\"news\",{\"token\":\"t\"}]")
        .unwrap();
    h.send("22[\"unsubscribe\",\"old\"]").unwrap();
    h.send("2[\"channel\",\"news\",{\"a\":1}]").unwrap();
    h.send("2[\"channel\",\"news\",\"plain\"]").unwrap();
    h.send("23[\"action\",\"site/test\",{\"x\":1,\"requestUid\":\"mine\"}]")
        .unwrap();
    h.send("2[\"action\",\"site/test\"]").unwrap();
    h.send("24[\"auth\",\"newtoken\"]").unwrap();
    assert_eq!(
        h.told(),
        [
            "subscribe news {\"token\":\"t\"}",
            "unsubscribe old",
            "channel news {\"a\":1}",
            "channel news plain",
            "action site/test {\"requestUid\":\"sio1\",\"x\":1}",
            "action site/test {\"requestUid\":\"sio2\"}",
            "auth newtoken",
        ]
    );
    let got = h.client_gets(&[
        "subscribed news",
        "unsubscribed old",
        "channel news {\"a\":1}",
        "channel news plain",
        "channel news ",
        "action {\"echo\":{\"x\":1},\"requestUid\":\"sio1\"}",
        "action {\"echo\":{},\"requestUid\":\"sio2\"}",
        "authenticated {\"user\":null}",
        "subscribed other",
        "error {\"code\":\"too_large\",\"message\":\"big\"}",
        "ping",
    ]);
    assert_eq!(
        got,
        [
            "31[{\"channel\":\"news\"}]",
            "32[{\"channel\":\"old\"}]",
            "2[\"channel\",\"news\",{\"a\":1}]",
            "2[\"channel\",\"news\",\"plain\"]",
            "2[\"channel\",\"news\",\"\"]",
            "33[{\"echo\":{\"x\":1}}]",
            "34[{\"user\":null}]",
            "2[\"comet:subscribed\",\"other\"]",
            "2[\"comet:error\",{\"code\":\"too_large\",\"message\":\"big\"}]",
            "2[\"comet:ping\"]",
        ]
    );
}

#[test]
fn a_refused_subscribe_answers_its_ack() {
    let mut h = Harness::new();
    h.send("0").unwrap();
    h.client_gets(&[]);
    h.send("27[\"subscribe\",\"secret\"]").unwrap();
    let got = h
        .client_gets(&["error {\"channel\":\"secret\",\"code\":\"forbidden\",\"message\":\"no\"}"]);
    assert_eq!(
        got,
        ["37[{\"error\":{\"channel\":\"secret\",\"code\":\"forbidden\",\"message\":\"no\"}}]"]
    );
    // Refusals of the mapping itself: the ack, or `comet:error`.
    h.send("28[\"subscribe\",\"two words\"]").unwrap();
    h.send("2[\"nope\"]").unwrap();
    let got = h.client_gets(&[]);
    assert!(
        got[0].starts_with("38[{\"error\":{\"code\":\"bad_channel\""),
        "{got:?}"
    );
    assert!(
        got[1].starts_with("2[\"comet:error\",{\"code\":\"bad_frame\""),
        "{got:?}"
    );
}

#[test]
fn binary_attachments_are_refused_and_swallowed() {
    let mut h = Harness::new();
    h.send("0").unwrap();
    h.client_gets(&[]);
    h.send("52-9[\"channel\",\"x\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]")
        .unwrap();
    h.app.message(EioMessage::Binary(vec![1].into())).unwrap();
    assert!(h.client_gets(&[]).is_empty());
    h.app.message(EioMessage::Binary(vec![2].into())).unwrap();
    let got = h.client_gets(&[]);
    assert!(
        got[0].starts_with("39[{\"error\":{\"code\":\"bad_frame\""),
        "{got:?}"
    );
    assert!(h.told().is_empty());
    // A stray attachment breaks the protocol.
    assert!(h.app.message(EioMessage::Binary(vec![3].into())).is_err());
}

#[test]
fn packets_before_connect_or_broken_ones_close() {
    let mut h = Harness::new();
    assert!(h.send("2[\"channel\",\"x\",1]").is_err());
    let mut h = Harness::new();
    h.send("0/admin,").unwrap();
    assert_eq!(
        h.client_gets(&[]),
        ["4/admin,{\"message\":\"Invalid namespace\"}"]
    );
    assert!(!h.app.connected());
    h.send("0").unwrap();
    assert!(h.send("2{}").is_err());
    assert_eq!(h.send("1"), Err(CloseCode::Normal));
}

#[test]
fn a_server_side_disconnect_is_a_disconnect_packet_other_closes_are_not() {
    let mut h = Harness::new();
    h.send("0").unwrap();
    h.client_gets(&[]);
    let closing = |h: &mut Harness, code| {
        let mut got = Vec::new();
        h.app.closing(code, &mut |m| {
            if let EioMessage::Text(text) = m {
                got.push(text.to_string());
            }
        });
        got
    };
    assert_eq!(
        closing(&mut h, CloseCode::Normal),
        [
            "2[\"comet:close\",{\"code\":1000,\"reason\":\"Normal closure\"}]",
            "1"
        ]
    );
    let got = closing(&mut h, CloseCode::GoingAway);
    assert_eq!(got.len(), 1, "{got:?}");
}

#[test]
fn presence_requests_are_answered_on_their_acks() {
    let mut h = Harness::new();
    h.send("0").unwrap();
    h.client_gets(&[]);
    h.send("21[\"subscribe\",\"room:1\",{\"joinLeave\":true}]")
        .unwrap();
    h.send("22[\"presence\",\"room:1\"]").unwrap();
    h.send("23[\"presence_stats\",\"room:1\"]").unwrap();
    h.send("24[\"presence\",\"room:2\"]").unwrap();
    // Without an ack the answer is dropped; a bad channel never reaches the connection.
    h.send("2[\"presence_stats\",\"room:1\"]").unwrap();
    h.send("25[\"presence\",\"two words\"]").unwrap();
    h.send("26[\"presence_stats\"]").unwrap();
    assert_eq!(
        h.told(),
        [
            "subscribe room:1 {\"joinLeave\":true}",
            "presence room:1 {\"requestUid\":\"sio1\"}",
            "presence_stats room:1 {\"requestUid\":\"sio2\"}",
            "presence room:2 {\"requestUid\":\"sio3\"}",
            "presence_stats room:1 {\"requestUid\":\"sio4\"}",
        ]
    );
    // Keys in serde_json's order, as the ack writes them.
    let entry = "{\"connection\":\"ab12.7\",\"info\":{\"name\":\"Ann\"},\"user\":\"42\"}";
    let got = h.client_gets(&[
        "subscribed room:1",
        &format!("action {{\"requestUid\":\"sio1\",\"clients\":{{\"ab12.7\":{entry}}}}}"),
        "action {\"requestUid\":\"sio2\",\"clients\":3,\"users\":2}",
        "action {\"requestUid\":\"sio3\",\"error\":{\"code\":\"not_found\",\"message\":\"no presence\"}}",
        "action {\"requestUid\":\"sio4\",\"clients\":3,\"users\":2}",
    ]);
    assert_eq!(got.len(), 6, "{got:?}");
    // The mapping's own refusals were written at once, before the connection's frames.
    assert!(
        got[0].starts_with("35[{\"error\":{\"code\":\"bad_channel\""),
        "{got:?}"
    );
    assert!(
        got[1].starts_with("36[{\"error\":{\"code\":\"bad_channel\""),
        "{got:?}"
    );
    assert_eq!(got[2], "31[{\"channel\":\"room:1\"}]");
    assert_eq!(
        got[3],
        format!("32[{{\"clients\":{{\"ab12.7\":{entry}}}}}]")
    );
    assert_eq!(got[4], "33[{\"clients\":3,\"users\":2}]");
    assert_eq!(
        got[5],
        "34[{\"error\":{\"code\":\"not_found\",\"message\":\"no presence\"}}]"
    );
    assert!(h.app.actions.is_empty(), "every answer found its request");
}

#[test]
fn join_and_leave_frames_are_events_with_channel_and_entries() {
    let mut h = Harness::new();
    h.send("0").unwrap();
    h.client_gets(&[]);
    let ann = "{\"connection\":\"ab12.7\",\"user\":\"42\",\"info\":{\"name\":\"Ann\"}}";
    let anon = "{\"connection\":\"cd34.1\",\"user\":null,\"info\":null}";
    let got = h.client_gets(&[
        &format!("join room:1 [{ann},{anon}]"),
        &format!("leave room:1 [{anon}]"),
        "join broken",
    ]);
    assert_eq!(
        got,
        [
            format!("2[\"join\",\"room:1\",[{ann},{anon}]]"),
            format!("2[\"leave\",\"room:1\",[{anon}]]"),
            "2[\"comet:join\",\"broken\"]".to_owned(),
        ]
    );
}

#[test]
fn history_requests_are_answered_on_their_acks() {
    let mut h = Harness::new();
    h.send("0").unwrap();
    h.client_gets(&[]);
    h.send("21[\"history\",\"feed\",{\"since\":3,\"limit\":2,\"requestUid\":\"mine\"}]")
        .unwrap();
    h.send("22[\"history\",\"feed\"]").unwrap();
    h.send("23[\"history\",\"feed\",[1]]").unwrap();
    h.send("24[\"history\",\"two words\"]").unwrap();
    assert_eq!(
        h.told(),
        [
            "history feed {\"requestUid\":\"sio1\",\"limit\":2,\"since\":3}",
            "history feed {\"requestUid\":\"sio2\"}",
        ]
    );
    let got = h.client_gets(&[
        "action {\"requestUid\":\"sio1\",\"publications\":[{\"offset\":4,\"payload\":\"a\"}],\"offset\":5,\"epoch\":\"e1\"}",
        "action {\"requestUid\":\"sio2\",\"error\":{\"code\":\"not_found\",\"message\":\"no history\"}}",
    ]);
    assert_eq!(got.len(), 4, "{got:?}");
    assert!(
        got[0].starts_with("33[{\"error\":{\"code\":\"bad_json\""),
        "{got:?}"
    );
    assert!(
        got[1].starts_with("34[{\"error\":{\"code\":\"bad_channel\""),
        "{got:?}"
    );
    assert_eq!(
        got[2],
        "31[{\"epoch\":\"e1\",\"offset\":5,\"publications\":[{\"offset\":4,\"payload\":\"a\"}]}]"
    );
    assert_eq!(
        got[3],
        "32[{\"error\":{\"code\":\"not_found\",\"message\":\"no history\"}}]"
    );
}
