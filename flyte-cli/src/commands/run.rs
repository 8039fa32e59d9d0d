//! `flyte run TASK`, `flyte resume RUN`, `flyte rerun RUN`: run tasks of
//! this binary, print the output as JSON on stdout and how it went on stderr.

use crate::args::{RunArgs, RunRefArgs};
use crate::error::{CliError, Exit};
use crate::output;
use crate::refs::resolve;
use crate::Ctx;
use flyte_runtime::{registry, Progress, RunOutcome};
use serde_json::{Map, Value};
use std::io::Read;
use std::time::Instant;

pub(crate) fn run(ctx: &Ctx, args: &RunArgs) -> Result<Exit, CliError> {
    ctx.needs_tasks("`run`")?;
    let input = input(args)?;
    let call = registry().call_json(&args.task, input).map_err(|e| {
        let hint = match e.kind() {
            flyte_core::ErrorKind::UnknownTask => "list the tasks with `tasks`",
            _ => "give the parameters as `-a key=text`, `-a key:=json` or `--input '{\"key\": ...}'` (see `tasks`)",
        };
        CliError::from(e).hint(hint)
    })?;
    let mut runner = ctx.runner().progress(Progress::Auto);
    if let Some(name) = &args.name {
        runner = runner.name(name.clone());
    }
    if let Some(key) = &args.idempotency_key {
        runner = runner.idempotency_key(key.clone());
    }
    let started = Instant::now();
    finish(runner.run(call), started)
}

pub(crate) fn resume(ctx: &Ctx, reference: &RunRefArgs) -> Result<Exit, CliError> {
    ctx.needs_tasks("`resume`")?;
    let store = ctx.store()?;
    let (_, run) = resolve(store.as_ref(), &reference.run)?;
    drop(store);
    let started = Instant::now();
    finish(
        ctx.runner().progress(Progress::Auto).resume_json(&run.id),
        started,
    )
}

pub(crate) fn rerun(ctx: &Ctx, reference: &RunRefArgs) -> Result<Exit, CliError> {
    ctx.needs_tasks("`rerun`")?;
    let store = ctx.store()?;
    let (key, run) = resolve(store.as_ref(), &reference.run)?;
    let bytes = store.run_log().run_inputs(key)?.ok_or_else(|| {
        CliError::new(
            Exit::Store,
            format!(
                "run {} was stored without its inputs (they did not encode)",
                run.id
            ),
        )
        .hint(format!(
            "run the task anew with `run {} --input ...`",
            run.root_task
        ))
    })?;
    let input = registry().inputs_json(&run.root_task, &bytes)?;
    let call = registry().call_json(&run.root_task, input)?;
    let started = Instant::now();
    finish(ctx.runner().progress(Progress::Auto).run(call), started)
}

/// Prints the outcome: the output on stdout, the summary on stderr.
fn finish(outcome: RunOutcome<Value>, started: Instant) -> Result<Exit, CliError> {
    let took = output::duration(started.elapsed());
    let id = outcome.run_id().to_owned();
    let recorded = !matches!(outcome.recorded(), flyte_runtime::Recorded::Off { .. });
    match outcome.output() {
        Ok(value) => {
            output::print_json(value, crate::Format::Json)?;
            eprintln!("run {id} succeeded in {took}{}", see(&id, recorded));
            Ok(Exit::Ok)
        }
        // A run that never started (unknown run, busy, a used name or key,
        // a bad store) is not a failed run: its error is the command's.
        Err(e) if id.is_empty() => Err(CliError::from(e.clone())),
        Err(e) => {
            eprintln!(
                "run {id} failed in {took}: {}{}",
                output::printable(&e.to_string()),
                see(&id, recorded)
            );
            Ok(Exit::RunFailed)
        }
    }
}

fn see(id: &str, recorded: bool) -> String {
    if recorded && !id.is_empty() {
        format!(" (see it with `show {id}`)")
    } else {
        String::new()
    }
}

/// The input object, from `--input` and `-a` pairs.
fn input(args: &RunArgs) -> Result<Value, CliError> {
    let mut object = match &args.input {
        None => Map::new(),
        Some(text) => {
            let raw = if text == "-" {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s)?;
                s
            } else if let Some(path) = text.strip_prefix('@') {
                std::fs::read_to_string(path).map_err(|e| {
                    CliError::usage(format!("cannot read the input file {path}: {e}"))
                })?
            } else {
                text.clone()
            };
            match serde_json::from_str(&raw) {
                Ok(Value::Object(map)) => map,
                Ok(Value::Null) => Map::new(),
                Ok(other) => {
                    return Err(CliError::usage(format!(
                        "the input must be a JSON object keyed by parameter name, not {other}"
                    ))
                    .hint("e.g. --input '{\"x\": 3}'"))
                }
                Err(e) => {
                    return Err(CliError::usage(format!("the input is not JSON: {e}"))
                        .hint("e.g. --input '{\"x\": 3}', or -a name=text / -a n:=3"))
                }
            }
        }
    };
    for pair in &args.args {
        if let Some((key, json)) = pair.split_once(":=") {
            let value = serde_json::from_str(json).map_err(|e| {
                CliError::usage(format!("-a {pair}: {json:?} is not JSON ({e})"))
                    .hint(format!("for text write -a {key}={json}"))
            })?;
            object.insert(key.to_owned(), value);
        } else if let Some((key, text)) = pair.split_once('=') {
            object.insert(key.to_owned(), Value::String(text.to_owned()));
        } else {
            return Err(CliError::usage(format!("-a {pair:?} names no value"))
                .hint("write -a key=text for a string, -a key:=json for any JSON value"));
        }
    }
    Ok(Value::Object(object))
}
