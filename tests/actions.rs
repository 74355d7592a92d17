//! Action calls over the raw WebSocket: answers, context, and every way a call can fail.

mod common;

use std::time::Duration;

use actix::prelude::*;
use comet::{Action, ActionResult, Comet, Limits};
use common::{gate_name, open_gate, TestServer, WsClient};
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[actix_web::test]
async fn site_test_echoes_its_params_with_the_request_uid() {
    let server = TestServer::start(Comet::builder()).await;
    let mut client = server.client().await;
    let answer = client
        .request(
            "site/test",
            json!({ "a": 1, "list": [true, null], "s": "x y" }),
        )
        .await;
    assert_eq!(
        serde_json::Value::Object(answer),
        json!({ "echo": { "a": 1, "list": [true, null], "s": "x y" }, "requestUid": "u1" })
    );
    // jii's client sends string uids; a number is echoed as a number.
    client
        .send(r#"action site/test {"requestUid":42,"k":"v"}"#)
        .await;
    let answer = client.recv_answer().await;
    assert_eq!(answer["requestUid"], 42);
    assert_eq!(answer["echo"], json!({ "k": "v" }));
    server.stop().await;
}

#[actix_web::test]
async fn the_handler_sees_the_callers_connection() {
    let server = TestServer::start(Comet::builder()).await;
    let mut request = format!("{}?token=abc&x=1", server.ws_url())
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("User-Agent", "comet-tests/1.0".parse().unwrap());
    let (stream, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let mut client = WsClient::from_stream(stream);
    let answer = client.request("test/whoami", json!({})).await;
    let connections = server.comet.connections().await.unwrap();
    assert_eq!(connections.len(), 1);
    assert_eq!(answer["id"], connections[0].id.as_str());
    assert_eq!(answer["ip"], "127.0.0.1");
    assert_eq!(answer["userAgent"], "comet-tests/1.0");
    assert_eq!(answer["query"], "token=abc&x=1");
    assert_eq!(answer["transport"], "websocket");
    assert_eq!(answer["route"], "test/whoami");
    assert_eq!(answer["requestUid"], "u1");
    server.stop().await;
}

#[actix_web::test]
async fn a_route_without_handler_answers_not_found() {
    let server = TestServer::start(Comet::builder()).await;
    let mut client = server.client().await;
    let answer = client.request("no/such", json!({})).await;
    assert_eq!(answer["error"]["code"], "not_found");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no/such"));
    server.stop().await;
}

#[actix_web::test]
async fn a_process_that_runs_no_actions_answers_not_found_instead_of_hanging() {
    let server = TestServer::start(Comet::builder().listen_actions(false)).await;
    let mut client = server.client().await;
    let answer = client.request("site/test", json!({})).await;
    assert_eq!(answer["error"]["code"], "not_found");
    server.stop().await;
}

#[actix_web::test]
async fn a_failing_handler_answers_its_error() {
    let server = TestServer::start(Comet::builder()).await;
    let mut client = server.client().await;
    let answer = client.request("test/fail", json!({})).await;
    assert_eq!(
        answer["error"],
        json!({ "code": "nick_taken", "message": "that nickname is taken" })
    );
    // `?` on any std error becomes handler_failed with its message.
    let answer = client.request("test/io_error", json!({})).await;
    assert_eq!(answer["error"]["code"], "handler_failed");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("key must be a string"));
    server.stop().await;
}

#[actix_web::test]
async fn a_panicking_handler_answers_handler_failed_and_the_server_carries_on() {
    let server = TestServer::start(Comet::builder().workers(1)).await;
    let mut client = server.client().await;
    let answer = client.request("test/panic", json!({})).await;
    assert_eq!(answer["error"]["code"], "handler_failed");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("panicked"));
    // The only worker survived it.
    let answer = client.request("site/test", json!({ "after": true })).await;
    assert_eq!(answer["echo"], json!({ "after": true }));
    server.stop().await;
}

/// A handler actor that panics on `{"boom": true}`.
struct Fragile;

impl Actor for Fragile {
    type Context = Context<Self>;
}

impl Handler<Action> for Fragile {
    type Result = ActionResult;

    fn handle(&mut self, action: Action, _: &mut Context<Self>) -> ActionResult {
        if action.param("boom").is_some() {
            panic!("actor handler blew up (expected by the test)");
        }
        Ok(json!({ "fine": true }))
    }
}

#[actix_web::test]
async fn an_actor_handler_answers_and_its_panic_answers_handler_failed() {
    // The actor runs on an arbiter of its own, as heavy handlers should.
    let arbiter = Arbiter::new();
    let fragile = Fragile::start_in_arbiter(&arbiter.handle(), |_| Fragile);
    let server = TestServer::start(Comet::builder().action("test/fragile", fragile)).await;
    let mut client = server.client().await;
    let answer = client.request("test/fragile", json!({})).await;
    assert_eq!(answer["fine"], true);
    let answer = client
        .request("test/fragile", json!({ "boom": true }))
        .await;
    assert_eq!(answer["error"]["code"], "handler_failed");
    // The actor is gone now; calls answer an error instead of hanging.
    let answer = client.request("test/fragile", json!({})).await;
    assert_eq!(answer["error"]["code"], "handler_failed");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("gone"));
    server.stop().await;
    arbiter.stop();
}

#[actix_web::test]
async fn a_slow_handler_answers_timeout() {
    let builder = Comet::builder().action_timeout(Duration::from_millis(300));
    let server = TestServer::start(builder).await;
    let mut client = server.client().await;
    // Its gate never opens.
    let never = gate_name("never");
    let answer = client.request("test/hold", json!({ "gate": never })).await;
    assert_eq!(answer["error"]["code"], "timeout");
    // A quick one still works.
    let quick = gate_name("quick");
    open_gate(&quick);
    let answer = client.request("test/hold", json!({ "gate": quick })).await;
    assert_eq!(answer["held"], json!(quick));
    server.stop().await;
}

