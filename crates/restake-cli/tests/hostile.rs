//! The reproducers of hostile but realistic use: device nodes, links, a file as `--out`,
//! huge grids and thread counts, values whose derived quantities overflow, closed pipes,
//! data files missing what `calibrate` needs, names that are formulas or control
//! characters, and scenarios that `validate` used to accept and `run` then refused.
//! Each must end with a clear message, the right exit code (2: bad input), no panic
//! (101), and nothing written or changed.

use std::fs;
use std::os::unix::fs::{FileTypeExt, symlink};
use std::path::Path;
use std::process::{Output, Stdio};

mod common;
use common::{bin, entries, repo};

fn default_text() -> String {
    fs::read_to_string(repo().join("data/scenarios/etherfi-weeth.toml")).unwrap()
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts a refusal: exit code 2, a message containing `needle`.
#[track_caller]
fn refused(out: &Output, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn devices_folders_and_links_are_never_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tables = d.join("tables");
    assert!(
        run(&["export", "--out", tables.to_str().unwrap()])
            .status
            .success()
    );
    let avs = tables.join("avs.csv");
    let operators = tables.join("operators.csv");
    let import = |out: &Path| {
        run(&[
            "import",
            "--avs",
            avs.to_str().unwrap(),
            "--operators",
            operators.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
    };
    // A device node (the reproducer: /dev/full replaced by a TOML file as root).
    refused(
        &import(Path::new("/dev/full")),
        "/dev/full is not a regular file",
    );
    assert!(
        fs::metadata("/dev/full")
            .unwrap()
            .file_type()
            .is_char_device()
    );
    // A folder and a link.
    refused(&import(d), "is a folder");
    let victim = d.join("victim.txt");
    fs::write(&victim, "precious").unwrap();
    symlink(&victim, d.join("link.toml")).unwrap();
    refused(&import(&d.join("link.toml")), "is a symbolic link");
    // Links planted at the temporary names the old code used are never followed.
    symlink(&victim, d.join("new.toml.tmp")).unwrap();
    symlink(&victim, d.join(".new.toml.tmp")).unwrap();
    assert!(import(&d.join("new.toml")).status.success());
    assert!(
        fs::read_to_string(d.join("new.toml"))
            .unwrap()
            .contains("[[avs]]")
    );
    // export: a device, a folder in the place of a table, a linked table.
    refused(
        &run(&["export", "--out", "/dev/full"]),
        "/dev/full is not a folder",
    );
    let linked = d.join("linked");
    fs::create_dir(&linked).unwrap();
    symlink(&victim, linked.join("avs.csv")).unwrap();
    refused(
        &run(&["export", "--out", linked.to_str().unwrap()]),
        "is a symbolic link",
    );
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    // A partial file on a device.
    refused(
        &run(&[
            "run",
            "--paths",
            "5000",
            "--shard-index",
            "0",
            "--shard-count",
            "2",
            "--partial",
            "/dev/full",
        ]),
        "is not a regular file",
    );
}

#[test]
fn output_folders_that_are_files_links_or_hold_other_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = d.join("file");
    fs::write(&file, "x").unwrap();
    let paths = ["run", "--paths", "5000", "--quiet", "--out"];
    let with = |out: &Path| {
        let mut args = paths.to_vec();
        args.push(out.to_str().unwrap());
        run(&args)
    };
    refused(&with(&file), "is not a folder");
    refused(&with(&file.join("below")), "is not a folder");
    let mine = d.join("mine");
    fs::create_dir(&mine).unwrap();
    fs::write(mine.join("thesis.docx"), "years of work").unwrap();
    refused(&with(&mine), "\"thesis.docx\"");
    assert_eq!(
        fs::read_to_string(mine.join("thesis.docx")).unwrap(),
        "years of work"
    );
    refused(&with(Path::new(".")), "restake-mc did not write");
    symlink(&mine, d.join("link")).unwrap();
    refused(&with(&d.join("link")), "is a symbolic link");
    // A lock file planted as a link is refused, its target untouched.
    let victim = d.join("victim");
    fs::write(&victim, "precious").unwrap();
    symlink(&victim, d.join(".out.lock")).unwrap();
    refused(&with(&d.join("out")), "is a symbolic link");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    // A name too long for the file system's temporary names is refused before the run.
    let long = d.join("a".repeat(230));
    refused(&with(&long), "at most 200 are allowed");
    // Nothing was created by any of them: no empty folders either.
    assert_eq!(
        entries(d),
        [".out.lock", "file", "link", "mine", "victim"].map(String::from)
    );
    assert_eq!(entries(&mine), ["thesis.docx"]);
}

#[test]
fn sizes_that_would_exhaust_the_machine_are_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let out = out.to_str().unwrap();
    refused(
        &run(&["run", "--threads", "100000", "--out", out]),
        "--threads: at most",
    );
    // Five axes of 10,000 values: a product of 1e20 points (it used to wrap to 0).
    let axes = [
        "base.apr_mean=0:0.1:10000",
        "base.fee=0:1:10000",
        "base.apr_sd=0:0.01:10000",
        "protocol.exploit_prob=0:0.1:10000",
        "base.slash_prob=0:0.1:10000",
    ];
    let mut args = vec!["sweep", "--out", out];
    for a in axes {
        args.extend(["--set", a]);
    }
    refused(&run(&args), "more than 10000 points");
    assert!(!dir.path().join("o").exists());
}

#[test]
fn derived_quantities_that_overflow_are_refused_at_validation() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[(&str, &str)], &str); 3] = [
        (
            &[("horizon_days = 365", "horizon_days = 5e-324")],
            "position.horizon_days",
        ),
        (
            &[("principal_eth = 100.0", "principal_eth = 5e-324")],
            "position.principal_eth",
        ),
        // A century of a token at 500% volatility: e^1300 ETH.
        (
            &[
                ("horizon_days = 365", "horizon_days = 36500"),
                ("volatility = 1.074", "volatility = 5.0"),
            ],
            "token.EIGEN.volatility",
        ),
    ];
    for (edits, field) in cases {
        let mut text = default_text();
        for (from, to) in edits {
            assert!(text.contains(from), "{from}");
            text = text.replacen(from, to, 1);
        }
        let file = dir.path().join("s.toml");
        fs::write(&file, text).unwrap();
        for command in ["validate", "run"] {
            let mut args = vec![command, file.to_str().unwrap()];
            if command == "run" {
                args.extend(["--paths", "1000", "--out", "never"]);
            }
            refused(&run(&args), field);
        }
    }
    assert!(!Path::new("never").exists());
}

