//! JSON Web Tokens, verified with the `jsonwebtoken` crate: HS256 with a shared secret,
//! RS256 or ES256 with a public key. Each key accepts its one algorithm only, so neither
//! `alg: none` nor an HS256 token signed with an RSA public key as its secret passes.

use std::path::Path;
use std::sync::Arc;

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::auth::identity::Identity;

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TokenError {
    /// The text is not a JWT (three base64url parts with a JSON header and claims).
    #[error("the token is malformed: {0}")]
    Malformed(String),
    /// The signature does not match the key.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// The token is signed with another algorithm than the key's (or with none).
    #[error("the token's algorithm is not accepted (this server takes {0})")]
    WrongAlgorithm(&'static str),
    /// `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// A subscription token for another channel, or a connection token used as one.
    #[error("the token is not for channel `{0}`")]
    WrongChannel(String),
    /// A subscription token for another user than the connection's.
    #[error("the token is for another user")]
    WrongUser,
    /// A subscription token (with a `channel` claim) presented to connect.
    #[error("a subscription token cannot authenticate a connection")]
    NotAConnectionToken,
    /// The key itself could not be read.
    #[error("the token key cannot be used: {0}")]
    Key(String),
}

/// HS256 is only as strong as its secret: at least 32 bytes.
fn check_secret(secret: &[u8]) -> Result<(), TokenError> {
    if secret.len() < 32 {
        return Err(TokenError::Key(
            "an HS256 secret must be at least 32 bytes long".into(),
        ));
    }
    Ok(())
}

/// The claims comet reads (others are ignored), for signing tokens with a
/// [`TokenSigner`] too.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id; empty or absent for anonymous.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Expiry, unix seconds; absent for never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// What others may see of the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<Value>,
    /// Channels the server subscribes the connection to at once (connection tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<String>>,
    /// The channel a subscription token is for (subscription tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

/// Signs tokens, for an application's login endpoint (the chat demo's) and for tests:
/// HS256 with a shared secret, RS256 or ES256 with a private key in PEM (PKCS#8 or, for
/// RSA, PKCS#1).
///
/// ```
/// use comet_actors::auth::{Claims, TokenSigner, TokenVerifier};
///
/// let secret = b"a shared secret of 32 bytes or more!";
/// let token = TokenSigner::hmac(secret)
///     .unwrap()
///     .sign(&Claims { sub: Some("alice".into()), ..Claims::default() })
///     .unwrap();
/// let identity = TokenVerifier::hmac(secret).unwrap().identity(&token, 0).unwrap();
/// assert_eq!(identity.user.as_deref(), Some("alice"));
/// ```
#[derive(Clone)]
pub struct TokenSigner {
    key: Arc<EncodingKey>,
    algorithm: Algorithm,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// HS256 with `secret` (at least 32 bytes, as for [`TokenVerifier::hmac`]).
    pub fn hmac(secret: &[u8]) -> Result<TokenSigner, TokenError> {
        check_secret(secret)?;
        let key =
            EncodingKey::from_secret(secret).map_err(|err| TokenError::Key(err.to_string()))?;
        Ok(TokenSigner {
            key: Arc::new(key),
            algorithm: Algorithm::HS256,
        })
    }

    /// RS256 or ES256 (P-256) with a private key in PEM, whichever the key is.
    pub fn private_key_pem(pem: &[u8]) -> Result<TokenSigner, TokenError> {
        if let Ok(key) = EncodingKey::from_rsa_pem(pem) {
            return Ok(TokenSigner {
                key: Arc::new(key),
                algorithm: Algorithm::RS256,
            });
        }
        match EncodingKey::from_ec_pem(pem) {
            Ok(key) => Ok(TokenSigner {
                key: Arc::new(key),
                algorithm: Algorithm::ES256,
            }),
            Err(err) => Err(TokenError::Key(format!(
                "not an RSA or P-256 private key in PEM: {err}"
            ))),
        }
    }

    /// Signs `claims`.
    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        encode(&Header::new(self.algorithm), claims, &self.key)
            .map_err(|err| TokenError::Key(err.to_string()))
    }
}

/// Verifies tokens with one key.
///
/// ```
/// use comet_actors::auth::TokenVerifier;
///
/// let verifier = TokenVerifier::hmac(b"a secret of at least 32 bytes, please").unwrap();
/// assert!(verifier.identity("not.a.token", 0).is_err());
/// ```
#[derive(Clone)]
pub struct TokenVerifier {
    key: Arc<DecodingKey>,
    algorithm: Algorithm,
}

