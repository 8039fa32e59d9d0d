//! How actions are kept: the writer stores each batch of a run's ended
//! actions as one row, the batch encoded by the codec.
//!
//! A row per action costs SQLite about 2.4 us on the 2-core machine of
//! BENCHMARKS.md (15 columns, an index), more than a trivial task takes to
//! run; a row per batch costs the encoding, about 0.1 us an action. Reads
//! (tools, resume) decode the batches of one run.

use super::{millis, time};
use crate::tree::{ActionStatus, Origin};
use flyte_core::{codec, ActionId, TaskError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::SystemTime;

/// One action as it ended, on its way to the writer.
#[derive(Debug)]
pub(crate) struct ActionRow {
    pub(crate) run: i64,
    pub(crate) id: ActionId,
    pub(crate) parent: Option<ActionId>,
    /// The fan-out and index, for a `map`/`gather` item.
    pub(crate) item: Option<(ActionId, u64)>,
    pub(crate) task: &'static str,
    pub(crate) group: Option<Arc<str>>,
    pub(crate) status: ActionStatus,
    pub(crate) attempts: u32,
    pub(crate) started_at: SystemTime,
    pub(crate) ended_at: SystemTime,
    pub(crate) error: Option<TaskError>,
    pub(crate) origin: Origin,
    pub(crate) output: Option<Vec<u8>>,
}

/// The stored form, written from borrowed parts...
#[derive(Serialize)]
struct StoredRef<'a> {
    id: ActionId,
    parent: Option<ActionId>,
    item: Option<(ActionId, u64)>,
    task: &'a str,
    group: Option<&'a str>,
    status: ActionStatus,
    attempts: u32,
    started_ms: i64,
    ended_ms: i64,
    error: Option<&'a TaskError>,
    origin: Origin,
    output: Option<&'a [u8]>,
}

/// ...and read back owned: the same fields, in the same order.
#[derive(Deserialize)]
struct Stored {
    id: ActionId,
    parent: Option<ActionId>,
    item: Option<(ActionId, u64)>,
    task: String,
    group: Option<String>,
    status: ActionStatus,
    attempts: u32,
    started_ms: i64,
    ended_ms: i64,
    error: Option<TaskError>,
    origin: Origin,
    output: Option<Vec<u8>>,
}

/// Encodes a batch of one run's actions into a row's bytes.
pub(crate) fn encode_batch(rows: &[&ActionRow]) -> Result<Vec<u8>, TaskError> {
    let stored: Vec<StoredRef<'_>> = rows
        .iter()
        .map(|row| StoredRef {
            id: row.id,
            parent: row.parent,
            item: row.item,
            task: row.task,
            group: row.group.as_deref(),
            status: row.status,
            attempts: row.attempts,
            started_ms: millis(row.started_at),
            ended_ms: millis(row.ended_at),
            error: row.error.as_ref(),
            origin: row.origin,
            output: row.output.as_deref(),
        })
        .collect();
    codec::encode(&stored)
}

/// Decodes a row's bytes back into the actions of the batch.
pub(crate) fn decode_batch(bytes: &[u8]) -> Result<Vec<super::ActionRecord>, TaskError> {
    let stored: Vec<Stored> = codec::decode(bytes)?;
    Ok(stored
        .into_iter()
        .map(|s| super::ActionRecord {
            id: s.id,
            parent: s.parent,
            item: s.item,
            task: s.task,
            group: s.group,
            status: s.status,
            attempts: s.attempts,
            started_at: time(s.started_ms),
            ended_at: time(s.ended_ms),
            error: s.error,
            origin: s.origin,
            output_bytes: s.output,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flyte_core::ErrorKind;

    #[test]
    fn a_batch_round_trips() {
        let row = |i: u64, output: Option<Vec<u8>>, error: Option<TaskError>| ActionRow {
            run: 1,
            id: ActionId(u128::from(i)),
            parent: Some(ActionId(7)),
            item: Some((ActionId(9), i)),
            task: "env.task",
            group: Some("outer/inner".into()),
            status: if error.is_some() {
                ActionStatus::Failed
            } else {
                ActionStatus::Succeeded
            },
            attempts: 2,
            started_at: SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(5),
            ended_at: SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(8),
            error,
            origin: Origin::Cached,
            output,
        };
        let a = row(1, Some(vec![1, 2, 3]), None);
        let b = row(2, None, Some(TaskError::new(ErrorKind::User, "boom")));
        let bytes = encode_batch(&[&a, &b]).unwrap();
        let back = decode_batch(&bytes).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].id, ActionId(1));
        assert_eq!(back[0].output_bytes.as_deref(), Some(&[1, 2, 3][..]));
        assert_eq!(back[0].group.as_deref(), Some("outer/inner"));
        assert_eq!(back[0].item, Some((ActionId(9), 1)));
        assert_eq!(back[0].origin, Origin::Cached);
        assert_eq!(back[1].status, ActionStatus::Failed);
        assert_eq!(back[1].error.as_ref().unwrap().message(), "boom");
        assert_eq!(back[1].ended_at, a.ended_at);
    }
}
