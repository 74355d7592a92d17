//! The chat demo: `cargo run --example chat`, then open http://127.0.0.1:4100/ in two
//! tabs, pick a nick in each, and chat (in the room, or privately by picking a nick in
//! the "to" list).
//!
//! **Who is who.** The page asks for a nick and gets a signed token for it from the demo's
//! login endpoint, `POST /login` with `{"nick":"alice"}`, answered
//! `{"token":"<JWT>","nick":"alice","exp":<unix s>}` (or 400
//! `{"error":{"code":"bad_nick",…}}`: a nick is 1 to 32 letters, digits, `_`, `-`, `.`).
//! The token is HS256 with `sub` = the nick and `exp` one hour ahead
//! (`--login-token-ttl-secs`); the page hands the JS client a `getToken()` that logs in
//! again, so the client sends `auth <token>` first on every connection and answers the
//! server's `refresh` in band. The login trusts whoever asks (there are no passwords in a
//! demo); what it shows is that a nick is the one inside a token the server signed: no
//! frame can speak under another. The secret is `--token-hmac-secret` (env
//! `COMET_TOKEN_HMAC_SECRET`, at least 32 bytes); without one the demo makes a random
//! secret at start, so `cargo run --example chat` needs nothing, and tokens die with the
//! process (the page fetches a new one when it reconnects). With `--token-public-key`
//! the chat verifies tokens signed elsewhere (by whoever holds the private key) and
//! signs none: `/login` then answers 501 `login_elsewhere`.
//!
//! **Namespaces.** `chat` (the room, `chat:lobby`): subscribe `authenticated`, publish
//! `server`, history (the last 100 publications, kept an hour after the last one) and
//! `recover`; `dm` (private conversations, the user channel `dm:#alice,bob` with the two
//! nicks sorted, which only alice and bob may subscribe to): subscribe `authenticated`,
//! publish `server`, user channels on, history (50 publications, an hour) and `recover`.
//! The room's namespace also keeps **presence** with join and leave events: who is here is
//! comet's (see below). They are declared in code and win over `[namespaces.chat]` or
//! `[namespaces.dm]` of a `--config` file. Every other channel stays open, and anonymous
//! connections stay
//! allowed (unless `--anonymous false`) for the seed's demo actions and the client's
//! generic tests.
//!
//! **Actions.** Beside the seed's demo actions (`site/test`, `site/publish`, `site/sleep`,
//! `site/whoami`, from `comet::demo`), the chat's own, each for a logged-in caller only
//! (`not_authenticated` otherwise): `chat/say {text}` (publishes
//! `{"type":"message","nick":<caller>,"text"}` on `chat:lobby`) and `chat/dm {to, text}`
//! (publishes `{"type":"dm","from":<caller>,"to","text"}` on `dm:#<the two nicks>`;
//! `not_here` unless a page of `to` is subscribed to the room, on any process, as comet's
//! presence says). `chat/say` and `chat/dm` answer `{"sent":true,…}` once the message is out, and so
//! in its channel's history (`unavailable` if the hub could not take it, e.g. Redis down:
//! then nobody got it). Private messages go through an action rather than
//! `publish = subscribers` so that they carry their sender.
//!
//! **Who is here.** Comet's presence of `chat:lobby`: the page subscribes with
//! `{ recover: true, joinLeave: true }`, reads the list with `client.presence()` after
//! each `subscribed`, and follows it with the `join:chat:lobby` / `leave:chat:lobby`
//! events; it shows users, not tabs (a nick with two pages is listed once, and leaves
//! when its last page goes). The entries live in the hub (in Redis for a cluster), so
//! every process sees the same list, and a process that dies takes its pages out of it
//! within `presence_ttl` (5 s).
//!
//! **History and recovery.** The chat keeps no history of its own: every publication
//! above goes into its channel's history in comet (in memory, or in Redis for a cluster),
//! in the same step as it goes out. The page subscribes to the room and to its
//! conversation with each nick it sees here with `{ recover: true }`
//! (`subscribe chat:lobby {"recover":true}`) and shows the recent history it reads with
//! `client.history(channel, { limit })` (`history chat:lobby {"requestUid":…,"limit":50}`;
//! 20 for a conversation). After a reconnection the JS client resumes each channel from
//! the last message it had (`subscribe chat:lobby {"recover":true,"offset":N,"epoch":"E"}`),
//! so what was said meanwhile arrives first, each message once and in order. When that
//! cannot be (`recovered: false`: the history was lost, e.g. this in-memory process
//! restarted, or more was said than it keeps) the page says "some messages could not be
//! recovered" and shows the recent history again, each line once (by its offset). A
//! private message to a nick whose page has not subscribed to the conversation yet is
//! not lost either: the page finds it in the conversation's history when it subscribes.
//!
//! **Cluster.** It takes the same flags as `cometd` (`--redis`, `--role`,
//! `--listen-actions`, `--bind`, `--prefix`, `--config`, …; `--demo` is implied), so the
//! demo itself runs as a cluster; see `docs/CLUSTER.md`. Every server process serves
//! `/login`; give them all the same `--token-hmac-secret` (with random secrets a token is
//! good only on the process that signed it). The chat actions keep no state (who is here
//! and the history are comet's), so any process may run them.

