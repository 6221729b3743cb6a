//! Spreadsheet round trips of a scenario's AVSs and operators: [`export_tables`] renders
//! `avs.csv` and `operators.csv`, [`import_tables`] builds a scenario from such tables
//! and a base scenario that gives everything else. Pure: bytes in, bytes or a scenario
//! out (the command does the file I/O).
//!
//! `avs.csv`: one AVS per row, `name,fee_apr,reward_token,reward_apr,slash_prob`, the
//! slash severity as `slash_severity_dist,_value,_min,_max,_alpha,_beta` (the cells its
//! law does not use left empty), `incident_prob`, the incident severity alike, and
//! `veto_prob`. `operators.csv`: one operator per row, `name,weight,commission,
//! fault_prob`, then `allocation_<AVS>` (empty: not allocated) and `slash_prob_<AVS>`
//! (empty: the AVS's own) for each AVS.
//!
//! The import is strict: a column it does not know (a misspelled one, or one naming an
//! AVS the AVS table lacks), a repeated column, a cell that is not a number, and a value
//! out of its range are errors naming the file, the row (as a spreadsheet numbers it, the
//! header being row 1) and the column. Cells are taken as they are: no whitespace is
//! trimmed (names with surrounding whitespace are refused by the scenario's checks, so
//! the export never writes one). Text cells are written with
//! [`restake_report::text_cell`] and read with [`restake_report::read_text_cell`], so a
//! name that looks like a formula round-trips unchanged.

use std::collections::{BTreeMap, HashMap};

use restake_core::scenario::{AvsSpec, OperatorSpec};
use restake_core::{Scenario, ScenarioError, ScenarioSpec, SeveritySpec};
use restake_report::{read_text_cell, text_cell};

use crate::RunError;

const SEVERITY_FIELDS: [&str; 6] = ["dist", "value", "min", "max", "alpha", "beta"];

/// The columns of `avs.csv`, in order.
fn avs_columns() -> Vec<String> {
    let mut header: Vec<String> = [
        "name",
        "fee_apr",
        "reward_token",
        "reward_apr",
        "slash_prob",
    ]
    .map(String::from)
    .to_vec();
    header.extend(SEVERITY_FIELDS.map(|f| format!("slash_severity_{f}")));
    header.push("incident_prob".into());
    header.extend(SEVERITY_FIELDS.map(|f| format!("incident_severity_{f}")));
    header.push("veto_prob".into());
    header
}

/// The fixed columns of `operators.csv`, before the per-AVS ones.
const OPERATOR_COLUMNS: [&str; 4] = ["name", "weight", "commission", "fault_prob"];

fn number_cell(x: f64) -> String {
    format!("{x}")
}

/// The six cells of a severity (empty when absent).
fn severity_cells(s: Option<&SeveritySpec>) -> Vec<String> {
    let mut cells = vec![String::new(); 6];
    match s {
        None => {}
        Some(SeveritySpec::Fixed { value }) => {
            cells[0] = "fixed".into();
            cells[1] = number_cell(*value);
        }
        Some(SeveritySpec::Uniform { min, max }) => {
            cells[0] = "uniform".into();
            cells[2] = number_cell(*min);
            cells[3] = number_cell(*max);
        }
        Some(SeveritySpec::Beta {
            alpha,
            beta,
            min,
            max,
        }) => {
            cells[0] = "beta".into();
            cells[2] = min.map(number_cell).unwrap_or_default();
            cells[3] = max.map(number_cell).unwrap_or_default();
            cells[4] = number_cell(*alpha);
            cells[5] = number_cell(*beta);
        }
    }
    cells
}

/// CSV bytes with LF line ends.
fn csv_bytes(header: &[String], rows: &[Vec<String>]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(&mut out);
        for record in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
            w.write_record(record)
                .expect("writing CSV to memory cannot fail");
        }
        w.flush().expect("writing CSV to memory cannot fail");
    }
    out
}

