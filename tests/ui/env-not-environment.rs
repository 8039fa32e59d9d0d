use flyte::prelude::*;

static NOT_AN_ENV: &str = "my_env";

#[task(env = NOT_AN_ENV)]
fn work() -> u8 {
    1
}

fn main() {}
