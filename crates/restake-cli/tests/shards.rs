//! Sharded runs as a user runs them: `run`, `batch` and `sweep` cut into 1, 3 and 7
//! shards (below and above 2^21 paths), each writing a partial file, merged in a
//! shuffled order by `restake-mc merge`: every CSV byte for byte the one the job writes
//! in one piece. And `merge` refuses, with exit code 2 and nothing written, partials of
//! different runs, a missing or repeated shard, and truncated or corrupted files.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::{bin, repo};

fn run(args: &[&str]) -> Output {
    let out = bin().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Every `*.csv` under `dir`, relative paths sorted.
fn csvs(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "csv") {
                found.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    found.sort();
    found
}

/// Runs `job` (a subcommand and its arguments) in one piece and as `shards` shards
/// merged in reverse order, and checks that every CSV is the same byte for byte.
/// Returns the partial files.
fn check_merge_equals_whole(tmp: &Path, job: &[&str], shards: u64) -> Vec<PathBuf> {
    let tag = format!("{}-{shards}", job[0]);
    let whole = tmp.join(format!("{tag}-whole"));
    let merged = tmp.join(format!("{tag}-merged"));
    let mut args = job.to_vec();
    args.extend(["--quiet", "--out", whole.to_str().unwrap()]);
    run(&args);
    let partials: Vec<PathBuf> = (0..shards)
        .map(|i| tmp.join(format!("{tag}-{i}.part")))
        .collect();
    for (i, p) in partials.iter().enumerate() {
        let (index, count) = (i.to_string(), shards.to_string());
        let mut args = job.to_vec();
        args.extend([
            "--quiet",
            "--shard-index",
            &index,
            "--shard-count",
            &count,
            "--partial",
            p.to_str().unwrap(),
        ]);
        run(&args);
    }
    let mut args = vec!["merge", "--quiet", "--out", merged.to_str().unwrap()];
    args.extend(partials.iter().rev().map(|p| p.to_str().unwrap()));
    run(&args);
    let files = csvs(&whole);
    assert!(!files.is_empty());
    assert_eq!(files, csvs(&merged), "{tag}: the same files");
    for f in &files {
        assert!(
            fs::read(whole.join(f)).unwrap() == fs::read(merged.join(f)).unwrap(),
            "{tag}: {} differs",
            f.display()
        );
    }
    if let Some(run_json) = run_json(&merged) {
        let json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(run_json).unwrap()).unwrap();
        assert_eq!(json["shards"], shards);
    }
    partials
}

/// A run's `run.json`, or a batch's first scenario's; a sweep has none.
fn run_json(dir: &Path) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    std::iter::once(dir.to_path_buf())
        .chain(dirs)
        .map(|d| d.join("run.json"))
        .find(|p| p.exists())
}

#[test]
fn a_run_in_1_3_and_7_shards_merges_to_the_same_bytes_below_and_above_2_pow_21_paths() {
    let tmp = tempfile::tempdir().unwrap();
    for paths in ["300000", "2200000"] {
        for shards in [1, 3, 7] {
            let dir = tmp.path().join(paths);
            fs::create_dir_all(&dir).unwrap();
            check_merge_equals_whole(&dir, &["run", "--paths", paths, "--seed", "11"], shards);
        }
    }
}

#[test]
fn a_batch_a_sweep_and_stress_tests_in_3_shards_merge_to_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let presets = repo().join("data/scenarios");
    let (a, b) = (
        presets.join("eigenlayer-native.toml"),
        presets.join("renzo-ezeth.toml"),
    );
    check_merge_equals_whole(
        tmp.path(),
        &[
            "batch",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--paths",
            "120000",
        ],
        3,
    );
    check_merge_equals_whole(
        tmp.path(),
        &[
            "sweep",
            "--set",
            "avs.EigenDA.slash_prob=0.005:0.04:3",
            "--paths",
            "100000",
        ],
        3,
    );
    // The default preset's stress tests: forced events and the held factor.
    check_merge_equals_whole(tmp.path(), &["stress", "--paths", "100000"], 3);
}

/// `merge args` must fail with exit code 2, `expected` in its message, and no output.
fn refused(tmp: &Path, files: &[&Path], expected: &str) {
    let out_dir = tmp.join("never");
    let mut args = vec!["merge", "--out", out_dir.to_str().unwrap()];
    args.extend(files.iter().map(|p| p.to_str().unwrap()));
    let out = bin().args(&args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{expected}: {stderr}");
    assert!(stderr.contains(expected), "{expected:?} not in {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!out_dir.exists(), "{expected}: wrote an output folder");
}

#[test]
fn merge_refuses_mismatched_missing_repeated_truncated_and_corrupted_partials() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let job = ["run", "--paths", "90000", "--seed", "5"];
    let parts = check_merge_equals_whole(t, &job, 3);
    let other_seed = tmp.path().join("other");
    fs::create_dir_all(&other_seed).unwrap();
    let others =
        check_merge_equals_whole(&other_seed, &["run", "--paths", "90000", "--seed", "6"], 3);
    let p: Vec<&Path> = parts.iter().map(PathBuf::as_path).collect();
    refused(t, &[p[0], p[1]], "shards 2 of 3 are missing");
    refused(t, &[p[0], p[1], p[1], p[2]], "given twice");
    refused(t, &[p[0], p[1], &others[2]], "different jobs");
    let bytes = fs::read(p[1]).unwrap();
    let truncated = t.join("truncated.part");
    fs::write(&truncated, &bytes[..bytes.len() - 100]).unwrap();
    refused(t, &[p[0], &truncated, p[2]], "truncated");
    let mut flipped = bytes.clone();
    let at = bytes.len() - 1000;
    flipped[at] ^= 1;
    let corrupted = t.join("corrupted.part");
    fs::write(&corrupted, &flipped).unwrap();
    refused(t, &[p[0], &corrupted, p[2]], "corrupted");
    let foreign = t.join("foreign.part");
    fs::write(&foreign, "name = \"not a partial\"\n").unwrap();
    refused(t, &[&foreign], "not a restake-mc partial file");
    // A shard flag without the others is refused by the argument parser.
    let out = bin()
        .args(["run", "--shard-index", "0", "--paths", "1000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = bin()
        .args([
            "run",
            "--shard-index",
            "3",
            "--shard-count",
            "3",
            "--partial",
            t.join("x.part").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--shard-index must be in [0, 2]"));
    assert!(!t.join("x.part").exists());
}
