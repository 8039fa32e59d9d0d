//! The web UI's budgets (issue 20): 10,000 runs list in < 300 ms; a
//! 1,000,000-action run's page paints in < 1 s; a live page lags the store
//! by < 1 s at 10,000 actions a second.
//!
//! Run: `cargo bench --bench ui` (`FLYTE_UI_ITEMS=100000` for a smaller
//! big run). Everything with the defaults: the SQLite store, `flyte ui`'s
//! server (`flyte_ui::Ui`) on loopback, requests over real HTTP.
//! 1. 10,000 ended runs in a store; the runs list's first page (with its
//!    total), a search and a status filter, 7 times each: medians.
//! 2. One recorded run of a 1M-item map of a trivial task: what its page
//!    asks for (run, summary, timeline), the first time (the digest made)
//!    and again (kept), with the sizes sent; then, when `chromium` is on
//!    PATH, the page opened until it has painted the run, beside the same
//!    browser opening an empty page.
//! 3. A run ending about 10,000 actions a second while an event stream
//!    follows it: for every action, how long after it ended the first
//!    update that counted it came (median, p95, max).

mod common;

use common::{chromium, items_from_env, map_trivial, median, CONCURRENCY};
use flyte::prelude::*;
use flyte::store::RunStore;
use flyte::Runner;
use flyte_core::store::{NewRun, RunEnd, RunRef};
use flyte_core::ActionId;
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Sleeps long enough that 64 at once end about 10,000 a second.
#[task]
async fn paced(x: u64) -> u64 {
    tokio::time::sleep(Duration::from_micros(5_500)).await;
    x
}

#[task]
async fn map_paced(n: u64) -> Result<u64, TaskError> {
    let out = flyte::map(paced, 0..n).concurrency(CONCURRENCY).await?;
    Ok(out.len() as u64)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for the list of benchmarks
    }
    let items = items_from_env("FLYTE_UI_ITEMS", 1_000_000);
    let root = std::env::temp_dir().join(format!("flyte-bench-ui-{}", std::process::id()));
    runs_list(&root.join("runs"));
    big_run(&root.join("big"), items);
    live_lag(&root.join("live"));
    std::fs::remove_dir_all(&root).ok();
}

fn serve(home: &Path) -> flyte_ui::UiHandle {
    let store = Arc::new(flyte::store::Store::open(home).expect("a store"));
    flyte_ui::Ui::new(store)
        .port(0)
        .spawn()
        .expect("the UI serves")
}

fn get(url: &str) -> (Duration, usize) {
    let t = Instant::now();
    let mut response = ureq::get(url).call().expect("an answer");
    let body = response
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_string()
        .expect("a body");
    (t.elapsed(), body.len())
}

fn timed(url: &str, times: usize) -> (Duration, usize) {
    let mut took = Vec::new();
    let mut size = 0;
    for _ in 0..times {
        let (t, n) = get(url);
        took.push(t);
        size = n;
    }
    (median(took), size)
}

fn runs_list(home: &Path) {
    let store = flyte::store::Store::open(home).expect("a store");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let t = Instant::now();
    for i in 0..10_000u32 {
        let id = format!("r{i:020x}");
        let name = format!("nightly-{i}");
        let key = store
            .run_log()
            .begin_run(&NewRun {
                id: &id,
                name: Some(&name),
                root_task: "bench.task",
                root_action: ActionId(u128::from(i) + 1),
                inputs: None,
            })
            .expect("begun");
        let status = match i % 10 {
            0 => flyte_core::record::RunStatus::Failed,
            _ => flyte_core::record::RunStatus::Succeeded,
        };
        runtime.block_on(store.run_log().end_run(
            key,
            RunEnd {
                status,
                error: None,
            },
        ));
    }
    drop(store);
    println!("10,000 runs recorded in {:.2?}", t.elapsed());
    let ui = serve(home);
    let base = ui.url();
    for (what, path) in [
        ("first page of 50, with the total", "/api/v1/runs"),
        ("a search by name", "/api/v1/runs?q=nightly-99"),
        ("failed runs only", "/api/v1/runs?status=failed"),
        ("page 100", "/api/v1/runs?offset=5000&limit=50"),
    ] {
        let (took, size) = timed(&format!("{base}{path}"), 7);
        println!("runs list, {what}: median {took:.2?} (budget 300 ms), {size} bytes");
    }
}