#[test]
fn validate_refuses_what_run_would_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        // A checkpoint every 0.1 day: 3,650 fan-chart sketches.
        (
            "checkpoint_days = 30",
            "checkpoint_days = 0.1",
            "simulation.checkpoint_days",
        ),
        // A 300-character name: it names the output folder.
        (
            "name = \"etherfi-weeth\"",
            &format!("name = \"{}\"", "n".repeat(300)),
            "at most 128 are allowed",
        ),
    ];
    for (from, to, needle) in cases {
        assert!(default_text().contains(from), "{from}");
        let text = default_text().replacen(from, to, 1);
        let file = dir.path().join("s.toml");
        fs::write(&file, text).unwrap();
        refused(&run(&["validate", file.to_str().unwrap()]), needle);
    }
}

#[test]
fn names_with_control_characters_are_refused_and_never_reach_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let text = default_text().replacen("name = \"EigenDA\"", "name = \"Eigen\\u001b[2JDA\"", 1);
    let file = dir.path().join("s.toml");
    fs::write(&file, text).unwrap();
    let out = run(&["validate", file.to_str().unwrap()]);
    refused(&out, "must not contain control characters");
    assert!(!out.stderr.contains(&0x1b), "raw ESC on the terminal");
    // A file name with an escape sequence is shown escaped.
    let evil = dir.path().join("evil\x1b[31m.toml");
    fs::write(&evil, default_text()).unwrap();
    let out = run(&["validate", evil.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!out.stdout.contains(&0x1b), "raw ESC on the terminal");
    assert!(String::from_utf8_lossy(&out.stdout).contains("\\u{1b}"));
    // An unknown flag with an escape sequence, in clap's usage error.
    let out = run(&["run", "--\x1b[2Jbogus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!out.stderr.contains(&0x1b), "raw ESC on the terminal");
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus"));
}

#[test]
fn formula_names_are_neutralised_in_every_csv_and_read_back_by_import() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // An operator and an AVS whose names a spreadsheet would run as formulas.
    let text = default_text()
        .replace(
            "name = \"EigenDA\"",
            "name = \"=HYPERLINK(\\\"http://evil\\\")\"",
        )
        .replace("{ EigenDA =", "{ \"=HYPERLINK(\\\"http://evil\\\")\" =")
        .replace(
            "avs = \"EigenDA\"",
            "avs = \"=HYPERLINK(\\\"http://evil\\\")\"",
        )
        .replacen("name = \"ether.fi-1 - Pier Two\"", "name = \"@SUM(A1)\"", 1)
        .replace(
            "operator = \"ether.fi-1 - Pier Two\"",
            "operator = \"@SUM(A1)\"",
        );
    let file = d.join("formulas.toml");
    fs::write(&file, &text).unwrap();
    let out = d.join("out");
    let r = run(&[
        "run",
        file.to_str().unwrap(),
        "--paths",
        "20000",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    for name in fs::read_dir(&out).unwrap() {
        let path = name.unwrap().path();
        if path.extension().is_some_and(|e| e == "csv") {
            let mut reader = csv::Reader::from_path(&path).unwrap();
            for record in reader.records() {
                for cell in record.unwrap().iter() {
                    let live = cell.starts_with(['=', '@', '+', '\t', '\r'])
                        || (cell.starts_with('-') && cell.parse::<f64>().is_err());
                    assert!(!live, "{}: live formula cell {cell:?}", path.display());
                }
            }
        }
    }
    let by_avs = fs::read_to_string(out.join("contributions_by_avs.csv")).unwrap();
    assert!(by_avs.contains("'=HYPERLINK"), "{by_avs}");
    // The SVGs stay well-formed XML with such names, and show them as they are.
    let mut shown = false;
    for entry in fs::read_dir(&out).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "svg") {
            let body = fs::read_to_string(&path).unwrap();
            let doc = roxmltree::Document::parse(&body)
                .unwrap_or_else(|e| panic!("{}: not XML: {e}", path.display()));
            shown |= doc.descendants().any(|n| {
                n.text()
                    .is_some_and(|t| t.contains("=HYPERLINK(\"http://evil\")"))
            });
        }
    }
    assert!(shown, "the AVS's name is in no plot");
    // Export writes them neutralised, import reads them back unchanged.
    let tables = d.join("tables");
    assert!(
        run(&[
            "export",
            file.to_str().unwrap(),
            "--out",
            tables.to_str().unwrap()
        ])
        .status
        .success()
    );
    let avs = fs::read_to_string(tables.join("avs.csv")).unwrap();
    assert!(avs.contains("\"'=HYPERLINK"), "{avs}");
    let imported = d.join("imported.toml");
    let r = run(&[
        "import",
        "--base",
        file.to_str().unwrap(),
        "--avs",
        tables.join("avs.csv").to_str().unwrap(),
        "--operators",
        tables.join("operators.csv").to_str().unwrap(),
        "--out",
        imported.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    let back: toml::Table = toml::from_str(&fs::read_to_string(&imported).unwrap()).unwrap();
    let avs_names: Vec<&str> = back["avs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(
        avs_names.contains(&"=HYPERLINK(\"http://evil\")"),
        "{avs_names:?}"
    );
}

#[test]
fn closed_pipes_end_quietly_with_the_right_exit_code() {
    // stderr a pipe whose reader is gone: the warning and the error are dropped, the
    // exit code stays that of the error, never a panic (101).
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let status = bin()
        .args(["run", "--threads", "100000"])
        .stderr(Stdio::from(writer))
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(2));
    // stdout closed while printing: a normal end.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let status = bin()
        .args([
            "validate",
            repo()
                .join("data/scenarios/etherfi-weeth.toml")
                .to_str()
                .unwrap(),
        ])
        .stdout(Stdio::from(writer))
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    // stderr on /dev/null (what Rust's runtime makes of a closed `2>&-`).
    let status = bin()
        .args(["run", "--threads", "100000"])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(2));
}

#[test]
fn calibrate_on_data_without_what_it_needs_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("real");
    fs::create_dir(&data).unwrap();
    for entry in fs::read_dir(repo().join("data/real")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            fs::copy(&path, data.join(path.file_name().unwrap())).unwrap();
        }
    }
    // The reproducer: a metadata snapshot without ether.fi operators.
    let meta = data.join("eigenlayer_operator_metadata_snapshot.json");
    let text = fs::read_to_string(&meta)
        .unwrap()
        .replace("ether.fi", "other.fi");
    fs::write(&meta, text).unwrap();
    let out = run(&["calibrate", "--data", data.to_str().unwrap()]);
    refused(&out, "4 largest ether.fi operators");
    // Missing and empty files.
    fs::write(&meta, "").unwrap();
    refused(
        &run(&["calibrate", "--data", data.to_str().unwrap()]),
        "eigenlayer_operator_metadata_snapshot.json",
    );
    refused(
        &run(&["calibrate", "--data", "/nonexistent"]),
        "cannot read",
    );
}

