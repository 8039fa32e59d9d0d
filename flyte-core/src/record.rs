//! The record vocabulary: how actions, fan-outs and runs stand, and one
//! shape each for a run and an action as recorded. The live action tree,
//! the run store and every tool share these types.
//!
//! # Examples
//!
//! ```
//! use flyte_core::record::{ActionStatus, Origin, RunStatus};
//!
//! assert_eq!(RunStatus::from_word(RunStatus::Killed.as_str()), Some(RunStatus::Killed));
//! assert_eq!(Origin::from_code(Origin::Cached.code()), Origin::Cached);
//! assert_ne!(ActionStatus::Succeeded, ActionStatus::Failed);
//! ```

use crate::{codec, ActionId, TaskError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::time::SystemTime;

/// The state of an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ActionStatus {
    /// Started and not finished (only seen if a run is read while going on).
    Running,
    /// Returned its output.
    Succeeded,
    /// Returned an error after its last attempt.
    Failed,
    /// Stopped before it finished: fail-fast, a dropped future, or a stopped run.
    Cancelled,
}

/// Where a successful action's output came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Origin {
    /// The task ran (also the origin of actions that did not succeed).
    #[default]
    Executed,
    /// Taken from the task cache (`cache = "auto"`): the task did not run.
    Cached,
    /// Recorded by an earlier execution of the same run and replayed on
    /// resume: the task did not run.
    Replayed,
}

/// Which fan-out made a group of actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FanOutKind {
    /// `flyte::map` or `flyte::map_stream`.
    Map,
    /// `flyte::gather`.
    Gather,
}

impl ActionStatus {
    /// How an action that returned `result` ended: an error of kind
    /// `Cancelled` is a cancellation, any other a failure.
    pub fn of<T>(result: &Result<T, TaskError>) -> ActionStatus {
        match result {
            Ok(_) => ActionStatus::Succeeded,
            Err(e) if e.kind() == crate::ErrorKind::Cancelled => ActionStatus::Cancelled,
            Err(_) => ActionStatus::Failed,
        }
    }

    /// Its word in stores, spans and reports: `running`, `succeeded`,
    /// `failed` or `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionStatus::Running => "running",
            ActionStatus::Succeeded => "succeeded",
            ActionStatus::Failed => "failed",
            ActionStatus::Cancelled => "cancelled",
        }
    }

    /// The status named `word` by [`ActionStatus::as_str`].
    pub fn from_word(word: &str) -> Option<ActionStatus> {
        match word {
            "running" => Some(ActionStatus::Running),
            "succeeded" => Some(ActionStatus::Succeeded),
            "failed" => Some(ActionStatus::Failed),
            "cancelled" => Some(ActionStatus::Cancelled),
            _ => None,
        }
    }

    /// A two-bit code for compact records: 0 running, 1 succeeded, 2 failed,
    /// 3 cancelled.
    pub fn code(self) -> u8 {
        match self {
            ActionStatus::Running => 0,
            ActionStatus::Succeeded => 1,
            ActionStatus::Failed => 2,
            ActionStatus::Cancelled => 3,
        }
    }

    /// The status a [`code`](ActionStatus::code) names (its low two bits).
    pub fn from_code(code: u8) -> ActionStatus {
        match code & 0b11 {
            1 => ActionStatus::Succeeded,
            2 => ActionStatus::Failed,
            3 => ActionStatus::Cancelled,
            _ => ActionStatus::Running,
        }
    }
}

impl Origin {
    /// A one-byte code for compact records: 0 executed, 1 cached, 2 replayed.
    pub fn code(self) -> u8 {
        match self {
            Origin::Executed => 0,
            Origin::Cached => 1,
            Origin::Replayed => 2,
        }
    }

    /// The origin a [`code`](Origin::code) names; unknown codes read as
    /// [`Origin::Executed`].
    pub fn from_code(code: u8) -> Origin {
        match code {
            1 => Origin::Cached,
            2 => Origin::Replayed,
            _ => Origin::Executed,
        }
    }
}

