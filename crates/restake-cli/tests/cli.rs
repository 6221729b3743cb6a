//! The `restake-mc` command as a user runs it: every preset end to end with every output
//! file parsed against the contract of the README's "Output files", byte-identical output for 1 and 2
//! threads, bad input refused with exit code 2 and nothing written, `calibrate`
//! reproducing the presets' calibrated numbers, the exact-enumeration oracle read from
//! `summary.csv`, and the warning about thin tails.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::{bin, repo};

fn presets() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(repo().join("data/scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 3, "presets missing: {files:?}");
    files
}

fn run_ok(args: &[&str], dir: Option<&Path>) -> Output {
    let mut cmd = bin();
    cmd.args(args);
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Reads a CSV: header and rows as strings, after checking LF line ends.
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let bytes = fs::read(path).unwrap();
    assert!(!bytes.contains(&b'\r'), "{}: CR in a CSV", path.display());
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let header = reader.headers().unwrap().iter().map(String::from).collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

/// Parses a plain decimal number: no exponent, NaN or infinity.
fn number(s: &str) -> f64 {
    assert!(
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_digit() || c == '.' || c == '-'),
        "not a plain decimal: {s:?}"
    );
    s.parse().unwrap()
}

fn columns(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Checks one output folder against the README's "Output files".
fn check_output(dir: &Path, scenario: &toml::Value) {
    let principal = scenario["position"]["principal_eth"].as_float().unwrap();
    let horizon = scenario["position"]["horizon_days"].as_integer().unwrap() as f64;

    let (header, rows) = read_csv(&dir.join("summary.csv"));
    assert_eq!(
        header,
        columns(&["metric", "value", "std_error", "ci_low", "ci_high", "unit"])
    );
    let summary: BTreeMap<String, Vec<f64>> = rows
        .iter()
        .map(|r| (r[0].clone(), r[1..5].iter().map(|x| number(x)).collect()))
        .collect();
    for name in [
        "mean_net_return",
        "sd_net_return",
        "mean_excess_return",
        "prob_loss",
        "prob_underperform",
        "var_95",
        "var_975",
        "var_99",
        "var_999",
        "es_95",
        "es_975",
        "es_99",
        "es_999",
        "expected_slashing_loss_eth",
        "mean_base_income_eth",
        "mean_avs_fee_income_eth",
        "mean_incentive_value_eth",
    ] {
        let m = summary
            .get(name)
            .unwrap_or_else(|| panic!("summary lacks {name}"));
        assert!(
            m[2] <= m[0] && m[0] <= m[3],
            "{name}: value outside its interval {m:?}"
        );
        assert!(m[1] >= 0.0, "{name}: negative std_error");
    }
    for x in scenario["report"]["loss_thresholds"].as_array().unwrap() {
        let x = x.as_float().unwrap();
        assert!(
            summary.contains_key(&format!("prob_loss_gt_{x}")),
            "no row for threshold {x}"
        );
    }

    let (header, rows) = read_csv(&dir.join("quantiles.csv"));
    assert_eq!(
        header,
        columns(&["probability", "net_return", "ci_low", "ci_high"])
    );
    assert_eq!(rows.len(), 13);
    let q: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| r.iter().map(|x| number(x)).collect())
        .collect();
    for w in q.windows(2) {
        assert!(
            w[0][0] < w[1][0] && w[0][1] <= w[1][1],
            "quantiles not increasing"
        );
    }
    for r in &q {
        assert!(
            r[2] <= r[1] && r[1] <= r[3],
            "quantile outside its interval {r:?}"
        );
    }

    let hist_cols = [
        "bin_lower",
        "bin_upper",
        "paths",
        "probability",
        "cumulative_probability",
    ];
    for name in ["loss_distribution.csv", "return_distribution.csv"] {
        let (header, rows) = read_csv(&dir.join(name));
        assert_eq!(header, columns(&hist_cols));
        assert!(rows.len() >= 100, "{name}: {} rows", rows.len());
        let last: Vec<f64> = rows.last().unwrap().iter().map(|x| number(x)).collect();
        assert_eq!(
            last[4], 1.0,
            "{name}: cumulative probability ends at {}",
            last[4]
        );
        let paths: f64 = rows.iter().map(|r| number(&r[2])).sum();
        assert!(paths > 0.0);
    }
    let (_, rows) = read_csv(&dir.join("loss_distribution.csv"));
    assert_eq!(
        (number(&rows[0][0]), number(&rows[0][1])),
        (0.0, 0.0),
        "atom at 0 first"
    );
    assert!(rows.len() >= 101);

    let contribution_cols = columns(&[
        "source",
        "kind",
        "event_probability",
        "expected_loss_eth",
        "es_95_contribution_eth",
        "es_975_contribution_eth",
        "es_99_contribution_eth",
        "es_999_contribution_eth",
    ]);
    let mut tables = BTreeMap::new();
    for name in [
        "contributions",
        "contributions_by_avs",
        "contributions_by_operator",
    ] {
        let (header, rows) = read_csv(&dir.join(format!("{name}.csv")));
        assert_eq!(header, contribution_cols, "{name}");
        tables.insert(name, rows);
    }
    let kinds = [
        "avs_slashing",
        "avs_incident",
        "operator_fault",
        "beacon",
        "protocol_exploit",
        "depeg",
        "income",
        "liquidation",
        "borrow_cost",
        "bad_debt",
    ];
    for r in &tables["contributions"] {
        assert!(kinds.contains(&r[1].as_str()), "unknown kind {}", r[1]);
    }
    assert!(tables["contributions_by_avs"].iter().all(|r| r[1] == "avs"));
    assert!(
        tables["contributions_by_operator"]
            .iter()
            .all(|r| r[1] == "operator")
    );
    let total = |rows: &[&Vec<String>], column: usize| -> f64 {
        rows.iter().map(|r| number(&r[column])).sum()
    };
    let of_kinds = |names: &[&str]| -> Vec<&Vec<String>> {
        tables["contributions"]
            .iter()
            .filter(|r| names.contains(&r[1].as_str()))
            .collect()
    };
    let avs_rows: Vec<&Vec<String>> = tables["contributions_by_avs"].iter().collect();
    let mut operator_rows: Vec<&Vec<String>> = tables["contributions_by_operator"].iter().collect();
    operator_rows.extend(of_kinds(&[
        "depeg",
        "income",
        "liquidation",
        "borrow_cost",
        "bad_debt",
    ]));
    for (j, level) in ["95", "975", "99", "999"].iter().enumerate() {
        let column = 4 + j;
        let es = summary[&format!("es_{level}")][0] * principal;
        let sources: Vec<&Vec<String>> = tables["contributions"].iter().collect();
        for (what, sum) in [
            ("source rows", total(&sources, column)),
            (
                "operator rows with depeg, income and loan",
                total(&operator_rows, column),
            ),
        ] {
            assert!(
                (sum - es).abs() <= 1e-9 * principal,
                "es_{level}: {what} {sum} vs {es}"
            );
        }
        let via_avs = total(
            &of_kinds(&["avs_slashing", "avs_incident", "operator_fault"]),
            column,
        );
        let avs = total(&avs_rows, column);
        assert!(
            (avs - via_avs).abs() <= 1e-9 * principal,
            "es_{level}: AVS rows {avs} vs {via_avs}"
        );
    }

    let (header, rows) = read_csv(&dir.join("fan_chart.csv"));
    assert_eq!(
        header,
        columns(&["day", "p01", "p05", "p25", "p50", "p75", "p95", "p99"])
    );
    assert_eq!(number(&rows.last().unwrap()[0]), horizon);
    for r in &rows {
        let v: Vec<f64> = r.iter().map(|x| number(x)).collect();
        assert!(
            v[1..].windows(2).all(|w| w[0] <= w[1]),
            "fan chart not ordered {v:?}"
        );
    }

    // convergence.csv: the headline metrics at N/16, N/8, N/4, N/2 and N paths, the last
    // equal to summary.csv.
    let (header, rows) = read_csv(&dir.join("convergence.csv"));
    assert_eq!(
        header,
        columns(&[
            "paths",
            "metric",
            "value",
            "std_error",
            "ci_low",
            "ci_high",
            "ci_half_width",
            "unit"
        ])
    );
    let paths: Vec<u64> = rows.iter().map(|r| r[0].parse().unwrap()).collect();
    let n = *paths.last().unwrap();
    let mut sizes = paths.clone();
    sizes.dedup();
    assert_eq!(sizes, vec![n / 16, n / 8, n / 4, n / 2, n]);
    for r in rows.iter().filter(|r| r[0] == n.to_string()) {
        let v: Vec<f64> = r[2..7].iter().map(|x| number(x)).collect();
        assert_eq!(v[..4], summary[&r[1]][..], "{}", r[1]);
        assert!((v[4] - (v[3] - v[2]) / 2.0).abs() <= 1e-12 * v[4].abs().max(1.0));
    }

    // Plots: each chart as SVG and PNG, and the self-contained report.
    for stem in [
        "loss_distribution",
        "return_distribution",
        "fan_chart",
        "contributions",
    ] {
        let png = fs::read(dir.join(format!("{stem}.png"))).unwrap();
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{stem}.png is not a PNG"
        );
        assert!(png.len() > 10_000, "{stem}.png is nearly empty");
        let svg = fs::read_to_string(dir.join(format!("{stem}.svg"))).unwrap();
        assert!(svg.contains("<svg") && svg.contains("</svg>"), "{stem}.svg");
    }
    let report = fs::read_to_string(dir.join("report.html")).unwrap();
    let name = scenario["name"].as_str().unwrap();
    assert!(report.contains(name) && report.matches("<svg").count() == 4);
    assert!(
        report.contains("<td>VaR 99</td>"),
        "report.html lacks the summary table"
    );

    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    for key in [
        "scenario",
        "seed",
        "paths",
        "threads",
        "generator",
        "seeding",
        "elapsed_seconds",
    ] {
        assert!(json.get(key).is_some(), "run.json lacks {key}");
    }
}

