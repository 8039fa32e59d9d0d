//! `flyte worker`: this binary as a worker of the fleet.

use crate::args::WorkerArgs;
use crate::error::{CliError, Exit};
use crate::Ctx;

pub(crate) fn worker(ctx: &Ctx, args: &WorkerArgs) -> Result<Exit, CliError> {
    ctx.needs_tasks("`worker`")?;
    let Some(url) = &ctx.postgres else {
        return Err(CliError::usage("`worker` needs the fleet's database")
            .hint("give --postgres postgres://user:password@host/db, or set FLYTE_POSTGRES_URL"));
    };
    flyte_runtime::fleet::Worker::new(url)
        .concurrency(args.concurrency)
        .run()?;
    Ok(Exit::Ok)
}
