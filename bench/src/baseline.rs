//! The bare baseline: a WebSocket broadcast server on the same stack (actix-web +
//! actix-ws) with no channels, no actors and no protocol. Every text message from the
//! connection that opened with `?publisher` is written, as it is, to every other
//! connection. It is the best this machine and stack can do, so comet's figures are
//! printed as ratios to it.
//!
//! It runs as a child process of the generator (`comet-bench baseline-server`), so that
//! its CPU and memory are measured exactly like a comet server's.

use std::cell::RefCell;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use actix_ws::{Message, Session};
use bytestring::ByteString;
use tokio::sync::mpsc;

/// Frames a subscriber may fall behind before the broadcast drops them for it.
const QUEUE: usize = 1024;

thread_local! {
    /// The outboxes of the subscribers held by this worker thread.
    static OUTBOXES: RefCell<Vec<mpsc::Sender<ByteString>>> = const { RefCell::new(Vec::new()) };
}

/// One sender per worker thread; a published message goes to each.
type Workers = Arc<Mutex<Vec<mpsc::UnboundedSender<ByteString>>>>;

/// Runs the baseline server until killed; prints `listening on <addr>` first. With
/// `nodelay`, accepted connections get `TCP_NODELAY`, as comet's `Server` sets it (without,
/// the kernel's Nagle algorithm may hold a small write back while an earlier one is
/// unacknowledged, joining it with the next: fewer packets and wake-ups, later frames).
pub fn serve(bind: &str, nodelay: bool) -> std::io::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let workers: Workers = Arc::default();
        let app_workers = workers.clone();
        let server = HttpServer::new(move || {
            // Each worker thread makes its App once: register its broadcast inbox here.
            let (tx, mut rx) = mpsc::unbounded_channel::<ByteString>();
            if let Ok(mut all) = app_workers.lock() {
                all.push(tx);
            }
            actix_web::rt::spawn(async move {
                while let Some(text) = rx.recv().await {
                    OUTBOXES.with(|outboxes| {
                        for outbox in outboxes.borrow().iter() {
                            let _ = outbox.try_send(text.clone());
                        }
                    });
                }
            });
            App::new()
                .app_data(web::Data::new(app_workers.clone()))
                .route("/ws", web::get().to(connect))
        })
        .tcp_nodelay(nodelay)
        .bind(bind)?;
        println!("listening on {}", server.addrs()[0]);
        server.run().await
    })
}

async fn connect(
    req: HttpRequest,
    body: web::Payload,
    workers: web::Data<Workers>,
) -> actix_web::Result<HttpResponse> {
    let (response, session, mut stream) = actix_ws::handle(&req, body)?;
    let publisher = req.query_string().contains("publisher");
    // A subscriber gets an outbox drained by a writer task; the publisher's session is
    // only kept alive (dropping it would end the response).
    let keep_alive = if publisher {
        Some(session)
    } else {
        let (outbox, inbox) = mpsc::channel(QUEUE);
        OUTBOXES.with(|outboxes| outboxes.borrow_mut().push(outbox));
        actix_web::rt::spawn(write(session, inbox));
        None
    };
    let workers = workers.get_ref().clone();
    actix_web::rt::spawn(async move {
        let _keep_alive = keep_alive;
        while let Some(Ok(message)) = stream.recv().await {
            match message {
                Message::Text(text) if publisher => {
                    if let Ok(all) = workers.lock() {
                        for worker in all.iter() {
                            let _ = worker.send(text.clone());
                        }
                    }
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
    });
    Ok(response)
}

/// Drains one subscriber's outbox into its socket.
async fn write(mut session: Session, mut inbox: mpsc::Receiver<ByteString>) {
    while let Some(text) = inbox.recv().await {
        if session.text(text).await.is_err() {
            break;
        }
    }
}

/// A baseline server running as a child process.
pub struct Running {
    child: Child,
    /// Its address.
    pub addr: String,
}

impl Running {
    /// The child's pid, for CPU and RSS.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `comet-bench baseline-server` on a free port (with `TCP_NODELAY` if `nodelay`)
/// and waits until it listens.
pub fn spawn(nodelay: bool) -> Result<Running, String> {
    let exe = std::env::current_exe().map_err(|err| err.to_string())?;
    let mut child = Command::new(exe)
        .args(["baseline-server", "--bind", "127.0.0.1:0", "--nodelay"])
        .arg(nodelay.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|err| format!("cannot start the baseline server: {err}"))?;
    let stdout = child.stdout.take().ok_or("baseline server has no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|err| err.to_string())?;
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("unexpected baseline server output: {line}"))?
        .to_owned();
    Ok(Running { child, addr })
}
