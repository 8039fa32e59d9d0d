//! The timeline's data as compressed columns: every action's start (when
//! it was queued), wait, length (of its execution), lane, outcome, task
//! and place in its fan-out, sorted by start, each column a run of LEB128
//! varints in milliseconds (starts as deltas), the whole gzipped. The page
//! decompresses it with the browser's own `DecompressionStream`.
//!
//! Lanes are assigned here (`lanes::by_start`), so the page draws actions
//! that overlap on different rows without laying them out itself.

use crate::digest::{Digest, Row};
use crate::lanes;
use flate2::write::GzEncoder;
use flate2::Compression;
use flyte_core::record::{ActionStatus, Origin};
use std::io::Write;

/// The columns, in the order the page reads them.
pub(crate) const COLUMNS: [&str; 8] = [
    "start", "wait", "duration", "lane", "code", "task", "fan_out", "index",
];

/// What the page needs to decode the columns.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Timeline {
    /// Actions.
    pub(crate) count: usize,
    /// Rows the actions need so none overlaps another in its row.
    pub(crate) lanes: u32,
    /// The first start, in ms since the epoch (starts are offsets from it).
    pub(crate) t0: i64,
    /// The last end, as an offset from `t0`.
    pub(crate) span_ms: i64,
    /// The byte length of each column before compression.
    pub(crate) lengths: Vec<usize>,
    /// The gzipped columns, in base64.
    pub(crate) data: String,
}

/// Encodes `digest`'s actions.
pub(crate) fn timeline(digest: &Digest) -> std::io::Result<Timeline> {
    let (placed, lanes) = lanes::by_start(&digest.rows);
    let ms = |us: i64| us.div_euclid(1_000);
    let t0 = placed.first().map_or(0, |(r, _)| ms(r.queued_us));
    let mut columns: Vec<Vec<u8>> = vec![Vec::with_capacity(placed.len() * 2); COLUMNS.len()];
    let mut previous = t0;
    let mut span_ms = 0;
    for (row, lane) in placed {
        let queued = ms(row.queued_us);
        varint(&mut columns[0], (queued - previous).max(0) as u64);
        previous = queued;
        varint(&mut columns[1], (ms(row.start_us) - queued).max(0) as u64);
        varint(
            &mut columns[2],
            (ms(row.end_us) - ms(row.start_us)).max(0) as u64,
        );
        varint(&mut columns[3], u64::from(lane));
        columns[4].push(code(row));
        varint(&mut columns[5], u64::from(row.task));
        let (fan_out, index) = row.item.map_or((0, 0), |(f, i)| (u64::from(f) + 1, i));
        varint(&mut columns[6], fan_out);
        varint(&mut columns[7], index);
        span_ms = span_ms.max(ms(row.end_us) - t0);
    }
    let lengths = columns.iter().map(Vec::len).collect();
    let mut gz = GzEncoder::new(Vec::new(), Compression::new(6));
    for column in &columns {
        gz.write_all(column)?;
    }
    let packed = gz.finish()?;
    use base64::Engine;
    Ok(Timeline {
        count: digest.rows.len(),
        lanes,
        t0,
        span_ms,
        lengths,
        data: base64::engine::general_purpose::STANDARD.encode(packed),
    })
}

/// Status in bits 0-1 (0 running, 1 succeeded, 2 failed, 3 cancelled),
/// origin in bits 2-3 (0 executed, 1 cached, 2 replayed), retried in bit 4.
fn code(row: &Row) -> u8 {
    let status = match row.status {
        ActionStatus::Succeeded => 1,
        ActionStatus::Failed => 2,
        ActionStatus::Cancelled => 3,
        _ => 0,
    };
    let origin = match row.origin {
        Origin::Cached => 1,
        Origin::Replayed => 2,
        _ => 0,
    };
    status | origin << 2 | u8::from(row.attempts > 1) << 4
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_are_leb128() {
        let mut out = Vec::new();
        varint(&mut out, 0);
        varint(&mut out, 127);
        varint(&mut out, 128);
        varint(&mut out, 300);
        assert_eq!(out, [0, 127, 0x80, 1, 0xac, 2]);
    }
}
