//! A scenario file's comments, read and kept with toml_edit: the values it marks
//! `ASSUMPTION` (listed in `report.html` and `run.json`, so that a reader sees which
//! inputs are the author's judgement rather than data), the values it says `calibrate`
//! gives (which `calibrate --update` rewrites in place), and the edits of `import`,
//! which keep every comment of the values they leave alone.

use restake_core::ScenarioSpec;
use restake_core::scenario::field_path;
use restake_report::Assumption;
use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, Value};

use crate::RunError;

/// The word that marks a value as an assumption in a comment on its line or on the
/// lines just above it (the presets' convention, `docs/scenario.md`).
pub const ASSUMPTION_MARK: &str = "ASSUMPTION";

/// A value of a scenario file with the comments around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotated {
    /// Its keys: table keys, and after an array of tables the element's name (`token`
    /// for an incentive), as [`restake_core::scenario::field_path_keys`] reads a field path.
    pub keys: Vec<String>,
    /// Its value as written (TOML, comments left out).
    pub value: String,
    /// The comment lines just above it, `#` included.
    pub above: String,
    /// The comment after it on its line, `#` included; empty for none.
    pub after: String,
}

impl Annotated {
    /// Its field path in the grammar of `sweep --set`: keys quoted where TOML needs it.
    pub fn field(&self) -> String {
        field_path(&self.keys)
    }
}

fn parse(text: &str) -> Result<DocumentMut, RunError> {
    text.parse::<DocumentMut>()
        .map_err(|e| RunError::BadInput(format!("not a TOML document: {e}")))
}

/// Every value of the scenario text `text` with its comments, in file order (an inline
/// table, such as a severity, is one value).
///
/// # Errors
/// [`RunError::BadInput`] when `text` is not TOML.
pub fn annotated(text: &str) -> Result<Vec<Annotated>, RunError> {
    let doc = parse(text)?;
    let mut out = Vec::new();
    walk(doc.as_table(), &mut Vec::new(), &mut out);
    Ok(out)
}

fn raw(decor: Option<&toml_edit::RawString>) -> String {
    decor.and_then(|r| r.as_str()).unwrap_or("").to_string()
}

fn walk(table: &Table, path: &mut Vec<String>, out: &mut Vec<Annotated>) {
    for (name, item) in table.iter() {
        path.push(name.to_string());
        match item {
            Item::Value(value) => {
                let key = table.key(name).expect("a key of this table");
                let mut bare = value.clone();
                bare.decor_mut().clear();
                out.push(Annotated {
                    keys: path.clone(),
                    value: bare.to_string(),
                    above: raw(key.leaf_decor().prefix())
                        .lines()
                        .filter(|l| l.trim_start().starts_with('#'))
                        .collect::<Vec<_>>()
                        .join("\n"),
                    after: raw(value.decor().suffix()).trim().to_string(),
                });
            }
            Item::Table(t) => walk(t, path, out),
            Item::ArrayOfTables(array) => {
                for t in array.iter() {
                    path.push(element_id(t).unwrap_or("?").to_string());
                    walk(t, path, out);
                    path.pop();
                }
            }
            Item::None => {}
        }
        path.pop();
    }
}

/// The name an element of an array of tables goes by: its `name`, or an incentive's
/// `token`.
fn element_id(t: &Table) -> Option<&str> {
    ["name", "token"]
        .iter()
        .find_map(|k| t.get(k).and_then(Item::as_str))
}

/// The values of the scenario text `text` marked [`ASSUMPTION_MARK`], in file order:
/// each with its field path, its value as written, and its note. A comment line just
/// above a value marks it when it starts with the mark (so that prose that mentions
/// the word, such as a file's preamble, does not); the comment after a value marks it
/// wherever the word stands (`# calibrate: ... (ASSUMPTION: ...)`). The note is the
/// comment's text, a leading `ASSUMPTION:` dropped. Text that does not parse as TOML
/// has none (the scenario's own checks report it).
pub fn assumptions(text: &str) -> Vec<Assumption> {
    let comment = |line: &str| line.trim().trim_start_matches('#').trim().to_string();
    let note = |c: &str| {
        c[ASSUMPTION_MARK.len()..]
            .trim_start_matches([':', ' '])
            .to_string()
    };
    annotated(text)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|a| {
            let above = a
                .above
                .lines()
                .map(comment)
                .find(|c| c.starts_with(ASSUMPTION_MARK))
                .map(|c| note(&c));
            let after = comment(&a.after);
            let note = above.or_else(|| {
                after.contains(ASSUMPTION_MARK).then(|| {
                    if after.starts_with(ASSUMPTION_MARK) {
                        note(&after)
                    } else {
                        after.clone()
                    }
                })
            })?;
            Some(Assumption {
                field: a.field(),
                value: a.value,
                note,
            })
        })
        .collect()
}

