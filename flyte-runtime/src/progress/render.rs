//! The progress display's text, as pure functions of a [`View`]: what the
//! bar shows on a terminal, and the timestamped lines written to a pipe.
//! No terminal, no clock: snapshot-tested.

use flyte_core::terminal::printable;
use std::time::Duration;

/// What the display knows at one sample.
#[derive(Debug, Clone, Default)]
pub(crate) struct View {
    /// The run's root task.
    pub(crate) task: String,
    /// Since the run started.
    pub(crate) elapsed: Duration,
    /// One entry per site (parent task → item task), in order of appearance.
    pub(crate) sites: Vec<SiteView>,
    /// The run was asked to stop (Ctrl-C, SIGTERM, `flyte abort`).
    pub(crate) cancelling: bool,
}

/// Every fan-out made at one site: a task mapping (or gathering) another.
#[derive(Debug, Clone, Default)]
pub(crate) struct SiteView {
    /// The task that fans out.
    pub(crate) parent: String,
    /// The task its items run.
    pub(crate) task: String,
    /// How many fan-outs were made there (1,000 nested maps: 1,000).
    pub(crate) fan_outs: u64,
    /// How many items its one fan-out will run, when known up front.
    pub(crate) expected: Option<u64>,
    pub(crate) started: u64,
    pub(crate) succeeded: u64,
    pub(crate) failed: u64,
    pub(crate) cancelled: u64,
    pub(crate) cached: u64,
    pub(crate) replayed: u64,
    pub(crate) retried: u64,
    /// Items whose body executes now; `None` when they run on a fleet's
    /// workers (then only how many are in flight is shown).
    pub(crate) executing: Option<u64>,
    /// Items ended per second, smoothed.
    pub(crate) rate: f64,
    /// `[kind] message` of the latest failure.
    pub(crate) last_failure: Option<String>,
}

impl SiteView {
    fn done(&self) -> u64 {
        self.succeeded + self.failed + self.cancelled
    }

    /// Items started and not ended: executing, or waiting for a slot, a
    /// rate window, a thread or a backoff.
    fn in_flight(&self) -> u64 {
        self.started.saturating_sub(self.done())
    }

