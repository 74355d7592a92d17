//! [`SockJsConfig`]: every option of a SockJS endpoint, with the defaults of the SockJS
//! protocol (and of sockjs-node, its reference server), and the check of a request's
//! `Origin` against the allowed origins.

use std::time::Duration;

/// Where the iframe page loads the SockJS client library from, unless configured.
pub const DEFAULT_SOCKJS_URL: &str =
    "https://cdn.jsdelivr.net/npm/sockjs-client@1.6.1/dist/sockjs.min.js";

/// The options of one SockJS endpoint.
///
/// ```
/// use std::time::Duration;
/// use comet::transport::sockjs::SockJsConfig;
///
/// let config = SockJsConfig {
///     cookie_needed: true,
///     disconnect_delay: Duration::from_secs(10),
///     ..SockJsConfig::default()
/// };
/// assert_eq!(config.response_limit, 128 * 1024);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SockJsConfig {
    /// How long a session lives without a receiving connection (between two polls, or
    /// after a streaming response ended) before it is closed and its subscriptions
    /// released. It is also how long a closed session keeps answering its close frame.
    /// Default 5 s.
    pub disconnect_delay: Duration,
    /// Bytes a streaming response (xhr-streaming, eventsource, htmlfile) carries before
    /// the server ends it and the client opens a new one, so that the browser can free
    /// what it has read. Default 128 KiB.
    pub response_limit: usize,
    /// Whether the WebSocket transports (`<prefix>/<server>/<session>/websocket` and the
    /// raw `<prefix>/websocket`) are served; `/info` tells clients. Default true.
    pub websocket: bool,
    /// Set a `JSESSIONID` cookie on session requests, for load balancers that keep a
    /// client on one server only when they see one; `/info` tells clients. Default false.
    pub cookie_needed: bool,
    /// The origins allowed to connect, as `host:port` patterns where either part may be
    /// `*` (`example.com:*`, `*:8080`); `*:*` allows every origin. A browser request
    /// from any other origin is refused with 403, on every transport (for comet's own
    /// endpoint, the raw `<prefix>/websocket` too). Requests without an `Origin` header
    /// (not from a browser) are always allowed. The pattern `self` allows the server's own
    /// origin (the request's `Host`). Default `["*:*"]`, which becomes `["self"]` when an
    /// authenticate hook is set (identity from cookies must not be usable by other
    /// sites' pages: see docs/SECURITY.md).
    pub origins: Vec<String>,
    /// The URL of the SockJS client library that the iframe page (`iframe.html`) loads;
    /// serve it from your own site if the page must not load scripts from a CDN.
    /// Default [`DEFAULT_SOCKJS_URL`].
    pub sockjs_url: String,
    /// Most sessions held at once by the polling and streaming transports (a session
    /// outlives its requests by `disconnect_delay`, so a client making up session ids
    /// could otherwise pile them up); a request that would open one more gets 503
    /// "Too many sessions.". WebSocket sessions are bounded by their connections instead.
    /// Default 100,000.
    pub max_sessions: usize,
}

impl Default for SockJsConfig {
    fn default() -> Self {
        SockJsConfig {
            disconnect_delay: Duration::from_secs(5),
            response_limit: 128 * 1024,
            websocket: true,
            cookie_needed: false,
            origins: vec!["*:*".to_owned()],
            sockjs_url: DEFAULT_SOCKJS_URL.to_owned(),
            max_sessions: 100_000,
        }
    }
}

