//! Live progress of a run on stderr: [`Runner::progress`](crate::Runner::progress).
//!
//! Sampled, not per item: a display thread reads the fan-outs' counters ten
//! times a second, grouped by site (the task that fans out → the task its
//! items run), so a 10M-item map is one line and 1,000 nested maps are one
//! line. `tracing` output written through [`stderr`] lands above the bar.

pub(crate) mod board;
pub(crate) mod display;
pub(crate) mod render;

use std::io::{IsTerminal, Write};

/// How a run shows its progress on stderr.
///
/// The environment variable `FLYTE_PROGRESS` (`auto`, `bar`, `lines`,
/// `none`) overrides what the code says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// A bar on an interactive stderr outside CI; timestamped lines
    /// otherwise (no escape codes in a pipe or a log).
    Auto,
    /// A bar redrawn in place (drawn only on a terminal).
    Bar,
    /// A timestamped line per site every 2 seconds, and at the end.
    Lines,
    /// Nothing (the library's default).
    #[default]
    None,
}

/// What is shown, once `Auto` and `FLYTE_PROGRESS` are resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shown {
    Bar,
    Lines,
}

impl Progress {
    /// `FLYTE_PROGRESS` when set (and valid), else `self`, resolved.
    pub(crate) fn resolve(self) -> Option<Shown> {
        let chosen = match std::env::var("FLYTE_PROGRESS")
            .ok()
            .as_deref()
            .map(str::trim)
        {
            Some("auto") => Progress::Auto,
            Some("bar") => Progress::Bar,
            Some("lines") => Progress::Lines,
            Some("none" | "off" | "0") => Progress::None,
            Some(other) if !other.is_empty() => {
                flyte_core::sync::warn_once(&format!(
                    "FLYTE_PROGRESS={other:?} is not one of auto, bar, lines, none: ignored"
                ));
                self
            }
            _ => self,
        };
        match chosen {
            Progress::None => None,
            Progress::Bar => Some(Shown::Bar),
            Progress::Lines => Some(Shown::Lines),
            Progress::Auto => {
                let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
                Some(if std::io::stderr().is_terminal() && !ci {
                    Shown::Bar
                } else {
                    Shown::Lines
                })
            }
        }
    }
}

/// Stderr that writes above a progress bar on screen (the bar is hidden
/// for the write and redrawn). Give it to tracing's fmt layer:
/// `tracing_subscriber::fmt().with_writer(flyte::progress::stderr)`.
pub fn stderr() -> ProgressStderr {
    ProgressStderr
}

/// See [`stderr`].
#[derive(Debug, Clone, Copy)]
pub struct ProgressStderr;

impl Write for ProgressStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let active = flyte_core::sync::lock(display::active()).clone();
        match active {
            Some(multi) => multi.suspend(|| std::io::stderr().write(buf)),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
