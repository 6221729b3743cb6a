//! The fault suite: runs killed at random moments (SIGINT, SIGTERM, SIGKILL), pairs of
//! runs on one `--out` at once, a full file system (a small tmpfs, when the tests run as
//! root), and links planted where temporary files go. After each, the output folder holds
//! the complete old output or the complete new one, byte for byte, no temporary file
//! remains (after a SIGKILL, once the next run has cleaned up), and nothing beside the
//! folder changed. Delays are drawn from a fixed seed, so the suite does not flake; the
//! outcomes it asserts hold whatever the timing.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use rand::{RngExt, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rustix::process::{Pid, Signal, kill_process};

mod common;
use common::{bin, entries};

/// Paths of every run of the suite: long enough to be caught in each phase.
const PATHS: &str = "100000";

fn run_command(out: &Path, seed: u64) -> Command {
    let mut cmd = bin();
    cmd.args(["run", "--paths", PATHS, "--quiet", "--seed"])
        .arg(seed.to_string())
        .arg("--out")
        .arg(out);
    cmd
}

fn run(out: &Path, seed: u64) -> Output {
    run_command(out, seed).output().unwrap()
}

/// A complete output: every file's bytes, `run.json` by its seed only (its elapsed time
/// and date differ from run to run), `report.html` without its date.
type Folder = BTreeMap<String, Vec<u8>>;

fn read_folder(dir: &Path) -> Folder {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = fs::read(&path).unwrap();
            let bytes = match name.as_str() {
                "run.json" => {
                    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                    json["seed"].to_string().into_bytes()
                }
                // Its date differs from run to run; the rest is the run's.
                "report.html" => String::from_utf8(bytes)
                    .unwrap()
                    .lines()
                    .filter(|l| !l.contains("Created (UTC)"))
                    .collect::<Vec<_>>()
                    .join("\n")
                    .into_bytes(),
                _ => bytes,
            };
            (name, bytes)
        })
        .collect()
}

/// The reference outputs of seeds 1, 2 and 3, made once.
fn references(dir: &Path) -> Vec<Folder> {
    (1..=3)
        .map(|seed| {
            let out = dir.join(format!("ref-{seed}"));
            let r = run(&out, seed);
            assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
            read_folder(&out)
        })
        .collect()
}

/// Which reference `dir` is, whole; panics on a partial or mixed folder.
fn which(dir: &Path, refs: &[Folder]) -> usize {
    let found = read_folder(dir);
    refs.iter().position(|r| *r == found).unwrap_or_else(|| {
        let names: Vec<&String> = found.keys().collect();
        panic!("{} is neither output whole: {names:?}", dir.display())
    })
}

/// A fresh parent folder holding `out`, a copy of reference `seed`'s output folder.
fn with_old(root: &Path, name: &str, reference: &Path) -> PathBuf {
    let parent = root.join(name);
    let out = parent.join("out");
    fs::create_dir_all(&out).unwrap();
    for e in fs::read_dir(reference).unwrap() {
        let p = e.unwrap().path();
        fs::copy(&p, out.join(p.file_name().unwrap())).unwrap();
    }
    out
}

/// Sends `signal` to `pid` (which may have ended just before: no error then).
fn signal(pid: u32, signal: Signal) {
    let pid = Pid::from_raw(pid as i32).expect("a child's pid is positive");
    let _ = kill_process(pid, signal);
}