#[test]
fn every_preset_runs_and_every_output_parses() {
    let tmp = tempfile::tempdir().unwrap();
    for preset in presets() {
        let out = tmp.path().join(preset.file_stem().unwrap());
        run_ok(
            &[
                "run",
                preset.to_str().unwrap(),
                "--paths",
                "20000",
                "--out",
                out.to_str().unwrap(),
            ],
            None,
        );
        let scenario: toml::Value = toml::from_str(&fs::read_to_string(&preset).unwrap()).unwrap();
        check_output(&out, &scenario);
        let validate = run_ok(&["validate", preset.to_str().unwrap()], None);
        assert!(String::from_utf8_lossy(&validate.stdout).starts_with("ok: "));
    }
}

#[test]
fn default_run_writes_reports_folder_and_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_ok(&["run", "--paths", "5000"], Some(tmp.path()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for text in [
        "etherfi-weeth",
        "route = \"liquid\", horizon 365 days",
        "over the 365-day horizon",
        "P(loss)",
        "P(any slashing loss)",
        "P(underperform)",
        "a path underperforms when",
        "VaR 95",
        "ES 97.5",
        "VaR 99.9",
        "protocol or LRT contract exploit",
        "income: base staking rewards",
    ] {
        assert!(stdout.contains(text), "summary lacks {text:?}:\n{stdout}");
    }
    // Every headline line has its 95% interval; VaR and ES are in % and in ETH.
    for line in stdout
        .lines()
        .filter(|l| l.contains('%') && !l.contains("a path"))
    {
        if !line.contains("horizon") {
            assert!(line.contains("[95% CI"), "no interval: {line}");
        }
        if line.trim_start().starts_with("VaR") || line.trim_start().starts_with("ES ") {
            assert_eq!(line.matches("ETH").count(), 1, "{line}");
        }
    }
    // The sources, the rest and the income add up to ES 99 × principal.
    let section: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.contains("where the ES 99 loss comes from"))
        .skip(1)
        .take_while(|l| l.starts_with("    "))
        .collect();
    let eth = |l: &str| -> f64 {
        l.split(" ETH")
            .next()
            .unwrap()
            .split_whitespace()
            .last()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (total, parts) = section.split_last().expect("a contributions section");
    assert!(total.contains("total = ES 99 x principal"), "{total}");
    let sum: f64 = parts.iter().map(|l| eth(l)).sum();
    assert!(
        (sum - eth(total)).abs() <= 1e-6 * parts.len() as f64,
        "{sum} vs {total}"
    );
    let dir = tmp.path().join("reports/etherfi-weeth");
    for name in restake_report_files() {
        assert!(dir.join(name).is_file(), "missing {name}");
    }
    // No temporary file is left behind.
    let leftovers: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_short_horizon_says_its_returns_are_over_the_horizon_and_annualises_the_mean() {
    let tmp = tempfile::tempdir().unwrap();
    let text = fs::read_to_string(repo().join("data/scenarios/etherfi-weeth.toml"))
        .unwrap()
        .replacen("horizon_days = 365", "horizon_days = 180", 1);
    let file = tmp.path().join("half.toml");
    fs::write(&file, text).unwrap();
    let out = run_ok(
        &["run", file.to_str().unwrap(), "--paths", "20000"],
        Some(tmp.path()),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("over the 180-day horizon"), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.contains("mean net return"))
        .unwrap();
    let pcts: Vec<f64> = line
        .split('%')
        .filter_map(|p| p.split_whitespace().last()?.parse().ok())
        .collect();
    // horizon value, CI low, CI high, a year
    let (horizon, year) = (pcts[0], pcts[3]);
    assert!((year - horizon * 365.0 / 180.0).abs() < 0.002, "{line}");
}

fn restake_report_files() -> [&'static str; 19] {
    [
        "loss_distribution.svg",
        "loss_distribution.png",
        "return_distribution.svg",
        "return_distribution.png",
        "fan_chart.svg",
        "fan_chart.png",
        "contributions.svg",
        "contributions.png",
        "report.html",
        "summary.csv",
        "quantiles.csv",
        "loss_distribution.csv",
        "return_distribution.csv",
        "contributions.csv",
        "contributions_by_avs.csv",
        "contributions_by_operator.csv",
        "fan_chart.csv",
        "convergence.csv",
        "run.json",
    ]
}

#[test]
fn one_and_two_threads_write_identical_csvs() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = ["1", "2"]
        .iter()
        .map(|t| {
            let out = tmp.path().join(format!("t{t}"));
            run_ok(
                &[
                    "run",
                    "--paths",
                    "30001",
                    "--seed",
                    "5",
                    "--threads",
                    t,
                    "--out",
                    out.to_str().unwrap(),
                ],
                None,
            );
            out
        })
        .collect();
    for name in restake_report_files()
        .iter()
        .filter(|n| n.ends_with(".csv"))
    {
        let a = fs::read(dirs[0].join(name)).unwrap();
        let b = fs::read(dirs[1].join(name)).unwrap();
        assert!(a == b, "{name} differs between 1 and 2 threads");
    }
}

const VALID: &str = r#"
name = "bad-input"
[position]
principal_eth = 10.0
route = "native"
horizon_days = 365
[base]
apr_mean = 0.03
[[token]]
name = "EIGEN"
price_eth = 0.001
[[avs]]
name = "EigenDA"
slash_prob = 0.01
slash_severity = { dist = "beta", alpha = 2.0, beta = 8.0 }
[[operator]]
name = "op"
weight = 1.0
allocations = { EigenDA = 0.5 }
"#;

/// Runs (and, with `validate`, validates) the scenario `text`: it must be refused with
/// exit code 2, a message containing `field`, no panic and no output folder.
/// Runs `args` (in `dir` when given) and checks it is refused as bad input: exit code 2,
/// `expected` in stderr, no panic, and nothing at `never`. Returns stderr.
fn assert_refused_args(args: &[&str], dir: Option<&Path>, expected: &str, never: &Path) -> String {
    let mut cmd = bin();
    cmd.args(args);
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(
        stderr.contains(expected),
        "{args:?}: {expected:?} not in {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert!(!never.exists(), "{args:?}: wrote {}", never.display());
    stderr
}

fn assert_refused(tmp: &Path, what: &str, text: &str, field: &str, validate: bool) {
    let file = tmp.join("bad.toml");
    fs::write(&file, text).unwrap();
    let out_dir = tmp.join("out");
    let file = file.to_str().unwrap();
    let mut commands = vec![vec![
        "run",
        file,
        "--paths",
        "100",
        "--out",
        out_dir.to_str().unwrap(),
    ]];
    if validate {
        commands.push(vec!["validate", file]);
    }
    for args in commands {
        eprintln!("{what}");
        assert_refused_args(&args, None, field, &out_dir);
    }
}

#[test]
fn bad_input_names_the_field_exits_2_and_writes_nothing() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "unknown key",
            "principal_eth = 10.0",
            "principal_eth = 10.0\ncolour = 1",
            "colour",
        ),
        (
            "probability above 1",
            "slash_prob = 0.01",
            "slash_prob = 1.5",
            "avs.EigenDA.slash_prob",
        ),
        (
            "probability 1",
            "slash_prob = 0.01",
            "slash_prob = 1.0",
            "avs.EigenDA.slash_prob",
        ),
        (
            "negative probability",
            "slash_prob = 0.01",
            "slash_prob = -0.1",
            "avs.EigenDA.slash_prob",
        ),
        (
            "negative principal",
            "principal_eth = 10.0",
            "principal_eth = -5.0",
            "position.principal_eth",
        ),
        (
            "zero principal",
            "principal_eth = 10.0",
            "principal_eth = 0.0",
            "position.principal_eth",
        ),
        (
            "weights not summing to 1",
            "weight = 1.0",
            "weight = 0.8",
            "operator.weight",
        ),
        (
            "unique allocations past 1",
            "allocations = { EigenDA = 0.5 }",
            "allocations = { EigenDA = 0.9, Other = 0.3 }\n[[avs]]\nname = \"Other\"",
            "operator.op.allocations",
        ),
        (
            "allocation to an undeclared AVS",
            "allocations = { EigenDA = 0.5 }",
            "allocations = { EigenDA = 0.5, Nope = 0.1 }",
            "operator.op.allocations.Nope",
        ),
        (
            "incentive in an undeclared token",
            "[[avs]]",
            "[[incentive]]\ntoken = \"FOO\"\napr = 0.01\n[[avs]]",
            "incentive.FOO.token",
        ),
        (
            "beta with alpha <= 0",
            "alpha = 2.0",
            "alpha = 0.0",
            "avs.EigenDA.slash_severity.alpha",
        ),
        (
            "liquid table on a native route",
            "[[token]]",
            "[liquid]\nreward_fee = 0.1\n[[token]]",
            "liquid",
        ),
        (
            "wrong type",
            "principal_eth = 10.0",
            "principal_eth = \"ten\"",
            "line",
        ),
        (
            "unknown distribution",
            "dist = \"beta\"",
            "dist = \"lognormal\"",
            "lognormal",
        ),
        ("missing section", "[base]\napr_mean = 0.03", "", "base"),
        (
            "duplicate loss threshold",
            "[[token]]",
            "[report]\nloss_thresholds = [0.1, 0.1]\n[[token]]",
            "report.loss_thresholds[1]",
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    for (what, from, to, field) in cases {
        assert!(
            VALID.contains(from),
            "{what}: pattern {from:?} not in the base scenario"
        );
        assert_refused(tmp.path(), what, &VALID.replacen(from, to, 1), field, true);
    }
    // Flags and files.
    for (args, expect) in [
        (vec!["run", "--paths", "0"], "--paths"),
        (vec!["run", "no/such/file.toml"], "no/such/file.toml"),
        (vec!["run", "--seed", "-1"], "-1"),
        (
            vec!["calibrate", "--data", "no/such/folder"],
            "no/such/folder",
        ),
    ] {
        let reports = tmp.path().join("reports");
        assert_refused_args(&args, Some(tmp.path()), expect, &reports);
    }
}

/// Looks up the field path `key` (`base.apr_mean`, `operator."<name>".weight`: arrays
/// of tables by element name, an incentive by its token) in a preset.
fn lookup<'a>(preset: &'a toml::Value, key: &str) -> Option<&'a toml::Value> {
    let keys = restake_core::scenario::field_path_keys(key).ok()?;
    let mut at = preset;
    let mut keys = keys.iter();
    while let Some(k) = keys.next() {
        at = at.get(k)?;
        if let Some(array) = at.as_array() {
            let name = keys.next()?;
            at = array.iter().find(|e| {
                ["name", "token"]
                    .iter()
                    .any(|id| e.get(id).and_then(|v| v.as_str()) == Some(name))
            })?;
        }
    }
    Some(at)
}

