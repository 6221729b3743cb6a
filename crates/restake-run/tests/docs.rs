//! The project's docs stand alone: every `docs/<file>.md#<anchor>` the code, presets and
//! docs cite names a heading that exists, nothing cites a file outside the repository,
//! and `docs/scenario.md` lists every key a scenario file can hold.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use restake_core::{Scenario, ScenarioSpec};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The repository's own text files: code, presets, docs, deployment and bench scripts.
fn text_files() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md"), root().join("CHANGELOG.md")];
    let mut dirs: Vec<PathBuf> = ["crates", "data", "docs", "deploy", "benches", "fuzz", ".ci"]
        .iter()
        .map(|d| root().join(d))
        .collect();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                if !["target", ".venv", "corpus", "artifacts", "golden", "img"]
                    .contains(&name.as_str())
                {
                    dirs.push(path);
                }
            } else if [
                ".rs", ".toml", ".md", ".sh", ".py", ".yaml", ".sbatch", "run",
            ]
            .iter()
            .any(|ext| name.ends_with(ext))
            {
                files.push(path);
            }
        }
    }
    files
}

/// GitHub's anchor of a Markdown heading: lower case, spaces to `-`, punctuation dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(doc: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(doc).unwrap();
    let mut in_code = false;
    let mut set = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        } else if !in_code && line.starts_with('#') {
            set.insert(slug(line.trim_start_matches('#')));
        }
    }
    set
}

/// Every `<file>.md#<anchor>` in `text` whose file is one of `docs/`.
fn citations(text: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(".md#") {
        let before = &rest[..at];
        let start = before
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .map_or(0, |i| i + 1);
        let file = format!("{}.md", &before[start..]);
        let after = &rest[at + 4..];
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(after.len());
        found.push((file, after[..end].to_string()));
        rest = &after[end..];
    }
    found
}

#[test]
fn every_cited_section_exists_and_nothing_cites_outside_the_repository() {
    let docs = root().join("docs");
    let mut cited = 0;
    let mut bad = Vec::new();
    let outside = [
        concat!("MODEL", ".md"),
        concat!("SCENARIO", ".md"),
        concat!("../", "shared"),
    ];
    for file in text_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for (doc, anchor) in citations(&text) {
            let target = docs.join(&doc);
            if !target.exists() {
                // Anchors into READMEs and other files are not the docs' citations.
                continue;
            }
            cited += 1;
            if !anchors(&target).contains(&anchor) {
                bad.push(format!("{}: {doc}#{anchor}", file.display()));
            }
        }
        for o in outside {
            if text.contains(o) {
                bad.push(format!("{}: cites {o}", file.display()));
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
    assert!(
        cited > 100,
        "only {cited} citations found: is the scan broken?"
    );
}

/// Every key path of `value` (`a.b.c`), map keys that are names (allocations,
/// probability overrides) left out.
fn keys(value: &toml::Value, prefix: &str, out: &mut BTreeSet<String>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                out.insert(k.clone());
                if !["allocations", "slash_probs"].contains(&k.as_str()) {
                    keys(v, &format!("{prefix}{k}."), out);
                }
            }
        }
        toml::Value::Array(a) => a.iter().for_each(|v| keys(v, prefix, out)),
        _ => {}
    }
}

#[test]
fn the_scenario_reference_lists_every_key() {
    let reference = std::fs::read_to_string(root().join("docs/scenario.md")).unwrap();
    let mut all = BTreeSet::new();
    for (name, text) in restake_run::job::PRESETS {
        let spec: ScenarioSpec = Scenario::from_toml(text)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .spec()
            .clone();
        keys(&toml::Value::try_from(&spec).unwrap(), "", &mut all);
    }
    // Keys a preset may not set: each severity law's, the optional ones.
    all.extend(
        [
            "dist",
            "value",
            "min",
            "max",
            "alpha",
            "beta",
            "reward_token",
            "reward_apr",
            "drift",
            "volatility",
            "veto_prob",
            "depeg_discount",
        ]
        .map(String::from),
    );
    // As a key in a table row, a table header, or an inline table's key.
    let documented = |k: &str| {
        [format!("`{k}`"), format!("[{k}]"), format!("{k} = ")]
            .iter()
            .any(|form| reference.contains(form))
    };
    let missing: Vec<&String> = all.iter().filter(|k| !documented(k)).collect();
    assert!(missing.is_empty(), "docs/scenario.md lacks {missing:?}");
    assert!(
        all.len() > 40,
        "only {} keys: is the walk broken?",
        all.len()
    );
}
