//! An abort filed in the store (`flyte abort RUN`, `RunOperations::request_abort`)
//! stops a run going on elsewhere, also one started with `run_async` (which
//! does not listen for signals): the run ends cancelled within a few polls
//! and every action still going is recorded cancelled.

use flyte::prelude::*;
use flyte::store::{RunFilter, RunLog, RunOperations, RunReader, RunRef, RunStatus, Store};
use std::time::{Duration, Instant};

#[task]
async fn wait_ms(ms: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    ms
}

#[task]
async fn long_map(n: u64) -> Result<u64, TaskError> {
    let out = flyte::map(wait_ms, std::iter::repeat_n(50, n as usize))
        .concurrency(4)
        .await?;
    Ok(out.iter().sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_request_cancels_a_run_async_run() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().to_owned();
    let aborter = std::thread::spawn(move || {
        let store = Store::open(&path).unwrap();
        let started = Instant::now();
        let key = loop {
            let running = store
                .list_runs(&RunFilter::all().status(RunStatus::Running))
                .unwrap();
            if let Some(run) = running.first() {
                break store.find_run(RunRef::Id(&run.id)).unwrap().unwrap().0;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the run never started"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        std::thread::sleep(Duration::from_millis(200));
        store.request_abort(key).unwrap();
        Instant::now()
    });
    // 400 waits of 50 ms, four at a time: five seconds unless aborted.
    let outcome = flyte::Runner::new()
        .home(home.path())
        .run_async(long_map(400))
        .await;
    let ended = Instant::now();
    let asked = aborter.join().unwrap();
    let err = outcome.output().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Cancelled, "{err}");
    assert!(err.message().contains("abort request"), "{err}");
    // Polled every 50 ms; the items in flight stop at their next await.
    assert!(
        ended.duration_since(asked) < Duration::from_secs(1),
        "took {:?}",
        ended.duration_since(asked)
    );

    let store = Store::open(home.path()).unwrap();
    let (key, run) = store
        .find_run(RunRef::Id(outcome.run_id()))
        .unwrap()
        .unwrap();
    assert_eq!(run.status, RunStatus::Cancelled);
    let fan_out = store.fan_outs(key).unwrap().pop().expect("the map's row");
    assert!(
        fan_out.cancelled >= 1,
        "the waits in flight were recorded cancelled: {fan_out:?}"
    );
    assert_eq!(
        fan_out.succeeded + fan_out.failed + fan_out.cancelled,
        fan_out.started
    );
    assert!(fan_out.started < 400, "no item started after the abort");
}