/// How a recorded run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
    /// How a run whose root returned `result` ended (as
    /// [`ActionStatus::of`] says of an action).
    pub fn of<T>(result: &Result<T, TaskError>) -> RunStatus {
        match ActionStatus::of(result) {
            ActionStatus::Succeeded => RunStatus::Succeeded,
            ActionStatus::Cancelled => RunStatus::Cancelled,
            _ => RunStatus::Failed,
        }
    }

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

    /// The status a stored word names ([`RunStatus::as_str`]'s inverse).
    pub fn from_word(word: &str) -> Option<RunStatus> {
        Some(match word {
            "running" => RunStatus::Running,
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            "cancelled" => RunStatus::Cancelled,
            "killed" => RunStatus::Killed,
            _ => return None,
        })
    }
}

/// One recorded run. Its `actions` are filled by `Store::run`, and empty
/// in the list from `Store::runs`.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// A run as a store reads it back, without actions; the other fields
    /// start empty (`executions` 1) and are set by the store.
    pub fn new(
        id: String,
        root_task: String,
        root_action: ActionId,
        status: RunStatus,
        started_at: SystemTime,
    ) -> RunRecord {
        RunRecord {
            id,
            name: None,
            root_task,
            root_action,
            status,
            error: None,
            started_at,
            ended_at: None,
            executions: 1,
            lost_actions: 0,
            actions: Vec::new(),
        }
    }

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
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// When it was queued: made by its caller, before it waited for its
    /// concurrency slot, its rate window or a worker.
    pub queued_at: SystemTime,
    /// When it began to execute: its first attempt's body began, with
    /// every slot it needed. One that never began (cancelled while it
    /// waited, cached, replayed) has `started_at` = its end: it executed
    /// for no time. Records written before flyte kept `queued_at` have
    /// the two equal.
    pub started_at: SystemTime,
    /// When it ended; `None` while it runs (seen only in a live tree or a
    /// run read while it goes on).
    pub ended_at: Option<SystemTime>,
    /// Each attempt's start and end, when it had more than one (the waits
    /// between them are its backoff); empty for a single attempt, which
    /// ran from `started_at` to `ended_at`.
    pub attempt_times: Vec<AttemptTimes>,
    /// The error, when it failed or was cancelled.
    pub error: Option<TaskError>,
    /// Whether it ran, or its output came from the cache or a replay.
    pub origin: Origin,
    /// The encoded output, when it succeeded and was kept (a store keeps
    /// it, the live tree does not; a tool reading without outputs gets
    /// `None`).
    pub output_bytes: Option<Vec<u8>>,
}

/// Microseconds since the Unix epoch: the resolution of an action's times
/// in every store and tool (0 before the epoch, saturating far after it).
pub fn micros(t: SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| {
        i64::try_from(d.as_secs())
            .unwrap_or(i64::MAX)
            .saturating_mul(1_000_000)
            .saturating_add(i64::from(d.subsec_micros()))
    })
}

/// The time `us` microseconds after the Unix epoch (the epoch for a
/// negative `us`): the inverse of [`micros`].
pub fn from_micros(us: i64) -> SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_micros(u64::try_from(us).unwrap_or(0))
}

/// When one attempt of an action ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptTimes {
    /// When its body began.
    pub started_at: SystemTime,
    /// When it returned (or failed, or timed out).
    pub ended_at: SystemTime,
}

impl ActionRecord {
    /// How long it waited before it began: for its slot, its rate window,
    /// a worker (zero when it never began: see `started_at`).
    pub fn waited(&self) -> std::time::Duration {
        self.started_at
            .duration_since(self.queued_at)
            .unwrap_or_default()
    }

    /// An action as a store reads it back (or the live tree sees it); the
    /// other fields start empty (one attempt, executed, queued when it
    /// started) and are set by the caller.
    pub fn new(
        id: ActionId,
        task: String,
        status: ActionStatus,
        started_at: SystemTime,
        ended_at: Option<SystemTime>,
    ) -> ActionRecord {
        ActionRecord {
            id,
            parent: None,
            item: None,
            task,
            group: None,
            status,
            attempts: 1,
            queued_at: started_at,
            started_at,
            ended_at,
            attempt_times: Vec::new(),
            error: None,
            origin: Origin::Executed,
            output_bytes: None,
        }
    }

