//! What a run produced: [`RunOutcome`], its output, id, action tree, how
//! much of it was recorded, and its report.

use crate::durability::recorded::Recorded;
use crate::state::tree::{ActionNode, ActionStatus};
use flyte_core::backend::RunStore;
use flyte_core::record::ActionRecord;
use flyte_core::store::{RunKey, RunRef};
use flyte_core::{ActionId, ErrorKind, TaskError};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

/// The outcome of a run whose root could not run.
pub(super) fn failed<T>(task: &str, id: ActionId, error: TaskError) -> RunOutcome<T> {
    let now = SystemTime::now();
    let mut action = ActionRecord::new(id, task.to_owned(), ActionStatus::Failed, now, Some(now));
    action.attempts = 0;
    action.error = Some(error.clone());
    let root = ActionNode::leaf(action);
    RunOutcome {
        run_id: String::new(),
        name: None,
        root,
        output: Err(error),
        recorded: Recorded::Off { reason: None },
        stored: None,
    }
}

/// What a run produced: its output, its id and its action tree.
pub struct RunOutcome<T> {
    pub(super) run_id: String,
    pub(super) name: Option<String>,
    pub(super) root: ActionNode,
    pub(super) output: Result<T, TaskError>,
    pub(super) recorded: Recorded,
    /// Where the run is recorded, for its report.
    pub(super) stored: Option<(Arc<dyn RunStore>, RunKey)>,
}

impl<T> RunOutcome<T> {
    pub(super) fn map_output<U>(self, f: impl FnOnce(T) -> Result<U, TaskError>) -> RunOutcome<U> {
        RunOutcome {
            run_id: self.run_id,
            name: self.name,
            root: self.root,
            output: self.output.and_then(f),
            recorded: self.recorded,
            stored: self.stored,
        }
    }

    /// The run's id (empty when the run was refused before it started).
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The run's name, if the runner gave one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// How much of the run is in the store: all of it, none (recording off,
    /// or the default store unusable), or part (records that could not be
    /// written), with why.
    ///
    /// # Examples
    ///
    /// ```
    /// use flyte::prelude::*;
    /// use flyte::Recorded;
    ///
    /// #[task]
    /// fn inc(x: u32) -> u32 {
    ///     x + 1
    /// }
    ///
    /// # let home = std::env::temp_dir().join(format!("flyte-doc-recorded-{}", std::process::id()));
    /// let outcome = flyte::Runner::new().home(&home).run(inc(1));
    /// assert_eq!(outcome.recorded(), &Recorded::Complete);
    ///
    /// let outcome = flyte::Runner::new().persist(false).run(inc(1));
    /// assert_eq!(outcome.recorded(), &Recorded::Off { reason: None });
    /// if let Recorded::Incomplete { lost_actions, reason, .. } = outcome.recorded() {
    ///     eprintln!("{lost_actions} actions were not recorded: {reason}");
    /// }
    /// # std::fs::remove_dir_all(&home).ok();
    /// ```
    pub fn recorded(&self) -> &Recorded {
        &self.recorded
    }

    /// The root action, with the tree of actions below it.
    pub fn actions(&self) -> &ActionNode {
        &self.root
    }

    /// Writes the run's report to `path`: one self-contained HTML file
    /// (inline CSS and JS, nothing fetched) with the run's header, figures
    /// per task and fan-out, failures grouped by cause, its tree and a
    /// timeline of every action. `flyte report RUN` writes the same file.
    ///
    /// # Examples
    ///
    /// ```
    /// use flyte::prelude::*;
    ///
    /// #[task]
    /// fn double(x: u64) -> u64 {
    ///     x * 2
    /// }
    ///
    /// #[task]
    /// async fn double_all(xs: Vec<u64>) -> Result<Vec<u64>, TaskError> {
    ///     flyte::map(double, xs).concurrency(4).await
    /// }
    ///
    /// # let home = std::env::temp_dir().join(format!("flyte-doc-report-{}", std::process::id()));
    /// let outcome = flyte::Runner::new().home(&home).run(double_all((0..100).collect()));
    /// let path = home.join("report.html");
    /// outcome.write_report(&path)?;
    /// assert!(std::fs::read_to_string(&path)?.contains("default.double_all"));
    /// # std::fs::remove_dir_all(&home).ok();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`] when the run was not recorded (the report is
    /// read from the store); [`ErrorKind::Store`] when the store cannot be
    /// read or the file cannot be written.
    pub fn write_report(&self, path: impl AsRef<Path>) -> Result<(), TaskError> {
        let path = path.as_ref();
        let Some((store, key)) = &self.stored else {
            return Err(TaskError::new(
                ErrorKind::Config,
                "this run was not recorded, and a report is read from the store: \
                 leave recording on (the default) to write one",
            ));
        };
        let (_, run) = store
            .run_log()
            .find_run(RunRef::Id(&self.run_id))?
            .ok_or_else(|| {
                TaskError::new(
                    ErrorKind::Store,
                    format!("run {} is not in the store", self.run_id),
                )
            })?;
        match flyte_report::write_report_file(store.as_ref(), *key, run, path) {
            Ok(_) => Ok(()),
            Err(e @ flyte_report::ReportError::File { .. }) => {
                Err(TaskError::new(ErrorKind::Store, e.to_string()))
            }
            Err(e) => Err(TaskError::new(
                ErrorKind::Store,
                format!("cannot write the report to {}: {e}", path.display()),
            )),
        }
    }

    /// The output, by reference.
    pub fn output(&self) -> Result<&T, &TaskError> {
        self.output.as_ref()
    }

    /// The output.
    ///
    /// # Errors
    ///
    /// The root task's error, or why the run could not start.
    pub fn into_output(self) -> Result<T, TaskError> {
        self.output
    }
}

impl<T: fmt::Debug> fmt::Debug for RunOutcome<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunOutcome")
            .field("run_id", &self.run_id)
            .field("name", &self.name)
            .field("output", &self.output)
            .field("recorded", &self.recorded)
            .field("root", &self.root)
            .finish()
    }
}
