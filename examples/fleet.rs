//! Fleet mode on one machine: three worker processes share a `map` through
//! PostgreSQL; one is killed with SIGKILL in the middle, and its items run
//! again elsewhere. Prints where each item ran.
//!
//! ```text
//! FLYTE_POSTGRES_URL=postgres://flyte:flyte@localhost/flyte \
//!     cargo run --example fleet --features postgres
//! ```
//!
//! Across machines, ask for TLS and check the server's certificate:
//! `FLYTE_POSTGRES_URL=postgres://flyte:secret@db.example/flyte?sslmode=verify-full`
//! (the system's authorities; `&sslrootcert=/path/ca.pem` for your own).
//! CI runs this example with `?sslmode=require`.
//!
//! The same binary is the driver (no argument) and a worker (`worker`):
//! workers must be built from the same code, since they claim tasks by
//! name and code version.

use flyte::prelude::*;
use std::collections::BTreeMap;
use std::process::{Child, Command};
use std::time::Duration;

static FLEET: TaskEnvironment = TaskEnvironment::new("fleet_demo").retries(2);

/// One item: a little work, and the worker process it ran in.
#[task(env = FLEET)]
fn square_where(x: u64) -> (u64, u32) {
    std::thread::sleep(Duration::from_millis(30));
    (x * x, std::process::id())
}

/// The root: runs in the driver; each item is queued for the workers.
#[task(env = FLEET)]
async fn spread(n: u64) -> Result<Vec<(u64, u32)>, TaskError> {
    flyte::map(square_where, 0..n).concurrency(48).await
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Ok(url) = std::env::var("FLYTE_POSTGRES_URL") else {
        eprintln!(
            "fleet example skipped: set FLYTE_POSTGRES_URL to a PostgreSQL database \
             (postgres://user:password@localhost/db)"
        );
        return Ok(());
    };
    if std::env::args().nth(1).as_deref() == Some("worker") {
        return Ok(flyte::fleet::Worker::new(url).concurrency(8).run()?);
    }

    let mut workers: Vec<Child> = (0..3)
        .map(|_| Command::new(std::env::current_exe()?).arg("worker").spawn())
        .collect::<Result<_, _>>()?;
    println!(
        "workers: {:?}",
        workers.iter().map(Child::id).collect::<Vec<_>>()
    );

    // Kill one worker while the map runs: its items are queued again once
    // its lease runs out (10 s) and finish on the others.
    let victim = workers.remove(0);
    let victim_pid = victim.id();
    let killer = std::thread::spawn(move || {
        let mut victim = victim;
        std::thread::sleep(Duration::from_millis(1000));
        let _ = victim.kill(); // SIGKILL: no goodbye
        let _ = victim.wait();
    });

    let outcome = flyte::Runner::new()
        .postgres(&url)
        .no_worker_timeout(Duration::from_secs(30))
        .run(spread(1500));
    killer.join().ok();
    let run_id = outcome.run_id().to_owned();
    let items = outcome.into_output()?;

    let mut by_worker: BTreeMap<u32, usize> = BTreeMap::new();
    for (i, (square, pid)) in items.iter().enumerate() {
        assert_eq!(*square, (i as u64) * (i as u64));
        *by_worker.entry(*pid).or_default() += 1;
    }
    println!("run {run_id}: {} items", items.len());
    for (pid, n) in &by_worker {
        let note = if *pid == victim_pid { " (killed)" } else { "" };
        println!("  worker {pid}{note}: {n} items");
    }
    assert!(
        !by_worker.contains_key(&victim_pid) || by_worker.len() > 1,
        "the surviving workers finished the run"
    );

    for mut worker in workers {
        // SIGTERM: the worker leaves the fleet cleanly.
        let _ = Command::new("kill").arg(worker.id().to_string()).status();
        let _ = worker.wait();
    }
    Ok(())
}
