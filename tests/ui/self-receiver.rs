use flyte::prelude::*;

struct Counter(u32);

impl Counter {
    #[task]
    fn bump(&self) -> u32 {
        self.0 + 1
    }
}

fn main() {}
