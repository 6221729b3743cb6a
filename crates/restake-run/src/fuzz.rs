//! The bodies of the fuzz targets under `fuzz/` (cargo fuzz, libFuzzer), shared with the
//! fixed-seed mutation test of the ordinary test suite, so that both run exactly what a
//! user's input goes through. Each returns normally for any input; a panic is a finding.
//! [`Mutator`] makes that test's inputs.

use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::job::{DEFAULT_SCENARIO, Job, JobSpec, Overrides, Source};
use crate::shard::ShardPlan;
use crate::tables::{export_tables, import_tables};

/// Paths a fuzzed scenario that checks out is run with.
const FUZZ_PATHS: u64 = 64;

/// `text` as a scenario file, as `restake-mc run` takes it: parsed, checked, compiled
/// with the run's own checks ([`Job::build`]), then, when it checks out, [`FUZZ_PATHS`]
/// paths simulated, reduced and finished, and its TOML (as `import` writes it) parsed
/// back. Returns whether it checked out.
///
/// # Panics
/// When the engine panics, or when the TOML of a scenario that checked out does not
/// parse back to the same scenario.
pub fn scenario(text: &str) -> bool {
    let source = Source {
        text: text.to_string(),
        origin: "fuzz.toml".into(),
    };
    let overrides = Overrides {
        paths: Some(FUZZ_PATHS),
        seed: None,
    };
    let Ok(job) = Job::build(JobSpec::Run(source), overrides, 1) else {
        return false;
    };
    for m in &job.members {
        if let Ok(partial) = m.simulate(ShardPlan::WHOLE, &|_| {}) {
            let _ = m.finish(partial);
        }
        let written = toml::to_string(m.scenario.spec()).expect("a checked scenario serialises");
        let back = restake_core::Scenario::from_toml(&written)
            .unwrap_or_else(|e| panic!("written scenario does not read back: {e}\n{written}"));
        assert_eq!(back.spec(), m.scenario.spec(), "written scenario differs");
    }
    true
}

/// `data` as the two tables of `restake-mc import` (split at the first NUL byte:
/// `avs.csv`, then `operators.csv`) over the bundled scenario; a scenario that checks
/// out is exported and imported again. Returns whether the tables checked out.
///
/// # Panics
/// When the import panics, or when export then import does not give the scenario back.
pub fn import(data: &[u8]) -> bool {
    let (avs, operators) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let base = restake_core::Scenario::from_toml(DEFAULT_SCENARIO).expect("bundled scenario");
    let Ok(scenario) = import_tables(base.spec(), ("avs.csv", avs), ("operators.csv", operators))
    else {
        return false;
    };
    let (avs, operators) = export_tables(scenario.spec());
    let back = import_tables(
        scenario.spec(),
        ("avs.csv", &avs),
        ("operators.csv", &operators),
    )
    .unwrap_or_else(|e| panic!("exported tables do not import: {e}"));
    assert_eq!(back.spec(), scenario.spec(), "export then import differs");
    true
}

/// Numbers that break naive checks: signed zeros, extremes, subnormals, NaN, infinities.
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

/// Names that break naive writers: formulas, escape sequences, tabs, padding, path parts.
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

/// Hostile mutations of scenario files and spreadsheet tables, from a fixed seed: for
/// tests that feed the same inputs as the fuzz targets do, but fast and repeatable
/// (`tests/mutations.rs` here, the command-line checks of `restake-cli`).
pub struct Mutator(Xoshiro256PlusPlus);

impl Mutator {
    /// A mutator whose choices follow from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(Xoshiro256PlusPlus::seed_from_u64(seed))
    }

    fn next(&mut self) -> u64 {
        self.0.random()
    }

    /// A choice in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        self.0.random_range(0..n)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// One mutation of a TOML text: a number after `=` replaced by a hostile one, a
    /// string by a hostile name, a line deleted, repeated or swapped, or a byte changed.
    pub fn toml(&mut self, text: &str) -> String {
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        let i = self.below(lines.len());
        match self.below(7) {
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
                            self.pick(&NUMBERS),
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
                    let name = if self.below(8) == 0 {
                        "x".repeat(300)
                    } else {
                        self.pick(&NAMES).to_string()
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
                let j = self.below(lines.len());
                lines.swap(i, j);
            }
            _ => {
                let mut bytes = lines[i].clone().into_bytes();
                if !bytes.is_empty() {
                    let k = self.below(bytes.len());
                    bytes[k] = (self.next() % 128) as u8;
                }
                lines[i] = String::from_utf8_lossy(&bytes).into_owned();
            }
        }
        lines.join("\n")
    }

    /// One mutation of a CSV table: a cell replaced by a hostile number or name, a
    /// column deleted or repeated, or a header cell misspelled.
    pub fn csv(&mut self, text: &str) -> String {
        let mut rows: Vec<Vec<String>> = text
            .lines()
            .map(|l| l.split(',').map(String::from).collect())
            .collect();
        let r = self.below(rows.len());
        let c = self.below(rows[r].len());
        match self.below(6) {
            0 | 1 => rows[r][c] = self.pick(&NUMBERS).to_string(),
            2 => rows[r][c] = self.pick(&NAMES).replace("\\\"", "\"\""),
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
}