#[actix_web::test]
async fn answers_match_their_calls_when_they_finish_out_of_order() {
    let server = TestServer::start(Comet::builder().workers(4)).await;
    let mut client = server.client().await;
    // The first call finishes only once the second one was answered.
    let held = gate_name("slow");
    let slow = client.call("test/hold", json!({ "gate": held })).await;
    let fast = client.call("site/test", json!({ "fast": true })).await;
    let first = client.recv_answer().await;
    assert_eq!(first["requestUid"], fast);
    assert_eq!(first["echo"]["fast"], true);
    open_gate(&held);
    let second = client.recv_answer().await;
    assert_eq!(second["requestUid"], slow);
    assert_eq!(second["held"], json!(held));
    server.stop().await;
}

#[actix_web::test]
async fn pending_calls_are_limited_and_uids_must_be_unique_while_pending() {
    let limits = Limits {
        max_pending_actions: 2,
        ..Limits::default()
    };
    let server = TestServer::start(Comet::builder().limits(limits).workers(4)).await;
    let mut client = server.client().await;
    let (gate_a, gate_b) = (gate_name("a"), gate_name("b"));
    client
        .send(&format!(
            r#"action test/hold {{"requestUid":"a","gate":"{gate_a}"}}"#
        ))
        .await;
    client
        .send(&format!(
            r#"action test/hold {{"requestUid":"a","gate":"{gate_a}"}}"#
        ))
        .await;
    let answer = client.recv_answer().await;
    assert_eq!(answer["requestUid"], "a");
    assert_eq!(answer["error"]["code"], "bad_frame");

    client
        .send(&format!(
            r#"action test/hold {{"requestUid":"b","gate":"{gate_b}"}}"#
        ))
        .await;
    client
        .send(&format!(
            r#"action test/hold {{"requestUid":"c","gate":"{gate_b}"}}"#
        ))
        .await;
    let answer = client.recv_answer().await;
    assert_eq!(answer["requestUid"], "c");
    assert_eq!(answer["error"]["code"], "too_many_pending");

    // The two pending ones are answered normally once they may finish.
    open_gate(&gate_a);
    open_gate(&gate_b);
    let mut done = vec![
        client.recv_answer().await["requestUid"].clone(),
        client.recv_answer().await["requestUid"].clone(),
    ];
    done.sort_by_key(|v| v.to_string());
    assert_eq!(done, vec![json!("a"), json!("b")]);
    server.stop().await;
}

#[actix_web::test]
async fn many_calls_from_many_clients_all_get_their_own_answer() {
    let server = TestServer::start(Comet::builder()).await;
    let mut clients = Vec::new();
    for _ in 0..10 {
        clients.push(server.client().await);
    }
    for (i, client) in clients.iter_mut().enumerate() {
        for j in 0..20 {
            client.call("site/test", json!({ "i": i, "j": j })).await;
        }
    }
    for (i, client) in clients.iter_mut().enumerate() {
        let mut seen = Vec::new();
        for _ in 0..20 {
            let answer = client.recv_answer().await;
            assert_eq!(answer["echo"]["i"], i);
            seen.push(answer["echo"]["j"].as_u64().unwrap());
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..20).collect::<Vec<u64>>());
    }
    server.stop().await;
}

/// A flood of slow calls from one connection does not take every worker: a call from
/// another connection is answered while they all still wait, and no more of the flood
/// ever runs at once than `max_running_actions_per_connection`.
#[actix_web::test]
async fn one_connection_cannot_take_every_worker() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    // Calls to `test/gate` wait until the test opens the gate.
    let (open, gate) = tokio::sync::watch::channel(false);
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (in_gate, in_peak) = (running.clone(), peak.clone());
    let limits = Limits {
        max_running_actions_per_connection: 2,
        ..Limits::default()
    };
    let builder =
        Comet::builder()
            .workers(4)
            .limits(limits)
            .action_fn("test/gate", move |action: Action| {
                let mut gate = gate.clone();
                let (running, peak) = (in_gate.clone(), in_peak.clone());
                async move {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    let _ = gate.wait_for(|open| *open).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    Ok(json!({ "n": action.param("n").cloned() }))
                }
            });
    let server = TestServer::start(builder).await;
    let mut flood = server.client().await;
    let mut other = server.client().await;

    let mut flooded = Vec::new();
    for n in 0..10 {
        flooded.push(flood.call("test/gate", json!({ "n": n })).await);
    }
    common::eventually("two calls of the flood run", || {
        let running = running.clone();
        async move { running.load(Ordering::SeqCst) >= 2 }
    })
    .await;

    // Four workers, two of them busy with the flood: the other connection's call is
    // answered first, while every call of the flood still waits at the gate.
    let answer = other.request("site/test", json!({ "quick": true })).await;
    assert_eq!(answer["echo"], json!({ "quick": true }));
    assert_eq!(running.load(Ordering::SeqCst), 2);

    // Opened, the flood goes through, never more than two at once, each answered once.
    open.send(true).expect("the gate is watched");
    let mut answered = Vec::new();
    for _ in 0..10 {
        let answer = flood.recv_answer().await;
        answered.push(answer["requestUid"].as_str().unwrap_or_default().to_owned());
    }
    answered.sort();
    flooded.sort();
    assert_eq!(answered, flooded);
    assert_eq!(peak.load(Ordering::SeqCst), 2);
    server.stop().await;
}
