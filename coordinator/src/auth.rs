//! The one place where every gRPC request of the coordinator service passes before its
//! handler: an [`Authorizer`] is installed as a tonic interceptor in [`crate::server`].
//!
//! With a shared token (read by `taustar_proto::auth::Token` from `--token-file`,
//! `TAUSTAR_TOKEN_FILE` or `TAUSTAR_TOKEN`) every call must carry
//! `authorization: Bearer <token>`, compared in constant time; anything else is answered
//! `Unauthenticated` and logged with the peer address — never with what was presented.
//! Without a token every request is accepted, which [`check_bind`] allows only on loopback
//! or when TLS requires client certificates (mutual TLS, `--tls-ca`; see `crate::tls`).
//!
//! Rejection logs are rate-limited by [`RejectionLog`]: at most one line per peer address
//! and reason every [`REJECTION_LOG_WINDOW`], the next line carrying how many were
//! suppressed, so a hostile client hammering the port cannot flood the log.
//!
//! The gRPC health service (`grpc.health.v1.Health`) is deliberately *not* behind the
//! interceptor: Kubernetes probes and load balancers cannot present a token, and it reveals
//! only SERVING/NOT_SERVING.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use taustar_proto::auth::Token;
use taustar_proto::auth::{AUTHORIZATION, TOKEN_ENV, TOKEN_FILE_ENV};
use tokio::time::Instant;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// At most one rejection line per peer address and reason in this window.
pub const REJECTION_LOG_WINDOW: Duration = Duration::from_secs(10);
/// Peers [`RejectionLog`] tracks separately; beyond, rejections share one entry per reason.
const MAX_TRACKED_PEERS: usize = 1024;

/// Rate limiter of rejection log lines, keyed by (peer IP, reason): ports are left out
/// because a client that reconnects gets a new one each time.
#[derive(Debug)]
pub struct RejectionLog {
    window: Duration,
    max_peers: usize,
    entries: HashMap<(Option<IpAddr>, &'static str), Entry>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    logged_at: Instant,
    suppressed: u64,
}

/// What to do with one rejection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Log it, mentioning this many rejections suppressed since the last line for its key.
    Log {
        /// Rejections of the same peer and reason not logged since the previous line.
        suppressed: u64,
    },
    /// Count it silently.
    Suppress,
}

impl RejectionLog {
    /// A limiter allowing one line per key per `window`, tracking up to `max_peers` keys.
    pub fn new(window: Duration, max_peers: usize) -> RejectionLog {
        RejectionLog { window, max_peers: max_peers.max(1), entries: HashMap::new() }
    }

    /// Record a rejection of `peer` for `reason` at `now` (injected, so tests control time).
    pub fn note(&mut self, peer: Option<IpAddr>, reason: &'static str, now: Instant) -> Verdict {
        let mut key = (peer, reason);
        if !self.entries.contains_key(&key) && self.entries.len() >= self.max_peers {
            let window = self.window;
            self.entries.retain(|_, e| now.saturating_duration_since(e.logged_at) < window);
            if self.entries.len() >= self.max_peers {
                // Too many distinct peers at once: they share one entry per reason.
                key = (None, reason);
            }
        }
        match self.entries.get_mut(&key) {
            Some(e) if now.saturating_duration_since(e.logged_at) < self.window => {
                e.suppressed += 1;
                Verdict::Suppress
            }
            Some(e) => {
                let suppressed = e.suppressed;
                *e = Entry { logged_at: now, suppressed: 0 };
                Verdict::Log { suppressed }
            }
            None => {
                self.entries.insert(key, Entry { logged_at: now, suppressed: 0 });
                Verdict::Log { suppressed: 0 }
            }
        }
    }

    /// How many keys are tracked (bounded by `max_peers` plus one shared entry per reason).
    pub fn tracked(&self) -> usize {
        self.entries.len()
    }
}

impl Default for RejectionLog {
    fn default() -> Self {
        RejectionLog::new(REJECTION_LOG_WINDOW, MAX_TRACKED_PEERS)
    }
}

