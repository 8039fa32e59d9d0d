//! One file per command; `dispatch` picks it.

mod abort;
mod cache;
mod export;
mod gc;
mod logs;
mod report;
mod run;
mod runs;
mod show;
mod tasks;
mod ui;
mod watch;
mod worker;

use crate::args::Action;
use crate::error::{CliError, Exit};
use crate::Ctx;

pub(crate) fn dispatch(ctx: &Ctx, action: Action) -> Result<Exit, CliError> {
    match action {
        Action::Runs(args) => runs::runs(ctx, &args),
        Action::Show(args) => show::show(ctx, &args),
        Action::Logs(args) => logs::logs(ctx, &args),
        Action::Watch(args) => watch::watch(ctx, &args),
        Action::Run(args) => run::run(ctx, &args),
        Action::Resume(args) => run::resume(ctx, &args),
        Action::Rerun(args) => run::rerun(ctx, &args),
        Action::Abort(args) => abort::abort(ctx, &args),
        Action::Cache(command) => cache::cache(ctx, command),
        Action::Tasks(args) => tasks::tasks(ctx, args.format),
        Action::Report(args) => report::report(ctx, &args),
        Action::Export(args) => export::export(ctx, &args),
        Action::Gc(args) => gc::gc(ctx, &args),
        Action::Ui(args) => ui::ui(ctx, &args),
        Action::Worker(args) => worker::worker(ctx, &args),
    }
}
