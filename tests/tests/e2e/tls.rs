//! End-to-end: TLS and mutual TLS between real `taustar serve` and `taustar-worker`
//! processes on loopback, with a test PKI generated here by `rcgen` (a CA, a server
//! certificate for 127.0.0.1/localhost, client certificates, and a second, foreign CA).
//!
//! - TLS round trip: a worker trusting the CA (`--tls-ca`) computes a small study to the end;
//!   a plaintext worker and one trusting another CA are refused (they give up, compute
//!   nothing; the latter's error names the certificate problem, the former's says to pass
//!   `--tls-ca`);
//! - mutual TLS: the coordinator listens on 0.0.0.0 with no token, protected by client
//!   certificates alone; a worker without a client certificate (told to pass one), and one
//!   whose certificate is signed by another CA, are refused; with a client certificate (from `TAUSTAR_TLS_*`
//!   environment variables, and `--tls-domain localhost`) the study completes;
//! - bad TLS files stop `taustar serve` before it creates the database, naming flag and path.
//!
//! Run: `cargo test -p taustar-e2e --test e2e tls::` (builds the binaries first).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use taustar_e2e::*;

const T: Duration = Duration::from_secs(60);
/// Long enough for a few reconnection attempts, short enough to keep the tests fast.
const GIVE_UP_SECS: &str = "3";
const TLS_ENV: [&str; 4] = ["TAUSTAR_TLS_CA", "TAUSTAR_TLS_CERT", "TAUSTAR_TLS_KEY", "TAUSTAR_TLS_DOMAIN"];

/// A certificate authority that can sign leaf certificates.
struct Ca {
    cert: Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("self-sign the CA");
        Ca { cert, key }
    }

    /// A leaf certificate for `names` (DNS names or IP addresses) with `usage`; returns
    /// (certificate PEM, key PEM).
    fn leaf(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> (String, String) {
        let key = KeyPair::generate().expect("leaf key");
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).expect("params");
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.cert, &self.key).expect("sign the leaf");
        (cert.pem(), key.serialize_pem())
    }
}

/// The PEM files of one test.
struct Pki {
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    /// A CA that signed neither the server nor the client.
    other_ca: PathBuf,
    /// A client certificate signed by `other_ca`.
    foreign_client_cert: PathBuf,
    foreign_client_key: PathBuf,
}

