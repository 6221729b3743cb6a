//! Golden values: for each preset, `summary.csv` of a run with a pinned seed and path
//! count must match `tests/golden/<preset>.summary.csv` byte for byte. These files were
//! written by the engine itself, so they prove nothing about correctness (the oracles
//! of `restake-validation` do that): they catch any change of the numbers a user gets
//! for the same seed. A deliberate change rewrites them with
//! `RESTAKE_UPDATE_GOLDEN=1 cargo test -p restake-cli --test golden` and says why in
//! CHANGELOG.md.

use std::fs;
use std::path::Path;
use std::process::Command;

const PATHS: &str = "50000";
const SEED: &str = "20261122";

#[test]
fn every_preset_reproduces_its_golden_summary() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let golden_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let update = std::env::var_os("RESTAKE_UPDATE_GOLDEN").is_some();
    let tmp = tempfile::tempdir().unwrap();
    let mut presets: Vec<_> = fs::read_dir(repo.join("data/scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    presets.sort();
    let mut mismatches = Vec::new();
    for preset in &presets {
        let stem = preset.file_stem().unwrap().to_str().unwrap();
        let out = tmp.path().join(stem);
        let status = Command::new(env!("CARGO_BIN_EXE_restake-mc"))
            .args([
                "run",
                preset.to_str().unwrap(),
                "--paths",
                PATHS,
                "--seed",
                SEED,
            ])
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert!(status.status.success(), "{stem}: {status:?}");
        let actual = fs::read(out.join("summary.csv")).unwrap();
        let golden = golden_dir.join(format!("{stem}.summary.csv"));
        if update {
            fs::write(&golden, &actual).unwrap();
            continue;
        }
        let expected = fs::read(&golden).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; write it with RESTAKE_UPDATE_GOLDEN=1",
                golden.display()
            )
        });
        if actual != expected {
            mismatches.push(format!(
                "{stem}: summary.csv differs from {}:\n{}",
                golden.display(),
                first_difference(&expected, &actual)
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// The first line that differs, as `golden` / `actual`.
fn first_difference(golden: &[u8], actual: &[u8]) -> String {
    let (g, a) = (
        String::from_utf8_lossy(golden),
        String::from_utf8_lossy(actual),
    );
    g.lines()
        .zip(a.lines())
        .find(|(x, y)| x != y)
        .map_or("line counts differ".into(), |(x, y)| {
            format!("golden: {x}\nactual: {y}")
        })
}
