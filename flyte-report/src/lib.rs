//! What a recorded flyte run did, for people: [`digest()`] reads a run from
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
//! use flyte_core::backend::RunStore;
//! use flyte_core::store::RunRef;
//! # fn store() -> Box<dyn RunStore> { unimplemented!() }
//! let store = store();
//! let (key, run) = store.run_log().find_run(RunRef::Id("r0123456789abcdef0123"))?.expect("a run");
//! let file = std::fs::File::create("report.html")?;
//! flyte_report::write_report(store.as_ref(), key, run, &mut std::io::BufWriter::new(file))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod columns;
pub mod digest;
mod html;
pub mod json;
pub mod lanes;

pub use digest::{
    digest, Digest, FailureGroup, FanOutDigest, Figures, Row, TaskFigures, TreeItem, TreeNode,
};
pub use html::{action_detail, action_label, fan_out_counts, fan_out_label, status_word};

use flyte_core::backend::RunStore;
use flyte_core::record::RunRecord;
use flyte_core::store::{RunKey, StoreError};
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
    /// The file could not be written whole (a full disk, say); nothing was
    /// left at its path.
    #[error(
        "cannot write the report to {}: {source} (nothing was left there: free some \
         space, or write it elsewhere)",
        path.display()
    )]
    File {
        /// The report's path.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
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

/// Writes the report of run `run` to the file `path`, whole or not at
/// all: it is written beside `path` under a temporary name and renamed
/// into place once complete and on disk, so that a full disk (or a crash)
/// leaves no truncated page that would open as a report of half a run.
///
/// # Errors
///
/// When the store cannot be read, or the file cannot be written whole
/// ([`ReportError::File`], naming it; the partial file is removed).
pub fn write_report_file(
    store: &dyn RunStore,
    key: RunKey,
    run: RunRecord,
    path: &std::path::Path,
) -> Result<Digest, ReportError> {
    let file_error = |source: std::io::Error| ReportError::File {
        path: path.to_owned(),
        source,
    };
    let name = path.file_name().map_or_else(
        || "report.html".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    let partial = path.with_file_name(format!(".{name}.{}.partial", std::process::id()));
    let written = (|| {
        let file = std::fs::File::create(&partial).map_err(file_error)?;
        let mut out = std::io::BufWriter::new(file);
        let digest = match write_report(store, key, run, &mut out) {
            Err(ReportError::Io(e)) => return Err(file_error(e)),
            other => other?,
        };
        let file = out.into_inner().map_err(|e| file_error(e.into_error()))?;
        file.sync_all().map_err(file_error)?;
        std::fs::rename(&partial, path).map_err(file_error)?;
        Ok(digest)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written
}
