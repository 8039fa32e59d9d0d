//! `flyte report RUN`: one self-contained HTML file with the run's header,
//! figures, failures, tree and timeline.

use crate::args::ReportArgs;
use crate::error::{CliError, Exit};
use crate::refs::resolve;
use crate::Ctx;
use std::path::PathBuf;

pub(crate) fn report(ctx: &Ctx, args: &ReportArgs) -> Result<Exit, CliError> {
    let store = ctx.store()?;
    let (key, run) = resolve(store.as_ref(), &args.run.run)?;
    let path = args
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("flyte-report-{}.html", run.id)));
    let digest =
        flyte_report::write_report_file(store.as_ref(), key, run, &path).map_err(|e| match e {
            flyte_report::ReportError::Store(e) => CliError::from(e),
            other => CliError::new(Exit::Store, other.to_string())
                .hint("write it elsewhere with -o FILE.html"),
        })?;
    println!("{}", path.display());
    eprintln!(
        "wrote the report of run {} ({} actions) to {}",
        digest.run.id,
        digest.rows.len(),
        path.display()
    );
    if args.open {
        open(&path);
    }
    Ok(Exit::Ok)
}

/// Opens `path` in the desktop's browser; says so when it cannot.
fn open(path: &std::path::Path) {
    let program = if cfg!(target_os = "macos") {
        "open"
    } else if cfg!(windows) {
        "explorer"
    } else {
        "xdg-open"
    };
    if let Err(e) = std::process::Command::new(program).arg(path).spawn() {
        eprintln!(
            "cannot open it with {program} ({e}): open {} in a browser",
            path.display()
        );
    }
}
