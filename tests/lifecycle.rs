//! A connection's life: heartbeats and the idle timeout, a slow consumer among fast ones,
//! graceful shutdown, and mounting comet in a user's own app.

mod common;

use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use comet::{Comet, ConnectionEvent, Limits};
use common::{Ended, TestServer, WsClient};
use tokio_tungstenite::tungstenite::Message;

#[actix_web::test]
async fn a_client_that_stops_answering_pings_is_closed_with_4000() {
    let builder = Comet::builder().heartbeat(Duration::from_millis(50), Duration::from_millis(200));
    let server = TestServer::start(builder).await;
    let mut events = server.comet.events();
    // This client never reads, so it never answers the server's pings.
    let mut silent = server.client().await;
    assert!(matches!(events.recv().await, Ok(ConnectionEvent::Added(_))));
    assert!(matches!(
        events.recv().await,
        Ok(ConnectionEvent::Removed(_))
    ));
    assert_eq!(silent.until_closed().await, Ended::Closed(Some(4000)));
    server.stop().await;
}

#[actix_web::test]
async fn a_client_that_answers_pings_stays_connected() {
    // Timeouts with room for a loaded machine (a test client not scheduled for a while).
    let builder =
        Comet::builder().heartbeat(Duration::from_millis(100), Duration::from_millis(600));
    let server = TestServer::start(builder).await;
    let mut client = server.client().await;
    // Reading answers the pings. Eighteen pings, never early, span at least 1.8 s: three
    // idle timeouts, and nothing but pings came meanwhile.
    for _ in 0..18 {
        client.next_ping().await;
    }
    client.subscribe("still-here").await;
    server.stop().await;
}

#[actix_web::test]
async fn the_server_answers_pings() {
    let server = TestServer::start(Comet::builder()).await;
    let mut client = server.client().await;
    client
        .send_raw(Message::Ping(b"are you there".to_vec().into()))
        .await;
    assert_eq!(client.next_pong().await, b"are you there".to_vec());
    server.stop().await;
}

#[actix_web::test]
async fn a_slow_consumer_is_closed_and_fast_ones_keep_every_message() {
    let limits = Limits {
        outbound_queue: 64,
        ..Limits::default()
    };
    let server = TestServer::start(Comet::builder().limits(limits)).await;
    let mut events = server.comet.events();
    let mut slow = server.client().await;
    slow.subscribe("flood").await; // registered before `fast` connects
    let mut fast = server.client().await;
    fast.subscribe("flood").await;
    let slow_id = match events.recv().await {
        Ok(ConnectionEvent::Added(info)) => info.id.clone(),
        other => panic!("expected Added, got {other:?}"),
    };
    let _fast_added = events.recv().await;

    // 48 MB in bursts of 20 (well under the queue of 64): the fast reader keeps up, the
    // slow one never reads, so its socket buffers fill and then its outbound queue does.
    let payload = "z".repeat(8 * 1024);
    let mut slow_closed = false;
    for batch in 0..300 {
        for n in 0..20 {
            server
                .comet
                .publish("flood", format!("{batch}:{n}:{payload}"))
                .await
                .unwrap();
        }
        for n in 0..20 {
            let got = fast.recv_on("flood").await;
            assert!(got.starts_with(&format!("{batch}:{n}:")), "in order");
        }
        while let Ok(event) = events.try_recv() {
            if matches!(&event, ConnectionEvent::Removed(info) if info.id == slow_id) {
                slow_closed = true;
            }
        }
    }
    assert!(slow_closed, "the slow consumer was closed");
    assert_eq!(server.comet.connections().await.unwrap().len(), 1);
    // What the slow client finds when it finally reads: some messages, then the end.
    assert_ne!(slow.until_closed().await, Ended::Closed(Some(1000)));
    server.stop().await;
}

#[actix_web::test]
async fn shutdown_tells_clients_to_reconnect_elsewhere() {
    let server = TestServer::start(Comet::builder()).await;
    let mut a = server.client().await;
    let mut b = server.client().await;
    a.subscribe("x").await;
    b.subscribe("x").await;
    server.comet.shutdown().await;
    assert_eq!(a.until_closed().await, Ended::Closed(Some(1001)));
    assert_eq!(b.until_closed().await, Ended::Closed(Some(1001)));
    server.stop().await;
}

#[actix_web::test]
async fn comet_mounts_as_a_scope_beside_the_apps_own_routes() {
    let comet = Comet::builder().build().unwrap();
    let app_comet = comet.clone();
    let server = HttpServer::new(move || {
        App::new()
            .route(
                "/health",
                web::get().to(|| async { HttpResponse::Ok().body("ok") }),
            )
            .service(app_comet.scope("/realtime"))
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);

    let health = awc::Client::new()
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .unwrap()
        .body()
        .await
        .unwrap();
    assert_eq!(&health[..], b"ok");
    let mut client = WsClient::connect(&format!("ws://{addr}/realtime/websocket")).await;
    client.subscribe("mounted").await;
    comet.publish("mounted", "works").await.unwrap();
    assert_eq!(client.recv_on("mounted").await, "works");
    handle.stop(false).await;
}