/// `calibrate` on the repository's data for the presets in `scenarios`, with `extra`
/// flags: its stdout.
fn calibrate(scenarios: &Path, extra: &[&str]) -> String {
    let data = repo().join("data/real");
    let args = [
        &[
            "calibrate",
            "--data",
            data.to_str().unwrap(),
            "--scenarios",
            scenarios.to_str().unwrap(),
        ][..],
        extra,
    ]
    .concat();
    String::from_utf8_lossy(&run_ok(&args, None).stdout).into_owned()
}

#[test]
fn calibrate_reproduces_every_preset_that_uses_the_data() {
    let stdout = calibrate(&repo().join("data/scenarios"), &[]);
    let mut checked: BTreeMap<String, usize> = BTreeMap::new();
    for line in stdout.lines().filter(|l| !l.starts_with('#')) {
        let (preset, rest) = line.split_once(' ').unwrap();
        if preset == "cross-check" {
            continue;
        }
        let (key, rest) = rest.split_once(" = ").unwrap();
        let value: f64 = rest.split_whitespace().next().unwrap().parse().unwrap();
        let path = repo().join(format!("data/scenarios/{preset}.toml"));
        let scenario: toml::Value = toml::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        let found = lookup(&scenario, key)
            .unwrap_or_else(|| panic!("{preset}: no {key}"))
            .as_float()
            .unwrap_or_else(|| panic!("{preset}: {key} is not a float"));
        assert!(
            (found - value).abs() <= 1e-12 * value.abs(),
            "{preset} {key}: preset {found}, calibrate {value}"
        );
        *checked.entry(preset.to_string()).or_default() += 1;
    }
    // Every preset takes some of its values from the data; the three fitted ones most.
    for preset in presets() {
        let stem = preset.file_stem().unwrap().to_string_lossy().into_owned();
        let fitted = ["etherfi-weeth", "eigenlayer-native", "renzo-ezeth"];
        let at_least = if fitted.contains(&stem.as_str()) {
            8
        } else {
            2
        };
        assert!(
            checked.get(&stem).copied().unwrap_or(0) >= at_least,
            "{stem}: {checked:?}"
        );
    }
}