/// The value at `keys` in `table`: through tables, arrays of tables (by element name)
/// and inline tables.
fn value_mut<'a>(table: &'a mut Table, keys: &[String]) -> Option<&'a mut Value> {
    let (first, rest) = keys.split_first()?;
    match table.get_mut(first)? {
        Item::Value(v) => inline_mut(v, rest),
        Item::Table(t) => value_mut(t, rest),
        Item::ArrayOfTables(array) => {
            let (id, rest) = rest.split_first()?;
            let t = array.iter_mut().find(|t| element_id(t) == Some(id))?;
            value_mut(t, rest)
        }
        Item::None => None,
    }
}

fn inline_mut<'a>(v: &'a mut Value, keys: &[String]) -> Option<&'a mut Value> {
    match keys.split_first() {
        None => Some(v),
        Some((first, rest)) => inline_mut(v.as_inline_table_mut()?.get_mut(first)?, rest),
    }
}

/// Replaces `old` by `new`, keeping `old`'s comments and spacing.
fn replace_keeping_decor(old: &mut Value, mut new: Value) {
    *new.decor_mut() = old.decor().clone();
    *old = new;
}

/// `text` with the number at each `keys` set to its value, every comment and all
/// other text kept as written (`calibrate --update`).
///
/// # Errors
/// [`RunError::BadInput`] when `text` is not TOML or has no value at some `keys`.
pub fn set_numbers(text: &str, updates: &[(Vec<String>, f64)]) -> Result<String, RunError> {
    let mut doc = parse(text)?;
    for (keys, x) in updates {
        let v = value_mut(doc.as_table_mut(), keys)
            .ok_or_else(|| RunError::BadInput(format!("no value at {}", field_path(keys))))?;
        replace_keeping_decor(v, Value::from(*x));
    }
    Ok(doc.to_string())
}

/// A TOML value as toml_edit writes it.
fn edit_value(v: &toml::Value) -> Value {
    let mut t = toml::Table::new();
    t.insert("v".into(), v.clone());
    let text = toml::to_string(&t).expect("a TOML value serialises");
    let doc: DocumentMut = text.parse().expect("toml writes TOML");
    let item = doc.as_table().get("v").expect("the key written").clone();
    // A table comes back inline, an array of tables as an array of inline tables.
    item.into_value()
        .expect("a value, a table or an array of tables")
}

/// `base_text`, the text of the scenario `base`, edited into the text of `new`
/// (`import`): values equal in both are kept as written, with their comments; each
/// changed or added value gets `# <note> (was <old value>)` or `# <note>` as its
/// comment in place of the old one; an AVS, operator, token or incentive only `new` has
/// is appended, its header commented `# <note>: added`; one only `base` has is
/// dropped. The result parses to `new`.
///
/// # Errors
/// [`RunError::BadInput`] when `base_text` is not TOML or a scenario does not
/// serialise.
pub fn rewrite(
    base_text: &str,
    base: &ScenarioSpec,
    new: &ScenarioSpec,
    note: &str,
) -> Result<String, RunError> {
    let mut doc = parse(base_text)?;
    let to_table =
        |s: &ScenarioSpec| toml::Table::try_from(s).map_err(|e| RunError::BadInput(e.to_string()));
    let (base, new) = (to_table(base)?, to_table(new)?);
    // Sections and arrays of tables the file leaves out (all defaults, or none) are
    // written as such when `new` changes them, not as inline values.
    for (key, v) in &new {
        if doc.contains_key(key) || base.get(key) == Some(v) {
            continue;
        }
        match v {
            toml::Value::Table(_) => {
                doc.insert(key, Item::Table(Table::new()));
            }
            toml::Value::Array(a) if !a.is_empty() && a.iter().all(toml::Value::is_table) => {
                doc.insert(key, Item::ArrayOfTables(ArrayOfTables::new()));
            }
            _ => {}
        }
    }
    edit_table(doc.as_table_mut(), &base, &new, note);
    Ok(doc.to_string())
}