mod room;

use std::time::Duration;

use actix::AsyncContext;
use actix_web::{error::InternalError, web, HttpResponse};
use clap::{CommandFactory, FromArgMatches, Parser};
use comet::auth::{unix_now, Claims, Namespace, PublishRule, SubscribeRule, TokenSigner};
use comet::cli::{Role, Settings};
use serde::Deserialize;
use serde_json::json;

/// The chat demo server.
#[derive(Parser, Debug)]
#[command(name = "chat", about = "comet chat demo")]
struct Args {
    #[command(flatten)]
    settings: Settings,
    /// How long a token from `/login` lives, in seconds (the page refreshes it in band).
    #[arg(long, env = "COMET_LOGIN_TOKEN_TTL_SECS", default_value_t = 3600)]
    login_token_ttl_secs: u64,
}

const PAGE: &str = include_str!("index.html");

/// Publications the room's history keeps (namespace `chat`: the room's messages, joins
/// and leaves).
const ROOM_HISTORY: usize = 100;
/// Publications each private conversation's history keeps (namespace `dm`).
const DM_HISTORY: usize = 50;
/// How long a channel's history lives after its last publication.
const HISTORY_TTL: Duration = Duration::from_secs(3600);

/// The largest `/login` body, in bytes.
const MAX_LOGIN_BYTES: usize = 1024;

