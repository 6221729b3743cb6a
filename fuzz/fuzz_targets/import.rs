//! Any bytes as the two spreadsheet tables of `restake-mc import` (split at the first
//! NUL byte: `avs.csv`, then `operators.csv`) over the bundled scenario. No input may
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = restake_run::fuzz::import(data);
});
