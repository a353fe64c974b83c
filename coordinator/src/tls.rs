//! The coordinator's side of TLS: `--tls-cert`/`--tls-key` turn TLS on,
//! `--tls-ca` additionally requires every client to present a certificate signed by that CA
//! (mutual TLS). The files are read and checked by `taustar_proto::tls` (shared with the worker, so
//! both report bad files alike); this module assembles tonic's server configuration and
//! builds it once at start-up, so a key that does not belong to its certificate is reported
//! before the database is touched.
//!
//! The gRPC health service shares the listener, so with mutual TLS a probe must present a
//! client certificate too (Kubernetes' built-in gRPC probe cannot; use an exec probe or keep
//! mTLS off where probes matter).

use std::path::{Path, PathBuf};

pub use taustar_proto::tls::TlsError;
use taustar_proto::tls::{read_certificates, HANDSHAKE_TIMEOUT};
use tonic::transport::{Server, ServerTlsConfig};

/// A checked server TLS configuration.
#[derive(Clone, Debug)]
pub struct ServerTls {
    /// tonic's configuration (identity, client CA, handshake timeout).
    pub config: ServerTlsConfig,
    /// Whether clients must present a certificate signed by `--tls-ca` (mutual TLS).
    pub client_certs_required: bool,
}

/// Load the server's TLS files: `None` without `--tls-cert`/`--tls-key` (plain HTTP/2).
/// `--tls-ca` without a certificate is refused: client certificates need TLS.
pub fn load(
    cert: Option<&Path>,
    key: Option<&Path>,
    ca: Option<&Path>,
) -> Result<Option<ServerTls>, TlsError> {
    let Some(identity) = taustar_proto::tls::read_optional_identity(cert, key)? else {
        return match ca {
            Some(ca) => Err(TlsError::CaWithoutIdentity { path: ca.to_path_buf() }),
            None => Ok(None),
        };
    };
    let mut config = ServerTlsConfig::new().identity(identity).timeout(HANDSHAKE_TIMEOUT);
    if let Some(ca) = ca {
        config = config.client_ca_root(read_certificates("--tls-ca", ca)?);
    }
    // tonic builds the rustls configuration here: key/certificate mismatch, a CA file whose
    // certificates do not parse, …
    if let Err(e) = Server::builder().tls_config(config.clone()) {
        let path = |p: Option<&Path>| p.map_or_else(|| PathBuf::from("?"), Path::to_path_buf);
        let mut what = format!("--tls-cert {} / --tls-key {}", path(cert).display(), path(key).display());
        if let Some(ca) = ca {
            what.push_str(&format!(" / --tls-ca {}", ca.display()));
        }
        return Err(TlsError::Rejected { what, reason: taustar_proto::tls::error_chain(&e) });
    }
    Ok(Some(ServerTls { config, client_certs_required: ca.is_some() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn self_signed() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert =
            rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap().self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn tls_is_off_without_files_and_on_with_a_matching_pair() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(None, None, None).unwrap().is_none());
        let (cert, key) = self_signed();
        let (c, k) = (write(dir.path(), "c.pem", &cert), write(dir.path(), "k.pem", &key));
        let tls = load(Some(&c), Some(&k), None).unwrap().unwrap();
        assert!(!tls.client_certs_required);
        let tls = load(Some(&c), Some(&k), Some(&c)).unwrap().unwrap();
        assert!(tls.client_certs_required);
    }

    #[test]
    fn a_ca_without_a_server_certificate_is_refused() {
        let err = load(None, None, Some(Path::new("/ca.pem"))).unwrap_err().to_string();
        assert!(err.contains("--tls-ca /ca.pem") && err.contains("needs --tls-cert and --tls-key"), "{err}");
        let err = load(Some(Path::new("/c.pem")), None, None).unwrap_err().to_string();
        assert!(err.contains("--tls-cert needs --tls-key"), "{err}");
    }

    #[test]
    fn a_key_of_another_certificate_is_refused_naming_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = self_signed();
        let (_, other) = self_signed();
        let (c, k) = (write(dir.path(), "server.pem", &cert), write(dir.path(), "other.key", &other));
        let err = load(Some(&c), Some(&k), None).unwrap_err().to_string();
        assert!(err.contains("server.pem") && err.contains("other.key"), "{err}");
        assert!(err.contains("--tls-cert") && err.contains("--tls-key"), "{err}");
        assert!(err.to_lowercase().contains("key"), "{err}");
    }

    #[test]
    fn unreadable_and_non_pem_files_name_the_flag_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed();
        let (c, k) = (write(dir.path(), "c.pem", &cert), write(dir.path(), "k.pem", &key));
        let missing = dir.path().join("nope.pem");
        let err = load(Some(&missing), Some(&k), None).unwrap_err().to_string();
        assert!(err.contains("cannot read --tls-cert") && err.contains("nope.pem"), "{err}");
        let err = load(Some(&c), Some(&k), Some(&k)).unwrap_err().to_string();
        assert!(err.contains("--tls-ca") && err.contains("k.pem") && err.contains("no certificate"), "{err}");
        let err = load(Some(&c), Some(&c), None).unwrap_err().to_string();
        assert!(err.contains("--tls-key") && err.contains("no private key"), "{err}");
    }
}
