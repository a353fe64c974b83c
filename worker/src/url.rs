//! The coordinator URL a worker connects to.

use crate::error::WorkerError;
use crate::tls;

/// The coordinator URL with its scheme: a bare `host:port` gets `https://` with TLS and
/// `http://` without; a scheme that contradicts the TLS settings is refused (an `https://` URL
/// without a CA to trust, or TLS settings with an `http://` URL that would ignore them).
pub(crate) fn normalise_url(url: &str, tls: bool) -> Result<String, WorkerError> {
    let bad = |reason: &str| WorkerError::BadUrl { url: url.to_string(), reason: reason.to_string() };
    let full = match (url.split_once("://").map(|(scheme, _)| scheme), tls) {
        (None, false) => format!("http://{url}"),
        (None, true) => format!("https://{url}"),
        (Some("https"), false) => {
            return Err(bad(&format!(
                "https:// needs --tls-ca PATH ({}): the CA certificate that signed the coordinator's \
                 certificate",
                tls::TLS_CA_ENV
            )))
        }
        (Some("http"), true) => {
            return Err(bad(
                "TLS is configured (--tls-ca) but the URL says http://; use https:// or a bare host:port",
            ))
        }
        (Some("http" | "https"), _) => url.to_string(),
        (Some(other), _) => {
            return Err(bad(&format!(
            "unsupported scheme {other}://; the coordinator speaks gRPC over http:// (or https:// with TLS)"
        )))
        }
    };
    tonic::transport::Endpoint::from_shared(full.clone())
        .map_err(|e| WorkerError::BadUrl { url: url.to_string(), reason: e.to_string() })?;
    Ok(full)
}
