use flyte::prelude::*;

struct Opaque;

#[task]
fn consume(value: Opaque) -> u8 {
    let _ = value;
    1
}

fn main() {}
