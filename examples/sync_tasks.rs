//! Sync tasks calling sync tasks: Flyte 2's `list(flyte.map(...))` in a
//! sync task becomes `.wait()`. Sync tasks run on blocking threads, never
//! on the async workers.
//!
//! Run: `cargo run --example sync_tasks`

use flyte::prelude::*;

static ENV: TaskEnvironment = TaskEnvironment::new("sync_tasks");

#[task(env = ENV)]
fn tokenize(line: String) -> Vec<String> {
    line.split_whitespace().map(str::to_lowercase).collect()
}

#[task(env = ENV)]
fn count_words(lines: Vec<String>) -> Result<usize, TaskError> {
    let tokens = flyte::map(tokenize, lines).concurrency(4).wait()?;
    Ok(tokens.iter().map(Vec::len).sum())
}

#[task(env = ENV)]
fn report(lines: Vec<String>) -> Result<String, TaskError> {
    let words = count_words(lines.clone()).wait()?;
    Ok(format!("{} lines, {words} words", lines.len()))
}

fn main() -> Result<(), TaskError> {
    let text = [
        "The quick brown fox",
        "jumps over the lazy dog",
        "and runs away",
    ];
    let summary = flyte::run(report(text.iter().map(|s| s.to_string()).collect()))?;
    println!("{summary}");
    assert_eq!(summary, "3 lines, 12 words");
    Ok(())
}