/// `value` (`<number><spaces>`) with `number` replaced by `other`, the spaces kept.
fn number_after(value: &str, number: &str, other: &str) -> String {
    value
        .split_once(" = ")
        .map_or(value, |(_, v)| v)
        .replacen(number, other, 1)
}

#[test]
fn calibrate_update_rewrites_the_calibrated_values_in_place_keeping_every_comment() {
    let tmp = tempfile::tempdir().unwrap();
    let scenarios = tmp.path().join("scenarios");
    fs::create_dir(&scenarios).unwrap();
    let mut originals = BTreeMap::new();
    let mut perturbed = 0;
    for preset in presets() {
        let text = fs::read_to_string(&preset).unwrap();
        // Every plain `key = <number>  # calibrate...` line gets another number.
        let edited: Vec<String> = text
            .lines()
            .map(|line| {
                let Some((value, comment)) = line.split_once("# calibrate") else {
                    return line.to_string();
                };
                let Some((key, number)) = value.split_once(" = ") else {
                    return line.to_string();
                };
                let number = number.trim();
                match number.parse::<f64>() {
                    Ok(x) => {
                        perturbed += 1;
                        let other = format!("{}", x * 1.5 + 1e-3);
                        format!(
                            "{key} = {}# calibrate{comment}",
                            number_after(value, number, &other)
                        )
                    }
                    Err(_) => line.to_string(),
                }
            })
            .collect();
        let name = preset.file_name().unwrap().to_owned();
        fs::write(scenarios.join(&name), edited.join("\n") + "\n").unwrap();
        originals.insert(name, text);
    }
    assert!(perturbed > 60, "{perturbed}");
    let out = calibrate(&scenarios, &["--update"]);
    assert!(
        out.contains(&format!(
            "updated {perturbed} value(s) in 12 of 12 preset(s)"
        )),
        "{out}"
    );
    // Byte for byte the presets as committed: values, comments, spacing.
    for (name, text) in &originals {
        assert_eq!(
            &fs::read_to_string(scenarios.join(name)).unwrap(),
            text,
            "{name:?}"
        );
    }
    // Nothing left to change.
    let again = calibrate(&scenarios, &["--update"]);
    assert!(
        again.contains("updated 0 value(s) in 0 of 12 preset(s)"),
        "{again}"
    );
}

