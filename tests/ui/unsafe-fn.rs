use flyte::prelude::*;

#[task]
unsafe fn danger() -> u8 {
    1
}

fn main() {}