/// `avs.csv` and `operators.csv` of `spec` (LF line ends, UTF-8).
pub fn export_tables(spec: &ScenarioSpec) -> (Vec<u8>, Vec<u8>) {
    let text = |s: &str| text_cell(s).into_owned();
    let rows: Vec<Vec<String>> = spec
        .avs
        .iter()
        .map(|a| {
            let mut r = vec![
                text(&a.name),
                number_cell(a.fee_apr),
                a.reward_token.as_deref().map(text).unwrap_or_default(),
                number_cell(a.reward_apr),
                number_cell(a.slash_prob),
            ];
            r.extend(severity_cells(a.slash_severity.as_ref()));
            r.push(number_cell(a.incident_prob));
            r.extend(severity_cells(a.incident_severity.as_ref()));
            r.push(number_cell(a.veto_prob));
            r
        })
        .collect();
    let avs = csv_bytes(&avs_columns(), &rows);

    let mut header: Vec<String> = OPERATOR_COLUMNS.map(String::from).to_vec();
    header.extend(spec.avs.iter().map(|a| format!("allocation_{}", a.name)));
    header.extend(spec.avs.iter().map(|a| format!("slash_prob_{}", a.name)));
    let rows: Vec<Vec<String>> = spec
        .operators
        .iter()
        .map(|o| {
            let mut r = vec![
                text(&o.name),
                number_cell(o.weight),
                number_cell(o.commission),
                number_cell(o.fault_prob),
            ];
            let cell = |m: &BTreeMap<String, f64>, a: &AvsSpec| {
                m.get(&a.name).map(|x| number_cell(*x)).unwrap_or_default()
            };
            r.extend(spec.avs.iter().map(|a| cell(&o.allocations, a)));
            r.extend(spec.avs.iter().map(|a| cell(&o.slash_probs, a)));
            r
        })
        .collect();
    (avs, csv_bytes(&header, &rows))
}

fn bad(message: String) -> RunError {
    RunError::BadInput(message)
}

/// A table read from CSV bytes: header, its column positions, and rows.
struct Table<'a> {
    file: &'a str,
    header: Vec<String>,
    columns: HashMap<String, usize>,
    rows: Vec<Vec<String>>,
}

impl<'a> Table<'a> {
    /// Parses `bytes` (a leading byte-order mark dropped; LF or CRLF line ends), named
    /// `file` in messages; refuses repeated columns, and columns that `known` rejects.
    fn parse(file: &'a str, bytes: &[u8], known: &dyn Fn(&str) -> bool) -> Result<Self, RunError> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut reader = csv::ReaderBuilder::new().from_reader(bytes);
        let csv_error = |e: csv::Error| bad(format!("{file}: {e}"));
        let header: Vec<String> = reader
            .headers()
            .map_err(csv_error)?
            .iter()
            .map(String::from)
            .collect();
        let mut columns = HashMap::new();
        for (i, h) in header.iter().enumerate() {
            if columns.insert(h.clone(), i).is_some() {
                return Err(bad(format!(
                    "{file}: column {h:?} appears twice in the header"
                )));
            }
            if !known(h) {
                return Err(bad(format!(
                    "{file}: unknown column {h:?} (column {} of the header)",
                    i + 1
                )));
            }
        }
        let rows = reader
            .records()
            .map(|r| {
                r.map(|r| r.iter().map(String::from).collect())
                    .map_err(csv_error)
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            file,
            header,
            columns,
            rows,
        })
    }

    /// The cell of data row `i` (0-based) in column `name`: `None` when empty or when
    /// the table has no such column.
    fn cell(&self, i: usize, name: &str) -> Option<&str> {
        let col = *self.columns.get(name)?;
        self.rows[i]
            .get(col)
            .map(String::as_str)
            .filter(|c| !c.is_empty())
    }

    /// A text cell ([`read_text_cell`]).
    fn text(&self, i: usize, name: &str) -> Option<&str> {
        self.cell(i, name).map(read_text_cell)
    }

    /// Where a cell is, as a spreadsheet shows it: the header is row 1.
    fn at(&self, i: usize, name: &str) -> String {
        format!("{} row {}, column {name}", self.file, i + 2)
    }

    fn number(&self, i: usize, name: &str) -> Result<Option<f64>, RunError> {
        self.cell(i, name)
            .map(|c| {
                c.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| bad(format!("{}: {c:?} is not a number", self.at(i, name))))
            })
            .transpose()
    }

    fn required(&self, i: usize, name: &str) -> Result<f64, RunError> {
        self.number(i, name)?
            .ok_or_else(|| bad(format!("{}: a number is required", self.at(i, name))))
    }

    fn name(&self, i: usize) -> Result<String, RunError> {
        let name = self
            .text(i, "name")
            .ok_or_else(|| bad(format!("{}: a name is required", self.at(i, "name"))))?;
        if name.trim() != name {
            return Err(bad(format!(
                "{}: must not start or end with whitespace, got {name:?}",
                self.at(i, "name")
            )));
        }
        Ok(name.to_string())
    }

    fn severity(&self, i: usize, prefix: &str) -> Result<Option<SeveritySpec>, RunError> {
        let col = |f: &str| format!("{prefix}_{f}");
        let num = |f: &str| self.required(i, &col(f));
        Ok(match self.cell(i, &col("dist")) {
            None => None,
            Some("fixed") => Some(SeveritySpec::Fixed {
                value: num("value")?,
            }),
            Some("uniform") => Some(SeveritySpec::Uniform {
                min: num("min")?,
                max: num("max")?,
            }),
            Some("beta") => Some(SeveritySpec::Beta {
                alpha: num("alpha")?,
                beta: num("beta")?,
                min: self.number(i, &col("min"))?,
                max: self.number(i, &col("max"))?,
            }),
            Some(other) => {
                return Err(bad(format!(
                    "{}: {other:?} is not fixed, uniform or beta",
                    self.at(i, &col("dist"))
                )));
            }
        })
    }
}

