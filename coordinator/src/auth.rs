//! The one place where every gRPC request of the coordinator service passes before its
//! handler: an [`Authorizer`] is installed as a tonic interceptor in [`crate::server`].
//!
//! With a shared token (issue 6; read by `worker::auth::Token` from `--token-file`,
//! `TAUSTAR_TOKEN_FILE` or `TAUSTAR_TOKEN`) every call must carry
//! `authorization: Bearer <token>`, compared in constant time; anything else is answered
//! `Unauthenticated` and logged with the peer address — never with what was presented.
//! Without a token every request is accepted, which [`check_bind`] allows only on loopback.
//!
//! The gRPC health service (`grpc.health.v1.Health`) is deliberately *not* behind the
//! interceptor: Kubernetes probes and load balancers cannot present a token, and it reveals
//! only SERVING/NOT_SERVING.

use std::net::SocketAddr;

use tonic::service::Interceptor;
use tonic::{Request, Status};
pub use worker::auth::Token;
use worker::auth::{AUTHORIZATION, TOKEN_ENV, TOKEN_FILE_ENV};

/// The coordinator's request check: open (no token) or requiring a bearer token.
#[derive(Clone, Debug, Default)]
pub struct Authorizer {
    token: Option<Token>,
}

impl Authorizer {
    /// Accept every request (loopback-only use: `taustar run`, tests, benchmarks).
    pub fn open() -> Authorizer {
        Authorizer { token: None }
    }

    /// Require `authorization: Bearer <token>` when `token` is set.
    pub fn new(token: Option<Token>) -> Authorizer {
        Authorizer { token }
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
        let peer = req.remote_addr().map_or_else(|| "unknown".to_string(), |a: SocketAddr| a.to_string());
        tracing::warn!(%peer, reason, "rejected an unauthenticated request");
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
    "refusing to listen on {addr} without a token: anyone who can reach a non-loopback address \
     could lease cells and write results. Provide a shared token with --token-file PATH (or \
     {TOKEN_FILE_ENV}=PATH, or {TOKEN_ENV}=<token> in the environment) and give the workers the \
     same one, or listen on 127.0.0.1"
)]
pub struct UnprotectedBind {
    /// The address asked for.
    pub addr: SocketAddr,
}

/// Refuse a non-loopback listening address when no token is configured.
pub fn check_bind(addr: SocketAddr, auth: &Authorizer) -> Result<(), UnprotectedBind> {
    if auth.requires_token() || addr.ip().is_loopback() {
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
        assert!(Authorizer::open().authorize(with_header(None)).is_ok());
        assert!(Authorizer::open().authorize(with_header(Some("Bearer x"))).is_ok());
    }

    #[test]
    fn non_loopback_bind_needs_a_token() {
        let any: SocketAddr = "0.0.0.0:50051".parse().unwrap();
        let lo: SocketAddr = "127.0.0.1:50051".parse().unwrap();
        let lo6: SocketAddr = "[::1]:0".parse().unwrap();
        let err = check_bind(any, &Authorizer::open()).unwrap_err().to_string();
        assert!(
            err.contains("--token-file") && err.contains("TAUSTAR_TOKEN") && err.contains("0.0.0.0"),
            "{err}"
        );
        assert!(check_bind(any, &guarded()).is_ok());
        assert!(check_bind(lo, &Authorizer::open()).is_ok());
        assert!(check_bind(lo6, &Authorizer::open()).is_ok());
    }
}
