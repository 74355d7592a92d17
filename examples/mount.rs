//! Mounting comet into your own actix-web app, beside your own routes, and publishing
//! from an ordinary HTTP handler.
//!
//! ```text
//! cargo run --example mount
//! curl -X POST 'http://127.0.0.1:4101/notify?text=hello'   # reaches every client on `news`
//! ```
//! Clients connect to `ws://127.0.0.1:4101/realtime/websocket` and send `subscribe news`.

use actix_web::{web, App, HttpResponse, HttpServer, Responder};
use comet::Comet;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
struct Notify {
    text: String,
}

/// An ordinary handler of your app: it publishes to a channel through comet.
async fn notify(comet: web::Data<Comet>, query: web::Query<Notify>) -> impl Responder {
    match comet.publish("news", json!({ "text": query.text })).await {
        Ok(()) => HttpResponse::Accepted().body("published\n"),
        Err(err) => HttpResponse::ServiceUnavailable().body(format!("{err}\n")),
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let comet = Comet::builder().build().map_err(std::io::Error::other)?;

    let app_comet = comet.clone();
    HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(app_comet.clone()))
            .route("/notify", web::post().to(notify))
            .route(
                "/",
                web::get().to(|| async { "my app, with comet at /realtime\n" }),
            )
            .service(app_comet.scope("/realtime"))
    })
    // SockJS: notice at once a client that closes a waiting poll or stream.
    .h1_allow_half_closed(false)
    // Each message goes out as soon as it is published: no waiting for delayed ACKs.
    .tcp_nodelay(true)
    .bind(("127.0.0.1", 4101))?
    .run()
    .await?;
    comet.shutdown().await;
    Ok(())
}