#[test]
fn killed_runs_leave_the_old_or_the_new_output_whole_and_nothing_else() {
    let root = tempfile::tempdir().unwrap();
    let refs = references(root.path());
    let ref_old = root.path().join("ref-1");
    // How long a whole run takes here, so that kills fall in every phase.
    let start = Instant::now();
    let out = with_old(root.path(), "timing", &ref_old);
    assert!(run(&out, 2).status.success());
    let duration = start.elapsed();
    let sentinel = root.path().join("sentinel");
    fs::write(&sentinel, "unchanged").unwrap();

    let mut rng = Xoshiro256PlusPlus::seed_from_u64(10);
    let mut landed = [0usize; 2];
    let signals = [
        ("INT", Signal::INT, 2),
        ("TERM", Signal::TERM, 15),
        ("KILL", Signal::KILL, 9),
    ];
    let tries = 60;
    for k in 0..tries {
        let out = with_old(root.path(), &format!("try-{k}"), &ref_old);
        let parent = out.parent().unwrap();
        let (sig, number_to_send, number) = signals[k % 3];
        let mut child = run_command(&out, 2).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(duration.mul_f64(rng.random_range(0.0..1.1)));
        signal(child.id(), number_to_send);
        let status = child.wait().unwrap();
        match (status.code(), status.signal()) {
            (Some(0), _) => {}
            (None, Some(s)) => assert_eq!(s, number, "try {k}: ended by signal {s} after SIG{sig}"),
            other => panic!("try {k}: SIG{sig} gave {other:?}"),
        }
        let state = which(&out, &refs);
        assert!(state <= 1, "try {k}: a third output");
        landed[state] += 1;
        if sig == "KILL" {
            // A killed process cleans nothing: the next run on the folder does.
            assert!(run(&out, 2).status.success());
            assert_eq!(which(&out, &refs), 1);
        }
        assert_eq!(
            entries(parent),
            ["out"],
            "try {k} (SIG{sig}): left beside the folder"
        );
    }
    assert_eq!(fs::read_to_string(&sentinel).unwrap(), "unchanged");
    eprintln!(
        "{tries} kills: {} left the old output, {} the new one",
        landed[0], landed[1]
    );
    assert!(
        landed[0] > 0 && landed[1] > 0,
        "the kills did not reach both phases: {landed:?}"
    );
}

#[test]
fn two_runs_on_one_folder_give_one_whole_output() {
    let root = tempfile::tempdir().unwrap();
    let refs = references(root.path());
    for pair in 0..20 {
        let out = with_old(
            root.path(),
            &format!("pair-{pair}"),
            &root.path().join("ref-1"),
        );
        let a = run_command(&out, 2).stderr(Stdio::piped()).spawn().unwrap();
        let b = run_command(&out, 3).stderr(Stdio::piped()).spawn().unwrap();
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        let mut won = Vec::new();
        for (seed, r) in [(2, &a), (3, &b)] {
            match r.status.code() {
                Some(0) => won.push(seed),
                Some(2) => {
                    let err = String::from_utf8_lossy(&r.stderr);
                    assert!(err.contains("another restake-mc run"), "{err}");
                }
                other => panic!("pair {pair}: exit {other:?}"),
            }
        }
        assert!(!won.is_empty(), "pair {pair}: neither run wrote");
        let state = which(&out, &refs);
        assert!(state >= 1, "pair {pair}: the old output survived both");
        assert!(
            won.contains(&(state as u64 + 1)),
            "pair {pair}: output of a failed run"
        );
        assert_eq!(entries(out.parent().unwrap()), ["out"]);
    }
}

#[test]
fn links_planted_beside_the_folder_are_never_followed() {
    let root = tempfile::tempdir().unwrap();
    let refs = references(root.path());
    let out = with_old(root.path(), "planted", &root.path().join("ref-1"));
    let parent = out.parent().unwrap().to_path_buf();
    let victim = root.path().join("victim");
    fs::write(&victim, "precious").unwrap();
    // The names the old code wrote to, and names of this code's temporaries.
    for name in [
        ".out.tmp",
        ".out.toml.tmp",
        ".out.restake-AAAAAA",
        ".out.restake-AAAAAA.old",
    ] {
        std::os::unix::fs::symlink(&victim, parent.join(name)).unwrap();
    }
    let r = run(&out, 2);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(which(&out, &refs), 1);
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    // The links named like this code's temporaries were removed as stale; the others
    // are not restake-mc's and stay.
    assert_eq!(entries(&parent), [".out.tmp", ".out.toml.tmp", "out"]);
}

