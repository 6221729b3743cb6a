//! `run --paths-out FILE.parquet` as a user runs it: one row per path in path order,
//! read back with the parquet crate's own reader; its mean net return is
//! `summary.csv`'s, its per-operator columns add up to each path's slashing loss, its
//! per-AVS columns' means are `contributions_by_avs.csv`'s expected losses; and the
//! refusals (a name without `.parquet`, a file in the output folder, a sharded run, a
//! file past the size limit) exit with 2 before anything is simulated or written; a
//! signal while the file is written leaves neither it nor a temporary file.

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::{Duration, Instant};

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::RowAccessor;

mod common;
use common::{bin, entries};

/// The value of `metric` in a `summary.csv`.
fn summary_value(file: &Path, metric: &str) -> f64 {
    let mut reader = csv::Reader::from_path(file).unwrap();
    reader
        .records()
        .map(|r| r.unwrap())
        .find(|r| &r[0] == metric)
        .unwrap_or_else(|| panic!("no {metric}"))[1]
        .parse()
        .unwrap()
}

/// Each row's `(source, expected_loss_eth)` of a contributions file.
fn expected_losses(file: &Path) -> Vec<(String, f64)> {
    let mut reader = csv::Reader::from_path(file).unwrap();
    reader
        .records()
        .map(|r| r.unwrap())
        .map(|r| (r[0].to_string(), r[3].parse().unwrap()))
        .collect()
}

/// A sum of many terms, compensated (Neumaier), to compare with the engine's exact sum.
fn sum(values: impl IntoIterator<Item = f64>) -> f64 {
    let (mut s, mut c) = (0.0f64, 0.0f64);
    for x in values {
        let t = s + x;
        c += if s.abs() >= x.abs() {
            (s - t) + x
        } else {
            (x - t) + s
        };
        s = t;
    }
    s + c
}

#[test]
fn the_file_holds_every_path_of_the_run_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, file) = (tmp.path().join("out"), tmp.path().join("paths.parquet"));
    // 140,000 paths: two row groups, the second cut short.
    let paths = 140_000;
    let o = bin()
        .args(["run", "--paths", "140000", "--seed", "9", "--out"])
        .arg(&out)
        .arg("--paths-out")
        .arg(&file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("wrote 140000 paths to"));

    let reader = SerializedFileReader::new(fs::File::open(&file).unwrap()).unwrap();
    let meta = reader.metadata();
    assert_eq!(meta.file_metadata().num_rows(), paths);
    assert_eq!(meta.num_row_groups(), 2);
    let kv = meta.file_metadata().key_value_metadata().unwrap();
    assert!(
        kv.iter()
            .any(|k| k.key == "restake_mc.seed" && k.value.as_deref() == Some("9"))
    );

    let fields = meta.file_metadata().schema_descr().columns().to_vec();
    let names: Vec<String> = fields.iter().map(|c| c.name().to_string()).collect();
    let avs = expected_losses(&out.join("contributions_by_avs.csv"));
    let operators = expected_losses(&out.join("contributions_by_operator.csv"));
    let mut expected = vec![
        "path",
        "net_return",
        "excess_return",
        "slashing_loss_eth",
        "base_income_eth",
        "avs_fee_income_eth",
        "incentive_value_eth",
        "depeg_loss_eth",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    expected.extend(avs.iter().map(|(s, _)| format!("avs:{s}")));
    expected.extend(operators.iter().map(|(s, _)| format!("operator:{s}")));
    assert_eq!(names, expected);

    let column = |name: &str| names.iter().position(|n| n == name).unwrap();
    let mut values = vec![Vec::with_capacity(paths as usize); names.len()];
    for (i, row) in reader.get_row_iter(None).unwrap().enumerate() {
        let row = row.unwrap();
        assert_eq!(row.get_ulong(0).unwrap(), i as u64, "path order");
        for (j, v) in values.iter_mut().enumerate().skip(1) {
            v.push(row.get_double(j).unwrap());
        }
    }
    let mean = sum(values[column("net_return")].iter().copied()) / paths as f64;
    let summary_mean = summary_value(&out.join("summary.csv"), "mean_net_return");
    assert!(
        (mean - summary_mean).abs() <= 1e-15 * summary_mean.abs(),
        "{mean} against {summary_mean}"
    );
    // Every path's slashing loss is split between its operators.
    let slashing = &values[column("slashing_loss_eth")];
    for (i, s) in slashing.iter().enumerate() {
        let by_operator = sum(operators
            .iter()
            .map(|(name, _)| values[column(&format!("operator:{name}"))][i]));
        assert!((by_operator - s).abs() <= 1e-12 * s.max(1.0), "path {i}");
    }
    assert!(slashing.iter().filter(|s| **s > 0.0).count() > 1000);
    for (name, expected_loss) in avs.iter().chain(&operators) {
        let prefix = if avs.iter().any(|(a, _)| a == name) {
            "avs"
        } else {
            "operator"
        };
        let mean = sum(values[column(&format!("{prefix}:{name}"))].iter().copied()) / paths as f64;
        assert!(
            (mean - expected_loss).abs() <= 1e-12 * expected_loss.max(1e-9),
            "{prefix}:{name}: {mean} against {expected_loss}"
        );
    }
}

#[test]
fn refusals_exit_with_2_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    for (args, message) in [
        (vec!["--paths-out", "paths.csv"], "must end in .parquet"),
        (
            vec!["--paths-out", "out/paths.parquet"],
            "inside the output folder",
        ),
        (
            vec!["--paths", "1e8", "--paths-out", "paths.parquet"],
            "100000000 paths x 16 columns would take about 12.8 GB",
        ),
        (
            vec![
                "--paths-out",
                "paths.parquet",
                "--shard-index",
                "0",
                "--shard-count",
                "2",
                "--partial",
                "p.partial",
            ],
            "cannot be used with",
        ),
    ] {
        let o = bin()
            .current_dir(tmp.path())
            .arg("run")
            .args(&args)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert_eq!(entries(tmp.path()), Vec::<String>::new(), "{args:?}");
    }
}

#[test]
fn a_signal_while_the_file_is_written_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = bin()
        .current_dir(tmp.path())
        .args([
            "run",
            "--paths",
            "2e6",
            "--threads",
            "1",
            "--quiet",
            "--out",
            "out",
        ])
        .args(["--paths-out", "paths.parquet"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The file's temporary twin appears once the run's statistics are done.
    let start = Instant::now();
    while !entries(tmp.path())
        .iter()
        .any(|n| n.starts_with(".paths.parquet.restake-"))
    {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no temporary file"
        );
        assert!(child.try_wait().unwrap().is_none(), "the run ended first");
        std::thread::sleep(Duration::from_millis(2));
    }
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(15), "{status:?}");
    assert_eq!(entries(tmp.path()), Vec::<String>::new());
}
