//! Per-item errors: `asyncio.gather(..., return_exceptions=True)` →
//! `.collect_errors()`, and the fail-fast default.
//!
//! Run: `cargo run --example error_handling`

use flyte::prelude::*;

static ENV: TaskEnvironment = TaskEnvironment::new("error_handling");

#[derive(Debug, thiserror::Error)]
#[error("record {id} has no email")]
struct MissingEmail {
    id: u32,
}

#[task(env = ENV)]
fn validate(id: u32) -> Result<u32, MissingEmail> {
    if id.is_multiple_of(4) {
        Err(MissingEmail { id })
    } else {
        Ok(id)
    }
}

#[task(env = ENV)]
async fn validate_all(ids: Vec<u32>) -> Result<(usize, usize), TaskError> {
    let results = flyte::map(validate, ids)
        .concurrency(4)
        .collect_errors()
        .await;
    let mut ok = 0;
    for result in &results {
        match result {
            Ok(_) => ok += 1,
            Err(e) => {
                let original = e.downcast_ref::<MissingEmail>().map(|m| m.id);
                println!(
                    "  item {:?} failed: {e} (original id {original:?})",
                    e.index()
                );
            }
        }
    }
    Ok((ok, results.len() - ok))
}

fn main() -> Result<(), TaskError> {
    println!("settle every item with collect_errors():");
    let (ok, failed) = flyte::run(validate_all((1..=10).collect()))?;
    println!("{ok} valid, {failed} invalid");
    assert_eq!((ok, failed), (8, 2));

    println!("fail-fast by default:");
    let err = flyte::map(validate, 1..=10).wait().unwrap_err();
    println!("  first error: {err}");
    assert_eq!(err.kind(), ErrorKind::User);
    Ok(())
}
