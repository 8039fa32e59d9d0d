//! `flyte abort RUN`: files a cancel request in the store; the process
//! running the run polls for it (every 50 ms) and cancels the run as Ctrl-C
//! would, recording every action still going as cancelled.

use crate::args::AbortArgs;
use crate::error::{CliError, Exit};
use crate::refs::resolve;
use crate::Ctx;
use flyte_core::record::RunStatus;
use std::time::{Duration, Instant};

pub(crate) fn abort(ctx: &Ctx, args: &AbortArgs) -> Result<Exit, CliError> {
    let store = ctx.writable_store()?;
    let (key, run) = resolve(store.as_ref(), &args.run.run)?;
    if run.status != RunStatus::Running {
        return Err(CliError::not_found(format!(
            "run {} is not running: it {}",
            run.id,
            match run.status {
                RunStatus::Killed => "was killed".to_owned(),
                other => format!("ended {}", other.as_str()),
            }
        ))
        .hint("list the running runs with `flyte runs --status running`"));
    }
    store.operations()?.request_abort(key)?;
    if args.no_wait {
        eprintln!("asked run {} to cancel", run.id);
        return Ok(Exit::Ok);
    }
    let deadline = Instant::now() + args.timeout;
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let now = crate::refs::reread(store.as_ref(), &run.id)?;
        if now.status != RunStatus::Running {
            eprintln!("run {} stopped: {}", run.id, now.status.as_str());
            return Ok(Exit::Ok);
        }
        if Instant::now() > deadline {
            return Err(CliError::new(
                Exit::RunFailed,
                format!("run {} still runs {:?} after the request", run.id, args.timeout),
            )
            .hint("its process may be stuck in a task that never yields; stop that process (Ctrl-C or kill)"));
        }
    }
}
