//! Settings at their extremes never panic, and their edge cases do what
//! the docs say: huge limits, a zero timeout, the stagger's end, a type the
//! codec cannot read back, and `group(..).wait()`.

use flyte::prelude::*;
use flyte::{Recorded, Runner};
use std::time::{Duration, Instant};
use tempfile::TempDir;

static HUGE_RATE: TaskEnvironment =
    TaskEnvironment::new("huge_rate").rate_limit(u32::MAX, Duration::from_secs(1));
static ETERNAL_WINDOW: TaskEnvironment =
    TaskEnvironment::new("eternal_window").rate_limit(1, Duration::MAX);
static HUGE_CONCURRENCY: TaskEnvironment =
    TaskEnvironment::new("huge_concurrency").concurrency(usize::MAX);
static SLOW_LIMIT: TaskEnvironment =
    TaskEnvironment::new("slow_limit").timeout(Duration::from_millis(10));

#[task(env = HUGE_RATE)]
fn under_huge_rate(x: u32) -> u32 {
    x
}

#[task(env = ETERNAL_WINDOW)]
fn under_eternal_window(x: u32) -> u32 {
    x
}

#[task(env = HUGE_CONCURRENCY)]
fn under_huge_concurrency(x: u32) -> u32 {
    x
}

/// Regression: `rate_limit(u32::MAX, d)` aborted (it reserved the whole
/// window), `rate_limit(1, Duration::MAX)` panicked adding to a clock, and
/// `concurrency(usize::MAX)` panicked inside tokio's semaphore.
#[test]
fn extreme_limits_run_instead_of_panicking() {
    assert_eq!(under_huge_rate(1).wait().unwrap(), 1);
    assert_eq!(
        flyte::map(under_huge_rate, 0..100).wait().unwrap().len(),
        100
    );
    assert_eq!(under_huge_concurrency(2).wait().unwrap(), 2);
    assert_eq!(
        HUGE_CONCURRENCY.concurrency_setting(),
        None,
        "beyond any run: unbounded"
    );
    // One start per eternity, in a run: the first runs; the second waits
    // (until dropped here), without a panic.
    assert_eq!(flyte::run(twice_in_an_eternal_window()).unwrap(), (3, true));
}

#[task]
async fn twice_in_an_eternal_window() -> Result<(u32, bool), TaskError> {
    let first = under_eternal_window(3).await?;
    let second = tokio::time::timeout(Duration::from_millis(50), under_eternal_window(4)).await;
    Ok((first, second.is_err()))
}

#[task(env = SLOW_LIMIT)]
async fn takes_30ms() -> u8 {
    tokio::time::sleep(Duration::from_millis(30)).await;
    7
}

/// A zero limit means no limit (as `concurrency(0)` means no bound), and
/// the most specific setting wins: zero on a call lifts the environment's.
#[test]
fn a_zero_timeout_means_no_limit() {
    assert_eq!(takes_30ms().timeout(Duration::ZERO).wait().unwrap(), 7);
    let limited = takes_30ms().wait().unwrap_err();
    assert_eq!(limited.kind(), ErrorKind::Timeout);
}

#[task]
fn instant(x: u32) -> u32 {
    x
}

/// Regression: the stagger waited one more gap after the last item, so a
/// one-item map at `stagger(1 hour)` took an hour.
#[test]
fn the_stagger_does_not_wait_after_the_last_item() {
    let t = Instant::now();
    let one = flyte::map(instant, [1])
        .stagger(Duration::from_secs(3_600))
        .wait();
    assert_eq!(one.unwrap(), [1]);
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());

    // Two items a second apart take one gap, not two.
    let t = Instant::now();
    let two = flyte::map(instant, [1, 2])
        .stagger(Duration::from_secs(1))
        .wait();
    assert_eq!(two.unwrap(), [1, 2]);
    let took = t.elapsed();
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(took < Duration::from_millis(1_900), "{took:?}");
}

#[task]
fn json_size(value: serde_json::Value) -> usize {
    value.to_string().len()
}

#[task(cache = "auto")]
fn json_echo(text: String) -> serde_json::Value {
    serde_json::json!({ "text": text })
}

/// Regression: a `serde_json::Value` parameter ran, then broke resume
/// (the codec cannot read it back); a `Value` output never hit the cache.
#[test]
fn a_type_the_codec_cannot_read_back_is_refused_clearly() {
    let home = TempDir::new().unwrap();
    let value = serde_json::json!({"a": [1, 2]});
    // A run that needs its record refuses at the start, saying why.
    let named = Runner::new()
        .home(home.path())
        .name("json")
        .run(json_size(value.clone()));
    let err = named.into_output().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Input, "{err}");
    assert!(err.message().contains("self-describing"), "{err}");
    assert!(err.message().contains("String"), "says what to use: {err}");
    // Unrecorded, it runs.
    let off = Runner::new()
        .home(home.path())
        .persist(false)
        .run(json_size(value));
    assert_eq!(off.output().unwrap(), &11);
    assert_eq!(off.recorded(), &Recorded::Off { reason: None });

    // A cached task whose output cannot be read back is run, not cached.
    let runner = Runner::new().home(home.path());
    for _ in 0..2 {
        let out = runner.run(json_echo("hi".into()));
        assert_eq!(out.actions().origin, flyte::Origin::Executed);
        assert_eq!(
            out.into_output().unwrap(),
            serde_json::json!({"text": "hi"})
        );
    }
}

#[task]
fn trim(s: String) -> String {
    s.trim().to_owned()
}

#[task]
fn sync_parent(rows: Vec<String>) -> Result<Vec<String>, TaskError> {
    flyte::group("cleaning", flyte::map(trim, rows)).wait()
}

/// `flyte::group` has `.wait()` for sync code, like every other awaitable.
#[test]
fn a_group_waits_in_sync_code() {
    let outcome = Runner::new()
        .persist(false)
        .run(sync_parent(vec![" x ".into()]));
    assert_eq!(
        outcome.actions().fan_outs[0].group.as_deref(),
        Some("cleaning")
    );
    assert_eq!(outcome.into_output().unwrap(), ["x"]);
    // Outside any run it runs unlabelled.
    assert_eq!(flyte::group("g", trim(" y ".into())).wait().unwrap(), "y");
}
