//! Printing: tables for people, stable JSON for scripts, times and
//! durations, colour only on a terminal without `NO_COLOR`.

use crate::args::Format;
use flyte_core::record::RunStatus;
use serde_json::Value;
use std::io::{IsTerminal, Write};
use std::time::{Duration, SystemTime};

/// Stored text as a terminal may be given it: see
/// [`flyte_core::terminal::printable`].
pub(crate) use flyte_core::terminal::printable;

/// Times and runs in JSON: one shape, shared with the report.
pub(crate) use flyte_report::json::{rfc3339, run_duration, run_json};

/// `2026-12-03 12:45:05`, UTC: a time in a table.
pub(crate) fn when(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .replace('T', " ")
        .trim_end_matches('Z')
        .to_owned()
}

/// `850ms`, `12.3s`, `4m 05s`, `2h 03m`.
pub(crate) fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0..=999 => format!("{ms}ms"),
        1_000..=59_999 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..=3_599_999 => format!("{}m {:02}s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{}h {:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

/// Whether to colour stdout.
pub(crate) fn color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// Whether to colour stderr.
pub(crate) fn color_stderr() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// A status word, coloured when `color`.
pub(crate) fn status(word: &str, color: bool) -> String {
    if !color {
        return word.to_owned();
    }
    let code = match word {
        "succeeded" => "32",
        "failed" => "31",
        "running" => "34",
        _ => "90",
    };
    format!("\x1b[{code}m{word}\x1b[0m")
}

/// The status of a run, as a word.
pub(crate) fn run_status(s: RunStatus) -> &'static str {
    s.as_str()
}

/// Aligned columns: the header, then the rows.
pub(crate) struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(header: Vec<&'static str>) -> Table {
        Table {
            header,
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    pub(crate) fn print(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.len()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(visible_len(cell));
            }
        }
        let line = |cells: Vec<&str>, out: &mut dyn Write| -> std::io::Result<()> {
            let last = cells.len().saturating_sub(1);
            for (i, cell) in cells.iter().enumerate() {
                if i == last {
                    write!(out, "{cell}")?;
                } else {
                    let pad = widths[i].saturating_sub(visible_len(cell));
                    write!(out, "{cell}{:pad$}  ", "")?;
                }
            }
            writeln!(out)
        };
        line(self.header.clone(), out)?;
        for row in &self.rows {
            line(row.iter().map(String::as_str).collect(), out)?;
        }
        Ok(())
    }
}

/// Length without colour escapes, in characters.
fn visible_len(s: &str) -> usize {
    let mut n = 0;
    let mut in_escape = false;
    for c in s.chars() {
        match (in_escape, c) {
            (false, '\x1b') => in_escape = true,
            (true, 'm') => in_escape = false,
            (true, _) => {}
            (false, _) => n += 1,
        }
    }
    n
}

/// Prints `items` as JSON (an array), JSON lines, or with `table`.
pub(crate) fn print_list(
    format: Format,
    items: &[Value],
    table: impl FnOnce() -> Table,
) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, items)?;
            writeln!(out)
        }
        Format::Jsonl => {
            for item in items {
                serde_json::to_writer(&mut out, item)?;
                writeln!(out)?;
            }
            Ok(())
        }
        Format::Table => table().print(&mut out),
    }
}

/// Prints one JSON document.
pub(crate) fn print_json(value: &Value, format: Format) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if format == Format::Jsonl {
        serde_json::to_writer(&mut out, value)?;
    } else {
        serde_json::to_writer_pretty(&mut out, value)?;
    }
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(Duration::from_millis(850)), "850ms");
        assert_eq!(duration(Duration::from_millis(12_340)), "12.3s");
        assert_eq!(duration(Duration::from_secs(245)), "4m 05s");
        assert_eq!(duration(Duration::from_secs(7_380)), "2h 03m");
    }

    #[test]
    fn tables_align_on_visible_width() {
        let mut t = Table::new(vec!["A", "B"]);
        t.row(vec!["\x1b[32mok\x1b[0m".into(), "x".into()]);
        t.row(vec!["long".into(), "y".into()]);
        let mut out = Vec::new();
        t.print(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text, "A     B\n\x1b[32mok\x1b[0m    x\nlong  y\n");
    }
}
