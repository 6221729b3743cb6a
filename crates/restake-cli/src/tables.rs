//! Spreadsheet round trips: `restake-mc export` writes a scenario's AVSs and operators as
//! `avs.csv` and `operators.csv`, and `restake-mc import` builds a scenario from such
//! tables and a base scenario (which gives everything else), with errors naming the
//! file, row and column.
//!
//! `avs.csv`: one AVS per row, `name,fee_apr,reward_token,reward_apr,slash_prob`, the
//! slash severity as `slash_severity_dist,_value,_min,_max,_alpha,_beta` (the cells its
//! law does not use left empty), `incident_prob`, the incident severity alike, and
//! `veto_prob`. `operators.csv`: one operator per row, `name,weight,commission,
//! fault_prob`, then `allocation_<AVS>` (empty: not allocated) and `slash_prob_<AVS>`
//! (empty: the AVS's own) for each AVS.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use std::io::Write;

use anyhow::Result;
use restake_core::scenario::{AvsSpec, OperatorSpec};
use restake_core::{Scenario, SeveritySpec};

use restake_report::excel_csv;
use restake_run::publish::write_files;

use crate::{BadInput, bad_input, load, print_stdout};

const SEVERITY_FIELDS: [&str; 6] = ["dist", "value", "min", "max", "alpha", "beta"];

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
fn csv_bytes(header: &[String], rows: &[Vec<String>]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(&mut out);
        w.write_record(header)?;
        for r in rows {
            w.write_record(r)?;
        }
        w.flush()?;
    }
    Ok(out)
}

