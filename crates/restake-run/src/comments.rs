//! A scenario file's comments, read with toml_edit: the values it marks `ASSUMPTION`
//! (listed in `report.html` and `run.json`, so that a reader sees which inputs are the
//! author's judgement rather than data).

use restake_report::Assumption;
use toml_edit::{DocumentMut, Item, Key, Table};

/// The word that marks a value as an assumption in a comment on its line or on the
/// lines just above it (the presets' convention, `docs/scenario.md`).
pub const ASSUMPTION_MARK: &str = "ASSUMPTION";

/// The values of the scenario text `text` marked [`ASSUMPTION_MARK`], in file order:
/// each with its field path (the dotted-key grammar of `sweep --set`, arrays of tables
/// addressed by name), its value as written, and the comment's text after the mark.
/// Text that does not parse as TOML has none (the scenario's own checks report it).
pub fn assumptions(text: &str) -> Vec<Assumption> {
    let Ok(doc) = text.parse::<DocumentMut>() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    walk(doc.as_table(), &mut Vec::new(), &mut out);
    out
}

fn walk(table: &Table, path: &mut Vec<String>, out: &mut Vec<Assumption>) {
    for (name, item) in table.iter() {
        path.push(Key::new(name).display_repr().into_owned());
        match item {
            Item::Value(value) => {
                let key = table.key(name).expect("a key of this table");
                let above = key.leaf_decor().prefix().and_then(|r| r.as_str());
                let after = value.decor().suffix().and_then(|r| r.as_str());
                if let Some(note) = above
                    .and_then(|t| marked_note(t, true))
                    .or_else(|| after.and_then(|t| marked_note(t, false)))
                {
                    let mut bare = value.clone();
                    bare.decor_mut().clear();
                    out.push(Assumption {
                        field: path.join("."),
                        value: bare.to_string(),
                        note,
                    });
                }
            }
            Item::Table(t) => walk(t, path, out),
            Item::ArrayOfTables(array) => {
                for t in array.iter() {
                    let id = ["name", "token"]
                        .iter()
                        .find_map(|k| t.get(k).and_then(Item::as_str))
                        .unwrap_or("?");
                    path.push(Key::new(id).display_repr().into_owned());
                    walk(t, path, out);
                    path.pop();
                }
            }
            Item::None => {}
        }
        path.pop();
    }
}

/// The note of the first comment line of `decor` that marks an assumption: the
/// comment's text, a leading `ASSUMPTION:` dropped. Comment lines above a value
/// (`leading`) mark it only when they start with the mark, so that prose that mentions
/// the word (a file's preamble) does not; a comment after the value marks it wherever
/// the word stands (`# calibrate: ... (ASSUMPTION: ...)`).
fn marked_note(decor: &str, leading: bool) -> Option<String> {
    decor.lines().find_map(|line| {
        let comment = line[line.find('#')? + 1..].trim();
        let at = comment.find(ASSUMPTION_MARK)?;
        if at == 0 {
            Some(
                comment[ASSUMPTION_MARK.len()..]
                    .trim_start_matches([':', ' '])
                    .to_string(),
            )
        } else {
            (!leading).then(|| comment.to_string())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marked_values_are_found_with_their_field_paths_and_notes() {
        let text = r#"# A preamble: "ASSUMPTION" marks a figure no data gives.

name = "x"  # not one
[position]
principal_eth = 100.0  # ASSUMPTION: a round size
route = "native"
# ASSUMPTION: half a year
horizon_days = 182.5

[[operator]]
name = "ether.fi-1 - Pier Two"
fault_prob = 0.005  # ASSUMPTION
weight = 1.0  # calibrate

[[incentive]]
token = "EIGEN"
apr = 0.01 # an ASSUMPTION too
"#;
        let found = assumptions(text);
        let rows: Vec<(&str, &str, &str)> = found
            .iter()
            .map(|a| (a.field.as_str(), a.value.as_str(), a.note.as_str()))
            .collect();
        assert_eq!(
            rows,
            [
                ("position.principal_eth", "100.0", "a round size"),
                ("position.horizon_days", "182.5", "half a year"),
                ("operator.\"ether.fi-1 - Pier Two\".fault_prob", "0.005", ""),
                ("incentive.EIGEN.apr", "0.01", "an ASSUMPTION too"),
            ]
        );
        assert!(assumptions("not = [toml").is_empty());
    }

    #[test]
    fn every_preset_lists_its_assumptions() {
        for (name, text) in crate::job::PRESETS {
            let marked = text
                .lines()
                .filter(|l| l.contains(ASSUMPTION_MARK) && l.contains('='))
                .count();
            let found = assumptions(text);
            // A line with the mark and a `=` is one marked value (comment-only lines
            // that mention it too are counted by the value that follows).
            assert!(found.len() >= marked, "{name}: {} of {marked}", found.len());
            for a in &found {
                let keys = crate::job::field_path_keys(&a.field).unwrap();
                assert!(!keys.is_empty(), "{name}: {}", a.field);
            }
        }
    }
}