/// A failure to start is one line on stderr (`chat: why`) and a non-zero exit.
fn main() -> std::process::ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let (settings, ttl) = match read_args() {
        Ok(read) => read,
        Err(err) => {
            eprintln!("chat: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    match actix_web::rt::System::new().block_on(run(settings, ttl)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("chat: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The settings shared with `cometd`, and the login tokens' lifetime.
fn read_args() -> Result<(Settings, Duration), String> {
    let matches = match Args::command().try_get_matches() {
        Ok(matches) => matches,
        Err(err) if !err.use_stderr() => err.exit(),
        Err(err) => {
            let text = err.to_string();
            let first = text.lines().next().unwrap_or_default();
            return Err(first.strip_prefix("error: ").unwrap_or(first).to_owned());
        }
    };
    let settings = Settings::from_matches(&matches).map_err(|err| err.to_string())?;
    let args = Args::from_arg_matches(&matches).map_err(|err| err.to_string())?;
    if args.login_token_ttl_secs == 0 {
        return Err("--login-token-ttl-secs must be at least 1".into());
    }
    Ok((settings, Duration::from_secs(args.login_token_ttl_secs)))
}

/// The demo's secret: `--token-hmac-secret`, else a random one made now (written into
/// `settings`, so that the node verifies what `/login` signs); none with
/// `--token-public-key` (tokens come from elsewhere).
fn secret(settings: &mut Settings) -> Option<String> {
    if settings.token_public_key.is_some() {
        log::info!("chat: verifying tokens with the public key; /login signs none");
        return None;
    }
    if let Some(secret) = &settings.token_hmac_secret {
        return Some(secret.clone());
    }
    let bytes: [u8; 32] = rand::random();
    let secret: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    if settings.role == Role::Server {
        if settings.clustered() {
            log::warn!(
                "chat: no --token-hmac-secret: tokens from this process's /login are good \
                 on this process only; give every process of the cluster the same secret"
            );
        } else {
            log::info!(
                "chat: no --token-hmac-secret: signing with a random secret made at start \
                 (tokens end with this process)"
            );
        }
    }
    settings.token_hmac_secret = Some(secret.clone());
    Some(secret)
}

/// What `/login` needs: the signer (none when tokens come from elsewhere) and how long
/// its tokens live.
struct Login {
    signer: Option<TokenSigner>,
    ttl: Duration,
}

#[derive(Deserialize)]
struct LoginRequest {
    nick: String,
}

fn bad_request(code: &str, message: impl Into<String>) -> HttpResponse {
    HttpResponse::BadRequest().json(json!({ "error": { "code": code, "message": message.into() } }))
}

/// `POST /login {"nick":…}`: a token for that nick.
async fn login(login: web::Data<Login>, request: web::Json<LoginRequest>) -> HttpResponse {
    let Some(signer) = &login.signer else {
        return HttpResponse::NotImplemented().json(json!({ "error": {
            "code": "login_elsewhere",
            "message": "this chat verifies tokens with a public key and signs none: get one \
                        from the service that holds the private key",
        } }));
    };
    let nick = request.nick.trim();
    if !room::valid_nick(nick) {
        return bad_request(
            "bad_nick",
            format!(
                "a nick is 1 to {} letters, digits, `_`, `-` or `.`",
                room::MAX_NICK
            ),
        );
    }
    let exp = unix_now() + login.ttl.as_secs();
    let claims = Claims {
        sub: Some(nick.to_owned()),
        exp: Some(exp),
        ..Claims::default()
    };
    match signer.sign(&claims) {
        Ok(token) => HttpResponse::Ok().json(json!({ "token": token, "nick": nick, "exp": exp })),
        Err(err) => {
            log::error!("chat: cannot sign a token: {err}");
            HttpResponse::InternalServerError().json(json!({
                "error": { "code": "internal", "message": "cannot sign a token" }
            }))
        }
    }
}

async fn run(mut settings: Settings, ttl: Duration) -> Result<(), Box<dyn std::error::Error>> {
    let signer = match secret(&mut settings) {
        Some(secret) => Some(TokenSigner::hmac(secret.as_bytes())?),
        None => None,
    };
    // Bind before any actor starts: a busy port or a bad address ends here.
    let listeners = settings.listen()?;
    settings.check_redis().await?;

    // The room needs the node to publish, and the node needs the room's address to route
    // actions to it: make the room's context (and so its address) first, run it after.
    let room_context = actix::Context::<room::ChatRoom>::new();
    let room = room_context.address();
    let mut builder = comet::demo::register(settings.builder())
        .namespace(
            "chat",
            Namespace::new()
                .subscribe(SubscribeRule::Authenticated)
                .publish(PublishRule::Server)
                .user_channels(false)
                .history(ROOM_HISTORY, HISTORY_TTL)
                .recover(true)
                .presence(true)
                .join_leave(true),
        )
        .namespace(
            room::DM,
            Namespace::new()
                .subscribe(SubscribeRule::Authenticated)
                .publish(PublishRule::Server)
                .user_channels(true)
                .history(DM_HISTORY, HISTORY_TTL)
                .recover(true),
        );
    for route in ["chat/say", "chat/dm"] {
        builder = builder.action(route, room.clone()).require_user(route);
    }
    let comet = builder.build()?;
    room_context.run(room::ChatRoom::new(comet.node().clone()));

    let login_data = web::Data::new(Login { signer, ttl });
    let running = settings.start(listeners, comet, move |config| {
        config
            .app_data(login_data.clone())
            .app_data(
                web::JsonConfig::default()
                    .limit(MAX_LOGIN_BYTES)
                    .error_handler(|err, _| {
                        let answer = bad_request("bad_request", err.to_string());
                        InternalError::from_response(err, answer).into()
                    }),
            )
            .route("/login", web::post().to(login))
            .route(
                "/",
                web::get().to(|| async {
                    HttpResponse::Ok()
                        .content_type("text/html; charset=utf-8")
                        .body(PAGE)
                }),
            );
    })?;
    for addr in running.addrs() {
        log::info!("chat demo on http://{addr}/");
    }
    log::info!("chat: {}", settings.describe());
    log::info!(
        "chat: namespaces chat (subscribe authenticated, publish server, history {ROOM_HISTORY} \
         for {} s, recover, presence with join/leave), dm (subscribe authenticated, publish \
         server, user channels, history {DM_HISTORY} for {} s, recover); POST /login signs HS256 tokens for {} s",
        HISTORY_TTL.as_secs(),
        HISTORY_TTL.as_secs(),
        ttl.as_secs()
    );
    running.run().await?;
    Ok(())
}
