//! Graceful shutdown, the mini-redis way.
//!
//! One [`tokio::sync::broadcast`] channel carries the stop signal to every task that must
//! finish cleanly (result streams, watch streams, the lease sweeper). Each such task holds a
//! [`Shutdown`] listener and a clone of an `mpsc::Sender<()>` "still running" token; the
//! server waits until every token is dropped — the channel closes — before closing the
//! store, so no in-flight result is cut off mid-commit.

use tokio::sync::broadcast;

/// Listens for the shutdown signal.
#[derive(Debug)]
pub struct Shutdown {
    /// Set once the signal was received (so it is observed at most once per listener).
    is_shutdown: bool,
    /// The broadcast receiver; any message or the sender's drop means "stop".
    notify: broadcast::Receiver<()>,
}

impl Shutdown {
    /// A listener on `notify`.
    pub fn new(notify: broadcast::Receiver<()>) -> Shutdown {
        Shutdown { is_shutdown: false, notify }
    }

    /// Whether the signal was already received.
    pub fn is_shutdown(&self) -> bool {
        self.is_shutdown
    }

    /// Wait for the signal (returns at once if it was already received).
    pub async fn recv(&mut self) {
        if self.is_shutdown {
            return;
        }
        let _ = self.notify.recv().await;
        self.is_shutdown = true;
    }
}

/// Resolve on SIGINT (Ctrl-C) or SIGTERM. The same trigger as the worker's drain, so both
/// sides of a Slurm `scancel` or a `kubectl delete` react to one signal the same way.
pub async fn signal() {
    taustar_proto::process::signal().await
}
