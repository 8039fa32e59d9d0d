//! The store's read API: runs and their actions, as tools see them.

use super::{time, RunRecord, RunStatus, Store, StoreError};
use flyte_core::record::{FanOutKind, FanOutRecord};
use flyte_core::store::RunFilter;
use flyte_core::sync::warn_once;
use flyte_core::{ActionId, TaskError};
use rusqlite::{OptionalExtension, Row};
use std::collections::HashSet;
use std::ops::ControlFlow;

const RUN_COLUMNS: &str =
    "seq, id, name, root_task, root_action, status, error, started_at, ended_at, executions, lost";

/// The same, for a store of schema 1 (read-only opens of old stores).
const RUN_COLUMNS_V1: &str =
    "seq, id, name, root_task, root_action, status, error, started_at, ended_at, executions, 0";

impl Store {
    /// Every recorded run, newest first, without their actions.
    ///
    /// # Errors
    ///
    /// When the database cannot be read.
    pub fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let columns = self.run_columns();
        self.read(|conn| {
            let mut stmt =
                conn.prepare(&format!("SELECT {columns} FROM runs ORDER BY seq DESC"))?;
            let rows = stmt.query_map([], |r| run_record(r).map(|(_, run)| run))?;
            rows.collect()
        })
    }

    /// The run with id `id`, with its actions; `None` when there is none.
    ///
    /// # Errors
    ///
    /// When the database cannot be read.
    pub fn run(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.find_run("id", id)
    }

    /// The run named `name` (names are unique in a store), with its actions.
    ///
    /// # Errors
    ///
    /// When the database cannot be read.
    pub fn run_named(&self, name: &str) -> Result<Option<RunRecord>, StoreError> {
        self.find_run("name", name)
    }

    /// The run's number in the store, and its record without actions.
    pub(crate) fn run_head(
        &self,
        column: &str,
        value: &str,
    ) -> Result<Option<(i64, RunRecord)>, StoreError> {
        let columns = self.run_columns();
        self.read(|conn| {
            conn.query_row(
                &format!("SELECT {columns} FROM runs WHERE {column} = ?1"),
                [value],
                run_record,
            )
            .optional()
        })
    }

    fn run_columns(&self) -> &'static str {
        if self.schema() < 2 {
            RUN_COLUMNS_V1
        } else {
            RUN_COLUMNS
        }
    }

    /// The inputs stored with run `seq`.
    pub(crate) fn stored_inputs(&self, seq: i64) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|conn| {
            conn.query_row("SELECT inputs FROM runs WHERE seq = ?1", [seq], |r| {
                r.get(0)
            })
        })
    }

    fn find_run(&self, column: &str, value: &str) -> Result<Option<RunRecord>, StoreError> {
        let Some((seq, mut run)) = self.run_head(column, value)? else {
            return Ok(None);
        };
        let mut actions = Vec::new();
        self.each_batch(seq, |_, batch| {
            actions.extend(batch);
            ControlFlow::Continue(())
        })?;
        // An action that ran in several executions: its latest record only.
        let mut seen = HashSet::new();
        actions.reverse();
        actions.retain(|a| seen.insert(a.id));
        actions.reverse();
        run.actions = actions;
        Ok(Some(run))
    }
}

