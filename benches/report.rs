//! The report's budgets (issue 11) on a run of 1,000,000 actions: written
//! in ≤ 5 s by streaming the store (never loading outputs), ≤ 8 MB, ready in
//! headless Chromium in ≤ 3 s.
//!
//! Run: `cargo bench --bench report` (`FLYTE_REPORT_ITEMS=100000` for a
//! smaller run). Records one run with the defaults (a 1M-item map of a
//! trivial task, recorded in a temporary store), writes its report three
//! times and prints the median time and the size; then, when `chromium` is
//! on PATH, opens the page three times and prints the median time to the
//! page's ready mark, beside the same browser opening an empty page.

mod common;

use common::{chromium, items_from_env, map_trivial, median};
use flyte::Runner;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for the list of benchmarks
    }
    let items = items_from_env("FLYTE_REPORT_ITEMS", 1_000_000);
    let home = std::env::temp_dir().join(format!("flyte-bench-report-{}", std::process::id()));
    let runner = Runner::new().home(&home);
    let started = Instant::now();
    let outcome = runner.run(map_trivial(items));
    assert_eq!(outcome.output().ok(), Some(&items));
    println!(
        "recorded a run of {} actions in {:.2?}",
        items + 1,
        started.elapsed()
    );

    let page = home.join("report.html");
    let mut writes = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        outcome.write_report(&page).expect("report written");
        writes.push(t.elapsed());
    }
    let size = std::fs::metadata(&page).unwrap().len();
    println!(
        "report written: median {:.2?} (budget 5 s), {:.2} MB (budget 8 MB), {:.2} bytes an action",
        median(writes.clone()),
        size as f64 / 1e6,
        size as f64 / (items + 1) as f64
    );

    match chromium() {
        None => println!("no chromium on PATH: the page's ready time is not measured"),
        Some(chromium) => {
            let empty = home.join("empty.html");
            std::fs::write(&empty, "<!doctype html><body data-ready=1></body>").unwrap();
            let mut base = Vec::new();
            let mut ready = Vec::new();
            for _ in 0..3 {
                base.push(open(&chromium, &empty));
                ready.push(open(&chromium, &page));
            }
            let (base, ready) = (median(base), median(ready));
            println!(
                "page ready in headless chromium: median {ready:.2?} from launch, {:.2?} beyond an empty page (budget 3 s)",
                ready.saturating_sub(base)
            );
        }
    }
    std::fs::remove_dir_all(&home).ok();
}

/// Launches headless Chromium on `page` until it dumps the DOM (after the
/// page's scripts ran), checking the page got ready.
fn open(chromium: &str, page: &Path) -> Duration {
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
        .arg(format!("file://{}", page.display()))
        .stderr(Stdio::null())
        .output()
        .expect("chromium runs");
    let elapsed = t.elapsed();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("data-ready=\"1\""),
        "the page did not get ready"
    );
    elapsed
}