fn edit_table(doc: &mut Table, base: &toml::Table, new: &toml::Table, note: &str) {
    for (key, new_v) in new {
        let base_v = base.get(key);
        if base_v == Some(new_v) {
            continue;
        }
        match (new_v, base_v, doc.get_mut(key)) {
            (toml::Value::Table(n), b, Some(Item::Table(t))) => {
                let empty = toml::Table::new();
                let b = match b {
                    Some(toml::Value::Table(b)) => b,
                    _ => &empty,
                };
                edit_table(t, b, n, note);
            }
            (toml::Value::Array(n), b, Some(Item::ArrayOfTables(a))) => {
                let empty = Vec::new();
                let b = match b {
                    Some(toml::Value::Array(b)) => b,
                    _ => &empty,
                };
                edit_array(a, b, n, note);
            }
            (_, _, existing) => {
                let mut v = edit_value(new_v);
                let was = base_v.map(|b| {
                    let mut b = edit_value(b);
                    b.decor_mut().clear();
                    b.to_string()
                });
                let comment = match was {
                    Some(was) => format!(" # {note} (was {was})"),
                    None => format!(" # {note}"),
                };
                match existing {
                    Some(Item::Value(old)) => {
                        let prefix = old.decor().prefix().cloned();
                        v.decor_mut().set_suffix(comment);
                        if let Some(p) = prefix {
                            v.decor_mut().set_prefix(p);
                        }
                        *old = v;
                    }
                    _ => {
                        v.decor_mut().set_suffix(comment);
                        doc.insert(key, Item::Value(v));
                    }
                }
            }
        }
    }
    let gone: Vec<String> = doc
        .iter()
        .map(|(k, _)| k.to_string())
        .filter(|k| !new.contains_key(k) && base.contains_key(k))
        .collect();
    for k in gone {
        doc.remove(&k);
    }
}

fn edit_array(doc: &mut ArrayOfTables, base: &[toml::Value], new: &[toml::Value], note: &str) {
    let id = |v: &toml::Value| {
        ["name", "token"]
            .iter()
            .find_map(|k| v.get(k).and_then(toml::Value::as_str))
            .map(String::from)
    };
    let mut out = ArrayOfTables::new();
    for n in new {
        let Some(n_table) = n.as_table() else {
            continue;
        };
        let name = id(n);
        let kept = doc.iter().find(|t| element_id(t) == name.as_deref());
        let old = base
            .iter()
            .find(|b| id(b) == name)
            .and_then(|b| b.as_table());
        match (kept, old) {
            (Some(t), Some(b)) => {
                let mut t = t.clone();
                edit_table(&mut t, b, n_table, note);
                out.push(t);
            }
            _ => {
                let mut t = Table::new();
                edit_table(&mut t, &toml::Table::new(), n_table, note);
                // New keys carry the note on their own lines; the header says why.
                for (_, item) in t.iter_mut() {
                    if let Some(v) = item.as_value_mut() {
                        v.decor_mut().set_suffix("");
                    }
                }
                t.decor_mut().set_prefix(format!("\n# {note}: added\n"));
                out.push(t);
            }
        }
    }
    *doc = out;
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
                let keys = restake_core::scenario::field_path_keys(&a.field).unwrap();
                assert!(!keys.is_empty(), "{name}: {}", a.field);
            }
        }
    }

    #[test]
    fn rewrite_keeps_what_is_unchanged_and_marks_the_rest() {
        let (_, text) = crate::job::PRESETS[2];
        let base = restake_core::Scenario::from_toml(text)
            .unwrap()
            .spec()
            .clone();
        let mut new = base.clone();
        new.operators.remove(1);
        new.operators[0].weight += base.operators[1].weight;
        new.position.horizon_days = 180.0;
        new.report.loss_thresholds.push(0.2);
        let out = rewrite(text, &base, &new, "edit").unwrap();
        let back = restake_core::Scenario::from_toml(&out)
            .unwrap()
            .spec()
            .clone();
        assert_eq!(back, new);
        assert!(
            out.contains("horizon_days = 180.0 # edit (was 365.0)"),
            "{out}"
        );
        assert!(!out.contains(&base.operators[1].name));
        // Unchanged lines, comments included, are the base's.
        let kept = text
            .lines()
            .filter(|l| l.contains("# ASSUMPTION: a round size"))
            .all(|l| out.contains(l));
        assert!(kept);
        assert_eq!(rewrite(text, &base, &base, "edit").unwrap(), text);
    }

    #[test]
    fn set_numbers_keeps_comments_and_names_a_missing_field() {
        let text = "[base]\napr_mean = 0.03   # calibrate: x\n";
        let keys = vec!["base".to_string(), "apr_mean".to_string()];
        assert_eq!(
            set_numbers(text, &[(keys, 0.031)]).unwrap(),
            "[base]\napr_mean = 0.031   # calibrate: x\n"
        );
        let missing = vec!["base".to_string(), "apr_sd".to_string()];
        let e = set_numbers(text, &[(missing, 0.1)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("base.apr_sd"), "{e}");
    }
}