/// A tmpfs mounted at `dir` with mount `options`, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts it; `None` where this process may not mount (it needs root).
    fn mount(dir: &Path, options: &str) -> Option<Self> {
        fs::create_dir_all(dir).unwrap();
        Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
            .then(|| Self(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_file_system_leaves_the_old_output_whole() {
    let root = tempfile::tempdir().unwrap();
    let refs = references(root.path());
    let size: u64 = refs[0]
        .values()
        .map(|b| (b.len() as u64).div_ceil(4096) * 4096)
        .sum();
    let disk = root.path().join("disk");
    // Room for one output and a half: a second one cannot be written beside it.
    let Some(_disk) = Tmpfs::mount(&disk, &format!("size={}", size * 3 / 2 + 65_536)) else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let out = disk.join("out");
    let first = run(&out, 1);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let second = run(&out, 2);
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{err}");
    assert_eq!(err.matches("No space left on device").count(), 1, "{err}");
    assert_eq!(which(&out, &refs), 0, "the old output is whole");
    assert_eq!(entries(&disk), ["out"]);
    // A batch on the full disk writes no folder at all.
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/scenarios");
    let batch = bin()
        .args(["batch", "--paths", "20000", "--quiet", "--out"])
        .arg(disk.join("batch"))
        .arg(repo.join("etherfi-weeth.toml"))
        .arg(repo.join("renzo-ezeth.toml"))
        .output()
        .unwrap();
    assert_eq!(batch.status.code(), Some(1));
    assert_eq!(entries(&disk), ["out"]);
    assert_eq!(which(&out, &refs), 0);
}

#[test]
fn every_kind_of_output_folder_is_replaced_by_its_next_run() {
    // A second run on a folder is refused if the folder holds a file restake-mc does not
    // know as its own: so each kind's own files must all be known, and the second run
    // replaces the first whole (a file only the first wrote goes).
    let root = tempfile::tempdir().unwrap();
    let presets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/scenarios");
    let (weeth, ezeth) = (
        presets.join("etherfi-weeth.toml"),
        presets.join("renzo-ezeth.toml"),
    );
    let jobs: [(&str, Vec<&std::ffi::OsStr>, Vec<&std::ffi::OsStr>); 3] = [
        ("run", vec![weeth.as_os_str()], vec![weeth.as_os_str()]),
        (
            "batch",
            vec![weeth.as_os_str(), ezeth.as_os_str()],
            vec![ezeth.as_os_str()],
        ),
        (
            "sweep",
            vec!["--set".as_ref(), "base.fee=0.05,0.1".as_ref()],
            vec!["--set".as_ref(), "base.fee=0.2".as_ref()],
        ),
    ];
    for (command, first, second) in jobs {
        let out = root.path().join(command);
        for args in [&first, &second] {
            let r = bin()
                .args([command, "--paths", "20000", "--quiet", "--out"])
                .arg(&out)
                .args(args)
                .output()
                .unwrap();
            assert!(
                r.status.success(),
                "{command}: {}",
                String::from_utf8_lossy(&r.stderr)
            );
        }
        if command == "batch" {
            assert!(
                !out.join("etherfi-weeth").exists(),
                "the first batch's member stayed"
            );
            assert!(out.join("renzo-ezeth/summary.csv").exists());
        }
        if command == "sweep" {
            let sweep = fs::read_to_string(out.join("sweep.csv")).unwrap();
            assert_eq!(sweep.lines().count(), 2, "one grid point: {sweep}");
        }
    }
    assert_eq!(entries(root.path()), ["batch", "run", "sweep"]);
}

#[test]
fn a_read_only_file_system_is_refused_before_the_run() {
    let root = tempfile::tempdir().unwrap();
    let disk = root.path().join("ro");
    let Some(mounted) = Tmpfs::mount(&disk, "ro,size=65536") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let out = run(&disk.join("out"), 1);
    let partial = bin()
        .args([
            "run",
            "--paths",
            "5000",
            "--shard-index",
            "0",
            "--shard-count",
            "2",
            "--partial",
        ])
        .arg(disk.join("p/shard.bin"))
        .output()
        .unwrap();
    drop(mounted);
    for r in [&out, &partial] {
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{err}");
        // The check before the simulation, not a failed write after it.
        assert!(
            err.contains("cannot write in") && err.contains("Read-only file system"),
            "{err}"
        );
    }
}
