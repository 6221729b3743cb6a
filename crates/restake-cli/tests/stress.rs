//! `restake-mc stress` and `restake-mc solve` as a user runs them: the default preset's
//! stress tests written as `stress.csv` and a folder per stress, each folder agreeing
//! with `stress.csv`; `solve` answering with an interval that contains its value, the
//! metric at its value within 3 standard errors of the target; targets out of reach, parameters that do not
//! couple and bad stress tables refused with exit code 2 and nothing written.

use std::fs;
use std::path::Path;

mod common;
use common::{bin, entries};

/// `file`'s rows as `(first column, metric) -> value`.
fn long_table(file: &Path) -> std::collections::BTreeMap<(String, String), f64> {
    let mut reader = csv::Reader::from_path(file).unwrap();
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            ((r[0].to_string(), r[1].to_string()), r[2].parse().unwrap())
        })
        .collect()
}

#[test]
fn stress_writes_stress_csv_and_a_folder_per_stress() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("st");
    let o = bin()
        .args(["stress", "--paths", "20000", "--seed", "5", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let names = [
        "base",
        "eigenda-incident",
        "operator-key-compromise",
        "protocol-exploit",
        "bad-year-1-in-100",
        "bad-year-1-in-1000",
    ];
    let mut expected: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    expected.push("stress.csv".into());
    expected.sort();
    assert_eq!(entries(&out), expected);
    let table = long_table(&out.join("stress.csv"));
    for name in names {
        assert!(stdout.contains(name), "{stdout}");
        // Each folder's summary.csv is stress.csv's rows for it.
        let summary = out.join(name).join("summary.csv");
        let mut reader = csv::Reader::from_path(&summary).unwrap();
        let mut rows = 0;
        for r in reader.records() {
            let r = r.unwrap();
            let v: f64 = r[1].parse().unwrap();
            assert_eq!(
                table[&(name.to_string(), r[0].to_string())],
                v,
                "{name} {}",
                &r[0]
            );
            rows += 1;
        }
        assert!(rows >= 20, "{name}: {rows} rows");
        let info: serde_json::Value =
            serde_json::from_slice(&fs::read(out.join(name).join("run.json")).unwrap()).unwrap();
        assert_eq!(info.get("stress").is_some(), name != "base", "{name}");
    }
    let get = |s: &str, m: &str| table[&(s.to_string(), m.to_string())];
    // Forced losses and bad years are worse than the base on the same random numbers.
    for name in &names[1..] {
        assert!(get(name, "es_99") > get("base", "es_99"), "{name}");
        assert!(
            get(name, "mean_net_return") < get("base", "mean_net_return"),
            "{name}"
        );
    }
    // The 1-in-1000 year is worse than the 1-in-100 one.
    assert!(get("bad-year-1-in-1000", "es_99") > get("bad-year-1-in-100", "es_99"));
    // An EigenDA incident of 50% takes 50% of every EigenDA pool (30% of the stake):
    // on every path at least 15% of the principal is slashed (less only for the
    // growth before day 100, none of it here: pools are cut at their day-100 size).
    assert!(get("eigenda-incident", "prob_slashing_loss") == 1.0);
    assert!(get("eigenda-incident", "expected_slashing_loss_eth") > 15.0);
}

/// Runs `solve` with `args` after the scenario; returns its exit code, stdout, stderr.
fn solve(args: &[&str], out: &Path) -> (i32, String, String) {
    let o = bin()
        .arg("solve")
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    (
        o.status.code().unwrap(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn solve_finds_eigendas_probability_for_a_limit_with_its_interval() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("solve");
    let common = ["--paths", "20000", "--seed", "9", "--quiet"];
    let mut args = vec![
        "--vary",
        "avs.EigenDA.slash_prob",
        "--target",
        "prob_slashing_loss=0.5",
        "--within",
        "0:0.5",
        "--xlsx",
    ];
    args.extend(common);
    let (code, _, err) = solve(&args, &out);
    assert_eq!(code, 0, "{err}");
    assert_eq!(entries(&out), ["report.xlsx", "solve.csv"]);
    let mut reader = csv::Reader::from_path(out.join("solve.csv")).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        header[..8],
        [
            "parameter",
            "value",
            "ci_low",
            "ci_high",
            "metric",
            "target",
            "paths",
            "seed"
        ]
    );
    let row = reader.records().next().unwrap().unwrap();
    let field = |i: usize| -> f64 { row[i].parse().unwrap() };
    let (value, lo, hi) = (field(1), field(2), field(3));
    assert_eq!(&row[0], "avs.EigenDA.slash_prob");
    assert!(
        0.0 < lo && lo <= value && value <= hi && hi <= 0.5,
        "{lo} {value} {hi}"
    );
    let (at, se) = (field(8), field(9));
    assert!(
        (at - 0.5).abs() < 3.0 * se,
        "the metric at the answer: {at} ± {se}"
    );
    assert!(hi - lo < 0.05, "a wide interval: {lo} {hi}");

    // A limit the range cannot reach: exit 2, the metric's ends in the message, nothing
    // written.
    let none = tmp.path().join("none");
    let mut args = vec!["--vary", "avs.EigenDA.slash_prob", "--target", "es_99=0.99"];
    args.extend(common);
    let (code, _, err) = solve(&args, &none);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("not reached within 0:0.99") && err.contains("es_99 is"),
        "{err}"
    );
    assert!(!none.exists());
    // A parameter that does not couple.
    let mut args = vec!["--vary", "base.apr_mean", "--target", "es_99=0.3"];
    args.extend(common);
    let (code, _, err) = solve(&args, &none);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("event or veto probability"), "{err}");
    // An unknown metric.
    let mut args = vec!["--vary", "avs.EigenDA.slash_prob", "--target", "es_98=0.3"];
    args.extend(common);
    let (code, _, err) = solve(&args, &none);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no metric \"es_98\""), "{err}");
    assert!(!none.exists());
}