/// Lines of a scenario's text below import's header, the top-level `name` left out.
fn body_without_name(text: &str) -> Vec<&str> {
    let body = match text.split_once("\n\n") {
        Some((header, rest)) if header.starts_with("# Written by restake-mc import") => rest,
        _ => text,
    };
    body.lines()
        .filter(|l| !l.starts_with("name = \""))
        .collect()
}

#[test]
fn import_keeps_the_bases_comments_and_marks_what_the_tables_changed() {
    let tmp = tempfile::tempdir().unwrap();
    run_ok(&["export", "--out", "t"], Some(tmp.path()));
    let avs = fs::read_to_string(tmp.path().join("t/avs.csv")).unwrap();
    let mut lines: Vec<String> = avs.lines().map(String::from).collect();
    // EigenDA's slash_prob 0.01 -> 0.02, and a copy of oracle-avs as a new AVS.
    let header: Vec<&str> = lines[0].split(',').collect();
    let col = header.iter().position(|h| *h == "slash_prob").unwrap();
    let mut eigen_da: Vec<String> = lines[1].split(',').map(String::from).collect();
    assert_eq!(
        (eigen_da[0].as_str(), eigen_da[col].as_str()),
        ("EigenDA", "0.01")
    );
    eigen_da[col] = "0.02".into();
    lines[1] = eigen_da.join(",");
    lines.push(lines[2].replacen("oracle-avs", "new-avs", 1));
    fs::write(tmp.path().join("t/avs.csv"), lines.join("\n") + "\n").unwrap();
    let tables = ["--avs", "t/avs.csv", "--operators", "t/operators.csv"];
    run_ok(
        &[&["import", "--out", "edited.toml"][..], &tables].concat(),
        Some(tmp.path()),
    );
    let text = fs::read_to_string(tmp.path().join("edited.toml")).unwrap();
    let base = fs::read_to_string(repo().join("data/scenarios/etherfi-weeth.toml")).unwrap();
    assert!(
        text.starts_with("# Written by restake-mc import from "),
        "{text}"
    );
    let note = "# import: from t/avs.csv and t/operators.csv";
    let (new, old) = (body_without_name(&text), body_without_name(&base));
    // The changed value, marked with what it was; its ASSUMPTION comment is gone.
    let changed = format!("slash_prob = 0.02 {note} (was 0.01)");
    let before =
        "slash_prob = 0.01                # ASSUMPTION: one slashing per operator per 100 years";
    assert!(new.contains(&changed.as_str()), "{text}");
    // The added AVS after the others, its header marked.
    assert!(
        text.contains(&format!("{note}: added\n[[avs]]\nname = \"new-avs\"")),
        "{text}"
    );
    // Every other line as the base has it, comments included.
    let added = new.iter().position(|l| l.ends_with(": added")).unwrap();
    let added_end = added + new[added..].iter().position(|l| l.is_empty()).unwrap();
    let kept: Vec<&str> = new[..added - 1]
        .iter()
        .chain(&new[added_end..])
        .map(|l| if *l == changed { before } else { *l })
        .collect();
    assert_eq!(kept, old);
    // And it reads back as the tables say.
    let spec = restake_core::Scenario::from_toml(&text)
        .unwrap()
        .spec()
        .clone();
    assert_eq!(spec.avs.len(), 5);
    assert_eq!(spec.avs[0].slash_prob, 0.02);
}

#[test]
fn an_overflowing_scenario_is_refused_without_output() {
    let tmp = tempfile::tempdir().unwrap();
    let text = VALID
        .replacen("horizon_days = 365", "horizon_days = 36500", 1)
        .replacen(
            "price_eth = 0.001",
            "price_eth = 0.001\ndrift = 10.0\n[[incentive]]\ntoken = \"EIGEN\"\napr = 0.5",
            1,
        );
    // A checkpoint a year: a run sketches at most 400 checkpoints.
    let text = format!("{text}\n[simulation]\ncheckpoint_days = 365\n");
    // Its prices could reach e^1007 ETH: refused by the checks, validate included.
    assert_refused(tmp.path(), "overflow", &text, "token.EIGEN.drift", true);
}

#[test]
fn calibrate_refuses_a_data_file_without_rows() {
    let tmp = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(repo().join("data/real")).unwrap() {
        let path = entry.unwrap().path();
        fs::copy(&path, tmp.path().join(path.file_name().unwrap())).unwrap();
    }
    let name = "etherfi_eigen_distributions_weekly.csv";
    let text = fs::read_to_string(tmp.path().join(name)).unwrap();
    fs::write(tmp.path().join(name), text.lines().next().unwrap()).unwrap();
    let never = tmp.path().join("reports");
    assert_refused_args(
        &["calibrate", "--data", tmp.path().to_str().unwrap()],
        None,
        name,
        &never,
    );
}

/// Reads `summary.csv` into metric → estimate.
fn summary_estimates(dir: &Path) -> BTreeMap<String, restake_validation::oracle::Reported> {
    let (_, rows) = read_csv(&dir.join("summary.csv"));
    rows.iter()
        .map(|r| {
            let reported = restake_validation::oracle::Reported {
                value: number(&r[1]),
                std_error: number(&r[2]),
                ci_low: number(&r[3]),
                ci_high: number(&r[4]),
            };
            (r[0].clone(), reported)
        })
        .collect()
}

