//! TLS and mutual TLS for the connection between workers and the coordinator.
//!
//! Both binaries read PEM files here, so a bad file gets the same message on either side:
//! the flag, the path and what is wrong with it (unreadable, no PEM block of the right kind,
//! broken PEM, a key that does not belong to its certificate). The coordinator builds its
//! server configuration from [`read_certificates`]/[`read_optional_identity`] in `coordinator::tls`;
//! clients (the worker) use [`ClientTlsArgs`].
//!
//! Files are checked at the PEM level here; rustls (behind tonic's `tls-ring` feature: pure
//! `ring`, no C toolchain) parses the DER when the configuration is built, which is also
//! where a key that does not match its certificate is caught (`check_client_config`).
//!
//! The same environment variables serve both sides (`TAUSTAR_TLS_CA`, `TAUSTAR_TLS_CERT`,
//! `TAUSTAR_TLS_KEY`), because in a mutual-TLS cluster the CA is the same file for both and
//! only the certificate differs. Note that `TAUSTAR_TLS_CA` on the coordinator *requires*
//! client certificates: where one environment reaches both (a single Slurm job), pass the
//! per-side files as flags instead.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

/// Environment variable for `--tls-ca` (clients: the CA that signed the coordinator's
/// certificate; coordinator: the CA client certificates must be signed by).
pub const TLS_CA_ENV: &str = "TAUSTAR_TLS_CA";
/// Environment variable for `--tls-cert` (this side's certificate chain, PEM).
pub const TLS_CERT_ENV: &str = "TAUSTAR_TLS_CERT";
/// Environment variable for `--tls-key` (this side's private key, PEM).
pub const TLS_KEY_ENV: &str = "TAUSTAR_TLS_KEY";
/// Environment variable for `--tls-domain` (clients: the name the server certificate must carry).
pub const TLS_DOMAIN_ENV: &str = "TAUSTAR_TLS_DOMAIN";

/// Longest TLS handshake either side waits for: a peer that opens a connection and stalls
/// must not hold resources forever.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a TLS file or configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read.
    #[error("cannot read {flag} {}: {error}", path.display())]
    Read {
        /// The flag that named the file.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The file is not PEM of the expected kind.
    #[error("{flag} {}: {reason}", path.display())]
    Pem {
        /// The flag that named the file.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A certificate without its key, or a key without its certificate.
    #[error("{given} needs {missing} as well: a certificate and its private key are given together")]
    Unpaired {
        /// The flag that was given.
        given: &'static str,
        /// The flag that is missing.
        missing: &'static str,
    },
    /// `--tls-ca` on the coordinator without its own certificate: client certificates can
    /// only be asked for over TLS.
    #[error(
        "--tls-ca {} (require client certificates) needs --tls-cert and --tls-key: mutual TLS is \
         TLS first",
        path.display()
    )]
    CaWithoutIdentity {
        /// The `--tls-ca` file.
        path: PathBuf,
    },
    /// Client TLS settings without `--tls-ca`.
    #[error(
        "{given} needs --tls-ca PATH ({TLS_CA_ENV}): the CA certificate that signed the coordinator's \
         certificate, which this side must trust"
    )]
    NoCa {
        /// The flag that was given.
        given: &'static str,
    },
    /// rustls refused the configuration built from readable files (e.g. a key that does not
    /// belong to its certificate).
    #[error("{what}: {reason}")]
    Rejected {
        /// The files involved, with their flags.
        what: String,
        /// rustls' reason.
        reason: String,
    },
}

fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::Read { flag, path: path.to_path_buf(), error })
}

fn pem_error(flag: &'static str, path: &Path, e: &pem::Error) -> TlsError {
    TlsError::Pem { flag, path: path.to_path_buf(), reason: format!("not valid PEM: {e}") }
}