fn big_run(home: &Path, items: u64) {
    let started = Instant::now();
    let outcome = Runner::new().home(home).run(map_trivial(items));
    assert_eq!(outcome.output().ok(), Some(&items));
    let id = outcome.run_id().to_owned();
    println!(
        "recorded a run of {} actions in {:.2?}",
        items + 1,
        started.elapsed()
    );
    drop(outcome);
    let ui = serve(home);
    let base = format!("{}/api/v1/runs/{id}", ui.url());
    let (first, _) = get(&format!("{base}/summary"));
    println!("the run's summary, first read (its digest made): {first:.2?}");
    for (what, path) in [
        ("run", String::new()),
        ("summary", "/summary".into()),
        ("timeline (400 buckets)", "/timeline?buckets=400".into()),
    ] {
        let (took, size) = timed(&format!("{base}{path}"), 7);
        println!("the run's {what}, kept: median {took:.2?}, {size} bytes");
    }
    match chromium() {
        None => println!("no chromium on PATH: the page's paint is not measured"),
        Some(chromium) => {
            let empty = home.join("empty.html");
            std::fs::write(&empty, "<!doctype html><body data-painted=1></body>").unwrap();
            let empty = format!("file://{}", empty.display());
            let page = format!("{}/runs/{id}", ui.url());
            let (mut base, mut kept, mut cold) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..3 {
                base.push(open(&chromium, &empty));
                kept.push(open(&chromium, &page));
                // A server that has not digested the run yet: the page
                // waits for the digest.
                let fresh = serve(home);
                cold.push(open(&chromium, &format!("{}/runs/{id}", fresh.url())));
            }
            let (base, kept, cold) = (median(base), median(kept), median(cold));
            println!(
                "run page painted in headless chromium, beyond an empty page (budget 1 s): \
                 {:.2?} with the run digested (the server digests the newest ended runs \
                 ahead), {:.2?} on a server that had not ({:.2?} and {:.2?} from launch)",
                kept.saturating_sub(base),
                cold.saturating_sub(base),
                kept,
                cold
            );
        }
    }
}

fn live_lag(home: &Path) {
    let ui = serve(home);
    let n = 50_000u64;
    let runner = Runner::new().home(home).name("paced");
    let run = std::thread::spawn(move || runner.run(map_paced(n)));
    let store = flyte::store::Store::open(home).expect("a store");
    let started = Instant::now();
    let id = loop {
        if let Some((_, run)) = store.run_log().find_run(RunRef::Name("paced")).unwrap() {
            break run.id;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the run never began"
        );
        std::thread::sleep(Duration::from_millis(1));
    };
    // (when told, how many had ended)
    let mut told: Vec<(SystemTime, u64)> = Vec::new();
    let mut response = ureq::get(&format!("{}/api/v1/runs/{id}/events", ui.url()))
        .call()
        .expect("a stream");
    let reader = std::io::BufReader::new(response.body_mut().as_reader());
    let mut event = String::new();
    for line in reader.lines() {
        let line = line.expect("a line");
        if let Some(name) = line.strip_prefix("event: ") {
            event = name.to_owned();
        } else if let Some(data) = line.strip_prefix("data: ") {
            let value: serde_json::Value = serde_json::from_str(data).unwrap();
            let ended = value["ended_actions"].as_u64().unwrap_or(0);
            told.push((SystemTime::now(), ended));
            if event == "end" {
                break;
            }
        }
    }
    let outcome = run.join().unwrap();
    assert_eq!(outcome.output().ok(), Some(&n));
    let wall = outcome
        .actions()
        .ended_at
        .and_then(|end| end.duration_since(outcome.actions().started_at).ok())
        .unwrap_or_default();
    let (key, _) = store.run_log().find_run(RunRef::Id(&id)).unwrap().unwrap();
    let mut ends: Vec<SystemTime> = store
        .as_reader()
        .expect("the SQLite store reads")
        .all_actions(key, false)
        .unwrap()
        .into_iter()
        .filter_map(|a| a.ended_at)
        .collect();
    ends.sort();
    // For every action: from its end until the first update that counted
    // it (an action that ended just after a read waits for the next one).
    let mut lags: Vec<Duration> = Vec::with_capacity(ends.len());
    let mut update = 0;
    for (k, end) in ends.iter().enumerate() {
        while update < told.len() && (told[update].1 as usize) < k + 1 {
            update += 1;
        }
        let Some((at, _)) = told.get(update) else {
            break;
        };
        lags.push(at.duration_since(*end).unwrap_or_default());
    }
    lags.sort();
    let pick = |p: usize| lags[(lags.len() * p / 100).min(lags.len() - 1)];
    println!(
        "live lag at {:.0} actions/s ({} actions in {wall:.2?}, {} updates): an action was counted on the page median {:.0?}, p95 {:.0?}, max {:.0?} after it ended (budget 1 s)",
        n as f64 / wall.as_secs_f64(),
        n + 1,
        told.len(),
        pick(50),
        pick(95),
        lags[lags.len() - 1],
    );
}

/// Launches headless Chromium on `url` until it dumps the DOM, checking
/// the page painted the run.
fn open(chromium: &str, url: &str) -> Duration {
    let profile = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--virtual-time-budget=30000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .stderr(Stdio::null())
        .output()
        .expect("chromium runs");
    let elapsed = t.elapsed();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("data-painted=\"1\""),
        "the page did not paint: {dom}"
    );
    elapsed
}
