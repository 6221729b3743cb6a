//! Levered positions as a user runs them: the loop presets' stress tests (a 0.5% slash
//! liquidates the 17x loop on every path and not the 10x one), a sweep over the leverage
//! with its chart and its liquidation columns, `solve` for the largest leverage with
//! P(liquidation) at 1%, and bad `[leverage]` tables refused naming the field, with exit
//! code 2 and nothing written.

use std::fs;

mod common;
use common::bin;

/// `stress.csv`'s value of `metric` for `stress`.
fn stress_value(file: &std::path::Path, stress: &str, metric: &str) -> f64 {
    let mut reader = csv::Reader::from_path(file).unwrap();
    reader
        .records()
        .map(|r| r.unwrap())
        .find(|r| &r[0] == stress && &r[1] == metric)
        .unwrap_or_else(|| panic!("no {stress} {metric}"))[2]
        .parse()
        .unwrap()
}

#[test]
fn the_loop_presets_stress_tests_liquidate_as_the_threshold_says() {
    let tmp = tempfile::tempdir().unwrap();
    for (preset, liquidates) in [("weeth-aave-loop", false), ("weeth-seamless-17x", true)] {
        let out = tmp.path().join(preset);
        let o = bin()
            .args(["stress", preset, "--paths", "20000", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let file = out.join("stress.csv");
        let base = stress_value(&file, "base", "prob_liquidation");
        let slashed = stress_value(&file, "slash-0.5pct", "prob_liquidation");
        // The 17x loop's threshold is 0.40%: a 0.5% slash on day 180 liquidates every path
        // not liquidated (or wiped out) before; the 10x loop's is 5.3%.
        if liquidates {
            assert!(slashed > 0.999, "{preset}: {slashed}");
        } else {
            assert!(slashed - base < 0.01, "{preset}: {base} then {slashed}");
        }
        // The exchange-rate oracle does not see the depeg.
        assert_eq!(
            stress_value(&file, "depeg-3-days", "prob_liquidation"),
            base,
            "{preset}"
        );
        let summary = fs::read_to_string(out.join("slash-0.5pct/summary.csv")).unwrap();
        for row in [
            "prob_liquidation,",
            "expected_liquidation_loss_eth,",
            "mean_borrow_cost_eth,",
            "expected_bad_debt_eth,",
        ] {
            assert!(summary.contains(row), "{preset}: no {row}");
        }
        let contributions = fs::read_to_string(out.join("slash-0.5pct/contributions.csv")).unwrap();
        for row in ["loan,liquidation,", "loan,borrow_cost,", "loan,bad_debt,"] {
            assert!(contributions.contains(row), "{preset}: no {row}");
        }
    }
}

#[test]
fn a_leverage_sweep_draws_its_chart_and_solve_finds_a_leverage() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sweep");
    let o = bin()
        .args([
            "sweep",
            "weeth-aave-loop",
            "--set",
            "leverage.leverage=2,8,14",
            "--paths",
            "20000",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in ["sweep.csv", "sweep.png", "sweep.svg"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let mut reader = csv::Reader::from_path(out.join("sweep.csv")).unwrap();
    let header = reader.headers().unwrap().clone();
    let column = header.iter().position(|h| h == "prob_liquidation").unwrap();
    let coupled = header.iter().position(|h| h == "coupled").unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let p: Vec<f64> = rows.iter().map(|r| r[column].parse().unwrap()).collect();
    assert!(rows.iter().all(|r| &r[coupled] == "true"));
    assert!(p[0] < p[1] && p[1] < p[2], "{p:?}");

    let out = tmp.path().join("solve");
    let o = bin()
        .args([
            "solve",
            "weeth-aave-loop",
            "--vary",
            "leverage.leverage",
            "--target",
            "prob_liquidation=0.01",
            "--within",
            "1:19.9",
            "--paths",
            "50000",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut reader = csv::Reader::from_path(out.join("solve.csv")).unwrap();
    let row = reader.records().next().unwrap().unwrap();
    let (value, lo, hi): (f64, f64, f64) = (
        row[1].parse().unwrap(),
        row[2].parse().unwrap(),
        row[3].parse().unwrap(),
    );
    // P(liquidation) is 0.8% at 10x and 1.5% at 12x (README, "Leverage").
    assert!(
        lo <= value && value <= hi && (9.0..13.0).contains(&value),
        "{row:?}"
    );
}

#[test]
fn bad_leverage_tables_are_refused_naming_the_field() {
    let base = common::repo().join("data/scenarios/weeth-seamless-17x.toml");
    let text = fs::read_to_string(&base).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    for (from, to, field, words) in [
        (
            "leverage = 17.0 ",
            "leverage = 18.5 ",
            "leverage.leverage",
            "starts liquidatable",
        ),
        (
            "leverage = 17.0 ",
            "leverage = 0.5 ",
            "leverage.leverage",
            "[1, 1000]",
        ),
        (
            "liquidation_bonus = 0.016777",
            "liquidation_bonus = 0.06",
            "leverage.liquidation_bonus",
            "must be below 1",
        ),
        (
            "liquidation_threshold = 0.945",
            "liquidation_threshold = 1.0",
            "leverage.liquidation_threshold",
            "(0, 1)",
        ),
        (
            "close_factor = 1.0 ",
            "close_factor = 0.0 ",
            "leverage.close_factor",
            "(0, 1]",
        ),
        (
            "oracle = \"exchange_rate\"",
            "oracle = \"spot\"",
            "oracle",
            "unknown variant",
        ),
        (
            "route = \"liquid\"",
            "route = \"native\"",
            "liquid",
            "only allowed",
        ),
        (
            "days = 3,",
            "days = -3,",
            "stress.depeg-3-days.events[0].days",
            "(0, 3650]",
        ),
    ] {
        assert!(text.contains(from), "{from}");
        let file = tmp.path().join("bad.toml");
        fs::write(&file, text.replacen(from, to, 1)).unwrap();
        let out = tmp.path().join("out");
        let o = bin()
            .arg("run")
            .arg(&file)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{to}: {err}");
        assert!(err.contains(field) && err.contains(words), "{to}: {err}");
        assert!(!out.exists());
    }
    // A market oracle with depeg episodes needs their length.
    let file = tmp.path().join("market.toml");
    let market = text
        .replacen("oracle = \"exchange_rate\"", "oracle = \"market\"", 1)
        .replacen(
            "exit = \"redeem\"",
            "exit = \"redeem\"\ndepeg_prob = 0.1\ndepeg_discount = { dist = \"uniform\", min = 0.0, max = 0.03 }",
            1,
        );
    fs::write(&file, market).unwrap();
    let o = bin().arg("validate").arg(&file).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("liquid.depeg_days") && err.contains("required"),
        "{err}"
    );
}