    /// The output, decoded as `T`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Input`](crate::ErrorKind::Input) when the bytes are
    /// not a `T`.
    pub fn output<T: DeserializeOwned>(&self) -> Result<Option<T>, TaskError> {
        self.output_bytes.as_deref().map(codec::decode).transpose()
    }
}

/// One `map` or `gather` of a recorded run, as it ended: what drew it (its
/// task, kind, group and concurrency), how its items ended, and when.
///
/// Items are [`ActionRecord`]s whose `item` names this fan-out's `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FanOutRecord {
    /// The fan-out's deterministic id (the parent of its items' ids).
    pub id: ActionId,
    /// The action that ran it.
    pub parent: ActionId,
    /// `map` or `gather`.
    pub kind: FanOutKind,
    /// The task its items ran; `None` for a `gather` of several tasks, or a
    /// fan-out that started no item.
    pub task: Option<String>,
    /// The group label it ran in (`flyte::group`).
    pub group: Option<String>,
    /// Its concurrency bound; `None` when unbounded.
    pub concurrency: Option<u32>,
    /// Items started.
    pub started: u64,
    /// Items that succeeded.
    pub succeeded: u64,
    /// Items that failed.
    pub failed: u64,
    /// Items cancelled before they finished.
    pub cancelled: u64,
    /// Of the items that succeeded, those whose output came from the cache.
    pub cached: u64,
    /// Of the items that succeeded, those replayed from an earlier
    /// execution of the run.
    pub replayed: u64,
    /// When it started.
    pub started_at: SystemTime,
    /// When its last item ended (or it was dropped).
    pub ended_at: SystemTime,
}

impl FanOutRecord {
    /// A fan-out with no items yet; a store reading one back sets the rest.
    pub fn new(
        id: ActionId,
        parent: ActionId,
        kind: FanOutKind,
        started_at: SystemTime,
        ended_at: SystemTime,
    ) -> FanOutRecord {
        FanOutRecord {
            id,
            parent,
            kind,
            task: None,
            group: None,
            concurrency: None,
            started: 0,
            succeeded: 0,
            failed: 0,
            cancelled: 0,
            cached: 0,
            replayed: 0,
            started_at,
            ended_at,
        }
    }
}

impl FanOutKind {
    /// Its name in records: `map` or `gather`.
    pub fn as_str(self) -> &'static str {
        match self {
            FanOutKind::Map => "map",
            FanOutKind::Gather => "gather",
        }
    }

    /// The kind named `word` by [`FanOutKind::as_str`].
    pub fn from_word(word: &str) -> Option<FanOutKind> {
        match word {
            "map" => Some(FanOutKind::Map),
            "gather" => Some(FanOutKind::Gather),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use std::time::Duration;

    #[test]
    fn records_are_one_serde_shape_for_every_store_and_tool() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let mut action = ActionRecord::new(
            ActionId(7),
            "env.task".into(),
            ActionStatus::Failed,
            at,
            Some(at),
        );
        action.item = Some((ActionId(9), 3));
        action.error = Some(TaskError::new(ErrorKind::User, "boom"));
        action.origin = Origin::Cached;
        let mut run = RunRecord::new(
            "r1".into(),
            "env.root".into(),
            ActionId(1),
            RunStatus::Killed,
            at,
        );
        run.actions.push(action);
        let back: RunRecord = codec::decode(&codec::encode(&run).unwrap()).unwrap();
        assert_eq!(back.status, RunStatus::Killed);
        assert_eq!(back.executions, 1);
        assert_eq!(back.actions[0].item, Some((ActionId(9), 3)));
        assert_eq!(back.actions[0].error.as_ref().unwrap().message(), "boom");
        assert_eq!(back.actions[0].started_at, at);
        for status in [
            ActionStatus::Running,
            ActionStatus::Succeeded,
            ActionStatus::Failed,
            ActionStatus::Cancelled,
        ] {
            assert_eq!(ActionStatus::from_code(status.code()), status);
        }
        for word in ["running", "succeeded", "failed", "cancelled", "killed"] {
            assert_eq!(
                RunStatus::from_word(word).map(RunStatus::as_str),
                Some(word)
            );
        }
        assert_eq!(RunStatus::from_word("nope"), None);
    }
}