/// Two verifiers are equal when they share their key (clones of one verifier).
impl PartialEq for TokenVerifier {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.key, &other.key) && self.algorithm == other.algorithm
    }
}

impl Eq for TokenVerifier {}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl TokenVerifier {
    /// HS256 with `secret`, shared with whoever issues the tokens. A secret shorter than
    /// 32 bytes is refused: HS256 is only as strong as its secret.
    pub fn hmac(secret: &[u8]) -> Result<TokenVerifier, TokenError> {
        check_secret(secret)?;
        let key =
            DecodingKey::from_secret(secret).map_err(|err| TokenError::Key(err.to_string()))?;
        Ok(TokenVerifier {
            key: Arc::new(key),
            algorithm: Algorithm::HS256,
        })
    }

    /// RS256 or ES256 (P-256) with a public key in PEM (`-----BEGIN PUBLIC KEY-----`, or
    /// `BEGIN RSA PUBLIC KEY`), whichever the key is.
    pub fn public_key_pem(pem: &[u8]) -> Result<TokenVerifier, TokenError> {
        if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
            return Ok(TokenVerifier {
                key: Arc::new(key),
                algorithm: Algorithm::RS256,
            });
        }
        match DecodingKey::from_ec_pem(pem) {
            Ok(key) => Ok(TokenVerifier {
                key: Arc::new(key),
                algorithm: Algorithm::ES256,
            }),
            Err(err) => Err(TokenError::Key(format!(
                "not an RSA or P-256 public key in PEM: {err}"
            ))),
        }
    }

    /// [`public_key_pem`](Self::public_key_pem) from a file.
    pub fn public_key_file(path: &Path) -> Result<TokenVerifier, TokenError> {
        let pem = std::fs::read(path)
            .map_err(|err| TokenError::Key(format!("cannot read {}: {err}", path.display())))?;
        TokenVerifier::public_key_pem(&pem)
    }

    /// The one algorithm this key accepts: `HS256`, `RS256` or `ES256`.
    pub fn algorithm(&self) -> &'static str {
        match self.algorithm {
            Algorithm::HS256 => "HS256",
            Algorithm::RS256 => "RS256",
            _ => "ES256",
        }
    }

    fn claims(&self, token: &str, now: u64) -> Result<Claims, TokenError> {
        let mut validation = Validation::new(self.algorithm);
        // `exp` is optional (a token without one never expires) and checked below against
        // the caller's clock; no other claim is required.
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.leeway = 0;
        let claims = decode::<Claims>(token.trim(), &self.key, &validation)
            .map_err(|err| {
                use jsonwebtoken::errors::ErrorKind;
                match err.kind() {
                    ErrorKind::InvalidSignature => TokenError::BadSignature,
                    ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                        TokenError::WrongAlgorithm(self.algorithm())
                    }
                    ErrorKind::ExpiredSignature => TokenError::Expired,
                    _ => TokenError::Malformed(err.to_string()),
                }
            })?
            .claims;
        if claims.exp.is_some_and(|exp| exp <= now) {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    /// The identity a connection token grants at `now` (unix seconds).
    pub fn identity(&self, token: &str, now: u64) -> Result<Identity, TokenError> {
        let claims = self.claims(token, now)?;
        if claims.channel.is_some() {
            return Err(TokenError::NotAConnectionToken);
        }
        Ok(Identity {
            user: claims.sub.filter(|sub| !sub.is_empty()),
            info: claims.info,
            expires_at: claims.exp,
            channels: claims.channels.unwrap_or_default(),
        })
    }

    /// Checks a subscription token: for `channel`, for `user` (`None`: an anonymous
    /// connection, whose token has an empty or no `sub`), not expired at `now`.
    pub fn subscription(
        &self,
        token: &str,
        channel: &str,
        user: Option<&str>,
        now: u64,
    ) -> Result<(), TokenError> {
        let claims = self.claims(token, now)?;
        if claims.channel.as_deref() != Some(channel) {
            return Err(TokenError::WrongChannel(channel.to_owned()));
        }
        if claims.sub.as_deref().filter(|sub| !sub.is_empty()) != user {
            return Err(TokenError::WrongUser);
        }
        Ok(())
    }
}
