//! Tern's own HTTP layer under [`super::EsploraSource`]: every request goes through
//! esplora-client's inner `reqwest::Client` (esplora-client's own retries are off), so that
//! each attempt and each response byte is counted, bodies are capped, and a failing server is
//! backed off from across syncs, honouring `Retry-After`.
//!
//! Backoff, per server (all clones of a source share it):
//! - within one request, an HTTP 429/500/502/503/504 is retried up to
//!   [`EsploraConfig::max_retries`] times after 256 ms, 512 ms, … — or after the server's
//!   `Retry-After` when that is at most [`IN_REQUEST_WAIT`];
//! - a request that still fails (those statuses, no answer, a timeout, a cut or oversized
//!   body) is a *failure*; a success resets the count. A `Retry-After` (seconds, capped at
//!   [`EsploraConfig::retry_after_max`]) closes the server for that long; otherwise the first
//!   failure in a row does not close it (its retries already waited), the n-th closes it for
//!   `backoff_base × 2^(n-2)`, at most [`EsploraConfig::backoff_max`];
//! - while closed, requests fail at once with [`ChainError::BackingOff`] and reach no server:
//!   a sync loop or a wake asking more often than the backoff allows costs nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{ChainError, EsploraConfig};

/// The clock the backoff reads (a test injects its own; the default is `Instant::now`).
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// Longest `Retry-After` waited for inside one request; a longer one fails the request and
/// closes the server until then.
pub const IN_REQUEST_WAIT: Duration = Duration::from_secs(1);

/// First delay between retries inside one request (doubling).
const RETRY_BASE: Duration = Duration::from_millis(256);

/// HTTP statuses retried and counted as failures (rate limits and server errors).
fn retryable(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

#[derive(Debug, Default)]
struct Gate {
    failures: u32,
    closed_until: Option<Instant>,
}

/// A complete answer (any status), its body within the cap.
#[derive(Debug)]
pub(super) struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as text (lossy), trimmed, for messages and text endpoints.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).trim().to_string()
    }
}

/// One server's HTTP state, shared by the clones of its source.
pub(super) struct Http {
    client: reqwest::Client,
    base: String,
    max_retries: usize,
    max_body: usize,
    backoff_base: Duration,
    backoff_max: Duration,
    retry_after_max: Duration,
    clock: Clock,
    gate: Mutex<Gate>,
    requests: AtomicU64,
    bytes: AtomicU64,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("base", &self.base)
            .field("requests", &self.requests)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

enum Attempt {
    Answer(Answer, Option<Duration>),
    Failed(ChainError),
}

impl Http {
    pub fn new(client: reqwest::Client, config: &EsploraConfig, clock: Clock) -> Self {
        Http {
            client,
            base: config.url.clone(),
            max_retries: config.max_retries,
            max_body: config.max_body_bytes,
            backoff_base: config.backoff_base,
            backoff_max: config.backoff_max,
            retry_after_max: config.retry_after_max,
            clock,
            gate: Mutex::new(Gate::default()),
            requests: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }

    /// HTTP requests sent (every attempt, retries included).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Response body bytes received (capped bodies included up to where they were cut).
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    fn gate(&self) -> std::sync::MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long the server stays closed, if it is.
    pub fn closed_for(&self) -> Option<Duration> {
        let now = (self.clock)();
        self.gate()
            .closed_until
            .and_then(|until| until.checked_duration_since(now))
            .filter(|d| !d.is_zero())
    }

    fn succeeded(&self) {
        let mut g = self.gate();
        g.failures = 0;
        g.closed_until = None;
    }

    fn failed(&self, retry_after: Option<Duration>) {
        let now = (self.clock)();
        let mut g = self.gate();
        g.failures = g.failures.saturating_add(1);
        let wait = match retry_after {
            Some(d) => d.min(self.retry_after_max),
            None if g.failures <= 1 => Duration::ZERO,
            None => {
                let doublings = (g.failures - 2).min(30);
                self.backoff_base
                    .saturating_mul(1u32 << doublings)
                    .min(self.backoff_max)
            }
        };
        let until = now + wait;
        g.closed_until = Some(g.closed_until.map_or(until, |u| u.max(until)));
    }

    /// GET `path` (e.g. `/blocks/tip/hash`).
    pub async fn get(&self, what: &str, path: &str) -> Result<Answer, ChainError> {
        let url = format!("{}{path}", self.base);
        self.send(what, || self.client.get(&url)).await
    }

    /// POST `body` as text to `path`.
    pub async fn post(&self, what: &str, path: &str, body: String) -> Result<Answer, ChainError> {
        let url = format!("{}{path}", self.base);
        self.send(what, || self.client.post(&url).body(body.clone()))
            .await
    }

    async fn send(
        &self,
        what: &str,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Answer, ChainError> {
        if let Some(retry_in) = self.closed_for() {
            return Err(ChainError::BackingOff {
                what: what.to_string(),
                retry_in,
            });
        }
        let mut attempt = 0u32;
        loop {
            self.requests.fetch_add(1, Ordering::Relaxed);
            match self.once(what, request()).await {
                Attempt::Answer(answer, retry_after) if retryable(answer.status) => {
                    let wait =
                        retry_after.unwrap_or(RETRY_BASE.saturating_mul(1 << attempt.min(16)));
                    if (attempt as usize) < self.max_retries && wait <= IN_REQUEST_WAIT {
                        attempt += 1;
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    self.failed(retry_after);
                    let mut message = answer.text();
                    message.truncate(200);
                    return Err(ChainError::Http {
                        status: answer.status,
                        what: what.to_string(),
                        message,
                    });
                }
                Attempt::Answer(answer, _) => {
                    self.succeeded();
                    return Ok(answer);
                }
                Attempt::Failed(e) => {
                    self.failed(None);
                    return Err(e);
                }
            }
        }
    }

    async fn once(&self, what: &str, request: reqwest::RequestBuilder) -> Attempt {
        let transport = |e: reqwest::Error| ChainError::Transport {
            what: what.to_string(),
            reason: e.to_string(),
        };
        let too_large = || ChainError::TooLarge {
            what: what.to_string(),
            limit: self.max_body,
        };
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Attempt::Failed(transport(e)),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        if response
            .content_length()
            .is_some_and(|len| len > self.max_body as u64)
        {
            return Attempt::Failed(too_large());
        }
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    self.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    if body.len() + chunk.len() > self.max_body {
                        return Attempt::Failed(too_large());
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Attempt::Failed(transport(e)),
            }
        }
        Attempt::Answer(Answer { status, body }, retry_after)
    }
}
