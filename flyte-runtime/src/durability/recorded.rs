//! How much of a run is in its store ([`Recorded`]), as its outcome tells it.

/// How much of a run is in the store, as [`RunOutcome::recorded`] tells it.
///
/// [`RunOutcome::recorded`]: crate::RunOutcome::recorded
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Recorded {
    /// The run and every action that ended are in the store.
    Complete,
    /// Nothing was recorded: `Runner::persist(false)`, or the default store
    /// could not be used (`reason` says why and what to do; a warning said
    /// so too). Only a run that did not ask for a store explicitly (no
    /// `Runner::name`, `home` or `resume`) runs on without one.
    Off {
        /// Why the store could not be used, when that was the cause.
        reason: Option<String>,
    },
    /// Recorded in part: some records could not be written (a full disk, a
    /// failing device). A resume runs the actions whose records are missing
    /// again.
    Incomplete {
        /// Actions whose records are not in the store.
        lost_actions: u64,
        /// Whether the run's own end is missing too (the store then shows the
        /// run as running, and as killed once this process has exited).
        end_lost: bool,
        /// Why, with what to do.
        reason: String,
    },
}