#[test]
fn validate_and_run_agree_on_mutated_scenarios_and_exit_only_0_or_2() {
    // The binary on hostile input, as a user meets it: for each mutated preset, validate's
    // exit code is 0 or 2 (never 101, a panic, nor 1), and run gives the same verdict
    // with the output folder written whole or not at all.
    let dir = tempfile::tempdir().unwrap();
    let presets: Vec<String> = fs::read_dir(repo().join("data/scenarios"))
        .unwrap()
        .map(|e| fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    let mut mutator = restake_run::fuzz::Mutator::new(99);
    let (mut tried, mut accepted) = (0, 0);
    for k in 0..240 {
        let mut text = presets[k % presets.len()].clone();
        for _ in 0..=mutator.below(2) {
            text = mutator.toml(&text);
        }
        let file = dir.path().join(format!("m{k}.toml"));
        fs::write(&file, &text).unwrap();
        let file = file.to_str().unwrap();
        let validate = run(&["validate", file]);
        let code = validate.status.code();
        assert!(
            matches!(code, Some(0 | 2)),
            "validate exit {code:?}: {}\n{text}",
            stderr(&validate)
        );
        let out = dir.path().join(format!("out{k}"));
        let r = run(&[
            "run",
            file,
            "--paths",
            "3000",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(
            r.status.code(),
            code,
            "validate and run disagree: {}\n{text}",
            stderr(&r)
        );
        assert_eq!(out.exists(), code == Some(0), "{text}");
        tried += 1;
        accepted += usize::from(code == Some(0));
    }
    eprintln!(
        "{tried} mutated scenarios through the binary: {accepted} ran, the rest refused with exit 2"
    );
    assert!(
        accepted * 10 >= tried && accepted < tried,
        "{accepted} of {tried}"
    );
}

#[test]
fn a_batch_member_named_like_a_batch_file_is_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.toml");
    fs::write(
        &file,
        default_text().replacen(
            "name = \"etherfi-weeth\"",
            "name = \"batch_summary.csv\"",
            1,
        ),
    )
    .unwrap();
    let out = dir.path().join("batch");
    let r = run(&[
        "batch",
        file.to_str().unwrap(),
        repo()
            .join("data/scenarios/renzo-ezeth.toml")
            .to_str()
            .unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    refused(&r, "is a file the batch writes");
    assert!(!out.exists());
}
