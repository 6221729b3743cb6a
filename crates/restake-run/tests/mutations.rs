//! A fast, fixed-seed mutation test of what the fuzz targets (`fuzz/`) exercise: every
//! preset of `data/scenarios` mutated thousands of times with hostile numbers, names,
//! deleted, repeated and swapped lines and flipped bytes, and the default preset's
//! exported tables with hostile cells and broken columns. Each case goes through
//! `restake_run::fuzz` (parse, checks, compile, a 64-path run; import, export, import
//! again); none may panic, and enough of them must check out that the run is exercised.

use std::panic::{AssertUnwindSafe, catch_unwind};

use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use restake_run::fuzz;

/// A fixed stream of case choices.
struct Cases(Xoshiro256PlusPlus);

impl Cases {
    fn new(seed: u64) -> Self {
        Self(Xoshiro256PlusPlus::seed_from_u64(seed))
    }

    fn next(&mut self) -> u64 {
        self.0.random()
    }

    fn below(&mut self, n: usize) -> usize {
        self.0.random_range(0..n)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const NUMBERS: [&str; 22] = [
    "0",
    "-0.0",
    "1",
    "-1",
    "2",
    "10",
    "1e308",
    "-1e308",
    "5e-324",
    "1e-320",
    "nan",
    "inf",
    "-inf",
    "0.9999999999999999",
    "1e15",
    "36500",
    "0.001",
    "1e-9",
    "100000000000",
    "4096",
    "0.5",
    "1.0000000000000002",
];

const NAMES: [&str; 12] = [
    "=HYPERLINK(\\\"http://x\\\")",
    "+1",
    "-cmd",
    "@SUM(A1)",
    "\\u001b[31mred",
    "a\\tb",
    " padded ",
    "",
    "..",
    "a/b",
    "\\u0000",
    "ünïcödé ✓",
];

/// One mutation of a TOML text.
fn mutate_toml(text: &str, cases: &mut Cases) -> String {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let i = cases.below(lines.len());
    match cases.below(7) {
        0 | 1 => {
            // A number after `=` replaced.
            if let Some(eq) = lines[i].find("= ") {
                let rest = &lines[i][eq + 2..];
                if rest.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
                    let end = rest
                        .find(|c: char| c.is_whitespace() || c == ',' || c == '}')
                        .unwrap_or(rest.len());
                    lines[i] = format!(
                        "{}= {}{}",
                        &lines[i][..eq],
                        cases.pick(&NUMBERS),
                        &rest[end..]
                    );
                }
            }
        }
        2 => {
            // A string value replaced.
            if let (Some(a), Some(b)) = (lines[i].find('"'), lines[i].rfind('"'))
                && b > a
            {
                let name = if cases.below(8) == 0 {
                    "x".repeat(300)
                } else {
                    cases.pick(&NAMES).to_string()
                };
                lines[i] = format!("{}\"{name}\"{}", &lines[i][..a], &lines[i][b + 1..]);
            }
        }
        3 => {
            lines.remove(i);
        }
        4 => {
            let line = lines[i].clone();
            lines.insert(i, line);
        }
        5 => {
            let j = cases.below(lines.len());
            lines.swap(i, j);
        }
        _ => {
            let mut bytes = lines[i].clone().into_bytes();
            if !bytes.is_empty() {
                let k = cases.below(bytes.len());
                bytes[k] = (cases.next() % 128) as u8;
            }
            lines[i] = String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    lines.join("\n")
}

/// One mutation of a CSV table: a cell, a column or the header broken.
fn mutate_csv(text: &str, cases: &mut Cases) -> String {
    let mut rows: Vec<Vec<String>> = text
        .lines()
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    let r = cases.below(rows.len());
    let c = cases.below(rows[r].len());
    match cases.below(6) {
        0 | 1 => rows[r][c] = cases.pick(&NUMBERS).to_string(),
        2 => rows[r][c] = cases.pick(&NAMES).replace("\\\"", "\"\""),
        3 => {
            for row in &mut rows {
                if c < row.len() {
                    row.remove(c);
                }
            }
        }
        4 => {
            for row in &mut rows {
                if c < row.len() {
                    let cell = row[c].clone();
                    row.push(cell);
                }
            }
        }
        _ => rows[0][c].push('x'),
    }
    rows.iter()
        .map(|r| r.join(","))
        .collect::<Vec<_>>()
        .join("\n")
}

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
    let mut cases = Cases::new(20_261_202);
    let inputs: Vec<String> = (0..3000)
        .map(|k| {
            let mut text = presets[k % presets.len()].clone();
            for _ in 0..=cases.below(3) {
                text = mutate_toml(&text, &mut cases);
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
    let mut cases = Cases::new(7);
    let inputs: Vec<Vec<u8>> = (0..3000)
        .map(|_| {
            let (mut a, mut o) = (avs.clone(), operators.clone());
            for _ in 0..=cases.below(2) {
                if cases.below(2) == 0 {
                    a = mutate_csv(&a, &mut cases);
                } else {
                    o = mutate_csv(&o, &mut cases);
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
