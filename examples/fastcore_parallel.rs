//! A port of fastcore's `parallel(f, items, n_workers=4, threadpool=True,
//! **kwargs)`: extra arguments are bound with a closure (Python's
//! `functools.partial`), and the work is sync code on threads.
//!
//! Run: `cargo run --example fastcore_parallel`

use flyte::prelude::*;

static ENV: TaskEnvironment = TaskEnvironment::new("fastcore_parallel");

#[task(env = ENV)]
fn resize(width: u32, scale: u32, max_width: u32) -> u32 {
    (width * scale).min(max_width)
}

fn main() -> Result<(), TaskError> {
    let widths = vec![100, 250, 400, 800, 1_200];
    let (scale, max_width) = (2, 1_600);
    // parallel(resize, widths, scale=2, max_width=1600, n_workers=4)
    let resized = flyte::map(move |w| resize(w, scale, max_width), widths)
        .concurrency(4)
        .wait()?;
    println!("resized: {resized:?}");
    assert_eq!(resized, vec![200, 500, 800, 1_600, 1_600]);
    Ok(())
}