impl Pki {
    fn new(s: &Scratch) -> Pki {
        let ca = Ca::new("taustar e2e CA");
        let other = Ca::new("someone else's CA");
        let (server_cert, server_key) =
            ca.leaf(&["localhost", "127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth);
        let (client_cert, client_key) = ca.leaf(&["worker-1"], ExtendedKeyUsagePurpose::ClientAuth);
        let (foreign_cert, foreign_key) = other.leaf(&["intruder"], ExtendedKeyUsagePurpose::ClientAuth);
        Pki {
            ca: s.write("ca.pem", &ca.cert.pem()),
            server_cert: s.write("server.pem", &server_cert),
            server_key: s.write("server.key", &server_key),
            client_cert: s.write("client.pem", &client_cert),
            client_key: s.write("client.key", &client_key),
            other_ca: s.write("other-ca.pem", &other.cert.pem()),
            foreign_client_cert: s.write("foreign.pem", &foreign_cert),
            foreign_client_key: s.write("foreign.key", &foreign_key),
        }
    }
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

/// `taustar serve` on `listen` with `extra` arguments and no TLS/token environment; waits
/// until it listens.
fn serve(s: &Scratch, study: &Path, db: &Path, listen: &str, extra: &[&str]) -> Proc {
    let addr_file = s.path("coordinator.addr");
    let mut cmd = Command::new(bin("taustar"));
    cmd.arg("serve")
        .arg(study)
        .arg("--db")
        .arg(db)
        .args(["--listen", listen, "--exit-when-done", "--addr-file", p(&addr_file)])
        .args(FAST_LEASES)
        .args(extra)
        .env_remove("TAUSTAR_TOKEN")
        .env_remove("TAUSTAR_TOKEN_FILE");
    for var in TLS_ENV {
        cmd.env_remove(var);
    }
    let mut c = Proc::spawn("coordinator", cmd, s.path("coordinator.log"));
    wait_until("the coordinator listens", T, || {
        assert!(c.running(), "the coordinator exited early:\n{}", c.log_text());
        addr_file.exists()
    });
    c
}

/// `taustar-worker` against 127.0.0.1:`port` with `args` and `env` (TLS settings), logging
/// computed cells to `computed_log`; `give_up` adds `--give-up-after`.
fn worker(
    s: &Scratch,
    label: &str,
    port: u16,
    computed_log: &Path,
    args: &[&str],
    env: &[(&str, &Path)],
    give_up: bool,
) -> Proc {
    let mut cmd = Command::new(bin("taustar-worker"));
    cmd.arg("--coordinator")
        .arg(format!("127.0.0.1:{port}"))
        .args(["--threads", "1", "--max-backoff", "1", "--name", label])
        .args(args)
        .env("TAUSTAR_WORKER_COMPUTED_LOG", computed_log)
        .env_remove("TAUSTAR_TOKEN")
        .env_remove("TAUSTAR_TOKEN_FILE");
    for var in TLS_ENV {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    if give_up {
        cmd.args(["--give-up-after", GIVE_UP_SECS]);
    }
    Proc::spawn(label, cmd, s.path(&format!("{label}.log")))
}

/// Wait for a worker that must be refused: it exits non-zero having never registered.
fn refused(w: &mut Proc) -> String {
    let exit = w.wait(T);
    let log = w.log_text();
    assert!(!exit.success(), "{} must fail, exited {exit}:\n{log}", w.label);
    assert!(log.contains("gave up"), "{} gives up reaching the coordinator:\n{log}", w.label);
    assert_eq!(log.matches("connected").count(), 0, "{} never registered:\n{log}", w.label);
    log
}

#[test]
fn tls_round_trip_and_plaintext_or_foreign_ca_clients_are_refused() {
    let _machine = shared_machine();
    let s = Scratch::new();
    let pki = Pki::new(&s);
    let study = s.write("s.toml", &two_level_study("e2e-tls", 2, "[2.0]", "[10, 30]"));
    let (db, bad_log, good_log) = (s.path("s.db"), s.path("bad.keys"), s.path("good.keys"));
    let port = free_port();
    let mut coord = serve(
        &s,
        &study,
        &db,
        &format!("127.0.0.1:{port}"),
        &["--tls-cert", p(&pki.server_cert), "--tls-key", p(&pki.server_key)],
    );
    assert!(coord.log_text().contains("TLS on"), "{}", coord.log_text());

    let mut plain = worker(&s, "plaintext", port, &bad_log, &[], &[], true);
    let mut foreign = worker(&s, "foreign-ca", port, &bad_log, &["--tls-ca", p(&pki.other_ca)], &[], true);
    let log = refused(&mut plain);
    assert!(log.contains("if the coordinator serves TLS, connect with --tls-ca"), "a hint:\n{log}");
    let log = refused(&mut foreign);
    assert!(log.contains("certificate"), "the error names the certificate problem:\n{log}");
    assert!(computed(&bad_log).is_empty(), "refused workers computed {:?}", computed(&bad_log));
    let before = status(&db);
    assert_eq!(field(&before, "cells_done") + field(&before, "cells_leased"), 0, "{before}");

    let mut good = worker(&s, "tls", port, &good_log, &["--tls-ca", p(&pki.ca)], &[], false);
    assert!(good.wait(T).success(), "TLS worker:\n{}", good.log_text());
    assert!(coord.wait(T).success(), "coordinator:\n{}", coord.log_text());
    let st = status(&db);
    assert_eq!(field(&st, "cells_done"), 4, "{st}");
    assert_eq!(results(&db).len(), 4);
    assert_eq!(computed(&good_log).len(), 4);
}

#[test]
fn mutual_tls_alone_protects_a_non_loopback_listen_and_refuses_clients_without_a_valid_certificate() {
    let _machine = shared_machine();
    let s = Scratch::new();
    let pki = Pki::new(&s);
    let study = s.write("s.toml", &two_level_study("e2e-mtls", 2, "[2.0]", "[10, 30]"));
    let (db, bad_log, good_log) = (s.path("s.db"), s.path("bad.keys"), s.path("good.keys"));
    let port = free_port();
    // No token: client certificates alone allow the non-loopback address.
    let mut coord = serve(
        &s,
        &study,
        &db,
        &format!("0.0.0.0:{port}"),
        &["--tls-cert", p(&pki.server_cert), "--tls-key", p(&pki.server_key), "--tls-ca", p(&pki.ca)],
    );
    assert!(coord.log_text().contains("mutual TLS"), "{}", coord.log_text());

    let mut anonymous = worker(&s, "no-client-cert", port, &bad_log, &["--tls-ca", p(&pki.ca)], &[], true);
    let foreign_args = [
        "--tls-ca",
        p(&pki.ca),
        "--tls-cert",
        p(&pki.foreign_client_cert),
        "--tls-key",
        p(&pki.foreign_client_key),
    ];
    let mut foreign = worker(&s, "foreign-client-cert", port, &bad_log, &foreign_args, &[], true);
    let log = refused(&mut anonymous);
    assert!(log.contains("--tls-cert PATH --tls-key PATH"), "a hint:\n{log}");
    refused(&mut foreign);
    assert!(computed(&bad_log).is_empty(), "refused workers computed {:?}", computed(&bad_log));

    // The good worker takes everything from the environment, and checks the name `localhost`.
    let env = [
        ("TAUSTAR_TLS_CA", pki.ca.as_path()),
        ("TAUSTAR_TLS_CERT", &pki.client_cert),
        ("TAUSTAR_TLS_KEY", &pki.client_key),
    ];
    let mut good = worker(&s, "mtls", port, &good_log, &["--tls-domain", "localhost"], &env, false);
    assert!(good.wait(T).success(), "mTLS worker:\n{}", good.log_text());
    assert!(coord.wait(T).success(), "coordinator:\n{}", coord.log_text());
    assert_eq!(field(&status(&db), "cells_done"), 4);
    assert_eq!(computed(&good_log).len(), 4);
}

/// Run `taustar serve` expecting it to refuse to start; returns its output.
fn serve_refused(s: &Scratch, args: &[&str]) -> String {
    let study = s.write("s.toml", &two_level_study("e2e-tls-bad", 1, "[2.0]", "[10]"));
    let mut cmd = Command::new(bin("taustar"));
    cmd.arg("serve").arg(&study).arg("--db").arg(s.path("s.db")).args(["--listen", "127.0.0.1:0"]).args(args);
    for var in TLS_ENV {
        cmd.env_remove(var);
    }
    let mut c = Proc::spawn("serve", cmd, s.path("serve.log"));
    let exit = c.wait(T);
    let log = c.log_text();
    assert!(!exit.success(), "taustar serve {args:?} must refuse to start, exited {exit}:\n{log}");
    assert!(!s.path("s.db").exists(), "refused before creating the database:\n{log}");
    log
}

#[test]
fn bad_tls_files_stop_serve_naming_the_flag_and_path() {
    let _machine = shared_machine();
    let s = Scratch::new();
    let pki = Pki::new(&s);
    let missing = s.path("missing.pem");
    let log = serve_refused(&s, &["--tls-cert", p(&missing), "--tls-key", p(&pki.server_key)]);
    assert!(log.contains("--tls-cert") && log.contains(p(&missing)), "{log}");
    // A key that belongs to another certificate.
    let log = serve_refused(&s, &["--tls-cert", p(&pki.server_cert), "--tls-key", p(&pki.client_key)]);
    assert!(log.contains(p(&pki.server_cert)) && log.contains(p(&pki.client_key)), "{log}");
    // A key where the CA belongs.
    let args =
        ["--tls-cert", p(&pki.server_cert), "--tls-key", p(&pki.server_key), "--tls-ca", p(&pki.server_key)];
    let log = serve_refused(&s, &args);
    assert!(log.contains("--tls-ca") && log.contains("no certificate"), "{log}");
    // Client certificates need TLS.
    let log = serve_refused(&s, &["--tls-ca", p(&pki.ca)]);
    assert!(log.contains(&format!("--tls-ca {}", p(&pki.ca))) && log.contains("needs --tls-cert"), "{log}");
}