impl SockJsConfig {
    /// Why this configuration cannot be used, if it cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.disconnect_delay.is_zero() {
            return Err("sockjs disconnect_delay must be above zero".into());
        }
        if self.response_limit == 0 || self.max_sessions == 0 {
            return Err("sockjs response_limit and max_sessions must be at least 1".into());
        }
        if let Some(bad) = self
            .origins
            .iter()
            .find(|o| !o.contains(':') && o.as_str() != "self")
        {
            return Err(format!("sockjs origin `{bad}` is not a host:port pattern"));
        }
        if self.sockjs_url.contains('"') || self.sockjs_url.contains('<') {
            return Err("sockjs_url must not hold `\"` or `<`".into());
        }
        Ok(())
    }

    /// Whether a request with this `Origin` header (if any) may use the endpoint.
    pub fn origin_allowed(&self, origin: Option<&str>) -> bool {
        self.origin_allowed_at(origin, None)
    }

    /// As [`origin_allowed`](Self::origin_allowed), for a request to `host` (its `Host`
    /// header), which the pattern `self` allows.
    pub fn origin_allowed_at(&self, origin: Option<&str>, host_header: Option<&str>) -> bool {
        if self.origins.iter().any(|o| o == "*:*") {
            return true;
        }
        let Some(origin) = origin else {
            return true;
        };
        let Some((host, port)) = split_origin(origin) else {
            return false;
        };
        let own = host_header.is_some_and(|own| {
            let (own_host, own_port) = split_authority(own, port);
            own_host.eq_ignore_ascii_case(host) && own_port == port
        });
        if own && self.origins.iter().any(|o| o == "self") {
            return true;
        }
        self.origins.iter().any(|pattern| {
            let Some((want_host, want_port)) = pattern.rsplit_once(':') else {
                return false;
            };
            let want_host = want_host.trim_start_matches('[').trim_end_matches(']');
            (want_host == "*" || want_host.eq_ignore_ascii_case(host))
                && (want_port == "*" || want_port == port)
        })
    }
}

/// A `Host` header's host and port (`default_port` when it names none).
fn split_authority<'a>(authority: &'a str, default_port: &'a str) -> (&'a str, &'a str) {
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').unwrap_or((v6, ""));
        return (host, after.strip_prefix(':').unwrap_or(default_port));
    }
    authority
        .rsplit_once(':')
        .unwrap_or((authority, default_port))
}

/// `https://example.com:8443` → `("example.com", "8443")`; the port defaults from the
/// scheme. `None` for `null` and anything that is not `scheme://host[:port]`.
fn split_origin(origin: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = origin.split_once("://")?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" | "wss" => "443",
        _ => "80",
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        (host, after.strip_prefix(':').unwrap_or(default_port))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, port),
            None => (authority, default_port),
        }
    };
    (!host.is_empty() && !port.is_empty()).then_some((host, port))
}

#[cfg(test)]
mod self_origin_tests {
    use super::*;

    #[test]
    fn self_allows_the_servers_own_origin_only() {
        let config = SockJsConfig {
            origins: vec!["self".into()],
            ..SockJsConfig::default()
        };
        assert!(config.validate().is_ok());
        let host = Some("chat.test:4100");
        assert!(config.origin_allowed_at(Some("http://chat.test:4100"), host));
        assert!(!config.origin_allowed_at(Some("http://evil.test:4100"), host));
        assert!(!config.origin_allowed_at(Some("http://chat.test:4101"), host));
        assert!(config.origin_allowed_at(Some("https://chat.test"), Some("chat.test")));
        assert!(!config.origin_allowed_at(Some("http://chat.test"), None));
        // Not from a browser: nothing to check.
        assert!(config.origin_allowed_at(None, host));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(origins: &[&str]) -> SockJsConfig {
        SockJsConfig {
            origins: origins.iter().map(|o| o.to_string()).collect(),
            ..SockJsConfig::default()
        }
    }

    #[test]
    fn star_star_allows_everything() {
        let config = SockJsConfig::default();
        assert!(config.origin_allowed(Some("null")));
        assert!(config.origin_allowed(Some("http://evil.test")));
        assert!(config.origin_allowed(None));
    }

    #[test]
    fn patterns_match_host_and_port() {
        let config = only(&["example.com:*", "*:8080", "[::1]:443"]);
        assert!(config.origin_allowed(Some("https://example.com")));
        assert!(config.origin_allowed(Some("http://EXAMPLE.com:81")));
        assert!(config.origin_allowed(Some("http://other.test:8080")));
        assert!(config.origin_allowed(Some("https://[::1]")));
        assert!(!config.origin_allowed(Some("http://other.test")));
        assert!(!config.origin_allowed(Some("null")));
        assert!(!config.origin_allowed(Some("garbage")));
        assert!(config.origin_allowed(None), "non-browser clients pass");
    }

    #[test]
    fn defaults_are_valid_and_zero_delays_are_not() {
        assert_eq!(SockJsConfig::default().validate(), Ok(()));
        let bad = SockJsConfig {
            disconnect_delay: Duration::ZERO,
            ..SockJsConfig::default()
        };
        assert!(bad.validate().is_err());
        assert!(only(&["nocolon"]).validate().is_err());
    }
}