    /// Running and waiting apart, when this process sees them run; else
    /// only in flight.
    fn in_flight_pieces(&self) -> [(u64, &'static str); 3] {
        match self.executing {
            Some(running) => [
                (running, "running"),
                (self.in_flight().saturating_sub(running), "waiting"),
                (0, ""),
            ],
            None => [(0, ""), (0, ""), (self.in_flight(), "in flight")],
        }
    }

    /// The total items when it is known: one fan-out whose input length was.
    fn total(&self) -> Option<u64> {
        self.expected.filter(|_| self.fan_outs == 1)
    }

    fn label(&self) -> String {
        let mut label = format!("{} → {}", printable(&self.parent), printable(&self.task));
        if self.fan_outs > 1 {
            label.push_str(&format!(" ({} fan-outs)", thousands(self.fan_outs)));
        }
        label
    }

    fn eta(&self) -> Option<Duration> {
        let left = self.total()?.checked_sub(self.done())?;
        (self.rate > 0.0 && left > 0).then(|| Duration::from_secs_f64(left as f64 / self.rate))
    }

    /// The site's pieces in display order, each with its rank: on a narrow
    /// terminal the highest ranks are dropped first.
    fn pieces(&self, bar_width: Option<usize>) -> Vec<(u8, String)> {
        let done = self.done();
        let mut pieces = vec![(0, self.label())];
        match self.total() {
            Some(total) => {
                if let Some(width) = bar_width {
                    pieces.push((6, bar(done, total, width)));
                }
                pieces.push((0, format!("{}/{}", thousands(done), thousands(total))));
                pieces.push((1, format!("{:.0}%", percent(done, total))));
            }
            None => pieces.push((0, format!("{} done", thousands(done)))),
        }
        pieces.push((
            4,
            format!(
                "✓ {} ✗ {}",
                thousands(self.succeeded),
                thousands(self.failed)
            ),
        ));
        for (n, word) in [
            (self.cached, "cached"),
            (self.replayed, "replayed"),
            (self.retried, "retried"),
            (self.cancelled, "cancelled"),
        ]
        .into_iter()
        .chain(self.in_flight_pieces())
        {
            if n > 0 {
                pieces.push((5, format!("{word} {}", thousands(n))));
            }
        }
        if self.rate > 0.0 {
            pieces.push((3, rate(self.rate)));
        }
        if let Some(eta) = self.eta() {
            pieces.push((2, format!("ETA {}", short(eta))));
        }
        pieces
    }
}

/// The bar display: a header line, then a line per site (and a line under
/// it for its last failure), each at most `width` characters.
pub(crate) fn bar_lines(view: &View, width: usize) -> Vec<String> {
    let mut lines = vec![fit(&header(view), width)];
    for site in &view.sites {
        let bar_width = (width / 5).clamp(10, 30);
        lines.push(fit_pieces(site.pieces(Some(bar_width)), width));
        if let Some(failure) = &site.last_failure {
            lines.push(fit(
                &format!("  └ last failure: {}", one_line(failure)),
                width,
            ));
        }
    }
    lines
}

/// The line display: one timestamped line per site, for logs and pipes.
pub(crate) fn log_lines(view: &View, clock: &str) -> Vec<String> {
    if view.sites.is_empty() {
        return vec![format!("{clock} {}", header(view))];
    }
    let mut lines = Vec::new();
    for site in &view.sites {
        let pieces: Vec<String> = site.pieces(None).into_iter().map(|(_, p)| p).collect();
        let mut line = format!("{clock} {}", pieces.join("  "));
        if let Some(failure) = &site.last_failure {
            line.push_str(&format!("  last failure: {}", one_line(failure)));
        }
        lines.push(line);
    }
    if view.cancelling {
        lines.push(format!("{clock} cancelling…"));
    }
    lines
}

fn header(view: &View) -> String {
    let mut header = format!(
        "flyte · {} · {}",
        printable(&view.task),
        short(view.elapsed)
    );
    if view.cancelling {
        header.push_str(" · cancelling… (Ctrl-C again exits at once)");
    }
    header
}

/// Joins the pieces, dropping the least important ones until they fit.
fn fit_pieces(mut pieces: Vec<(u8, String)>, width: usize) -> String {
    loop {
        let line = pieces
            .iter()
            .map(|(_, p)| p.as_str())
            .collect::<Vec<_>>()
            .join("  ");
        let worst = pieces
            .iter()
            .enumerate()
            .max_by_key(|(i, (rank, _))| (*rank, *i))
            .map(|(i, (rank, _))| (i, *rank));
        match worst {
            Some((i, rank)) if rank > 0 && line.chars().count() > width => {
                pieces.remove(i);
            }
            _ => return fit(&line, width),
        }
    }
}

/// `text` cut to `width` characters, with `…` when cut.
fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn bar(done: u64, total: u64, width: usize) -> String {
    let filled = ((percent(done, total) / 100.0) * width as f64).round() as usize;
    let filled = filled.min(width);
    format!("[{}{}]", "█".repeat(filled), "░".repeat(width - filled))
}

fn percent(done: u64, total: u64) -> f64 {
    if total == 0 {
        100.0
    } else {
        (done as f64 * 100.0 / total as f64).min(100.0)
    }
}

/// `950/s`, `12.5k/s`, `1.2M/s`.
fn rate(per_second: f64) -> String {
    if per_second >= 1e6 {
        format!("{:.1}M/s", per_second / 1e6)
    } else if per_second >= 1e4 {
        format!("{:.0}k/s", per_second / 1e3)
    } else if per_second >= 1e3 {
        format!("{:.1}k/s", per_second / 1e3)
    } else if per_second >= 10.0 {
        format!("{per_second:.0}/s")
    } else {
        format!("{per_second:.1}/s")
    }
}

/// `4s`, `2m 05s`, `1h 02m`.
pub(crate) fn short(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{:.1}s", d.as_secs_f64()),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, s / 60 % 60),
    }
}

