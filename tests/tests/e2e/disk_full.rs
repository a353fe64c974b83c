//! End-to-end: the study store fills its filesystem in the middle of a study.
//!
//! The store lives on a 3 MiB tmpfs; a study whose results carry 200-point curves fills it
//! after a few dozen cells. Then:
//! 1. commits stop, `taustar_store_writable` reads 0 and `taustar status` says the disk is full;
//!    while it stays full (longer than a lease) nothing committed changes and the worker keeps
//!    its computed results;
//! 2. the coordinator, sent SIGTERM, stops cleanly (exit 0, file intact, nothing lost);
//! 3. space is freed (the tmpfs is remounted larger) and the same command resumes: the worker
//!    re-sends what it held, the study completes, and no cell committed before the fill is
//!    computed again or changed; no cell is lost or failed.
//!
//! Needs root (mount), so it is `#[ignore]`d; CI runs it with the root-only suites.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use taustar_e2e::*;

const T: Duration = Duration::from_secs(120);

/// A tmpfs mounted for the test, unmounted on drop (also when the test fails).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).expect("mount point");
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(st.success(), "mount -t tmpfs (needs root): {st}");
        Tmpfs(dir.to_path_buf())
    }

    fn resize(&self, size: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .expect("run mount -o remount");
        assert!(st.success(), "remount {}: {st}", self.0.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// GET /metrics from the coordinator's metrics listener (plain HTTP/1.1 over a socket).
fn scrape(addr: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// The value of an unlabelled sample of a scrape.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn status_text(db: &Path) -> String {
    let out = Command::new(bin("taustar")).arg("status").arg("--db").arg(db).output().expect("run status");
    assert!(out.status.success(), "status on a full disk works: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "needs root (mounts a tmpfs): cargo test -p taustar-e2e --test e2e disk_full:: -- --ignored"]
fn a_store_that_fills_its_disk_stops_cleanly_loses_nothing_and_resumes_when_space_is_freed() {
    let _machine = whole_machine();
    let s = Scratch::new();
    let fs = Tmpfs::mount(&s.path("store"), "3m");
    let study = s.write(
        "s.toml",
        "name = \"e2e-disk-full\"\nseed = 3\nreplicates = 100\n[truth]\nkind = \"two-level\"\nstates = 30\n\
         low_states = 5\ngap = [2.0, 4.0]\n[data]\nsamples = [10, 30, 100]\n[tau]\n\
         grid = { from = 0.5, to = 3.0, count = 200 }\ncurves = \"all\"\n",
    );
    let cells: u64 = 600;
    let db = fs.0.join("s.db");
    let log = s.path("computed.keys");
    let (port, mport) = (free_port(), free_port());
    let maddr = format!("127.0.0.1:{mport}");
    let serve_args = ["--metrics-listen", maddr.as_str(), "--grace-secs", "1"];
    let mut coord = start_coordinator(&s, "coordinator-1", &study, &db, port, &serve_args);
    let mut w = start_worker(&s, "w1", port, 1, &log, 2);

    // 1. The disk fills: commits stop, the metrics and `status` say why.
    wait_until("the store refuses writes", T, || {
        scrape(&maddr).and_then(|t| metric(&t, "taustar_store_writable")) == Some(0.0)
    });
    let at_fill = results(&db);
    let done_at_fill = at_fill.len();
    assert!((1..cells as usize).contains(&done_at_fill), "filled mid-study: {done_at_fill} done");
    let text = status_text(&db);
    assert!(text.contains("disk         FULL"), "status says the disk is full:\n{text}");
    // Longer than a lease (2 s): expiry sweeps and heartbeats fail too; nothing committed moves.
    let hold = Instant::now();
    while hold.elapsed() < Duration::from_millis(2500) {
        assert!(w.running(), "the worker holds off, it does not give up:\n{}", w.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(results(&db), at_fill, "nothing committed or changed while the disk is full");
    let computed_while_full = computed(&log).values().sum::<usize>();
    assert!(
        computed_while_full > done_at_fill,
        "the worker computed results it could not deliver ({computed_while_full} computed, {done_at_fill} committed)"
    );
    let m = scrape(&maddr).expect("metrics answer while the disk is full");
    let write_errors = metric(&m, "taustar_store_write_errors_total").unwrap_or(0.0);
    assert!(write_errors >= 1.0, "{m}");
    assert!(
        coord.log_text().matches("filesystem is full").count() == 1,
        "the fill is logged once, not per failed write:\n{}",
        coord.log_text()
    );

    // 2. A clean stop on the full disk, with the file intact.
    coord.signal("TERM");
    let st = coord.wait(T);
    assert!(st.success(), "the coordinator stops cleanly on a full disk: {st}\n{}", coord.log_text());
    let conn = taustar_e2e::db::open_read_only(&db);
    assert_eq!(taustar_e2e::db::integrity_check(&conn), "ok");
    drop(conn);
    assert_eq!(results(&db), at_fill, "the stop lost nothing");

    // 3. Space freed: the same command resumes; the worker re-sends what it kept.
    fs.resize("64m");
    let mut coord = start_coordinator(&s, "coordinator-2", &study, &db, port, &["--exit-when-done"]);
    assert!(coord.wait(T).success(), "coordinator exit:\n{}", coord.log_text());
    assert!(w.wait(T).success(), "worker exit:\n{}", w.log_text());
    let st = status(&db);
    assert_eq!(field(&st, "cells_done"), cells, "{st}");
    assert_eq!(field(&st, "cells_failed"), 0, "{st}");
    let after = results(&db);
    assert_eq!(after.len() as u64, cells, "one result per cell, none lost");
    let comp = computed(&log);
    for (key, result) in &at_fill {
        assert_eq!(comp.get(key), Some(&1), "cell {key}, committed before the fill, was computed again");
        assert_eq!(after.get(key), Some(result), "cell {key}, committed before the fill, changed");
    }
    eprintln!(
        "disk full: {done_at_fill} cells committed at the fill, {computed_while_full} computed by then, \
         {} write errors while full, {cells} done after, 0 lost, {} computations in all",
        write_errors,
        comp.values().sum::<usize>()
    );
}