/// Where the scenario check's `field` (a field path: `avs.NAME.slash_prob`,
/// `operator.NAME.allocations.AVS`, ...) is in the tables: file, row and column.
fn cell_of(field: &str, avs: &Table, operators: &Table, spec: &ScenarioSpec) -> Option<String> {
    if field == "operator.weight" {
        return Some(format!(
            "{} column weight (the weights' sum)",
            operators.file
        ));
    }
    let keys = restake_core::scenario::field_path_keys(field).ok()?;
    let [kind, name, rest @ ..] = &keys[..] else {
        return None;
    };
    let (table, names): (&Table, Vec<&str>) = match kind.as_str() {
        "avs" => (avs, spec.avs.iter().map(|a| a.name.as_str()).collect()),
        "operator" => (
            operators,
            spec.operators.iter().map(|o| o.name.as_str()).collect(),
        ),
        _ => return None,
    };
    let key = rest.join(".");
    // A repeated name is reported at its last row, the one that repeats it.
    let i = if key == "name" {
        names.iter().rposition(|n| n == name)?
    } else {
        names.iter().position(|n| n == name)?
    };
    let column = if let Some(a) = key.strip_prefix("allocations.") {
        format!("allocation_{a}")
    } else if let Some(a) = key.strip_prefix("slash_probs.") {
        format!("slash_prob_{a}")
    } else if key == "allocations" {
        "allocation_*".into()
    } else if let Some(sev) = ["slash_severity", "incident_severity"]
        .iter()
        .find(|s| key.starts_with(*s))
    {
        let part = key[sev.len()..].trim_start_matches('.');
        let column = format!("{sev}_{part}");
        if table.header.contains(&column) {
            column
        } else {
            format!("{sev}_dist")
        }
    } else {
        key.to_string()
    };
    Some(table.at(i, &column))
}

