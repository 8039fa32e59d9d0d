//! `flyte watch RUN`: the live display of a run going on in another
//! process, until it ends. A process that shows its progress (the command
//! line's `run` does) publishes it in the store once a second; for one that
//! does not, the count of ended actions is shown.

use crate::args::RunRefArgs;
use crate::error::{CliError, Exit};
use crate::output;
use crate::refs::resolve;
use crate::Ctx;
use flyte_core::record::RunStatus;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant, SystemTime};

const POLL: Duration = Duration::from_millis(500);
/// A published display older than this is stale: its process stopped publishing.
const FRESH: Duration = Duration::from_secs(5);

pub(crate) fn watch(ctx: &Ctx, args: &RunRefArgs) -> Result<Exit, CliError> {
    let store = ctx.store()?;
    let (key, run) = resolve(store.as_ref(), &args.run)?;
    let terminal = std::io::stderr().is_terminal();
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4));
    let mut bars: Vec<ProgressBar> = Vec::new();
    let mut last_lines: Vec<String> = Vec::new();
    let mut last_printed = None::<Instant>;
    let started = Instant::now();
    let mut ended_before = (started, store.reader()?.ended_actions(key)?);
    loop {
        let now = crate::refs::reread(store.as_ref(), &run.id)?;
        let lines = match store.operations()?.published_progress(key)? {
            Some((at, lines))
                if SystemTime::now().duration_since(at).unwrap_or_default() < FRESH =>
            {
                lines
            }
            _ => {
                let ended = store.reader()?.ended_actions(key)?;
                let dt = ended_before.0.elapsed().as_secs_f64().max(0.001);
                let rate = ended.saturating_sub(ended_before.1) as f64 / dt;
                ended_before = (Instant::now(), ended);
                vec![format!(
                    "run {} · {} · {} · {ended} actions ended · {rate:.0}/s (its process shows no progress: counts from the store)",
                    run.id,
                    run.root_task,
                    now.status.as_str()
                )]
            }
        };
        if terminal {
            while bars.len() < lines.len() {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(ProgressStyle::with_template("{msg}").expect("a valid template"));
                bars.push(bar);
            }
            for (bar, line) in bars.iter().zip(&lines) {
                bar.set_message(output::printable(line).into_owned());
            }
        } else if lines != last_lines
            && last_printed.is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            let clock = output::when(SystemTime::now());
            for line in &lines {
                eprintln!("{clock} {}", output::printable(line));
            }
            last_lines = lines;
            last_printed = Some(Instant::now());
        }
        if now.status != RunStatus::Running {
            for bar in &bars {
                bar.finish();
            }
            eprintln!("run {} {}", run.id, now.status.as_str());
            return Ok(match now.status {
                RunStatus::Succeeded => Exit::Ok,
                _ => Exit::RunFailed,
            });
        }
        std::thread::sleep(POLL);
    }
}
