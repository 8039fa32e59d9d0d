//! Durable runs: a crawl fails halfway, then completes when run again under
//! the same name, without redoing the pages it already fetched; a cached
//! task is reused across runs.
//!
//! ```text
//! cargo run --example resume                  # fail, then resume, in one process
//! cargo run --example resume -- --crash       # die halfway (like a kill) and print the run id
//! cargo run --example resume -- --resume ID   # resume that run in a new process
//! ```
//!
//! Runs are recorded under `FLYTE_HOME` (default `./.flyte/`).

use flyte::prelude::*;
use flyte::store::Store;
use flyte::Runner;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

static CRAWL: TaskEnvironment = TaskEnvironment::new("crawl");
static PARSING: TaskEnvironment = TaskEnvironment::new("parsing").cache(Cache::Auto);

const PAGES: u32 = 24;

/// Page 12's server is down during the first attempt of this example.
static SERVER_DOWN: AtomicBool = AtomicBool::new(true);
/// Exit the process abruptly halfway (`--crash`).
static CRASH: AtomicBool = AtomicBool::new(false);
static FETCHED: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug, thiserror::Error)]
#[error("page {0}: the server answered 503")]
struct Unavailable(u32);

#[task(env = CRAWL)]
async fn fetch(page: u32) -> Result<String, Unavailable> {
    tokio::time::sleep(Duration::from_millis(20 + u64::from(page % 4) * 5)).await;
    if page == 12 && SERVER_DOWN.load(Ordering::SeqCst) {
        return Err(Unavailable(page));
    }
    if page == 12 && CRASH.load(Ordering::SeqCst) {
        println!(
            "crashing halfway; resume with: cargo run --example resume -- --resume {}",
            flyte::current().run_id()
        );
        std::process::exit(1);
    }
    FETCHED.fetch_add(1, Ordering::SeqCst);
    Ok(format!(
        "<html>page {page}: {}</html>",
        "lorem ipsum ".repeat(page as usize + 1)
    ))
}

/// Pure and a little costly: cached, so identical pages are parsed once ever.
#[task(env = PARSING)]
fn word_count(html: String) -> usize {
    html.split_whitespace().count()
}

#[task(env = CRAWL)]
async fn crawl(pages: u32) -> Result<usize, TaskError> {
    let bodies = flyte::map(fetch, 0..pages).concurrency(4).await?;
    let counts = flyte::map(word_count, bodies).await?;
    Ok(counts.iter().sum())
}

fn report(label: &str, outcome: &flyte::RunOutcome<usize>) {
    let fetches = outcome.actions().fan_outs.first();
    println!(
        "{label}: run {} -> {}; pages fetched {}, replayed {}, failed {}, cancelled {}, not started {}",
        outcome.run_id(),
        match outcome.output() {
            Ok(words) => format!("{words} words"),
            Err(e) => format!("failed: {e}"),
        },
        fetches.map_or(0, |f| f.succeeded - f.replayed),
        fetches.map_or(0, |f| f.replayed),
        fetches.map_or(0, |f| f.failed),
        fetches.map_or(0, |f| f.cancelled),
        fetches.map_or(u64::from(PAGES), |f| u64::from(PAGES) - f.started),
    );
}

fn main() -> Result<(), TaskError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--resume") {
        let run_id = args.get(i + 1).ok_or_else(|| {
            TaskError::new(
                ErrorKind::Input,
                "--resume needs a run id, e.g. --resume r0123...",
            )
        })?;
        SERVER_DOWN.store(false, Ordering::SeqCst);
        let outcome = Runner::new().resume::<usize>(run_id);
        report("resumed", &outcome);
        return outcome.into_output().map(|_| ());
    }
    if args.iter().any(|a| a == "--crash") {
        SERVER_DOWN.store(false, Ordering::SeqCst);
        CRASH.store(true, Ordering::SeqCst);
        return Runner::new().run(crawl(PAGES)).into_output().map(|_| ());
    }

    // A name of its own per invocation; run the same name twice to resume.
    let name = format!("crawl-{}", std::process::id());
    let runner = Runner::new().name(&name);

    let first = runner.run(crawl(PAGES));
    report("first run ", &first);
    let fetched_first = FETCHED.swap(0, Ordering::SeqCst);
    assert!(first.output().is_err(), "page 12 is down the first time");

    SERVER_DOWN.store(false, Ordering::SeqCst); // the outage is over
    let second = runner.run(crawl(PAGES));
    report("second run", &second);
    let fetched_second = FETCHED.load(Ordering::SeqCst);
    assert_eq!(second.run_id(), first.run_id(), "the name resumed the run");
    assert_eq!(
        fetched_first + fetched_second,
        PAGES as usize,
        "no page was fetched twice"
    );

    let store = Store::open_default().map_err(TaskError::from)?;
    let run = store.run(second.run_id()).map_err(TaskError::from)?;
    if let Some(run) = run {
        println!(
            "stored: run {} is {:?} after {} executions, {} actions recorded in {}",
            run.id,
            run.status,
            run.executions,
            run.actions.len(),
            store.home().display()
        );
    }
    let words = second.into_output()?;
    println!("{words} words in {PAGES} pages");
    Ok(())
}