/// The base scenario `base` with its AVSs and operators replaced by those of the tables
/// `avs` and `operators` (`(file name for messages, CSV bytes)`), checked.
///
/// # Errors
/// [`RunError::BadInput`] naming the file (and the row and column where there is one)
/// for a table that is not CSV, an unknown or repeated column, a bad cell, or a value
/// the scenario's checks refuse.
pub fn import_tables(
    base: &ScenarioSpec,
    avs: (&str, &[u8]),
    operators: (&str, &[u8]),
) -> Result<Scenario, RunError> {
    let avs_known = avs_columns();
    let a = Table::parse(avs.0, avs.1, &|h| avs_known.iter().any(|k| k == h))?;
    let mut spec = base.clone();
    spec.avs = (0..a.rows.len())
        .map(|i| -> Result<AvsSpec, RunError> {
            Ok(AvsSpec {
                name: a.name(i)?,
                fee_apr: a.number(i, "fee_apr")?.unwrap_or(0.0),
                reward_token: a.text(i, "reward_token").map(String::from),
                reward_apr: a.number(i, "reward_apr")?.unwrap_or(0.0),
                slash_prob: a.number(i, "slash_prob")?.unwrap_or(0.0),
                slash_severity: a.severity(i, "slash_severity")?,
                incident_prob: a.number(i, "incident_prob")?.unwrap_or(0.0),
                incident_severity: a.severity(i, "incident_severity")?,
                veto_prob: a.number(i, "veto_prob")?.unwrap_or(0.0),
            })
        })
        .collect::<Result<_, _>>()?;
    let avs_names: Vec<&str> = spec.avs.iter().map(|x| x.name.as_str()).collect();
    let per_avs = |h: &str| {
        h.strip_prefix("allocation_")
            .or_else(|| h.strip_prefix("slash_prob_"))
            .is_some_and(|n| avs_names.contains(&n))
    };
    let o = Table::parse(operators.0, operators.1, &|h| {
        OPERATOR_COLUMNS.contains(&h) || per_avs(h)
    })?;
    spec.operators = (0..o.rows.len())
        .map(|i| -> Result<OperatorSpec, RunError> {
            let by_avs = |prefix: &str| -> Result<BTreeMap<String, f64>, RunError> {
                let mut m = BTreeMap::new();
                for name in &avs_names {
                    if let Some(x) = o.number(i, &format!("{prefix}{name}"))? {
                        m.insert(name.to_string(), x);
                    }
                }
                Ok(m)
            };
            Ok(OperatorSpec {
                name: o.name(i)?,
                weight: o.required(i, "weight")?,
                commission: o.number(i, "commission")?.unwrap_or(0.10),
                fault_prob: o.number(i, "fault_prob")?.unwrap_or(0.0),
                allocations: by_avs("allocation_")?,
                slash_probs: by_avs("slash_prob_")?,
            })
        })
        .collect::<Result<_, _>>()?;
    Scenario::try_from(spec.clone()).map_err(|e| match &e {
        ScenarioError::Invalid { field, message } => match cell_of(field, &a, &o, &spec) {
            Some(at) => bad(format!("{at}: {message}")),
            None => bad(format!("{} and {}: {e}", avs.0, operators.0)),
        },
        _ => bad(format!("{} and {}: {e}", avs.0, operators.0)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ScenarioSpec {
        Scenario::from_toml(crate::job::DEFAULT_SCENARIO)
            .unwrap()
            .spec()
            .clone()
    }

    fn import(avs: &str, operators: &str) -> Result<Scenario, RunError> {
        import_tables(
            &base(),
            ("avs.csv", avs.as_bytes()),
            ("operators.csv", operators.as_bytes()),
        )
    }

    fn message(r: Result<Scenario, RunError>) -> String {
        match r {
            Err(RunError::BadInput(m)) => m,
            other => panic!("expected bad input, got {other:?}"),
        }
    }

    #[test]
    fn export_then_import_gives_the_scenario_back() {
        let mut spec = base();
        // The stress tests name the AVS and the operator renamed here.
        spec.stress.clear();
        spec.avs[0].name = "=HYPERLINK(\"x\")".into();
        for o in &mut spec.operators {
            if let Some(x) = o.allocations.remove("EigenDA") {
                o.allocations.insert(spec.avs[0].name.clone(), x);
            }
            if let Some(x) = o.slash_probs.remove("EigenDA") {
                o.slash_probs.insert(spec.avs[0].name.clone(), x);
            }
        }
        spec.operators[0].name = "@op".into();
        let spec = Scenario::try_from(spec).unwrap().spec().clone();
        let (avs, operators) = export_tables(&spec);
        let text = String::from_utf8(avs.clone()).unwrap();
        assert!(text.contains("\"'=HYPERLINK(\"\"x\"\")\""), "{text}");
        let back = import_tables(&spec, ("avs.csv", &avs), ("operators.csv", &operators)).unwrap();
        assert_eq!(back.spec(), &spec);
    }

    #[test]
    fn unknown_repeated_and_bad_columns_are_named() {
        let (avs, operators) = export_tables(&base());
        let (avs, operators) = (
            String::from_utf8(avs).unwrap(),
            String::from_utf8(operators).unwrap(),
        );
        let misspelled = operators.replacen("allocation_EigenDA", "allocation_EigenDAA", 1);
        let m = message(import(&avs, &misspelled));
        assert!(
            m.contains("operators.csv: unknown column \"allocation_EigenDAA\""),
            "{m}"
        );
        let repeated = avs.replacen("fee_apr", "slash_prob", 1);
        let m = message(import(&repeated, &operators));
        assert!(
            m.contains("avs.csv: column \"slash_prob\" appears twice"),
            "{m}"
        );
        let spaced = avs.replacen(",0.01,", ", 0.01,", 1);
        let m = message(import(&spaced, &operators));
        assert!(
            m.contains("avs.csv row 2, column slash_prob: \" 0.01\" is not a number"),
            "{m}"
        );
        let out_of_range = avs.replacen(",0.01,", ",1.5,", 1);
        let m = message(import(&out_of_range, &operators));
        assert!(m.starts_with("avs.csv row 2, column slash_prob: "), "{m}");
        let lines: Vec<&str> = operators.lines().collect();
        let mut cells: Vec<String> = lines[1].split(',').map(String::from).collect();
        cells[4] = "2".into();
        let bad_allocation = format!(
            "{}\n{}\n{}\n",
            lines[0],
            cells.join(","),
            lines[2..].join("\n")
        );
        let m = message(import(&avs, &bad_allocation));
        assert!(
            m.starts_with("operators.csv row 2, column allocation_"),
            "{m}"
        );
        let padded = avs.replacen("EigenDA,", " EigenDA,", 1);
        let m = message(import(&padded, &operators));
        assert!(
            m.contains("avs.csv row 2, column name: must not start or end with whitespace"),
            "{m}"
        );
    }
}
