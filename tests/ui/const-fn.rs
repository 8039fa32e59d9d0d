use flyte::prelude::*;

#[task]
const fn one() -> u8 {
    1
}

fn main() {}