/// `1234567` as `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A stored message on one line, its control characters shown as escapes
/// (a task's error is user data, and this goes to a terminal).
fn one_line(text: &str) -> String {
    printable(&text.replace('\n', " ⏎ ")).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ten_million_midway() -> View {
        View {
            task: "etl.pipeline".into(),
            elapsed: Duration::from_secs(95),
            sites: vec![SiteView {
                parent: "etl.pipeline".into(),
                task: "etl.transform".into(),
                fan_outs: 1,
                expected: Some(10_000_000),
                started: 4_200_064,
                succeeded: 4_199_000,
                failed: 1_000,
                cancelled: 0,
                cached: 120_000,
                replayed: 0,
                retried: 37,
                // 64 in flight: 16 executing, 48 waiting for their slot.
                executing: Some(16),
                rate: 44_210.0,
                last_failure: Some("[user] row 4199876: bad date \"2026-13-01\"".into()),
            }],
            cancelling: false,
        }
    }

    #[test]
    fn a_ten_million_item_map_midway() {
        insta::assert_snapshot!(bar_lines(&ten_million_midway(), 120).join("\n"));
    }

    #[test]
    fn a_failure_that_would_drive_the_terminal_is_shown_escaped() {
        let mut view = ten_million_midway();
        view.sites[0].last_failure = Some("[user] \x1b[2J\x1b]52;c;eA==\x07\rforged\u{9b}".into());
        for line in bar_lines(&view, 200)
            .into_iter()
            .chain(log_lines(&view, "12:00:00"))
        {
            assert!(!line.contains(['\x1b', '\x07', '\r', '\u{9b}']), "{line:?}");
        }
        let lines = log_lines(&view, "12:00:00").join("\n");
        assert!(
            lines.contains("\\e[2J\\e]52;c;eA==\\x07\\rforged\\u{9b}"),
            "{lines}"
        );
    }

    #[test]
    fn running_and_waiting_apart_and_on_a_fleet_only_in_flight() {
        let view = ten_million_midway();
        let line = log_lines(&view, "12:00:00").join("\n");
        assert!(line.contains("running 16  waiting 48"), "{line}");
        let mut fleet = ten_million_midway();
        fleet.sites[0].executing = None;
        let line = log_lines(&fleet, "12:00:00").join("\n");
        assert!(line.contains("in flight 64"), "{line}");
        assert!(
            !line.contains("running") && !line.contains("waiting"),
            "{line}"
        );
    }

    #[test]
    fn a_map_of_unknown_length() {
        let mut view = ten_million_midway();
        view.sites[0].expected = None;
        view.sites[0].last_failure = None;
        view.sites[0].failed = 0;
        insta::assert_snapshot!(bar_lines(&view, 120).join("\n"));
    }

    #[test]
    fn a_thousand_nested_maps_are_one_line() {
        let view = View {
            task: "etl.pipeline".into(),
            elapsed: Duration::from_millis(12_400),
            sites: vec![
                SiteView {
                    parent: "etl.pipeline".into(),
                    task: "etl.partition".into(),
                    fan_outs: 1,
                    expected: Some(1_000),
                    started: 640,
                    succeeded: 600,
                    executing: Some(40),
                    rate: 48.5,
                    ..SiteView::default()
                },
                SiteView {
                    parent: "etl.partition".into(),
                    task: "etl.row".into(),
                    fan_outs: 640,
                    expected: Some(100),
                    started: 60_400,
                    succeeded: 60_000,
                    executing: Some(400),
                    rate: 4_850.0,
                    ..SiteView::default()
                },
            ],
            cancelling: false,
        };
        insta::assert_snapshot!(bar_lines(&view, 120).join("\n"));
    }

    #[test]
    fn failures_and_cancelling() {
        let mut view = ten_million_midway();
        view.cancelling = true;
        view.sites[0].cancelled = 64;
        insta::assert_snapshot!(bar_lines(&view, 120).join("\n"));
    }

    #[test]
    fn a_narrow_terminal_keeps_the_label_and_count() {
        insta::assert_snapshot!(bar_lines(&ten_million_midway(), 48).join("\n"));
    }

    #[test]
    fn line_mode_has_timestamps_and_no_escape_codes() {
        let lines = log_lines(&ten_million_midway(), "12:00:05");
        assert!(lines.iter().all(|l| !l.contains('\x1b')));
        insta::assert_snapshot!(lines.join("\n"));
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(rate(44_210.0), "44k/s");
        assert_eq!(rate(1_250.0), "1.2k/s");
        assert_eq!(short(Duration::from_secs(125)), "2m 05s");
    }
}
