//! What a recorded flyte run did, for people: [`digest`] reads a run from
//! any [`RunStore`] into figures per task and fan-out, failures grouped by
//! cause and the actions worth a tree; [`write_report`] turns it into one
//! self-contained HTML file (inline CSS and JS, nothing fetched) with a
//! timeline drawn on a canvas.
//!
//! The command line (`flyte show`, `flyte report`) and
//! `RunOutcome::write_report` are built on it.
//!
//! # Examples
//!
//! ```no_run
//! use flyte_core::store::{RunRef, RunStore};
//! # fn store() -> Box<dyn RunStore> { unimplemented!() }
//! let store = store();
//! let (key, run) = store.find_run(RunRef::Id("r0123456789abcdef0123"))?.expect("a run");
//! let file = std::fs::File::create("report.html")?;
//! flyte_report::write_report(store.as_ref(), key, run, &mut std::io::BufWriter::new(file))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod columns;
pub mod digest;
mod html;
pub mod lanes;

pub use digest::{
    digest, Digest, FailureGroup, FanOutDigest, Figures, Row, TaskFigures, TreeItem, TreeNode,
};
pub use html::{action_detail, action_label, fan_out_counts, fan_out_label, status_word};

use flyte_core::record::RunRecord;
use flyte_core::store::{RunKey, RunStore, StoreError};
use std::io::Write;

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The page could not be written.
    #[error("cannot write the report: {0}")]
    Io(#[from] std::io::Error),
}

/// Writes the report of run `run` (key `key` in `store`) to `out`.
///
/// # Errors
///
/// When the store cannot be read or `out` cannot be written.
pub fn write_report(
    store: &dyn RunStore,
    key: RunKey,
    run: RunRecord,
    out: &mut dyn Write,
) -> Result<Digest, ReportError> {
    let digest = digest(store, key, run)?;
    html::write_page(&digest, &store.location(), out)?;
    Ok(digest)
}
