//! Any JSON given to `call_json` is an `Input` error or a call. The first
//! byte picks the task; the rest is parsed as JSON.
#![no_main]

mod tasks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&pick, input)) = data.split_first() else {
        return;
    };
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(input) else {
        return;
    };
    let name = tasks::NAMES[usize::from(pick) % tasks::NAMES.len()];
    if let Ok(call) = flyte::registry().call_json(name, json) {
        let _ = call.wait();
    }
});