/// The coordinator's request check: open (no token) or requiring a bearer token.
#[derive(Clone, Debug, Default)]
pub struct Authorizer {
    token: Option<Token>,
    log: Arc<Mutex<RejectionLog>>,
}

impl Authorizer {
    /// Require `authorization: Bearer <token>` when `token` is set.
    pub fn new(token: Option<Token>) -> Authorizer {
        Authorizer { token, log: Arc::default() }
    }

    /// Whether a token is required.
    pub fn requires_token(&self) -> bool {
        self.token.is_some()
    }

    /// Accept or refuse a request before it reaches a handler.
    #[allow(clippy::result_large_err)] // tonic's interceptor signature
    pub fn authorize(&self, req: Request<()>) -> Result<Request<()>, Status> {
        let Some(token) = &self.token else { return Ok(req) };
        let reason = match req.metadata().get(AUTHORIZATION) {
            None => "no authorization metadata",
            Some(v) => match v.as_bytes().strip_prefix(b"Bearer ") {
                None => "authorization metadata is not `Bearer <token>`",
                Some(presented) if token.matches(presented) => return Ok(req),
                Some(_) => "wrong token",
            },
        };
        let addr = req.remote_addr();
        let verdict = self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).note(
            addr.map(|a| a.ip()),
            reason,
            Instant::now(),
        );
        if let Verdict::Log { suppressed } = verdict {
            let peer = addr.map_or_else(|| "unknown".to_string(), |a: SocketAddr| a.to_string());
            tracing::warn!(
                %peer,
                reason,
                suppressed,
                "rejected an unauthenticated request (further ones from this address for this reason \
                 are logged at most every {REJECTION_LOG_WINDOW:?}; `suppressed` counts those not logged)"
            );
        }
        Err(Status::unauthenticated(format!("{reason}: this coordinator requires its shared token")))
    }
}

impl Interceptor for Authorizer {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        self.authorize(req)
    }
}

/// Why the coordinator must not listen where it was asked to.
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing to listen on {addr} without a token or client certificates: anyone who can reach a \
     non-loopback address could lease cells and write results. Provide a shared token with \
     --token-file PATH (or {TOKEN_FILE_ENV}=PATH, or {TOKEN_ENV}=<token> in the environment) and \
     give the workers the same one; or require client certificates (mutual TLS: --tls-cert, \
     --tls-key and --tls-ca PATH, the CA that signs the workers' certificates); or listen on \
     127.0.0.1"
)]
pub struct UnprotectedBind {
    /// The address asked for.
    pub addr: SocketAddr,
}

