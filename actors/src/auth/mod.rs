//! Who may do what: identity at connect ([`Identity`], from a JWT checked by a
//! [`TokenVerifier`] or from an authenticate [`Hook`]), namespaces with channel
//! permissions ([`Namespaces`]), hooks on subscribe and publish, and rate limits
//! ([`TokenBucket`], [`IpLimiter`]). The [`Connection`](crate::Connection) applies them,
//! whatever the transport; [`Security`] holds a node's settings. See docs/SECURITY.md.

pub mod hooks;
pub mod identity;
pub mod rate_limit;
pub mod security;
pub mod token;

pub use crate::channels::namespaces::{Namespace, Namespaces, PublishRule, SubscribeRule};
pub use hooks::{
    AuthError, Authenticate, Hook, HookMessage, PublishCheck, PublishVerdict, Refusal,
    SubscribeCheck,
};
pub use identity::Identity;
pub use rate_limit::{IpLimiter, IpLimits, IpRefusal, Rate, TokenBucket};
pub use security::Security;
pub use token::{Claims, TokenError, TokenSigner, TokenVerifier};

/// Now, in unix seconds (the clock tokens' `exp` is on).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
