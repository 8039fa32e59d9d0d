//! Flyte 1 `map_task` → `flyte::map`.
//!
//! Flyte 1:
//! ```python
//! @task
//! def process_item(x: int) -> int: return x * 2
//! @workflow
//! def wf(items: list[int]) -> list[int]: return map_task(process_item)(x=items)
//! ```
//! Run: `cargo run --example basic_map`

use flyte::prelude::*;

static ENV: TaskEnvironment = TaskEnvironment::new("basic_map");

#[task(env = ENV)]
fn process_item(x: i64) -> i64 {
    x * 2
}

#[task(env = ENV)]
async fn main_task(items: Vec<i64>) -> Result<Vec<i64>, TaskError> {
    flyte::map(process_item, items).await
}

fn main() -> Result<(), TaskError> {
    let out = flyte::run(main_task((1..=10).collect()))?;
    println!("doubled: {out:?}");
    assert_eq!(out, (1..=10).map(|x| x * 2).collect::<Vec<_>>());
    Ok(())
}
