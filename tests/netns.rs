//! Several "hosts" on one machine: a coordinator network namespace and one namespace per
//! worker host, each worker host joined to the coordinator by its own veth pair.
//!
//! ```text
//!   coordinator ns                      worker ns k (k = 0, 1, …)
//!   vc<k> 10.77.<k+1>.1/24  <── veth ──>  vw 10.77.<k+1>.2/24
//! ```
//!
//! Point-to-point pairs instead of a bridge: nothing beyond veth is needed from the kernel,
//! and cutting one host is one `ip link set … down` on its side (the coordinator's cut is
//! every `vc<k>` at once). Addresses exist only inside the namespaces, so they never clash
//! with the machine's own; namespace names carry the test process id and a counter, so
//! concurrent runs never collide, and namespaces left by a run that was SIGKILLed (its
//! process gone) are deleted by the next run. [`Hosts`] deletes its namespaces on drop, also
//! when a test panics; a process still inside a deleted namespace keeps it alive until the
//! process exits (the tests' [`crate::Proc`] handles kill theirs on drop).
//!
//! Needs root and `ip` (iproute2). `ip netns exec NS prog` execs `prog` in place (no fork),
//! so the PID of the spawned `ip` *is* the program's PID and `kill -9` reaches it.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Prefix of every namespace these tests create.
const PREFIX: &str = "tse2e-";

/// Why network-namespace tests cannot run here, or `None` when they can (root, `ip` works).
pub fn missing_prerequisites() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u32>().ok());
    if euid != Some(0) {
        return Some(format!("network namespaces need root (effective uid is {euid:?})"));
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "`ip netns list` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Some(format!("cannot run `ip` (install iproute2): {e}")),
    }
}

/// Run `ip args…`; panics with its stderr on failure.
pub fn ip(args: &[&str]) {
    let out =
        Command::new("ip").args(args).output().unwrap_or_else(|e| panic!("cannot run ip {args:?}: {e}"));
    assert!(
        out.status.success(),
        "ip {} failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// Delete namespaces of earlier runs whose test process no longer exists.
fn remove_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else { return };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else { continue };
        let Some(rest) = name.strip_prefix(PREFIX) else { continue };
        let Some(pid) = rest.split('-').next() else { continue };
        if !pid.is_empty() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// The coordinator host and `n` worker hosts (see the module docs).
pub struct Hosts {
    /// The coordinator's namespace.
    pub coordinator: String,
    /// Worker host namespaces, by slot.
    pub workers: Vec<String>,
    /// Every namespace created so far (deleted on drop).
    created: Vec<String>,
}

impl Hosts {
    /// Create the namespaces and links, all up. Panics (cleaning up) if `ip` fails.
    pub fn create(workers: usize) -> Hosts {
        assert!(workers < 250, "at most 249 worker hosts (one /24 each)");
        remove_stale();
        static RUN: AtomicU32 = AtomicU32::new(0);
        let run = format!("{PREFIX}{}-{}", std::process::id(), RUN.fetch_add(1, Ordering::SeqCst));
        let mut hosts = Hosts { coordinator: format!("{run}-c"), workers: vec![], created: vec![] };
        let c = hosts.coordinator.clone();
        ip(&["netns", "add", &c]);
        hosts.created.push(c.clone());
        ip(&["-n", &c, "link", "set", "lo", "up"]);
        for k in 0..workers {
            let w = format!("{run}-w{k}");
            ip(&["netns", "add", &w]);
            hosts.created.push(w.clone());
            ip(&["-n", &w, "link", "set", "lo", "up"]);
            let vc = format!("vc{k}");
            // Created inside the coordinator namespace, peer moved straight into the worker's:
            // the interface names never exist in the root namespace, so they cannot collide.
            ip(&["-n", &c, "link", "add", &vc, "type", "veth", "peer", "name", "vw", "netns", &w]);
            ip(&["-n", &c, "addr", "add", &format!("10.77.{}.1/24", k + 1), "dev", &vc]);
            ip(&["-n", &w, "addr", "add", &format!("10.77.{}.2/24", k + 1), "dev", "vw"]);
            ip(&["-n", &c, "link", "set", &vc, "up"]);
            ip(&["-n", &w, "link", "set", "vw", "up"]);
            hosts.workers.push(w);
        }
        hosts
    }

    /// The coordinator's address as seen from worker host `slot`.
    pub fn coordinator_ip(&self, slot: usize) -> String {
        format!("10.77.{}.1", slot + 1)
    }

    /// `ip netns exec <ns> <program>`: add arguments and environment as usual.
    pub fn command(ns: &str, program: &Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns]).arg(program);
        cmd
    }

    /// Bring worker host `slot`'s link down (`up = false`) or up again.
    pub fn set_worker_link(&self, slot: usize, up: bool) {
        ip(&["-n", &self.workers[slot], "link", "set", "vw", if up { "up" } else { "down" }]);
    }

    /// Bring every link of the coordinator host down (`up = false`) or up again.
    pub fn set_coordinator_links(&self, up: bool) {
        for k in 0..self.workers.len() {
            ip(&["-n", &self.coordinator, "link", "set", &format!("vc{k}"), if up { "up" } else { "down" }]);
        }
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for ns in self.created.iter().rev() {
            if let Ok(out) = Command::new("ip").args(["netns", "del", ns]).output() {
                if !out.status.success() {
                    eprintln!("warning: ip netns del {ns}: {}", String::from_utf8_lossy(&out.stderr).trim());
                }
            }
        }
    }
}