/// `restake-mc export`: writes `avs.csv` and `operators.csv` of a scenario into `out`.
///
/// # Errors
/// [`BadInput`] for a bad scenario; an error naming the file for a failed write.
pub fn export(scenario: Option<&Path>, out: &Path, excel: bool) -> Result<()> {
    let (scenario, origin) = load(scenario)?;
    let spec = scenario.spec();
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
    let rows: Vec<Vec<String>> = spec
        .avs
        .iter()
        .map(|a| {
            let mut r = vec![
                a.name.clone(),
                number_cell(a.fee_apr),
                a.reward_token.clone().unwrap_or_default(),
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
    let avs = csv_bytes(&header, &rows)?;

    let mut header: Vec<String> = ["name", "weight", "commission", "fault_prob"]
        .map(String::from)
        .to_vec();
    header.extend(spec.avs.iter().map(|a| format!("allocation_{}", a.name)));
    header.extend(spec.avs.iter().map(|a| format!("slash_prob_{}", a.name)));
    let rows: Vec<Vec<String>> = spec
        .operators
        .iter()
        .map(|o| {
            let mut r = vec![
                o.name.clone(),
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
    let operators = csv_bytes(&header, &rows)?;
    let (avs, operators) = if excel {
        (excel_csv(&avs)?, excel_csv(&operators)?)
    } else {
        (avs, operators)
    };
    let (avs_path, operators_path) = (out.join("avs.csv"), out.join("operators.csv"));
    write_files(vec![
        (
            avs_path.as_path(),
            Box::new(|w: &mut dyn Write| w.write_all(&avs)),
        ),
        (
            operators_path.as_path(),
            Box::new(|w: &mut dyn Write| w.write_all(&operators)),
        ),
    ])
    .map_err(bad_input)?;
    print_stdout(&format!(
        "wrote avs.csv ({} AVSs) and operators.csv ({} operators) of {origin} to {}\n",
        spec.avs.len(),
        spec.operators.len(),
        out.display()
    ))
}

/// A table read from a CSV file: header and rows, a leading byte-order mark dropped.
struct Table {
    file: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn read(path: &Path) -> Result<Self> {
        let file = path.display().to_string();
        let bytes =
            std::fs::read(path).map_err(|e| BadInput(format!("cannot read {file}: {e}")))?;
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
        let mut reader = csv::ReaderBuilder::new().from_reader(bytes);
        let header = reader
            .headers()
            .map_err(|e| BadInput(format!("{file}: {e}")))?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        let rows = reader
            .records()
            .map(|r| {
                r.map(|r| r.iter().map(|c| c.trim().to_string()).collect())
                    .map_err(|e| BadInput(format!("{file}: {e}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { file, header, rows })
    }

    /// The cell of data row `i` (0-based) in column `name`: `None` when empty.
    fn cell(&self, i: usize, name: &str) -> Result<Option<&str>, BadInput> {
        let col = self
            .header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| BadInput(format!("{}: no column {name:?}", self.file)))?;
        Ok(self.rows[i]
            .get(col)
            .map(String::as_str)
            .filter(|c| !c.is_empty()))
    }

    /// Where a cell is, as a spreadsheet shows it: the header is row 1.
    fn at(&self, i: usize, name: &str) -> String {
        format!("{} row {}, column {name}", self.file, i + 2)
    }

    fn number(&self, i: usize, name: &str) -> Result<Option<f64>, BadInput> {
        self.cell(i, name)?
            .map(|c| {
                c.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| BadInput(format!("{}: {c:?} is not a number", self.at(i, name))))
            })
            .transpose()
    }

    fn required(&self, i: usize, name: &str) -> Result<f64, BadInput> {
        self.number(i, name)?
            .ok_or_else(|| BadInput(format!("{}: a number is required", self.at(i, name))))
    }

    fn severity(&self, i: usize, prefix: &str) -> Result<Option<SeveritySpec>, BadInput> {
        let col = |f: &str| format!("{prefix}_{f}");
        let num = |f: &str| self.required(i, &col(f));
        Ok(match self.cell(i, &col("dist"))? {
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
                return Err(BadInput(format!(
                    "{}: {other:?} is not fixed, uniform or beta",
                    self.at(i, &col("dist"))
                )));
            }
        })
    }
}

/// `restake-mc import`: the base scenario with its AVSs and operators replaced by the
/// tables', checked, written as TOML to `out` (or printed when `out` is `None`).
///
/// # Errors
/// [`BadInput`] naming file, row and column for a bad cell, or the field for a
/// scenario that fails its checks; an error naming the file for a failed write.
pub fn import(
    base: Option<&Path>,
    avs: &Path,
    operators: &Path,
    out: Option<PathBuf>,
) -> Result<()> {
    let (base, origin) = load(base)?;
    let mut spec = base.spec().clone();
    let a = Table::read(avs)?;
    spec.avs = (0..a.rows.len())
        .map(|i| -> Result<AvsSpec, BadInput> {
            Ok(AvsSpec {
                name: a
                    .cell(i, "name")?
                    .ok_or_else(|| BadInput(format!("{}: a name is required", a.at(i, "name"))))?
                    .to_string(),
                fee_apr: a.number(i, "fee_apr")?.unwrap_or(0.0),
                reward_token: a.cell(i, "reward_token")?.map(String::from),
                reward_apr: a.number(i, "reward_apr")?.unwrap_or(0.0),
                slash_prob: a.number(i, "slash_prob")?.unwrap_or(0.0),
                slash_severity: a.severity(i, "slash_severity")?,
                incident_prob: a.number(i, "incident_prob")?.unwrap_or(0.0),
                incident_severity: a.severity(i, "incident_severity")?,
                veto_prob: a.number(i, "veto_prob")?.unwrap_or(0.0),
            })
        })
        .collect::<Result<_, _>>()?;
    let o = Table::read(operators)?;
    spec.operators = (0..o.rows.len())
        .map(|i| -> Result<OperatorSpec, BadInput> {
            let by_avs = |prefix: &str| -> Result<BTreeMap<String, f64>, BadInput> {
                let mut m = BTreeMap::new();
                for h in o.header.iter().filter_map(|h| h.strip_prefix(prefix)) {
                    if let Some(x) = o.number(i, &format!("{prefix}{h}"))? {
                        m.insert(h.to_string(), x);
                    }
                }
                Ok(m)
            };
            Ok(OperatorSpec {
                name: o
                    .cell(i, "name")?
                    .ok_or_else(|| BadInput(format!("{}: a name is required", o.at(i, "name"))))?
                    .to_string(),
                weight: o.required(i, "weight")?,
                commission: o.number(i, "commission")?.unwrap_or(0.10),
                fault_prob: o.number(i, "fault_prob")?.unwrap_or(0.0),
                allocations: by_avs("allocation_")?,
                slash_probs: by_avs("slash_prob_")?,
            })
        })
        .collect::<Result<_, _>>()?;
    let scenario = Scenario::try_from(spec).map_err(|e| {
        BadInput(format!(
            "{} and {} on {origin}: {e}",
            avs.display(),
            operators.display()
        ))
    })?;
    let text = toml::to_string(scenario.spec())?;
    match out {
        None => print_stdout(&text),
        Some(path) => {
            write_files(vec![(
                path.as_path(),
                Box::new(|w: &mut dyn Write| w.write_all(text.as_bytes())),
            )])
            .map_err(bad_input)?;
            print_stdout(&format!(
                "wrote {} ({} AVSs, {} operators)\n",
                path.display(),
                scenario.spec().avs.len(),
                scenario.spec().operators.len()
            ))
        }
    }
}
