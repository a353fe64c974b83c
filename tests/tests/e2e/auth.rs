//! End-to-end: the shared token between real `taustar serve` and `taustar-worker`
//! processes on loopback.
//!
//! - a worker without a token, and one with the wrong token, are refused: they exit non-zero
//!   with a message saying how to give the token, compute nothing, and the coordinator logs
//!   the rejection with the peer address but never the token;
//! - a worker with the right token (from `TAUSTAR_TOKEN_FILE` or `TAUSTAR_TOKEN`) completes
//!   the study, and the token never shows in either process's argv (`/proc/PID/cmdline`,
//!   what `ps` prints);
//! - `taustar serve --listen 0.0.0.0:0` without a token refuses to start; an empty token file
//!   is refused naming the file.
//!
//! Run: `cargo test -p taustar-e2e --test e2e auth::` (builds the binaries first).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use taustar_e2e::*;

const T: Duration = Duration::from_secs(90);
const TOKEN: &str = "e2e-Token-7f3a9c1d5b2e8046";

/// How a test worker gets its token.
enum Cred<'a> {
    None,
    Env(&'a str),
    File(&'a Path),
}

/// Like [`start_worker`], with the token given through the environment only.
fn worker(s: &Scratch, label: &str, port: u16, computed_log: &Path, cred: Cred<'_>) -> Proc {
    let mut cmd = Command::new(bin("taustar-worker"));
    cmd.arg("--coordinator")
        .arg(format!("127.0.0.1:{port}"))
        .args(["--threads", "1", "--max-backoff", "1", "--name", label])
        .env("TAUSTAR_WORKER_COMPUTED_LOG", computed_log)
        .env_remove("TAUSTAR_TOKEN")
        .env_remove("TAUSTAR_TOKEN_FILE");
    match cred {
        Cred::None => {}
        Cred::Env(t) => {
            cmd.env("TAUSTAR_TOKEN", t);
        }
        Cred::File(p) => {
            cmd.env("TAUSTAR_TOKEN_FILE", p);
        }
    }
    Proc::spawn(label, cmd, s.path(&format!("{label}.log")))
}

/// The NUL-separated argv of a running process, as `ps` sees it.
fn argv(p: &Proc) -> String {
    let raw = std::fs::read(format!("/proc/{}/cmdline", p.pid())).expect("read /proc/PID/cmdline");
    String::from_utf8_lossy(&raw).replace('\0', " ")
}

#[test]
fn workers_without_or_with_a_wrong_token_are_refused_and_the_right_token_completes() {
    let _machine = shared_machine();
    let s = Scratch::new();
    let study = s.write("s.toml", &two_level_study("e2e-auth", 4, "[2.0, 4.0]", "[10, 30]"));
    let token_file = s.write("token", &format!("{TOKEN}\n"));
    let (db, bad_log, good_log) = (s.path("s.db"), s.path("bad.keys"), s.path("good.keys"));
    let port = free_port();
    let token_arg = token_file.to_str().expect("utf-8 temp path");
    let mut coord = start_coordinator(
        &s,
        "coordinator",
        &study,
        &db,
        port,
        &["--exit-when-done", "--token-file", token_arg],
    );
    assert!(!argv(&coord).contains(TOKEN), "token in the coordinator's argv: {}", argv(&coord));

    for (label, cred) in [("anonymous", Cred::None), ("wrong", Cred::Env("e2e-Token-7f3a9c1d5b2e8047"))] {
        let mut w = worker(&s, label, port, &bad_log, cred);
        let exit = w.wait(T);
        let log = w.log_text();
        assert!(!exit.success(), "{label} worker must fail, exited {exit}:\n{log}");
        assert!(log.contains("rejected this worker's credentials") && log.contains("--token-file"), "{log}");
        assert_eq!(log.matches("connected").count(), 0, "{label} never registered:\n{log}");
    }
    assert!(computed(&bad_log).is_empty(), "refused workers computed cells: {:?}", computed(&bad_log));
    let before = status(&db);
    assert_eq!(field(&before, "cells_done") + field(&before, "cells_leased"), 0, "{before}");

    let clog = coord.log_text();
    let rejections: Vec<&str> =
        clog.lines().filter(|l| l.contains("rejected an unauthenticated request")).collect();
    assert!(rejections.len() >= 2, "one rejection per refused worker:\n{clog}");
    // (The log may be coloured, so `peer` and its value are checked separately.)
    assert!(rejections.iter().all(|l| l.contains("peer") && l.contains("127.0.0.1:")), "{clog}");
    assert!(clog.contains("no authorization metadata") && clog.contains("wrong token"), "{clog}");
    assert!(!clog.contains("7f3a9c1d5b2e804"), "the coordinator log shows a token:\n{clog}");

    // Right token, once from a file and once from the environment.
    let mut good_file = worker(&s, "good-file", port, &good_log, Cred::File(&token_file));
    let mut good_env = worker(&s, "good-env", port, &good_log, Cred::Env(TOKEN));
    wait_until("a good worker computed a cell", T, || !computed(&good_log).is_empty());
    for w in [&good_file, &good_env] {
        if let Ok(raw) = std::fs::read(format!("/proc/{}/cmdline", w.pid())) {
            assert!(!String::from_utf8_lossy(&raw).contains(TOKEN), "token in {}'s argv", w.label);
        }
    }
    assert!(coord.wait(T).success(), "coordinator exit:\n{}", coord.log_text());
    assert!(good_file.wait(T).success(), "good-file exit:\n{}", good_file.log_text());
    assert!(good_env.wait(T).success(), "good-env exit:\n{}", good_env.log_text());
    let st = status(&db);
    assert_eq!(field(&st, "cells_done"), 16, "{st}");
    assert_eq!(results(&db).len(), 16);
    assert!(!coord.log_text().contains(TOKEN), "the coordinator log shows the token");
}

/// Run `taustar serve` expecting it to refuse to start; returns its stderr.
fn serve_refused(s: &Scratch, args: &[&str], env: &[(&str, &str)]) -> String {
    let study = s.write("s.toml", &two_level_study("e2e-auth-bind", 1, "[2.0]", "[10]"));
    let mut cmd = Command::new(bin("taustar"));
    cmd.arg("serve").arg(&study).arg("--db").arg(s.path("s.db")).args(args);
    cmd.env_remove("TAUSTAR_TOKEN").env_remove("TAUSTAR_TOKEN_FILE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut p = Proc::spawn("serve", cmd, s.path("serve.log"));
    let exit = p.wait(Duration::from_secs(60));
    let log = p.log_text();
    assert!(!exit.success(), "taustar serve {args:?} must refuse to start, exited {exit}:\n{log}");
    log
}

#[test]
fn non_loopback_listen_without_a_token_refuses_to_start() {
    let _machine = shared_machine();
    let s = Scratch::new();
    let log = serve_refused(&s, &["--listen", "0.0.0.0:0"], &[]);
    assert!(log.contains("refusing to listen on 0.0.0.0:0 without a token"), "{log}");
    assert!(log.contains("--token-file") && log.contains("TAUSTAR_TOKEN"), "says how to give one: {log}");
    assert!(!s.path("s.db").exists(), "refused before creating the database");
}

#[test]
fn an_empty_token_file_is_refused_naming_the_file() {
    let _machine = shared_machine();
    let s = Scratch::new();
    let empty = s.write("empty-token", "\n");
    let path = empty.to_str().expect("utf-8 temp path");
    let log = serve_refused(&s, &["--listen", "127.0.0.1:0"], &[("TAUSTAR_TOKEN_FILE", path)]);
    assert!(log.contains("empty") && log.contains(path), "{log}");
    let log = serve_refused(&s, &["--listen", "127.0.0.1:0", "--token-file", path], &[]);
    assert!(log.contains("empty") && log.contains(path), "{log}");
}
