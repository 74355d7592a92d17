//! Token buckets: per connection for publishes, actions and subscribes, and per ip for
//! new connections (rate and count). Time is tokio's clock, so tests can pause it.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::time::Instant;

/// A rate: `per_second` on average, up to `burst` at once. `per_second` 0 means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Tokens added per second; 0 turns the limit off.
    pub per_second: u32,
    /// Most tokens held, so most taken at once (at least 1).
    pub burst: u32,
}

impl Rate {
    /// No limit.
    pub const UNLIMITED: Rate = Rate {
        per_second: 0,
        burst: 0,
    };

    /// `per_second` with bursts of `burst`.
    pub const fn new(per_second: u32, burst: u32) -> Rate {
        Rate { per_second, burst }
    }

    /// Whether this rate limits anything.
    pub fn is_limited(self) -> bool {
        self.per_second > 0
    }
}

/// A token bucket for one [`Rate`].
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: Rate,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: Rate) -> TokenBucket {
        TokenBucket {
            rate,
            tokens: f64::from(rate.burst.max(1)),
            updated: Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.updated = now;
        let cap = f64::from(self.rate.burst.max(1));
        self.tokens = (self.tokens + elapsed * f64::from(self.rate.per_second)).min(cap);
    }

    /// Takes a token if there is one.
    pub fn take(&mut self) -> bool {
        if !self.rate.is_limited() {
            return true;
        }
        self.refill();
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            crate::metrics::METRICS.rate_limited.inc();
            false
        }
    }

    /// Whether the bucket is full again (nothing to remember about it).
    pub fn is_full(&mut self) -> bool {
        self.refill();
        self.tokens >= f64::from(self.rate.burst.max(1))
    }
}

/// The per-ip limits on connections. Both off by default: behind a proxy every client has
/// the proxy's ip (see `trust_proxy_headers`), and load tests open thousands of
/// connections from one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpLimits {
    /// Most connections one ip may hold at once; 0 for no limit.
    pub max_connections: u32,
    /// New connections per second from one ip; [`Rate::UNLIMITED`] for no limit.
    pub connect_rate: Rate,
}

impl Default for IpLimits {
    fn default() -> Self {
        IpLimits {
            max_connections: 0,
            connect_rate: Rate::UNLIMITED,
        }
    }
}

impl IpLimits {
    /// Whether any per-ip limit is on.
    pub fn is_limited(&self) -> bool {
        self.max_connections > 0 || self.connect_rate.is_limited()
    }
}

/// Why a new connection was refused by its ip's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpRefusal {
    /// The ip holds `max_connections` already.
    TooMany,
    /// The ip opens connections faster than `connect_rate`.
    TooFast,
}

struct IpEntry {
    open: u32,
    bucket: TokenBucket,
}

/// The connections of each ip, shared by a node's connections. An entry goes once its ip
/// holds no connection and its bucket is full again, so the map stays as small as the
/// set of recently active ips.
pub struct IpLimiter {
    limits: IpLimits,
    entries: Mutex<HashMap<String, IpEntry>>,
}

impl IpLimiter {
    /// A limiter for `limits`.
    pub fn new(limits: IpLimits) -> IpLimiter {
        IpLimiter {
            limits,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Whether any limit is on (else nothing is counted).
    pub fn is_limited(&self) -> bool {
        self.limits.is_limited()
    }

    /// Counts a new connection from `ip`, or refuses it.
    pub fn acquire(&self, ip: &str) -> Result<(), IpRefusal> {
        if !self.limits.is_limited() {
            return Ok(());
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() > 4096 {
            entries.retain(|_, entry| entry.open > 0 || !entry.bucket.is_full());
        }
        let entry = entries.entry(ip.to_owned()).or_insert_with(|| IpEntry {
            open: 0,
            bucket: TokenBucket::new(self.limits.connect_rate),
        });
        if self.limits.max_connections > 0 && entry.open >= self.limits.max_connections {
            return Err(IpRefusal::TooMany);
        }
        if !entry.bucket.take() {
            return Err(IpRefusal::TooFast);
        }
        entry.open += 1;
        Ok(())
    }

    /// A connection that [`acquire`](Self::acquire) counted is gone.
    pub fn release(&self, ip: &str) {
        if !self.limits.is_limited() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = entries.get_mut(ip) {
            entry.open = entry.open.saturating_sub(1);
            if entry.open == 0 && entry.bucket.is_full() {
                entries.remove(ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_bucket_allows_its_burst_then_its_rate() {
        let mut bucket = TokenBucket::new(Rate::new(10, 5));
        assert_eq!((0..20).filter(|_| bucket.take()).count(), 5);
        tokio::time::advance(Duration::from_millis(300)).await;
        assert_eq!((0..20).filter(|_| bucket.take()).count(), 3);
        let mut free = TokenBucket::new(Rate::UNLIMITED);
        assert!((0..10_000).all(|_| free.take()));
    }

    #[tokio::test(start_paused = true)]
    async fn an_ip_is_limited_in_count_and_rate() {
        let limiter = IpLimiter::new(IpLimits {
            max_connections: 2,
            connect_rate: Rate::new(1, 3),
        });
        assert_eq!(limiter.acquire("a"), Ok(()));
        assert_eq!(limiter.acquire("a"), Ok(()));
        assert_eq!(limiter.acquire("a"), Err(IpRefusal::TooMany));
        assert_eq!(limiter.acquire("b"), Ok(()));
        limiter.release("a");
        assert_eq!(limiter.acquire("a"), Ok(()));
        limiter.release("a");
        assert_eq!(limiter.acquire("a"), Err(IpRefusal::TooFast));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(limiter.acquire("a"), Ok(()));
    }
}