#[test]
fn summary_csv_matches_the_exact_enumeration() {
    // The oracle of docs/model.md#independent-checks read from the CSV a user gets, not from the library.
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("enumeration.toml");
    fs::write(&scenario, restake_validation::oracle::ENUMERATION_SCENARIO).unwrap();
    let out = tmp.path().join("out");
    let paths = 1_000_000u64;
    let output = run_ok(
        &[
            "run",
            scenario.to_str().unwrap(),
            "--paths",
            &paths.to_string(),
            "--seed",
            "20261121",
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    let summary = summary_estimates(&out);
    restake_validation::oracle::check_enumeration(paths, &|name| summary[name]);
    // 1e6 paths leave at least 1,000 beyond every VaR level: no warning.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("warning"), "{stderr}");
}

#[test]
fn few_paths_beyond_a_var_level_are_warned_about() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_ok(&["run", "--paths", "20000"], Some(tmp.path()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // 20,000 paths leave about 20 beyond VaR 99.9 and 200 beyond VaR 99, but 1,000 beyond
    // VaR 95.
    assert!(stderr.contains("beyond var_999"), "{stderr}");
    assert!(stderr.contains("beyond var_99:"), "{stderr}");
    assert!(!stderr.contains("beyond var_95:"), "{stderr}");
    assert!(stderr.contains("run at least 1000000 paths"), "{stderr}");
    assert!(stderr.contains("rest on few losses"), "{stderr}");
}

#[test]
fn thin_tail_warnings_name_their_grid_point_and_say_when_the_tail_is_gains() {
    let tmp = tempfile::tempdir().unwrap();
    // Plain staking has no loss at all: its tail paths are the smallest gains. A preset
    // is named, not given as a file.
    let out = run_ok(
        &[
            "sweep",
            "plain-staking",
            "--set",
            "base.fee=0.05,0.1",
            "--paths",
            "2e4",
        ],
        Some(tmp.path()),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    for point in ["base.fee = 0.05", "base.fee = 0.1"] {
        let line = format!("plain-staking at {point}: only 21 paths lie at or beyond var_999");
        assert_eq!(stderr.matches(&line).count(), 1, "{stderr}");
    }
    assert!(stderr.contains("those are gains, not losses"), "{stderr}");
    assert!(!stderr.contains("few losses"), "{stderr}");
}

#[test]
fn a_run_past_the_first_narrowing_writes_every_file() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("big");
    let paths = 4 * restake_core::order::NARROW_AFTER + 4321;
    run_ok(
        &[
            "run",
            "--paths",
            &paths.to_string(),
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    let preset = repo().join("data/scenarios/etherfi-weeth.toml");
    let scenario: toml::Value = toml::from_str(&fs::read_to_string(preset).unwrap()).unwrap();
    check_output(&out, &scenario);
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(json["paths"], paths);
    assert!(
        json["statistics"]
            .as_str()
            .unwrap()
            .starts_with("one mergeable reduction")
    );
    assert!(
        json["fan_chart_resolution"]
            .as_str()
            .unwrap()
            .contains("sketch")
    );
}

#[test]
fn batch_runs_every_preset_on_one_seed_and_tabulates_them() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("batch");
    let output = run_ok(
        &[
            "batch",
            repo().join("data/scenarios").to_str().unwrap(),
            "--paths",
            "20000",
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let presets = presets();
    let png = fs::read(out.join("comparison.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "comparison.png");
    assert!(
        fs::read_to_string(out.join("comparison.svg"))
            .unwrap()
            .contains("expected shortfall")
    );
    let (header, rows) = read_csv(&out.join("batch_summary.csv"));
    assert_eq!(rows.len(), presets.len());
    assert_eq!(
        header[..4],
        columns(&["scenario", "file", "paths", "seed"])[..]
    );
    assert!(header.contains(&"var_99_std_error".to_string()));
    let (metrics_header, metrics) = read_csv(&out.join("batch_metrics.csv"));
    assert_eq!(
        metrics_header,
        columns(&[
            "scenario",
            "metric",
            "value",
            "std_error",
            "ci_low",
            "ci_high",
            "unit"
        ])
    );
    for (preset, row) in presets.iter().zip(&rows) {
        let scenario: toml::Value = toml::from_str(&fs::read_to_string(preset).unwrap()).unwrap();
        let name = scenario["name"].as_str().unwrap();
        assert_eq!(row[0], name);
        assert_eq!((row[2].as_str(), row[3].as_str()), ("20000", "42"));
        assert!(stdout.contains(name), "{stdout}");
        // Each scenario's folder is complete, and the batch tables repeat its summary.
        let dir = out.join(name);
        check_output(&dir, &scenario);
        let (_, summary) = read_csv(&dir.join("summary.csv"));
        let mine: Vec<&Vec<String>> = metrics.iter().filter(|m| m[0] == name).collect();
        assert_eq!(mine.len(), summary.len());
        for (m, s) in mine.iter().zip(&summary) {
            assert_eq!(m[1..], s[..]);
        }
        let col = header.iter().position(|h| h == "es_99").unwrap();
        let es = summary.iter().find(|s| s[0] == "es_99").unwrap();
        assert_eq!(row[col], es[1]);
    }
}

#[test]
fn batch_compares_scenarios_on_common_random_numbers() {
    // The same scenario under two names gives the same numbers: one seed for the batch.
    let tmp = tempfile::tempdir().unwrap();
    let text = fs::read_to_string(repo().join("data/scenarios/etherfi-weeth.toml")).unwrap();
    let a = tmp.path().join("a.toml");
    let b = tmp.path().join("b.toml");
    fs::write(
        &a,
        text.replace("name = \"etherfi-weeth\"", "name = \"copy-a\""),
    )
    .unwrap();
    fs::write(
        &b,
        text.replace("name = \"etherfi-weeth\"", "name = \"copy-b\""),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let output = run_ok(
        &[
            "batch",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--paths",
            "10000",
            "--seed",
            "7",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert!(output.stdout.is_empty(), "--quiet printed to stdout");
    let (_, rows) = read_csv(&out.join("batch_summary.csv"));
    assert_eq!(rows[0][2..], rows[1][2..]);
    assert_eq!(rows[0][3], "7");
    assert_eq!(
        fs::read(out.join("copy-a/quantiles.csv")).unwrap(),
        fs::read(out.join("copy-b/quantiles.csv")).unwrap()
    );
}

#[test]
fn batch_with_a_bad_scenario_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.toml");
    fs::write(&bad, "name = \"bad\"\n[position]\nprincipal_eth = -1.0\nroute = \"native\"\nhorizon_days = 365\n[base]\napr_mean = 0.03\n[[operator]]\nname = \"o\"\nweight = 1.0\n").unwrap();
    let out = tmp.path().join("out");
    let preset = repo().join("data/scenarios/etherfi-weeth.toml");
    assert_refused_args(
        &[
            "batch",
            preset.to_str().unwrap(),
            bad.to_str().unwrap(),
            "--paths",
            "1000",
            "--out",
            out.to_str().unwrap(),
        ],
        None,
        "position.principal_eth",
        &out,
    );
}

#[test]
fn a_sweep_of_one_slashing_probability_gives_monotone_tail_curves() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sweep");
    run_ok(
        &[
            "sweep",
            "--set",
            "avs.EigenDA.slash_prob=0.002:0.1:6",
            "--paths",
            "20000",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    let (header, rows) = read_csv(&out.join("sweep.csv"));
    assert_eq!(
        header[..4],
        columns(&["avs.EigenDA.slash_prob", "paths", "seed", "coupled"])[..]
    );
    assert_eq!(rows.len(), 6);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let series = |name: &str| {
        rows.iter()
            .map(|r| number(&r[col(name)]))
            .collect::<Vec<f64>>()
    };
    assert_eq!(series("avs.EigenDA.slash_prob")[5], 0.1);
    assert!(rows.iter().all(|r| r[col("coupled")] == "true"));
    // Coupled path by path: no Monte Carlo noise crosses the curves, even at 20,000
    // paths where the steps are within a standard error of each other.
    for name in [
        "var_95",
        "var_99",
        "es_95",
        "es_99",
        "prob_underperform",
        "expected_slashing_loss_eth",
    ] {
        let s = series(name);
        assert!(
            s.windows(2).all(|w| w[0] <= w[1]),
            "{name} not monotone: {s:?}"
        );
    }
    let mean = series("mean_net_return");
    assert!(
        mean.windows(2).all(|w| w[0] >= w[1]),
        "mean not monotone: {mean:?}"
    );
}

#[test]
fn a_sweep_refuses_an_unknown_path_or_value() {
    let tmp = tempfile::tempdir().unwrap();
    for (set, expected) in [
        ("avs.Nope.slash_prob=0.1", "no avs named \"Nope\""),
        ("avs.EigenDA.slash_prob=0.1,x", "is not a number"),
        ("avs.EigenDA.slash_prob=0.5,1.5", "slash_prob"),
    ] {
        let out = tmp.path().join("never");
        let args = [
            "sweep",
            "--set",
            set,
            "--paths",
            "1000",
            "--out",
            out.to_str().unwrap(),
        ];
        assert_refused_args(&args, None, expected, &out);
    }
}

#[test]
fn every_preset_round_trips_through_the_spreadsheet_tables() {
    let tmp = tempfile::tempdir().unwrap();
    for (k, preset) in presets().iter().enumerate() {
        let dir = tmp.path().join(format!("tables-{k}"));
        let excel = k % 2 == 0; // both encodings
        let mut args = vec![
            "export",
            preset.to_str().unwrap(),
            "--out",
            dir.to_str().unwrap(),
        ];
        if excel {
            args.push("--excel");
        }
        run_ok(&args, None);
        let avs_bytes = fs::read(dir.join("avs.csv")).unwrap();
        assert_eq!(avs_bytes.starts_with(b"\xEF\xBB\xBF"), excel);
        assert_eq!(avs_bytes.windows(2).any(|w| w == b"\r\n"), excel);
        let back = dir.join("back.toml");
        run_ok(
            &[
                "import",
                "--base",
                preset.to_str().unwrap(),
                "--avs",
                dir.join("avs.csv").to_str().unwrap(),
                "--operators",
                dir.join("operators.csv").to_str().unwrap(),
                "--out",
                back.to_str().unwrap(),
            ],
            None,
        );
        let parse = |p: &Path| {
            restake_core::Scenario::from_toml(&fs::read_to_string(p).unwrap())
                .unwrap()
                .spec()
                .clone()
        };
        // The same scenario, named after the file it was written to, so that running it
        // never overwrites the base's reports.
        // Unchanged tables change nothing but the name: every other line, comments
        // included, is the base's.
        assert_eq!(
            body_without_name(&fs::read_to_string(&back).unwrap()),
            body_without_name(&fs::read_to_string(preset).unwrap()),
            "{}",
            preset.display()
        );
        let (back, mut original) = (parse(&back), parse(preset));
        assert_eq!(back.name, "back");
        original.name = back.name.clone();
        assert_eq!(back, original, "{}", preset.display());
    }
}

#[test]
fn import_names_the_row_and_column_of_a_bad_cell() {
    let tmp = tempfile::tempdir().unwrap();
    run_ok(&["export", "--out", tmp.path().to_str().unwrap()], None);
    let operators = tmp.path().join("operators.csv");
    let text = fs::read_to_string(&operators).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut cells: Vec<String> = lines[2].split(',').map(String::from).collect();
    cells[1] = "abc".into(); // the second operator's weight
    lines[2] = cells.join(",");
    fs::write(&operators, lines.join("\n") + "\n").unwrap();
    let out = tmp.path().join("never.toml");
    let avs = tmp.path().join("avs.csv");
    assert_refused_args(
        &[
            "import",
            "--avs",
            avs.to_str().unwrap(),
            "--operators",
            operators.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        None,
        "operators.csv row 3, column weight: \"abc\" is not a number",
        &out,
    );
}

#[test]
fn excel_outputs_have_a_bom_and_crlf_and_the_same_cells() {
    let tmp = tempfile::tempdir().unwrap();
    let (plain, excel) = (tmp.path().join("plain"), tmp.path().join("excel"));
    for (dir, extra) in [(&plain, None), (&excel, Some("--excel"))] {
        let mut args = vec![
            "run",
            "--paths",
            "5000",
            "--quiet",
            "--out",
            dir.to_str().unwrap(),
        ];
        args.extend(extra);
        run_ok(&args, None);
    }
    for name in [
        "summary.csv",
        "quantiles.csv",
        "contributions.csv",
        "convergence.csv",
    ] {
        let a = fs::read(plain.join(name)).unwrap();
        let b = fs::read(excel.join(name)).unwrap();
        assert!(
            b.starts_with(b"\xEF\xBB\xBF") && !a.starts_with(b"\xEF\xBB\xBF"),
            "{name}"
        );
        let crlf = b.windows(2).filter(|w| w == b"\r\n").count();
        assert_eq!(crlf, a.iter().filter(|c| **c == b'\n').count(), "{name}");
        assert_eq!(
            String::from_utf8(b[3..].to_vec())
                .unwrap()
                .replace("\r\n", "\n"),
            String::from_utf8(a).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn log_axes_label_their_ticks_in_percent_without_float_noise() {
    let tmp = tempfile::tempdir().unwrap();
    run_ok(&["run", "--paths", "50000", "--out", "o"], Some(tmp.path()));
    for svg in ["loss_distribution.svg", "return_distribution.svg"] {
        let body = fs::read_to_string(tmp.path().join("o").join(svg)).unwrap();
        let doc = roxmltree::Document::parse(&body).unwrap();
        let texts: Vec<&str> = doc
            .descendants()
            .filter_map(|n| n.text())
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .collect();
        let ticks: Vec<&&str> = texts.iter().filter(|t| t.ends_with('%')).collect();
        assert!(ticks.len() >= 4, "{svg}: {texts:?}");
        for t in &texts {
            assert!(
                !t.contains("e-") && !t.contains("9999"),
                "{svg}: tick {t:?}"
            );
        }
        assert!(texts.iter().any(|t| t.contains("log scale")), "{svg}");
    }
}

#[test]
fn xlsx_holds_every_csv_as_a_typed_sheet_and_the_plots() {
    use calamine::{Data, Reader, Xlsx, open_workbook};
    let tmp = tempfile::tempdir().unwrap();
    // With --excel too: the workbook is the same whatever the CSVs' encoding.
    run_ok(
        &["run", "--paths", "20000", "--out", "o", "--xlsx", "--excel"],
        Some(tmp.path()),
    );
    let dir = tmp.path().join("o");
    let mut book: Xlsx<_> = open_workbook(dir.join("report.xlsx")).unwrap();
    let sheets = book.sheet_names();
    let csvs: Vec<String> = restake_report_files()
        .iter()
        .filter(|n| n.ends_with(".csv"))
        .map(|n| n.trim_end_matches(".csv").to_string())
        .collect();
    for name in &csvs {
        assert!(sheets.contains(name), "no sheet {name}: {sheets:?}");
        let bytes = fs::read(dir.join(format!("{name}.csv"))).unwrap();
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap();
        let mut reader = csv::Reader::from_reader(bytes);
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        let range = book.worksheet_range(name).unwrap();
        let rows: Vec<&[Data]> = range.rows().collect();
        let got_header: Vec<String> = rows[0].iter().map(|c| c.to_string()).collect();
        assert_eq!(got_header, header, "{name}");
        for (record, row) in reader.records().zip(&rows[1..]) {
            for (cell, got) in record.unwrap().iter().zip(row.iter()) {
                match got {
                    Data::Float(x) => assert_eq!(*x, cell.parse::<f64>().unwrap(), "{name}"),
                    Data::Int(x) => assert_eq!(*x as f64, cell.parse::<f64>().unwrap(), "{name}"),
                    Data::String(s) => {
                        assert_eq!(s, cell, "{name}");
                        assert!(
                            cell.parse::<f64>().is_err()
                                || header.iter().any(|h| h == "source" || h == "metric"),
                            "{name}: a number as text: {cell}"
                        );
                    }
                    Data::Bool(b) => assert_eq!(b.to_string(), cell, "{name}"),
                    other => panic!("{name}: unexpected cell {other:?}"),
                }
            }
        }
        assert_eq!(
            rows.len() - 1,
            csv::Reader::from_reader(bytes).records().count(),
            "{name}"
        );
    }
    assert!(sheets.contains(&"plots".to_string()), "{sheets:?}");
    // Batch: the top workbook holds the batch tables; each scenario folder has its own.
    run_ok(
        &[
            "batch",
            "renzo-ezeth",
            "kelp-rseth",
            "--paths",
            "20000",
            "--out",
            "b",
            "--xlsx",
        ],
        Some(tmp.path()),
    );
    let top: Xlsx<_> = open_workbook(tmp.path().join("b/report.xlsx")).unwrap();
    assert!(
        top.sheet_names()
            .starts_with(&["batch_summary".to_string(), "batch_metrics".to_string()])
    );
    let member: Xlsx<_> = open_workbook(tmp.path().join("b/renzo-ezeth/report.xlsx")).unwrap();
    assert!(member.sheet_names().contains(&"summary".to_string()));
}

#[test]
fn import_names_the_new_scenario_so_its_runs_never_overwrite_the_base() {
    let tmp = tempfile::tempdir().unwrap();
    run_ok(&["export", "--out", "t"], Some(tmp.path()));
    let tables = ["--avs", "t/avs.csv", "--operators", "t/operators.csv"];
    let name_of = |text: &str| -> String {
        restake_core::Scenario::from_toml(text)
            .unwrap()
            .spec()
            .name
            .clone()
    };
    let printed = run_ok(&[&["import"][..], &tables].concat(), Some(tmp.path()));
    assert_eq!(
        name_of(&String::from_utf8_lossy(&printed.stdout)),
        "etherfi-weeth-imported"
    );
    let named = run_ok(
        &[&["import", "--name", "desk-view"][..], &tables].concat(),
        Some(tmp.path()),
    );
    assert_eq!(
        name_of(&String::from_utf8_lossy(&named.stdout)),
        "desk-view"
    );
    run_ok(
        &[&["import", "--out", "v2.toml"][..], &tables].concat(),
        Some(tmp.path()),
    );
    assert_eq!(
        name_of(&fs::read_to_string(tmp.path().join("v2.toml")).unwrap()),
        "v2"
    );
}
