//! `flyte logs RUN [ACTION] [--follow]`: what the run's tasks logged.
//!
//! Lines are the `tracing` events emitted inside the run's tasks, kept by
//! `flyte::logs::layer()` (which `flyte::cli::main()` installs).

use crate::args::{Format, LogsArgs};
use crate::error::{CliError, Exit};
use crate::output::{printable, rfc3339};
use crate::refs::{resolve, MIN_PREFIX};
use crate::Ctx;
use flyte_core::record::RunStatus;
use flyte_core::store::{LogLine, RunRef};
use serde_json::json;
use std::io::Write;
use std::time::Duration;

const PAGE: usize = 10_000;
const FOLLOW_POLL: Duration = Duration::from_millis(200);

pub(crate) fn logs(ctx: &Ctx, args: &LogsArgs) -> Result<Exit, CliError> {
    let store = ctx.store()?;
    let (key, run) = resolve(store.as_ref(), &args.run.run)?;
    let action = match &args.action {
        Some(prefix) if prefix.len() < MIN_PREFIX => {
            return Err(CliError::usage(format!(
                "action {prefix:?} is too short: give {MIN_PREFIX} characters or more of its id"
            )))
        }
        Some(prefix) => Some(prefix.to_ascii_lowercase()),
        None => None,
    };
    let mut after = 0;
    let mut printed = 0u64;
    loop {
        let lines = store.operations()?.logs(key, after, PAGE)?;
        let got = lines.len();
        if let Some(last) = lines.last() {
            after = last.seq;
        }
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        for line in lines.iter().filter(|l| matches(l, action.as_deref())) {
            print_line(&mut out, line, args.format.format)?;
            printed += 1;
        }
        out.flush()?;
        if got == PAGE {
            continue;
        }
        if !args.follow {
            break;
        }
        let still_running = store
            .run_log()
            .find_run(RunRef::Id(&run.id))?
            .is_some_and(|(_, r)| r.status == RunStatus::Running);
        if !still_running {
            // One more read: lines written just before the run ended.
            let rest = store.operations()?.logs(key, after, PAGE)?;
            let mut out = std::io::stdout().lock();
            for line in rest.iter().filter(|l| matches(l, action.as_deref())) {
                print_line(&mut out, line, args.format.format)?;
                printed += 1;
            }
            break;
        }
        std::thread::sleep(FOLLOW_POLL);
    }
    if printed == 0 {
        eprintln!(
            "run {} logged nothing{} (task events are kept when the program installs \
             flyte::logs::layer(), as flyte::cli::main() does)",
            run.id,
            if action.is_some() {
                " from that action"
            } else {
                ""
            }
        );
    }
    Ok(Exit::Ok)
}

fn matches(line: &LogLine, action: Option<&str>) -> bool {
    match action {
        None => true,
        Some(prefix) => line
            .action
            .is_some_and(|a| a.to_string().starts_with(prefix)),
    }
}

fn print_line(out: &mut dyn Write, line: &LogLine, format: Format) -> std::io::Result<()> {
    match format {
        Format::Table => {
            let action = line
                .action
                .map_or("-".to_owned(), |a| a.to_string()[..12].to_owned());
            writeln!(
                out,
                "{} {:<5} {action}  {}",
                rfc3339(line.at),
                printable(&line.level),
                printable(&line.message)
            )
        }
        Format::Json | Format::Jsonl => {
            let value = json!({
                "seq": line.seq,
                "action": line.action.map(|a| a.to_string()),
                "at": rfc3339(line.at),
                "level": line.level,
                "target": line.target,
                "message": line.message,
            });
            serde_json::to_writer(&mut *out, &value)?;
            writeln!(out)
        }
    }
}
