//! Any bytes given to `call_bytes` are an `Input` error or a call: never a
//! panic, an abort or a stack overflow. The first byte picks the task.
#![no_main]

mod tasks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&pick, input)) = data.split_first() else {
        return;
    };
    let name = tasks::NAMES[usize::from(pick) % tasks::NAMES.len()];
    if let Ok(call) = flyte::registry().call_bytes(name, input) {
        let _ = call.wait();
    }
});
