//! Helpers for the end-to-end tests: build and locate the binaries, start real
//! `taustar serve` / `taustar-worker` processes on loopback, poll the study database.
//!
//! # Finding the binaries
//! `env!("CARGO_BIN_EXE_…")` only exists for binaries of the test's own package, and these
//! live in the `taustar` (coordinator/cli) and `taustar-worker` packages. So [`bin`] runs
//! `cargo test --workspace --no-run` (same profile as the test, once per test process) and
//! returns `target/<profile>/<name>` next to the test executable: both packages have
//! integration tests, so that command builds both binaries. It is the README's test command
//! without running anything, so inside `cargo test --workspace` it is a no-op. A plain
//! `cargo build -p …` resolves fewer features (dev-dependencies such as rcgen switch on
//! features of rustls and tonic); since cargo keeps one artifact per crate, it rebuilt tonic,
//! rustls and both binaries in every test run (~60 s). `cargo test -p taustar-e2e` still pays
//! that once. Set `TAUSTAR_E2E_NO_BUILD=1` to skip the build (CI that built first).
//!
//! Modules: [`db`] checks a study file by direct SQL (integrity, invariants, bit-exact result
//! rows); [`netns`] builds coordinator and worker "hosts" from network namespaces.
//!
//! Every process is killed when its handle drops, so a failing test leaves no server behind.
//! Waiting for a condition never sleeps a fixed time: [`wait_until`] polls with a timeout.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use coordinator::{StoreError, StudyStore};

pub mod db;
pub mod netns;

/// `target/<profile>` of the running test executable (`target/<profile>/deps/<test>`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>").to_path_buf()
}

/// The path of binary `name`, built first (see the module docs).
pub fn bin(name: &str) -> PathBuf {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        if std::env::var_os("TAUSTAR_E2E_NO_BUILD").is_some() {
            return;
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let release = target_dir().file_name().is_some_and(|n| n == "release");
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.args(["test", "-q", "--workspace", "--no-run"]).current_dir(&root);
        // Drop what cargo set for this test process: build scripts that watch such a
        // variable (ring's watches CARGO_MANIFEST_DIR) would otherwise rerun, and everything
        // above them rebuild, because the outer `cargo test` ran without it.
        for (var, _) in std::env::vars_os() {
            let name = var.to_string_lossy();
            let set_by_cargo = ["CARGO_PKG_", "CARGO_BIN_EXE_"].iter().any(|p| name.starts_with(p))
                || [
                    "CARGO_MANIFEST_DIR",
                    "CARGO_MANIFEST_PATH",
                    "CARGO_CRATE_NAME",
                    "CARGO_BIN_NAME",
                    "CARGO_PRIMARY_PACKAGE",
                    "CARGO_TARGET_TMPDIR",
                    "OUT_DIR",
                ]
                .contains(&name.as_ref());
            if set_by_cargo {
                cmd.env_remove(&var);
            }
        }
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("cannot run cargo to build the binaries");
        assert!(status.success(), "building taustar and taustar-worker failed: {status}");
    });
    let path = target_dir().join(name);
    assert!(path.exists(), "{} is missing (build with cargo test --workspace --no-run)", path.display());
    path
}

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// Poll `cond` every 20 ms until it holds; panic with `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < timeout, "timed out after {timeout:?} waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process that is killed (SIGKILL) when dropped; its stderr goes to a log file
/// that is printed if the test panics while the process handle is alive.
pub struct Proc {
    /// What it is (for messages).
    pub label: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Proc {
    /// Spawn `cmd` with stderr/stdout captured in `log`.
    pub fn spawn(label: &str, mut cmd: Command, log: PathBuf) -> Proc {
        let file = std::fs::File::create(&log).expect("create process log");
        let file2 = file.try_clone().expect("dup log");
        cmd.stdout(Stdio::from(file)).stderr(Stdio::from(file2)).stdin(Stdio::null());
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {label}: {e}"));
        Proc { label: label.to_string(), child: Some(child), log }
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Send `signal` (e.g. "KILL", "TERM") with kill(1).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").arg(format!("-{signal}")).arg(self.pid().to_string()).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -{signal} {} ({}) failed", self.pid(), self.label);
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Wait for exit within `timeout`; panics (printing the log) on timeout.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            let child = self.child.as_mut().expect("process already reaped");
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status;
            }
            if start.elapsed() > timeout {
                panic!("{} did not exit within {timeout:?}; its log:\n{}", self.label, self.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// The captured output so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- log of {} ----\n{}", self.label, self.log_text());
        }
        self.kill();
    }
}

/// A scratch directory for one test: study files, database, logs.
pub struct Scratch {
    /// The directory (deleted on drop).
    pub dir: tempfile::TempDir,
}

impl Scratch {
    /// A new scratch directory.
    pub fn new() -> Scratch {
        Scratch { dir: tempfile::tempdir().expect("tempdir") }
    }

    /// `dir/name`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Write `text` to `dir/name` and return the path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).expect("write scratch file");
        p
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch::new()
    }
}

