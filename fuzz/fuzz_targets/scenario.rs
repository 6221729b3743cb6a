//! Any bytes as a scenario file: parsed and checked, and, when it checks out, compiled
//! and its first path simulated, as `restake-mc validate` and a run's first step do. No
//! input may panic (a panic, an overflow check or an abort is a finding).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = restake_run::fuzz::scenario(text);
});
