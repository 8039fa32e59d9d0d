//! Rows as records: the words and encodings flyte's tables use.

use flyte_core::record::{ActionRecord, ActionStatus, AttemptTimes, Origin, RunRecord, RunStatus};
use flyte_core::{codec, ActionId, TaskError};
use std::time::SystemTime;
use tokio_postgres::Row;

/// The columns [`run_record`] reads, in its order.
pub(crate) const RUN_COLUMNS: &str = "key, id, name, root_task, root_action, status, error, \
     started_at, ended_at, executions, lost_actions";

/// The columns [`action_record`] reads (without and with the output), of
/// a record `a` and its queue row `q` (when it runs, its start is there).
pub(crate) const ACTION_COLUMNS: &str = "a.id, a.parent, a.fan_out, a.idx, a.task, a.grp, \
     a.state, a.attempts, coalesce(q.started_at, a.started_at), a.queued_at, a.ended_at, \
     a.error, a.origin, NULL::bytea, a.attempt_times";
pub(crate) const ACTION_COLUMNS_WITH_OUTPUT: &str = "a.id, a.parent, a.fan_out, a.idx, a.task, \
     a.grp, a.state, a.attempts, coalesce(q.started_at, a.started_at), a.queued_at, a.ended_at, \
     a.error, a.origin, a.output, a.attempt_times";

/// An action's state as stored.
pub(crate) fn state_word(status: ActionStatus) -> &'static str {
    status.as_str()
}

/// A stored state as a status: queued and running are both `Running`.
pub(crate) fn status_of(word: &str) -> ActionStatus {
    ActionStatus::from_word(word).unwrap_or(ActionStatus::Running)
}

/// A task as workers register it and the queue keeps it: `name@version`.
pub(crate) fn task_key(name: &str, version: &str) -> String {
    format!("{name}@{version}")
}

/// The name and version of a [`task_key`]: a version is a hex hash, so the
/// last `@` splits them.
pub(crate) fn task_of_key(key: &str) -> (&str, &str) {
    key.rsplit_once('@').unwrap_or((key, ""))
}

/// An action id as the tables keep it: its 16 bytes, big-endian.
pub(crate) fn id_to_sql(id: ActionId) -> Vec<u8> {
    id.0.to_be_bytes().to_vec()
}

/// An action id from its stored bytes (shorter or longer ones, which flyte
/// never writes, read as what their last 16 bytes say).
pub(crate) fn id_from_sql(v: Vec<u8>) -> ActionId {
    let mut bytes = [0u8; 16];
    let n = v.len().min(16);
    bytes[16 - n..].copy_from_slice(&v[v.len() - n..]);
    ActionId(u128::from_be_bytes(bytes))
}

/// An error as stored (codec bytes); `None` when it does not encode, which
/// cannot happen for a `TaskError` (its fields are strings and numbers).
pub(crate) fn encode_error(e: &TaskError) -> Option<Vec<u8>> {
    codec::encode(e).ok()
}

/// A stored error; one that no longer decodes is kept as its bytes' story.
pub(crate) fn decode_error(bytes: Option<Vec<u8>>) -> Option<TaskError> {
    let bytes = bytes?;
    Some(codec::decode(&bytes).unwrap_or_else(|e| {
        TaskError::new(
            flyte_core::ErrorKind::Store,
            format!("the stored error does not decode: {}", e.message()),
        )
    }))
}

/// An action's attempts' times as stored: `None` (NULL) for one attempt.
pub(crate) fn encode_attempt_times(times: &[AttemptTimes]) -> Option<Vec<u8>> {
    if times.is_empty() {
        return None;
    }
    codec::encode(&times.to_vec()).ok()
}

/// Stored attempts' times; ones that no longer decode are left out (the
/// action's own times stand).
pub(crate) fn decode_attempt_times(bytes: Option<Vec<u8>>) -> Vec<AttemptTimes> {
    bytes
        .and_then(|b| codec::decode::<Vec<AttemptTimes>>(&b).ok())
        .unwrap_or_default()
}

/// A run from the columns of [`RUN_COLUMNS`].
pub(crate) fn run_record(row: &Row) -> (i64, RunRecord) {
    let status: String = row.get(5);
    let mut run = RunRecord::new(
        row.get(1),
        row.get(3),
        id_from_sql(row.get(4)),
        RunStatus::from_word(&status).unwrap_or(RunStatus::Killed),
        row.get(7),
    );
    run.name = row.get(2);
    run.error = decode_error(row.get(6));
    run.ended_at = row.get(8);
    run.executions = row.get::<_, i32>(9).max(1) as u32;
    run.lost_actions = row.get::<_, i64>(10).max(0) as u64;
    (row.get(0), run)
}

/// An action from the columns of [`ACTION_COLUMNS`].
pub(crate) fn action_record(row: &Row) -> ActionRecord {
    let state: String = row.get(6);
    let started: Option<SystemTime> = row.get(8);
    let queued: Option<SystemTime> = row.get(9);
    let mut record = ActionRecord::new(
        id_from_sql(row.get(0)),
        row.get(4),
        status_of(&state),
        started.or(queued).unwrap_or(SystemTime::UNIX_EPOCH),
        row.get(10),
    );
    record.parent = row.get::<_, Option<Vec<u8>>>(1).map(id_from_sql);
    let fan_out: Option<Vec<u8>> = row.get(2);
    let idx: Option<i64> = row.get(3);
    record.item = fan_out.zip(idx).map(|(f, i)| (id_from_sql(f), i as u64));
    record.group = row.get(5);
    record.attempts = row.get::<_, i32>(7).max(0) as u32;
    record.error = decode_error(row.get(11));
    record.origin = Origin::from_code(row.get::<_, i16>(12) as u8);
    record.output_bytes = row.get(13);
    if let Some(queued) = queued {
        record.queued_at = queued.min(record.started_at);
    }
    record.attempt_times = decode_attempt_times(row.get(14));
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_key_splits_into_its_name_and_version() {
        let key = task_key("etl.load", "9f86d081884c7d659a2feaa0c55ad015");
        assert_eq!(key, "etl.load@9f86d081884c7d659a2feaa0c55ad015");
        assert_eq!(
            task_of_key(&key),
            ("etl.load", "9f86d081884c7d659a2feaa0c55ad015")
        );
    }
}