/// Refuse a non-loopback listening address unless callers must prove who they are: by the
/// shared token, or by a client certificate (`client_certs_required`, mutual TLS).
pub fn check_bind(
    addr: SocketAddr,
    auth: &Authorizer,
    client_certs_required: bool,
) -> Result<(), UnprotectedBind> {
    if auth.requires_token() || client_certs_required || addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(UnprotectedBind { addr })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    fn with_header(value: Option<&str>) -> Request<()> {
        let mut req = Request::new(());
        if let Some(v) = value {
            req.metadata_mut().insert(AUTHORIZATION, v.parse().unwrap());
        }
        req
    }

    fn guarded() -> Authorizer {
        Authorizer::new(Some(Token::parse("s3cret-token", "test").unwrap()))
    }

    #[test]
    fn right_token_passes() {
        assert!(guarded().authorize(with_header(Some("Bearer s3cret-token"))).is_ok());
    }

    #[test]
    fn wrong_missing_and_malformed_are_unauthenticated_without_echoing_the_token() {
        for header in [
            Some("Bearer wrong"),
            Some("Bearer s3cret-token-and-more"),
            Some("Bearer s3cret-toke"),
            None,
            Some("s3cret-token"),
            Some("Basic s3cret-token"),
            Some("bearer s3cret-token"),
            Some("Bearer  s3cret-token"),
            Some("Bearer "),
        ] {
            let status = guarded().authorize(with_header(header)).unwrap_err();
            assert_eq!(status.code(), Code::Unauthenticated, "{header:?}");
            assert!(!status.message().contains("s3cret"), "{header:?}: {}", status.message());
        }
    }

    #[test]
    fn open_authorizer_accepts_anything() {
        assert!(Authorizer::new(None).authorize(with_header(None)).is_ok());
        assert!(Authorizer::new(None).authorize(with_header(Some("Bearer x"))).is_ok());
    }

    #[test]
    fn non_loopback_bind_needs_a_token() {
        let any: SocketAddr = "0.0.0.0:50051".parse().unwrap();
        let lo: SocketAddr = "127.0.0.1:50051".parse().unwrap();
        let lo6: SocketAddr = "[::1]:0".parse().unwrap();
        let err = check_bind(any, &Authorizer::new(None), false).unwrap_err().to_string();
        assert!(
            err.contains("--token-file") && err.contains("TAUSTAR_TOKEN") && err.contains("0.0.0.0"),
            "{err}"
        );
        assert!(err.contains("--tls-ca"), "names mutual TLS as the other way: {err}");
        assert!(check_bind(any, &guarded(), false).is_ok());
        assert!(check_bind(any, &Authorizer::new(None), true).is_ok(), "mutual TLS protects it");
        assert!(check_bind(lo, &Authorizer::new(None), false).is_ok());
        assert!(check_bind(lo6, &Authorizer::new(None), false).is_ok());
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn rejection_lines_are_limited_per_peer_and_reason_and_count_the_suppressed() {
        let mut log = RejectionLog::new(Duration::from_secs(10), 16);
        let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
        assert_eq!(log.note(a, "wrong token", Instant::now()), Verdict::Log { suppressed: 0 });
        for _ in 0..500 {
            assert_eq!(log.note(a, "wrong token", Instant::now()), Verdict::Suppress);
        }
        // Another reason, and another peer, each get their own line.
        assert_eq!(log.note(a, "no authorization metadata", Instant::now()), Verdict::Log { suppressed: 0 });
        assert_eq!(log.note(b, "wrong token", Instant::now()), Verdict::Log { suppressed: 0 });
        tokio::time::advance(Duration::from_millis(9_999)).await;
        assert_eq!(log.note(a, "wrong token", Instant::now()), Verdict::Suppress);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(log.note(a, "wrong token", Instant::now()), Verdict::Log { suppressed: 501 });
        assert_eq!(log.note(a, "wrong token", Instant::now()), Verdict::Suppress);
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(log.note(a, "wrong token", Instant::now()), Verdict::Log { suppressed: 1 });
        assert_eq!(log.note(b, "wrong token", Instant::now()), Verdict::Log { suppressed: 0 });
    }

    #[tokio::test(start_paused = true)]
    async fn many_distinct_peers_share_one_entry_once_the_table_is_full() {
        let mut log = RejectionLog::new(Duration::from_secs(10), 4);
        let mut logged = 0;
        for i in 0..1000u32 {
            let peer = Some(IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i)));
            if let Verdict::Log { .. } = log.note(peer, "wrong token", Instant::now()) {
                logged += 1;
            }
        }
        // Four peers tracked individually, then one shared line for the rest.
        assert_eq!(logged, 5);
        assert!(log.tracked() <= 5, "{}", log.tracked());
        // Once the window is over, stale entries make room again.
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(
            log.note(ip("192.168.1.1"), "wrong token", Instant::now()),
            Verdict::Log { suppressed: 0 }
        );
        assert!(log.tracked() <= 5, "{}", log.tracked());
    }

    #[test]
    fn the_authorizer_rejects_every_bad_request_even_when_it_does_not_log_it() {
        let auth = guarded();
        for _ in 0..50 {
            let status = auth.authorize(with_header(Some("Bearer nope"))).unwrap_err();
            assert_eq!(status.code(), Code::Unauthenticated);
        }
        assert!(auth.authorize(with_header(Some("Bearer s3cret-token"))).is_ok());
    }
}
