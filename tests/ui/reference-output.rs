use flyte::prelude::*;

#[task]
fn name() -> &'static str {
    "x"
}

fn main() {}
