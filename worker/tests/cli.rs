//! The `taustar-worker` binary refuses bad settings at start, before any connection attempt,
//! with an error that names the flag (or URL) and the value at fault — instead of retrying a
//! connection that can never work. (Also: this file makes `cargo test` build the binary with
//! the test feature set, which the end-to-end tests in `tests/` then reuse.)

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Run the worker with `args`; it must exit on its own within 20 s. Returns (success, stderr).
fn run(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_taustar-worker"));
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    for var in ["TAUSTAR_TOKEN", "TAUSTAR_TLS_CA", "TAUSTAR_TLS_CERT", "TAUSTAR_TLS_KEY"] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    let mut child = cmd.spawn().expect("start taustar-worker");
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait for taustar-worker") {
            break st;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("taustar-worker {args:?} did not exit within 20 s (it should refuse at start)");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("piped stderr"), &mut err)
        .expect("read stderr");
    (status.success(), err)
}

fn refused(args: &[&str], env: &[(&str, &str)], must_name: &[&str]) {
    let (ok, err) = run(args, env);
    assert!(!ok, "taustar-worker {args:?} should fail:\n{err}");
    for s in must_name {
        assert!(err.contains(s), "the error for {args:?} should name {s:?}:\n{err}");
    }
}

#[test]
fn bad_settings_are_refused_at_start_naming_the_value() {
    // An unreachable port: if a check were missing, the worker would retry forever and the
    // 20 s limit in `run` would fail the test.
    let c = "127.0.0.1:1";
    refused(&["--coordinator", "ftp://h:1"], &[], &["ftp://h:1", "unsupported scheme"]);
    refused(&["--coordinator", "::nonsense"], &[], &["::nonsense"]);
    refused(&["--coordinator", "https://h:1"], &[], &["--tls-ca"]);
    refused(&["--coordinator", c, "--threads", "0"], &[], &["--threads", "0"]);
    refused(&["--coordinator", c, "--token-file", "/nonexistent/tok"], &[], &["/nonexistent/tok"]);
    refused(
        &["--coordinator", c, "--tls-ca", "/nonexistent/ca.pem"],
        &[],
        &["--tls-ca", "/nonexistent/ca.pem"],
    );
    refused(&["--coordinator", c], &[("TAUSTAR_TOKEN", "")], &["TAUSTAR_TOKEN", "empty"]);
    refused(&["--threads", "1"], &[], &["--coordinator"]);
}

#[test]
fn an_io_error_is_printed_once() {
    let (ok, err) = run(&["--coordinator", "127.0.0.1:1", "--token-file", "/nonexistent/tok"], &[]);
    assert!(!ok);
    assert_eq!(err.matches("No such file").count(), 1, "the cause is printed once:\n{err}");
}

#[test]
fn help_teaches_the_flags_and_their_environment_variables() {
    let out = Command::new(env!("CARGO_BIN_EXE_taustar-worker")).arg("--help").output().expect("run --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for s in ["--coordinator", "--threads", "--token-file", "TAUSTAR_TOKEN", "--tls-ca", "SIGTERM"] {
        assert!(help.contains(s), "--help should mention {s}:\n{help}");
    }
    assert!(Path::new(env!("CARGO_BIN_EXE_taustar-worker")).exists());
}
