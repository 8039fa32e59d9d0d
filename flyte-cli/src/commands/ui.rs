//! `flyte ui`: the web UI and HTTP API on the store, until Ctrl-C.
//!
//! In a binary that links the tasks the UI also starts, resumes and reruns
//! runs (in this process); under `cargo flyte` it reads and aborts them.

use crate::args::UiArgs;
use crate::error::{CliError, Exit};
use crate::{Ctx, Mode};
use flyte_core::backend::RunStore;
use std::sync::Arc;

pub(crate) fn ui(ctx: &Ctx, args: &UiArgs) -> Result<Exit, CliError> {
    let store = store(ctx)?;
    let location = store.location();
    let starts = ctx.mode == Mode::Tasks && !flyte_runtime::registry().is_empty();
    let mut ui = flyte_ui::Ui::new(store)
        .bind(args.bind)
        .port(args.port)
        .token(args.token.clone().map(flyte_ui::Token::new));
    if starts {
        ui = ui.runner(ctx.runner());
    }
    let handle = ui.spawn().map_err(|e| CliError::usage(e.to_string()))?;
    eprintln!(
        "flyte ui on {} (store {location}{}); Ctrl-C to stop",
        handle.url(),
        if starts {
            ""
        } else {
            "; reads and aborts runs, starts none: this binary links no tasks"
        },
    );
    if args.token.is_some() {
        eprintln!("every request needs the token: open {}/?token=YOUR_TOKEN once, or send `Authorization: Bearer YOUR_TOKEN`", handle.url());
    }
    handle.serve_until_interrupted();
    Ok(Exit::Ok)
}

/// The store to serve: the fleet's database, or the SQLite store in the
/// home (made when this binary can fill it; `cargo flyte` needs one).
fn store(ctx: &Ctx) -> Result<Arc<dyn RunStore>, CliError> {
    if ctx.postgres.is_some() || ctx.mode == Mode::StoreOnly {
        return ctx.store();
    }
    Ok(Arc::new(flyte_sqlite::Store::open(&ctx.home)?))
}