#[test]
fn bad_stress_tables_are_refused_naming_the_field() {
    let base = common::repo().join("data/scenarios/eigenlayer-native.toml");
    // Without its [systematic] table, which two cases below are about.
    let text: String = fs::read_to_string(&base)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("[systematic]") && !l.starts_with("rho ="))
        .map(|l| format!("{l}\n"))
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    for (extra, field, words) in [
        (
            "[[stress]]\nname = \"z\"\nfactor_z = 2.0\n",
            "stress.z.factor_z",
            "no [systematic] table",
        ),
        (
            "[[stress]]\nname = \"x\"\nevents = [{ kind = \"avs_incident\", avs = \"nope\", day = 1 }]\n",
            "stress.x.events[0].avs",
            "not declared",
        ),
        (
            "[[stress]]\nname = \"x\"\nevents = [{ kind = \"beacon\", day = 1 }]\n",
            "stress.x.events[0].operator",
            "required",
        ),
        (
            "[[stress]]\nname = \"x\"\nevents = [{ kind = \"protocol_exploit\", day = 9999 }]\n",
            "stress.x.events[0].day",
            "horizon",
        ),
        (
            "[[stress]]\nname = \"base\"\nrandom = false\n",
            "stress.base.name",
            "choose another name",
        ),
        (
            "[[stress]]\nname = \"x\"\n[[stress.pick]]\nkind = \"avs_incident\"\ncount = 99\n",
            "stress.x.pick[0].count",
            "must be in [1,",
        ),
        ("[systematic]\nrho = 1.0\n", "systematic.rho", "[0, 1)"),
    ] {
        let file = tmp.path().join("bad.toml");
        fs::write(&file, format!("{text}\n{extra}")).unwrap();
        let out = tmp.path().join("out");
        let o = bin()
            .arg("stress")
            .arg(&file)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra}: {err}");
        assert!(err.contains(field) && err.contains(words), "{extra}: {err}");
        assert!(!out.exists());
    }
}
