//! Async chains and sequential awaits: each step awaits the one before.
//!
//! ```python
//! raw = await fetch(id); clean = await parse(raw); await store(clean)
//! ```
//! Run: `cargo run --example async_chain`

use flyte::prelude::*;
use flyte::Runner;

static ENV: TaskEnvironment = TaskEnvironment::new("async_chain");

#[task(env = ENV)]
async fn fetch(id: u32) -> String {
    format!("  record-{id}  ")
}

#[task(env = ENV)]
async fn parse(raw: String) -> String {
    raw.trim().to_uppercase()
}

#[task(env = ENV)]
async fn store(clean: String) -> usize {
    clean.len()
}

#[task(env = ENV)]
async fn pipeline(id: u32) -> Result<usize, TaskError> {
    let raw = fetch(id).await?;
    let clean = parse(raw).await?;
    store(clean).await
}

fn main() -> Result<(), TaskError> {
    // A named run started again under its name resumes (see the `resume`
    // example); this demo is not recorded, so it runs afresh every time.
    let outcome = Runner::new().name("chain").persist(false).run(pipeline(42));
    println!("run {} ({:?}):", outcome.run_id(), outcome.name());
    for child in &outcome.actions().children {
        println!("  {} -> {:?}", child.task, child.status);
    }
    let stored = outcome.into_output()?;
    println!("stored {stored} bytes");
    assert_eq!(stored, "RECORD-42".len());
    Ok(())
}
