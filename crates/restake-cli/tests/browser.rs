//! `report.html` in a real browser: headless Chromium (Debian's `chromium`, which
//! `.ci/run` installs) loads the page of a run, and the test fails on any console
//! message, on a page without its sections and tables, or on a blank screenshot. The
//! scenario's description, an assumption's note and an operator's name carry scripts,
//! which must come out as text. Without Chromium the test is skipped, except under CI, where it fails.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{bin, repo};

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|b| dir.join(b)))
        .find(|p| p.is_file())
}

/// Runs Chromium headless on `page` with `args`; returns its stdout and its console
/// lines (Chromium logs each console message to stderr as `...:CONSOLE(...)`).
fn browse(chromium: &Path, profile: &Path, page: &Path, args: &[&str]) -> (String, Vec<String>) {
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(out.status.success(), "chromium failed: {out:?}");
    let console = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(String::from)
        .collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), console)
}

#[test]
fn report_html_renders_in_a_browser() {
    let Some(chromium) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is not installed (.ci/run installs Debian's chromium)"
        );
        eprintln!("skipped: no chromium on PATH");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let preset = fs::read_to_string(repo().join("data/scenarios/etherfi-weeth.toml")).unwrap();
    let script = "<script>console.error('injected')</script>";
    let text = preset
        .replacen(
            "description = \"",
            &format!("description = \"{script} & "),
            1,
        )
        .replacen(
            "# ASSUMPTION: a round size",
            &format!("# ASSUMPTION: a round size {script}"),
            1,
        )
        // An operator's name reaches the tables and the plots' SVG text.
        .replace(
            "ether.fi-1 - Pier Two",
            "<img src=x onerror=console.error(1)>",
        );
    assert_ne!(text, preset);
    let scenario = dir.path().join("hostile.toml");
    fs::write(&scenario, text).unwrap();
    let out = dir.path().join("run");
    let status = bin()
        .arg("run")
        .arg(&scenario)
        .args(["--paths", "20000", "--quiet", "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let page = out.join("report.html");
    let profile = dir.path().join("profile");
    let shot = dir.path().join("shot.png");

    let (dom, console) = browse(&chromium, &profile, &page, &["--dump-dom"]);
    assert!(console.is_empty(), "console messages: {console:#?}");
    for id in [
        "position",
        "headline",
        "contributions",
        "plots",
        "convergence",
        "assumptions",
    ] {
        assert!(
            dom.contains(&format!("<h2 id=\"{id}\">")),
            "no section {id}"
        );
    }
    let rows_of = |id: &str| {
        let start = dom
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("no {id}"));
        let end = start + dom[start..].find("</table>").unwrap();
        dom[start..end].matches("<tr>").count()
    };
    // The header and 25 metrics with the annualised mean; 12 metrics over 5 prefixes.
    assert!(
        rows_of("headline-table") >= 26,
        "{}",
        rows_of("headline-table")
    );
    assert_eq!(rows_of("convergence-table"), 13);
    assert!(rows_of("assumptions-table") > 20);
    assert_eq!(dom.matches("<svg").count(), 4);
    for text in [
        "100 ETH",
        "ES 99",
        "P(underperform)",
        "incidents at EigenDA",
        "total = loss x principal",
        "&lt;script&gt;console.error('injected')&lt;/script&gt; &amp; ether.fi",
        "a round size &lt;script&gt;",
        "faults of operator &lt;img src=x onerror=console.error(1)&gt;",
    ] {
        assert!(dom.contains(text), "the page lacks {text:?}");
    }

    let (_, console) = browse(
        &chromium,
        &profile,
        &page,
        &[
            "--window-size=1200,3000",
            &format!("--screenshot={}", shot.display()),
        ],
    );
    assert!(console.is_empty(), "console messages: {console:#?}");
    let decoder = png::Decoder::new(std::io::BufReader::new(fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let channels = info.color_type.samples();
    let inked = pixels[..info.buffer_size()]
        .chunks(channels)
        .filter(|p| p[..3].iter().any(|&c| c < 200))
        .count();
    let share = inked as f64 / (f64::from(info.width) * f64::from(info.height));
    assert!(share > 0.02, "the page looks blank: {share:.4} of it inked");
}
