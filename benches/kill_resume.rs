//! What a `kill -9` loses: a named run of 100,000 trivial items is killed
//! at a random moment, then resumed; items that had finished before the
//! kill but whose records were not yet on disk run again. Prints, over the
//! trials, how many ran again and how long a stretch of the run that is.
//!
//! Run: `cargo bench --bench kill_resume` (add `-- --quick` for 5 trials
//! instead of 20, `-- --load N` to keep N threads of this process spinning
//! meanwhile: a machine busy with other work, where the store's writer
//! gets the CPU late). The child processes are this binary (`--child`).

use flyte::prelude::*;
use flyte::Runner;
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

const ITEMS: u64 = 100_000;

/// In the child: print each finished item. In the parent: count re-runs.
static IN_CHILD: AtomicBool = AtomicBool::new(false);
static RAN_AGAIN: Mutex<Vec<u64>> = Mutex::new(Vec::new());

#[task]
fn item(i: u64) -> u64 {
    if IN_CHILD.load(Ordering::Relaxed) {
        // The item is done once this line is out; its record follows.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{i}");
    } else {
        RAN_AGAIN.lock().unwrap().push(i);
    }
    i.wrapping_mul(2)
}

#[task]
async fn items(n: u64) -> Result<u64, TaskError> {
    let out = flyte::map(item, 0..n).concurrency(64).await?;
    Ok(out.len() as u64)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--child") {
        IN_CHILD.store(true, Ordering::Relaxed);
        let home = &args[at + 1];
        let name = &args[at + 2];
        let _ = Runner::new().home(home).name(name).run(items(ITEMS));
        return;
    }
    let trials = if args.iter().any(|a| a == "--quick") {
        5
    } else {
        20
    };
    let load: usize = args
        .iter()
        .position(|a| a == "--load")
        .and_then(|at| args.get(at + 1)?.parse().ok())
        .unwrap_or(0);
    let spinning = std::sync::Arc::new(AtomicBool::new(true));
    for _ in 0..load {
        let spinning = std::sync::Arc::clone(&spinning);
        std::thread::spawn(move || {
            let mut x = 0_u64;
            while spinning.load(Ordering::Relaxed) {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
        });
    }
    let exe = std::env::current_exe().expect("this binary");
    let home = std::env::temp_dir().join(format!("flyte-bench-kill-{}", std::process::id()));
    // A whole run, unkilled, for its rate.
    let t = Instant::now();
    let whole = Command::new(&exe)
        .args(["--child", home.to_str().unwrap(), "whole"])
        .stdout(Stdio::null())
        .status()
        .expect("child");
    assert!(whole.success());
    let run_time = t.elapsed();
    let mut lost = Vec::new();
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64 ^ u64::from(std::process::id());
    for trial in 0..trials {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // Somewhere between 10% and 90% of the way through.
        let kill_at = run_time.mul_f64(0.1 + 0.8 * (seed % 1000) as f64 / 1000.0);
        let name = format!("trial-{trial}");
        let mut child = Command::new(&exe)
            .args(["--child", home.to_str().unwrap(), &name])
            .stdout(Stdio::piped())
            .spawn()
            .expect("child");
        let stdout = child.stdout.take().expect("piped");
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| l.parse::<u64>().ok())
                .collect::<HashSet<u64>>()
        });
        std::thread::sleep(kill_at);
        child.kill().expect("kill -9"); // SIGKILL on Unix
        let _ = child.wait();
        let finished = reader.join().expect("reader");
        RAN_AGAIN.lock().unwrap().clear();
        let resumed = Runner::new().home(&home).name(&name).run(items(ITEMS));
        assert_eq!(resumed.into_output().expect("the resume completes"), ITEMS);
        let again = RAN_AGAIN
            .lock()
            .unwrap()
            .iter()
            .filter(|i| finished.contains(i))
            .count();
        // At the rate this child finished items: how much of its work that was.
        let rate = finished.len() as f64 / kill_at.as_secs_f64();
        let window_ms = again as f64 / rate * 1e3;
        println!(
            "  trial {trial:>2}: killed after {:>6.1?}, {:>6} items finished, {:>5} of them ran again (~{window_ms:.1} ms of work)",
            kill_at,
            finished.len(),
            again
        );
        if finished.len() < ITEMS as usize {
            lost.push((again, window_ms));
        }
    }
    if lost.is_empty() {
        println!("every child finished before its kill: nothing measured");
        return;
    }
    let by = |f: fn(&(usize, f64)) -> f64| {
        let mut xs: Vec<f64> = lost.iter().map(f).collect();
        xs.sort_by(f64::total_cmp);
        (xs[xs.len() / 2], xs[xs.len() - 1])
    };
    let (median, worst) = by(|l| l.0 as f64);
    let (median_ms, worst_ms) = by(|l| l.1);
    spinning.store(false, Ordering::Relaxed);
    println!(
        "kill -9 of a recorded {ITEMS}-item map ({run_time:.2?} a run), {} trials killed mid-run, \
         {load} spinning threads beside it, {} cores:",
        lost.len(),
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!(
        "  finished items that ran again on resume: median {median} (~{median_ms:.1} ms of work), \
         worst {worst} (~{worst_ms:.1} ms)"
    );
    std::fs::remove_dir_all(&home).ok();
}
