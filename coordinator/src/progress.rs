//! Progress display of `taustar run`: an indicatif bar on a terminal, periodic log lines
//! otherwise (a batch job's stderr is a file; a redrawn bar would fill it with noise).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::store::StudyStatus;

/// Shows cells settled / total, rate and ETA.
pub struct Progress {
    bar: ProgressBar,
    tty: bool,
    last_log: Option<Instant>,
    log_every: Duration,
}

impl Progress {
    /// A display for a study of `total` cells; drawn only if stderr is a terminal.
    pub fn new(total: u64) -> Progress {
        let tty = std::io::stderr().is_terminal();
        let bar = ProgressBar::with_draw_target(
            Some(total),
            if tty { ProgressDrawTarget::stderr_with_hz(4) } else { ProgressDrawTarget::hidden() },
        );
        if let Ok(style) =
            ProgressStyle::with_template("[{elapsed_precise}] {wide_bar:.cyan/blue} {pos}/{len} cells  {msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        Progress { bar, tty, last_log: None, log_every: Duration::from_secs(10) }
    }

    /// Show `s`.
    pub fn update(&mut self, s: &StudyStatus) {
        self.bar.set_length(s.cells_total);
        self.bar.set_position(s.cells_done + s.cells_failed);
        let eta = s.eta_seconds.map_or_else(|| "?".to_string(), format_secs);
        let failed = if s.cells_failed > 0 { format!(", {} failed", s.cells_failed) } else { String::new() };
        self.bar.set_message(format!("{:.1} cells/s, ETA {eta}{failed}", s.throughput_per_s));
        let due = self.last_log.is_none_or(|t| t.elapsed() >= self.log_every);
        if !self.tty && due {
            self.last_log = Some(Instant::now());
            tracing::info!(
                done = s.cells_done,
                failed = s.cells_failed,
                total = s.cells_total,
                rate_per_s = format!("{:.1}", s.throughput_per_s),
                eta = %eta,
                "progress"
            );
        }
    }

    /// Remove the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// `3725.0` → `1h02m05s`.
pub fn format_secs(secs: f64) -> String {
    if !secs.is_finite() || secs < 0.0 {
        return "?".into();
    }
    let s = secs.round() as u64;
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m{sec:02}s"),
        (h, m, sec) => format!("{h}h{m:02}m{sec:02}s"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_like_clocks() {
        assert_eq!(super::format_secs(5.2), "5s");
        assert_eq!(super::format_secs(125.0), "2m05s");
        assert_eq!(super::format_secs(3725.0), "1h02m05s");
        assert_eq!(super::format_secs(f64::NAN), "?");
    }
}
