//! The store's read API: runs and their actions, as tools see them.

use super::{time, Store, StoreError};
use crate::tree::{ActionStatus, Origin};
use flyte_core::{codec, ActionId, TaskError};
use rusqlite::{OptionalExtension, Row};
use serde::de::DeserializeOwned;
use std::collections::HashSet;
use std::time::SystemTime;

/// How a recorded run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RunStatus {
    /// Its process is running it.
    Running,
    /// The root task returned its output.
    Succeeded,
    /// The root task returned an error.
    Failed,
    /// The run was stopped (Ctrl-C, SIGTERM, a dropped future).
    Cancelled,
    /// Its process died before the run ended; found when the store was
    /// next opened.
    Killed,
}

impl RunStatus {
    /// The word stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Killed => "killed",
        }
    }

    fn parse(s: &str) -> RunStatus {
        match s {
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            "cancelled" => RunStatus::Cancelled,
            "killed" => RunStatus::Killed,
            _ => RunStatus::Running,
        }
    }
}

/// One recorded run. Its `actions` are filled by [`Store::run`], and empty
/// in the list from [`Store::runs`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RunRecord {
    /// The run's id.
    pub id: String,
    /// The name given with `Runner::name`, if any.
    pub name: Option<String>,
    /// The root task's name.
    pub root_task: String,
    /// The root action's id.
    pub root_action: ActionId,
    /// How it stands.
    pub status: RunStatus,
    /// The root's error, or why the run was killed.
    pub error: Option<TaskError>,
    /// When it was first started.
    pub started_at: SystemTime,
    /// When it last ended.
    pub ended_at: Option<SystemTime>,
    /// How many times it was executed (1, plus one per resume).
    pub executions: u32,
    /// Actions whose records could not be written (a full disk, a failing
    /// device): when not 0, `actions` is incomplete, and a resume runs those
    /// actions again.
    pub lost_actions: u64,
    /// The actions that ended, in the order they ended (the root last); for
    /// an action that ran in several executions of the run, its latest.
    pub actions: Vec<ActionRecord>,
}

impl RunRecord {
    /// The root action, once it has ended.
    pub fn root(&self) -> Option<&ActionRecord> {
        self.actions.iter().find(|a| a.id == self.root_action)
    }

    /// The actions started directly by action `id` (items of its `map`s and
    /// `gather`s included).
    pub fn children(&self, id: ActionId) -> impl Iterator<Item = &ActionRecord> {
        self.actions.iter().filter(move |a| a.parent == Some(id))
    }
}

/// One action of a recorded run, as it ended.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ActionRecord {
    /// The deterministic id.
    pub id: ActionId,
    /// The action that started it (none for the root).
    pub parent: Option<ActionId>,
    /// For a `map`/`gather` item: the fan-out's id and the item's index.
    pub item: Option<(ActionId, u64)>,
    /// The task's name.
    pub task: String,
    /// The group label (`flyte::group`).
    pub group: Option<String>,
    /// How it ended.
    pub status: ActionStatus,
    /// Attempts made.
    pub attempts: u32,
    /// When it started.
    pub started_at: SystemTime,
    /// When it ended.
    pub ended_at: SystemTime,
    /// The error, when it failed or was cancelled.
    pub error: Option<TaskError>,
    /// Whether it ran, or its output came from the cache or a replay.
    pub origin: Origin,
    /// The encoded output, when it succeeded.
    pub output_bytes: Option<Vec<u8>>,
}

impl ActionRecord {
    /// The output, decoded as `T`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Input`](flyte_core::ErrorKind::Input) when the bytes are
    /// not a `T`.
    pub fn output<T: DeserializeOwned>(&self) -> Result<Option<T>, TaskError> {
        self.output_bytes.as_deref().map(codec::decode).transpose()
    }
}

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
    pub(crate) fn run_inputs(&self, seq: i64) -> Result<Option<Vec<u8>>, StoreError> {
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
        self.each_batch(seq, |_, batch| actions.extend(batch))?;
        // An action that ran in several executions: its latest record only.
        let mut seen = HashSet::new();
        actions.reverse();
        actions.retain(|a| seen.insert(a.id));
        actions.reverse();
        run.actions = actions;
        Ok(Some(run))
    }
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

fn run_record(row: &Row<'_>) -> rusqlite::Result<(i64, RunRecord)> {
    let status: String = row.get(5)?;
    let run = RunRecord {
        id: row.get(1)?,
        name: row.get(2)?,
        root_task: row.get(3)?,
        root_action: id_column(row, 4)?.unwrap_or(ActionId(0)),
        status: RunStatus::parse(&status),
        error: error_column(row, 6)?,
        started_at: time(row.get(7)?),
        ended_at: row.get::<_, Option<i64>>(8)?.map(time),
        executions: row.get(9)?,
        lost_actions: u64::try_from(row.get::<_, i64>(10)?).unwrap_or(0),
        actions: Vec::new(),
    };
    Ok((row.get(0)?, run))
}