/// Read a PEM file of one or more certificates (a CA, or a certificate chain, leaf first).
pub fn read_certificates(flag: &'static str, path: &Path) -> Result<Certificate, TlsError> {
    let bytes = read(flag, path)?;
    let mut count = 0;
    for item in CertificateDer::pem_slice_iter(&bytes) {
        item.map_err(|e| pem_error(flag, path, &e))?;
        count += 1;
    }
    if count == 0 {
        return Err(TlsError::Pem {
            flag,
            path: path.to_path_buf(),
            reason: "no certificate in it (expected a PEM block `-----BEGIN CERTIFICATE-----`)".into(),
        });
    }
    Ok(Certificate::from_pem(bytes))
}

/// Read a certificate chain and its private key (PKCS#8, PKCS#1 or SEC1 PEM).
pub fn read_identity(
    cert_flag: &'static str,
    cert: &Path,
    key_flag: &'static str,
    key: &Path,
) -> Result<Identity, TlsError> {
    let chain = read_certificates(cert_flag, cert)?;
    let key_bytes = read(key_flag, key)?;
    match PrivateKeyDer::from_pem_slice(&key_bytes) {
        Ok(_) => {}
        Err(pem::Error::NoItemsFound) => {
            return Err(TlsError::Pem {
                flag: key_flag,
                path: key.to_path_buf(),
                reason: "no private key in it (expected a PEM block `-----BEGIN PRIVATE KEY-----`, \
                         `RSA PRIVATE KEY` or `EC PRIVATE KEY`)"
                    .into(),
            })
        }
        Err(e) => return Err(pem_error(key_flag, key, &e)),
    }
    Ok(Identity::from_pem(chain.into_inner(), key_bytes))
}

/// A certificate and key pair given as two optional flags: both or neither.
pub fn read_optional_identity(cert: Option<&Path>, key: Option<&Path>) -> Result<Option<Identity>, TlsError> {
    match (cert, key) {
        (None, None) => Ok(None),
        (Some(c), Some(k)) => read_identity("--tls-cert", c, "--tls-key", k).map(Some),
        (Some(_), None) => Err(TlsError::Unpaired { given: "--tls-cert", missing: "--tls-key" }),
        (None, Some(_)) => Err(TlsError::Unpaired { given: "--tls-key", missing: "--tls-cert" }),
    }
}

/// The chain of `error` and its sources, joined by `: ` (tonic and rustls nest the useful
/// part — "invalid peer certificate: UnknownIssuer" — a few levels down).
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// `error` (a failed connection) with a hint when it looks like a TLS mismatch that the
/// transport error itself does not name: a plaintext client talking to a TLS coordinator
/// sees an HTTP/2 protocol error or a broken pipe; a TLS client that the coordinator refuses
/// for lack of a client certificate sees, depending on which side of a race it loses (TLS 1.3
/// sends the server's verdict after the client thinks the handshake is done), the server's
/// `CertificateRequired` alert, the connection closed, or a broken pipe.
pub fn explain(error: &str, tls: bool) -> String {
    let plaintext_at_tls = ["h2 protocol error", "broken pipe", "FRAME_SIZE_ERROR"];
    let no_client_cert = ["connection closed", "CertificateRequired", "broken pipe"];
    if !tls && plaintext_at_tls.iter().any(|p| error.contains(p)) {
        format!("{error} (if the coordinator serves TLS, connect with --tls-ca PATH)")
    } else if tls && no_client_cert.iter().any(|p| error.contains(p)) {
        format!(
            "{error} (if the coordinator requires client certificates, give this worker one with \
             --tls-cert PATH --tls-key PATH, signed by the coordinator's --tls-ca)"
        )
    } else {
        error.to_string()
    }
}

