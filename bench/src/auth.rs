//! Tokens for the connections the generator opens (issue 12): it signs them itself, with
//! comet's own [`TokenSigner`], from an HS256 secret or an RS256/ES256 private key file,
//! and presents them as the `?token=` query parameter or as the `auth <token>` first
//! frame.
//!
//! Tokens are signed before a run is measured, into a pool of distinct users
//! (`bench-0`, `bench-1`, …) that connections take round-robin: signing RS256 costs the
//! generator a millisecond or more per token, which would otherwise compete with the
//! server for the machine's two cores. The server verifies every token it is given (it
//! keeps no cache), so reusing one costs it what a new one would.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use comet_actors::auth::{unix_now, Claims, TokenSigner};

/// How long the signed tokens live: long enough that no `refresh` comes during a run, but
/// with an `exp`, so the server arms its refresh and expiry timers as it would in
/// production.
const TOKEN_LIFE_SECS: u64 = 3600;

/// Where a connection presents its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TokenIn {
    /// `?token=…` on the WebSocket (or SockJS) URL: checked during the handshake.
    Query,
    /// `auth <token>` as the first frame after the handshake (what the JS client does).
    Frame,
}

impl TokenIn {
    /// The name in the tables and the JSON lines.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenIn::Query => "query",
            TokenIn::Frame => "frame",
        }
    }
}

/// How tokens are signed: `hmac:SECRET` (HS256) or `key:FILE` (RS256 or ES256, from a
/// private key in PEM, whichever the key is).
#[derive(Clone)]
pub struct Signing {
    /// The spec as given, with the secret hidden (`hmac:…`, `key:FILE`).
    shown: String,
    signer: TokenSigner,
}

impl fmt::Debug for Signing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl FromStr for Signing {
    type Err = String;

    fn from_str(spec: &str) -> Result<Signing, String> {
        if let Some(secret) = spec.strip_prefix("hmac:") {
            let signer = TokenSigner::hmac(secret.as_bytes()).map_err(|err| err.to_string())?;
            Ok(Signing {
                shown: "hmac:…".into(),
                signer,
            })
        } else if let Some(file) = spec.strip_prefix("key:") {
            let pem =
                std::fs::read(file).map_err(|err| format!("cannot read the key {file}: {err}"))?;
            let signer = TokenSigner::private_key_pem(&pem).map_err(|err| err.to_string())?;
            Ok(Signing {
                shown: format!("key:{file}"),
                signer,
            })
        } else {
            Err(format!(
                "a token signing spec is `hmac:SECRET` or `key:PRIVATE_KEY.pem`, not `{spec}`"
            ))
        }
    }
}

impl Signing {
    /// Signs `count` connection tokens for users `bench-0` … `bench-<count−1>`, each
    /// expiring in an hour.
    pub fn sign_pool(&self, count: usize) -> Result<Vec<String>, String> {
        let exp = unix_now() + TOKEN_LIFE_SECS;
        (0..count.max(1))
            .map(|n| {
                self.signer
                    .sign(&Claims {
                        sub: Some(format!("bench-{n}")),
                        exp: Some(exp),
                        ..Claims::default()
                    })
                    .map_err(|err| format!("cannot sign a token: {err}"))
            })
            .collect()
    }

    /// The tokens of [`sign_pool`](Self::sign_pool), presented as `place` says.
    pub fn credentials(&self, count: usize, place: TokenIn) -> Result<Credentials, String> {
        Ok(Credentials {
            tokens: Arc::new(self.sign_pool(count)?),
            place,
        })
    }
}

/// What a [`Target`](crate::net::Target)'s connections authenticate with.
#[derive(Debug, Clone)]
pub struct Credentials {
    tokens: Arc<Vec<String>>,
    /// Where each connection presents its token.
    pub place: TokenIn,
}

impl Credentials {
    /// The token of connection number `n` (round-robin over the pool).
    pub fn token(&self, n: usize) -> &str {
        // The pool is never empty (`sign_pool` signs at least one).
        &self.tokens[n % self.tokens.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use comet_actors::auth::TokenVerifier;

    const SECRET: &str = "a bench secret of at least thirty-two bytes";

    #[test]
    fn signs_tokens_the_server_accepts() {
        let signing: Signing = format!("hmac:{SECRET}").parse().unwrap();
        let credentials = signing.credentials(3, TokenIn::Frame).unwrap();
        let verifier = TokenVerifier::hmac(SECRET.as_bytes()).unwrap();
        let identity = verifier.identity(credentials.token(4), unix_now()).unwrap();
        assert_eq!(identity.user.as_deref(), Some("bench-1"));
        assert!(identity.expires_at.is_some());
    }

    #[test]
    fn signs_with_private_key_files() {
        let keys = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/keys");
        for (private, public) in [("rsa-private", "rsa-public"), ("ec-private", "ec-public")] {
            let signing: Signing = format!("key:{keys}/{private}.pem").parse().unwrap();
            let token = &signing.sign_pool(1).unwrap()[0];
            let pem = std::fs::read(format!("{keys}/{public}.pem")).unwrap();
            let verifier = TokenVerifier::public_key_pem(&pem).unwrap();
            assert_eq!(
                verifier
                    .identity(token, unix_now())
                    .unwrap()
                    .user
                    .as_deref(),
                Some("bench-0"),
                "{private}"
            );
        }
    }

    #[test]
    fn refuses_unknown_specs() {
        assert!("secret".parse::<Signing>().is_err());
        assert!("hmac:short".parse::<Signing>().is_err());
    }
}
