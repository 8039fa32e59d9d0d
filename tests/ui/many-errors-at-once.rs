use flyte::prelude::*;

#[task]
const fn both<T>(x: &T) -> u8 {
    1
}

fn main() {}