/// TLS settings of a client connecting to a coordinator (the worker's flags).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ClientTlsArgs {
    /// CA certificate (PEM) that signed the coordinator's certificate: turns on TLS (an
    /// `https://` coordinator URL requires it; a bare host:port then means https).
    #[arg(long = "tls-ca", value_name = "PATH", env = TLS_CA_ENV)]
    pub ca: Option<PathBuf>,
    /// This client's certificate (PEM, chain leaf first), for a coordinator that requires
    /// client certificates (mutual TLS). Needs --tls-key.
    #[arg(long = "tls-cert", value_name = "PATH", env = TLS_CERT_ENV)]
    pub cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long = "tls-key", value_name = "PATH", env = TLS_KEY_ENV)]
    pub key: Option<PathBuf>,
    /// Name the coordinator's certificate must carry [default: the host of the coordinator
    /// URL]. Use it when connecting by an address the certificate does not list.
    #[arg(long = "tls-domain", value_name = "NAME", env = TLS_DOMAIN_ENV)]
    pub domain: Option<String>,
}

impl ClientTlsArgs {
    /// The client configuration, or `None` without `--tls-ca` (plain HTTP/2). Reads and
    /// checks every file; fails naming the flag and path.
    pub fn load(&self) -> Result<Option<ClientTlsConfig>, TlsError> {
        let Some(ca_path) = &self.ca else {
            let given = if self.cert.is_some() {
                Some("--tls-cert")
            } else if self.key.is_some() {
                Some("--tls-key")
            } else if self.domain.is_some() {
                Some("--tls-domain")
            } else {
                None
            };
            return match given {
                Some(given) => Err(TlsError::NoCa { given }),
                None => Ok(None),
            };
        };
        let mut config = ClientTlsConfig::new()
            .ca_certificate(read_certificates("--tls-ca", ca_path)?)
            .timeout(HANDSHAKE_TIMEOUT);
        if let Some(identity) = read_optional_identity(self.cert.as_deref(), self.key.as_deref())? {
            config = config.identity(identity);
        }
        if let Some(domain) = &self.domain {
            config = config.domain_name(domain.clone());
        }
        check_client_config(&config, self)?;
        Ok(Some(config))
    }
}

