//! A fast, fixed-seed mutation test of what the fuzz targets (`fuzz/`) exercise: every
//! preset of `data/scenarios` mutated thousands of times with hostile numbers, names,
//! deleted, repeated and swapped lines and flipped bytes, and the default preset's
//! exported tables with hostile cells and broken columns. Each case goes through
//! `restake_run::fuzz` (parse, checks, compile, a 64-path run; import, export, import
//! again); none may panic, and enough of them must check out that the run is exercised.

use std::panic::{AssertUnwindSafe, catch_unwind};

use restake_run::fuzz::{self, Mutator};

/// Runs `case` on each input, counting panics (with the first few inputs shown) and
/// accepted inputs.
fn run_all<T: std::fmt::Debug>(
    inputs: impl Iterator<Item = T>,
    case: impl Fn(&T) -> bool,
) -> (usize, usize, usize) {
    let (mut total, mut accepted, mut panics) = (0, 0, 0);
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for input in inputs {
        total += 1;
        match catch_unwind(AssertUnwindSafe(|| case(&input))) {
            Ok(true) => accepted += 1,
            Ok(false) => {}
            Err(e) => {
                panics += 1;
                if panics <= 3 {
                    let why = e
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    eprintln!("panic: {why}\ninput: {input:?}");
                }
            }
        }
    }
    std::panic::set_hook(hook);
    (total, accepted, panics)
}

fn presets() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/scenarios");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect()
}

#[test]
fn mutated_scenarios_never_panic() {
    let presets = presets();
    let mut cases = Mutator::new(20_261_202);
    let inputs: Vec<String> = (0..3000)
        .map(|k| {
            let mut text = presets[k % presets.len()].clone();
            for _ in 0..=cases.below(3) {
                text = cases.toml(&text);
            }
            text
        })
        .collect();
    let (total, accepted, panics) = run_all(inputs.into_iter(), |t| fuzz::scenario(t));
    eprintln!("{total} mutated scenarios: {accepted} checked out and ran, {panics} panics");
    assert_eq!(panics, 0);
    assert!(accepted * 10 >= total, "only {accepted} of {total} ran");
    assert!(accepted < total, "no mutation was refused");
}

#[test]
fn mutated_tables_never_panic() {
    let base = restake_core::Scenario::from_toml(restake_run::job::DEFAULT_SCENARIO).unwrap();
    let (avs, operators) = restake_run::tables::export_tables(base.spec());
    let (avs, operators) = (
        String::from_utf8(avs).unwrap(),
        String::from_utf8(operators).unwrap(),
    );
    let mut cases = Mutator::new(7);
    let inputs: Vec<Vec<u8>> = (0..3000)
        .map(|_| {
            let (mut a, mut o) = (avs.clone(), operators.clone());
            for _ in 0..=cases.below(2) {
                if cases.below(2) == 0 {
                    a = cases.csv(&a);
                } else {
                    o = cases.csv(&o);
                }
            }
            [a.as_bytes(), b"\0", o.as_bytes()].concat()
        })
        .collect();
    let (total, accepted, panics) = run_all(inputs.into_iter(), |d| fuzz::import(d));
    eprintln!("{total} mutated table pairs: {accepted} imported, {panics} panics");
    assert_eq!(panics, 0);
    assert!(
        accepted * 10 >= total,
        "only {accepted} of {total} imported"
    );
    assert!(accepted < total, "no mutation was refused");
}
