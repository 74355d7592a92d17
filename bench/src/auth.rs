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

use std::time::Instant;

use comet_actors::auth::{unix_now, Claims, TokenSigner, TokenVerifier};
use serde::Serialize;

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

/// A server's side of a token: `hmac:SECRET` or `key:PUBLIC_KEY.pem`, as `cometd
/// --token-hmac-secret` / `--token-public-key` take it.
#[derive(Clone)]
pub struct Verifying(TokenVerifier);

impl FromStr for Verifying {
    type Err = String;

    fn from_str(spec: &str) -> Result<Verifying, String> {
        let verifier = if let Some(secret) = spec.strip_prefix("hmac:") {
            TokenVerifier::hmac(secret.as_bytes())
        } else if let Some(file) = spec.strip_prefix("key:") {
            TokenVerifier::public_key_file(std::path::Path::new(file))
        } else {
            return Err(format!(
                "a token verifying spec is `hmac:SECRET` or `key:PUBLIC_KEY.pem`, not `{spec}`"
            ));
        };
        verifier.map(Verifying).map_err(|err| err.to_string())
    }
}

/// What signing and verifying one token costs, on one thread of the generator's process.
#[derive(Debug, Clone, Serialize)]
pub struct TokenCost {
    /// The pair's name.
    pub label: String,
    /// `HS256`, `RS256` or `ES256`.
    pub algorithm: &'static str,
    /// Tokens signed and verified.
    pub tokens: usize,
    /// Microseconds per `TokenSigner::sign`.
    pub sign_us: f64,
    /// Microseconds per `TokenVerifier::identity`: what the server spends on a
    /// connection's token, apart from everything else a connection costs it.
    pub verify_us: f64,
}

/// Signs `count` tokens, then verifies each, timing both.
pub fn token_cost(
    label: &str,
    signing: &Signing,
    verifying: &Verifying,
    count: usize,
) -> Result<TokenCost, String> {
    let started = Instant::now();
    let tokens = signing.sign_pool(count)?;
    let sign_us = started.elapsed().as_secs_f64() * 1e6 / tokens.len() as f64;
    let now = unix_now();
    let started = Instant::now();
    for token in &tokens {
        verifying
            .0
            .identity(token, now)
            .map_err(|err| format!("{label}: the token does not verify: {err}"))?;
    }
    let verify_us = started.elapsed().as_secs_f64() * 1e6 / tokens.len() as f64;
    Ok(TokenCost {
        label: label.to_owned(),
        algorithm: verifying.0.algorithm(),
        tokens: tokens.len(),
        sign_us,
        verify_us,
    })
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
    fn times_a_pair_that_matches() {
        let keys = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/keys");
        let signing: Signing = format!("key:{keys}/ec-private.pem").parse().unwrap();
        let verifying: Verifying = format!("key:{keys}/ec-public.pem").parse().unwrap();
        let cost = token_cost("es256", &signing, &verifying, 3).unwrap();
        assert_eq!((cost.algorithm, cost.tokens), ("ES256", 3));
        let other: Verifying = format!("key:{keys}/rsa-public.pem").parse().unwrap();
        assert!(token_cost("mismatch", &signing, &other, 1).is_err());
    }

    #[test]
    fn refuses_unknown_specs() {
        assert!("secret".parse::<Signing>().is_err());
        assert!("hmac:short".parse::<Signing>().is_err());
    }
}