/// Fast lease settings for tests: a lost worker's cells return within ~2 s.
pub const FAST_LEASES: [&str; 6] = ["--lease-secs", "2", "--heartbeat-secs", "0.25", "--batch-secs", "0.3"];

/// Start `taustar serve study --db db --listen 127.0.0.1:port` with fast leases plus
/// `extra` arguments, and wait until it listens.
pub fn start_coordinator(
    s: &Scratch,
    label: &str,
    study: &Path,
    db: &Path,
    port: u16,
    extra: &[&str],
) -> Proc {
    let addr_file = s.path(&format!("{label}.addr"));
    let _ = std::fs::remove_file(&addr_file);
    let mut cmd = Command::new(bin("taustar"));
    cmd.arg("serve")
        .arg(study)
        .arg("--db")
        .arg(db)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--addr-file")
        .arg(&addr_file)
        .args(FAST_LEASES)
        .args(extra);
    let mut p = Proc::spawn(label, cmd, s.path(&format!("{label}.log")));
    wait_until(&format!("{label} listens"), Duration::from_secs(60), || {
        assert!(p.running(), "{label} exited early:\n{}", p.log_text());
        addr_file.exists()
    });
    p
}

/// Start `taustar-worker --coordinator 127.0.0.1:port --threads threads`, appending every
/// computed key to `computed_log` and sleeping `delay_ms` before each cell.
pub fn start_worker(
    s: &Scratch,
    label: &str,
    port: u16,
    threads: u32,
    computed_log: &Path,
    delay_ms: u64,
) -> Proc {
    let mut cmd = Command::new(bin("taustar-worker"));
    cmd.arg("--coordinator")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--threads")
        .arg(threads.to_string())
        .arg("--name")
        .arg(label)
        .arg("--max-backoff")
        .arg("1")
        .env("TAUSTAR_WORKER_COMPUTED_LOG", computed_log)
        .env("TAUSTAR_WORKER_STARTED_LOG", started_log(computed_log))
        .env("TAUSTAR_WORKER_TEST_DELAY_MS", delay_ms.to_string());
    Proc::spawn(label, cmd, s.path(&format!("{label}.log")))
}

/// `taustar status --db db --json`, parsed.
pub fn status(db: &Path) -> serde_json::Value {
    let out = Command::new(bin("taustar"))
        .arg("status")
        .arg("--db")
        .arg(db)
        .arg("--json")
        .output()
        .expect("run status");
    assert!(out.status.success(), "taustar status failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("status prints JSON")
}

/// A field of the status JSON as u64.
pub fn field(status: &serde_json::Value, key: &str) -> u64 {
    status[key].as_u64().unwrap_or_else(|| panic!("status JSON has no integer {key}: {status}"))
}

/// Every committed result of `db`: cell key → exact text of the result (`{:?}` prints each
/// f64 in shortest round-trip form, so equal text means bit-identical values).
pub fn results(db: &Path) -> BTreeMap<String, String> {
    let store = StudyStore::open_read_only(db).expect("open the study database");
    let mut out = BTreeMap::new();
    store
        .for_each_point_results::<StoreError, _>(|_, rs| {
            for r in rs {
                let prev = out.insert(r.key.0.clone(), format!("{r:?}"));
                assert!(prev.is_none(), "two results for cell {}", r.key);
            }
            Ok(())
        })
        .expect("read results");
    out
}

/// The started-cells log [`start_worker`] gives a worker beside its computed-cells log: the
/// same path with the extension `started`. Keys in it but not (yet) in the computed log are
/// cells in flight.
pub fn started_log(computed_log: &Path) -> PathBuf {
    computed_log.with_extension("started")
}

/// How often each key appears in a computed-cells log.
pub fn computed(log: &Path) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for line in std::fs::read_to_string(log).unwrap_or_default().lines() {
        *m.entry(line.to_string()).or_insert(0) += 1;
    }
    m
}

/// A two-level study: `gaps` × `samples` grid points × `replicates`.
pub fn two_level_study(name: &str, replicates: u32, gaps: &str, samples: &str) -> String {
    format!(
        "name = \"{name}\"\nseed = 2025\nreplicates = {replicates}\n[truth]\nkind = \"two-level\"\nstates = 30\n\
         low_states = 5\ngap = {gaps}\n[data]\nsamples = {samples}\n[tau]\ngrid = {{ from = 0.5, to = 3.0, count = 6 }}\n"
    )
}

/// The machine as the tests share it. Every end-to-end test file is a module of one test
/// binary, so libtest runs tests of different files side by side; the light ones (a few
/// processes each) may, but a heavy one (many processes, kills against a clock: crash,
/// drain, faults, Slurm) takes the machine alone, as it did when each file was its own
/// binary. A test that panicked while holding the lock leaves it usable (poison ignored).
static MACHINE: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Hold for the whole of a light test.
pub fn shared_machine() -> std::sync::RwLockReadGuard<'static, ()> {
    MACHINE.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Hold for the whole of a heavy test.
pub fn whole_machine() -> std::sync::RwLockWriteGuard<'static, ()> {
    MACHINE.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}