/// Build the rustls client configuration once, so a key that does not match its
/// certificate is reported at start-up (naming the files) rather than at every connect.
fn check_client_config(config: &ClientTlsConfig, args: &ClientTlsArgs) -> Result<(), TlsError> {
    let probe = Endpoint::from_static("https://localhost");
    match probe.tls_config(config.clone()) {
        Ok(_) => Ok(()),
        Err(e) => {
            let mut what = format!("--tls-ca {}", args.ca.as_deref().unwrap_or(Path::new("?")).display());
            if let (Some(c), Some(k)) = (&args.cert, &args.key) {
                what.push_str(&format!(
                    " / --tls-cert {} / --tls-key {} (client identity)",
                    c.display(),
                    k.display()
                ));
            }
            Err(TlsError::Rejected { what, reason: error_chain(&e) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Pems {
        dir: tempfile::TempDir,
    }

    impl Pems {
        fn new() -> Pems {
            Pems { dir: tempfile::tempdir().unwrap() }
        }
        fn write(&self, name: &str, text: &str) -> PathBuf {
            let p = self.dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        }
    }

    fn self_signed() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert =
            rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap().self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn args(ca: Option<PathBuf>, cert: Option<PathBuf>, key: Option<PathBuf>) -> ClientTlsArgs {
        ClientTlsArgs { ca, cert, key, domain: None }
    }

    #[test]
    fn no_ca_means_no_tls_but_other_flags_alone_are_refused() {
        assert!(ClientTlsArgs::default().load().unwrap().is_none());
        let p = PathBuf::from("/x");
        let err = args(None, Some(p.clone()), Some(p)).load().unwrap_err().to_string();
        assert!(err.contains("--tls-cert needs --tls-ca") && err.contains(TLS_CA_ENV), "{err}");
        let err = ClientTlsArgs { domain: Some("h".into()), ..Default::default() }.load().unwrap_err();
        assert!(err.to_string().contains("--tls-domain needs --tls-ca"), "{err}");
    }

    #[test]
    fn a_good_ca_and_identity_load() {
        let f = Pems::new();
        let (cert, key) = self_signed();
        let (c, k) = (f.write("c.pem", &cert), f.write("k.pem", &key));
        assert!(args(Some(c.clone()), None, None).load().unwrap().is_some());
        assert!(args(Some(c.clone()), Some(c), Some(k)).load().unwrap().is_some());
    }

    #[test]
    fn missing_unreadable_and_non_pem_files_name_the_flag_and_path() {
        let f = Pems::new();
        let (cert, key) = self_signed();
        let missing = f.dir.path().join("missing.pem");
        let err = args(Some(missing.clone()), None, None).load().unwrap_err().to_string();
        assert!(err.contains("--tls-ca") && err.contains(&missing.display().to_string()), "{err}");

        let garbage = f.write("garbage.pem", "hello, I am not a certificate\n");
        let err = args(Some(garbage.clone()), None, None).load().unwrap_err().to_string();
        assert!(
            err.contains("--tls-ca") && err.contains("no certificate") && err.contains("garbage.pem"),
            "{err}"
        );

        let broken = f.write("broken.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n");
        let err = args(Some(broken), None, None).load().unwrap_err().to_string();
        assert!(err.contains("not valid PEM") && err.contains("broken.pem"), "{err}");

        // A key given where a certificate belongs, and the other way round.
        let (c, k) = (f.write("c.pem", &cert), f.write("k.pem", &key));
        let err = args(Some(k.clone()), None, None).load().unwrap_err().to_string();
        assert!(err.contains("--tls-ca") && err.contains("no certificate"), "{err}");
        let err = args(Some(c.clone()), Some(c.clone()), Some(c.clone())).load().unwrap_err().to_string();
        assert!(
            err.contains("--tls-key") && err.contains("no private key") && err.contains("c.pem"),
            "{err}"
        );
        let err = args(Some(c.clone()), Some(k.clone()), Some(k)).load().unwrap_err().to_string();
        assert!(
            err.contains("--tls-cert") && err.contains("no certificate") && err.contains("k.pem"),
            "{err}"
        );
        let err = args(Some(c.clone()), Some(c), None).load().unwrap_err().to_string();
        assert!(err.contains("--tls-cert needs --tls-key"), "{err}");
    }

    #[test]
    fn a_key_of_another_certificate_is_refused_naming_both_files() {
        let f = Pems::new();
        let (cert, _) = self_signed();
        let (_, other_key) = self_signed();
        let (c, k) = (f.write("c.pem", &cert), f.write("other.key", &other_key));
        let err = args(Some(c.clone()), Some(c), Some(k)).load().unwrap_err().to_string();
        assert!(err.contains("c.pem") && err.contains("other.key"), "{err}");
        assert!(err.to_lowercase().contains("key"), "{err}");
    }

    #[test]
    fn hints_name_the_missing_flag_only_for_tls_shaped_errors() {
        let plain = explain("register: h2 protocol error: http2 error", false);
        assert!(plain.contains("--tls-ca"), "{plain}");
        let mtls = explain("register: operation was canceled: connection closed", true);
        assert!(mtls.contains("--tls-cert") && mtls.contains("--tls-key"), "{mtls}");
        let alert = explain("register: transport error: received fatal alert: CertificateRequired", true);
        assert!(alert.contains("--tls-cert PATH --tls-key PATH"), "{alert}");
        let pipe = explain("register: transport error: stream closed because of a broken pipe", true);
        assert!(pipe.contains("--tls-cert PATH --tls-key PATH"), "{pipe}");
        assert_eq!(
            explain("tcp connect error: Connection refused", false),
            "tcp connect error: Connection refused"
        );
        assert_eq!(explain("register: h2 protocol error", true), "register: h2 protocol error");
    }

    #[test]
    fn error_chain_joins_sources_without_repeats() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(error_chain(&e), "outer: inner");
    }
}
