//! Progress on stderr: one line per stage with elapsed time and peak memory, or a spinner when
//! stderr is a terminal; nothing with `--quiet`.

use std::io::IsTerminal;
use std::time::Instant;

/// Stage reporter.
pub struct Progress {
    start: Instant,
    quiet: bool,
    bar: Option<indicatif::ProgressBar>,
}

/// Peak resident memory of this process in bytes (Linux `VmHWM`), if known.
pub fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

impl Progress {
    /// A reporter; a spinner when stderr is a terminal.
    pub fn new(quiet: bool) -> Progress {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new_spinner();
            b.enable_steady_tick(std::time::Duration::from_millis(120));
            b
        });
        Progress {
            start: Instant::now(),
            quiet,
            bar,
        }
    }

    fn prefix(&self) -> String {
        let mem = peak_rss_bytes()
            .map(|b| format!(", peak {:.2} GB", b as f64 / 1e9))
            .unwrap_or_default();
        format!("[{:>7.1} s{mem}]", self.start.elapsed().as_secs_f64())
    }

    /// Report the start of a stage.
    pub fn stage(&self, msg: &str) {
        if self.quiet {
            return;
        }
        let line = format!("{} {msg}", self.prefix());
        match &self.bar {
            Some(b) => b.set_message(line),
            None => eprintln!("revaudit: {line}"),
        }
    }

    /// A line that stays (results).
    pub fn done(&self, msg: &str) {
        if self.quiet {
            return;
        }
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        eprintln!("revaudit: {} {msg}", self.prefix());
    }
}