impl Store {
    /// Runs that pass `filter`, newest first, without their actions.
    pub(crate) fn filtered_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        use rusqlite::types::Value;
        let mut clauses = Vec::new();
        let mut values = Vec::new();
        if let Some(status) = filter.status {
            clauses.push("status = ?");
            values.push(Value::Text(status.as_str().to_owned()));
        }
        if let Some(task) = &filter.task {
            clauses.push("root_task = ?");
            values.push(Value::Text(task.clone()));
        }
        if let Some(name) = &filter.name {
            clauses.push("name = ?");
            values.push(Value::Text(name.clone()));
        }
        if let Some(since) = filter.since {
            clauses.push("started_at >= ?");
            values.push(Value::Integer(super::millis(since)));
        }
        let limit = filter
            .limit
            .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let offset = i64::try_from(filter.offset).unwrap_or(i64::MAX);
        let filter = match clauses.is_empty() {
            true => String::new(),
            false => format!("WHERE {}", clauses.join(" AND ")),
        };
        let columns = self.run_columns();
        let db = &self.0.db;
        self.read(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {columns} FROM runs {filter} ORDER BY seq DESC LIMIT {limit} OFFSET {offset}"
            ))?;
            let rows = stmt.query_map(rusqlite::params_from_iter(values), |r| {
                Ok(readable_run(r, db))
            })?;
            let mut runs = Vec::new();
            for row in rows {
                runs.extend(row?);
            }
            Ok(runs)
        })
    }

    /// Run `seq`'s fan-outs, in the order they ended (none in a store older
    /// than schema 3).
    pub(crate) fn stored_fan_outs(&self, seq: i64) -> Result<Vec<FanOutRecord>, StoreError> {
        if self.schema() < 3 {
            return Ok(Vec::new());
        }
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, parent, kind, task, grp, concurrency, started, succeeded, failed,
                     cancelled, cached, replayed, started_at, ended_at
                 FROM fan_outs WHERE run = ?1 ORDER BY seq",
            )?;
            let rows = stmt.query_map([seq], fan_out_record)?;
            rows.collect()
        })
    }
}

fn fan_out_record(row: &Row<'_>) -> rusqlite::Result<FanOutRecord> {
    let kind: String = row.get(2)?;
    let count = |i: usize| -> rusqlite::Result<u64> {
        Ok(u64::try_from(row.get::<_, i64>(i)?).unwrap_or(0))
    };
    let mut f = FanOutRecord::new(
        id_column(row, 0)?.unwrap_or(ActionId(0)),
        id_column(row, 1)?.unwrap_or(ActionId(0)),
        FanOutKind::from_word(&kind).unwrap_or(FanOutKind::Map),
        time(row.get(12)?),
        time(row.get(13)?),
    );
    f.task = row.get(3)?;
    f.group = row.get(4)?;
    f.concurrency = row.get(5)?;
    f.started = count(6)?;
    f.succeeded = count(7)?;
    f.failed = count(8)?;
    f.cancelled = count(9)?;
    f.cached = count(10)?;
    f.replayed = count(11)?;
    Ok(f)
}

fn id_column(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<ActionId>> {
    let bytes: Option<[u8; 16]> = row.get(i)?;
    Ok(bytes.map(|b| ActionId(u128::from_be_bytes(b))))
}

fn error_column(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<TaskError>> {
    let text: Option<String> = row.get(i)?;
    Ok(text.map(|t| {
        serde_json::from_str(&t).unwrap_or_else(|_| {
            TaskError::new(
                flyte_core::ErrorKind::Store,
                format!("unreadable error: {t}"),
            )
        })
    }))
}

/// A row of `runs` for a list: a damaged one is left out with a warning
/// that names it, so that one bad row does not hide every other run (from
/// `runs`, `gc`, a report's list).
fn readable_run(row: &Row<'_>, db: &std::path::Path) -> Option<RunRecord> {
    match run_record(row) {
        Ok((_, run)) => Some(run),
        Err(e) => {
            let seq = row
                .get::<_, i64>(0)
                .map_or("?".to_owned(), |s| s.to_string());
            let id = row
                .get::<_, String>(1)
                .map_or_else(|_| "unreadable".to_owned(), |id| format!("{id:?}"));
            warn_once(&format!(
                "run row {seq} (id {id}) of {} is damaged and left out ({e}): delete it \
                 (`sqlite3 {} \"DELETE FROM runs WHERE seq = {seq}\"`), or restore the \
                 store from a copy",
                db.display(),
                db.display()
            ));
            None
        }
    }
}

fn run_record(row: &Row<'_>) -> rusqlite::Result<(i64, RunRecord)> {
    let status: String = row.get(5)?;
    let mut run = RunRecord::new(
        row.get(1)?,
        row.get(3)?,
        id_column(row, 4)?.unwrap_or(ActionId(0)),
        RunStatus::from_word(&status).unwrap_or(RunStatus::Running),
        time(row.get(7)?),
    );
    run.name = row.get(2)?;
    run.error = error_column(row, 6)?;
    run.ended_at = row.get::<_, Option<i64>>(8)?.map(time);
    run.executions = row.get(9)?;
    run.lost_actions = u64::try_from(row.get::<_, i64>(10)?).unwrap_or(0);
    Ok((row.get(0)?, run))
}
