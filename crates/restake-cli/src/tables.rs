//! `restake-mc export` and `restake-mc import`: the file side of the spreadsheet round
//! trips of `restake_run::tables` (which documents the tables and their checks).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use restake_report::excel_csv;
use restake_run::publish::write_files;
use restake_run::tables::{export_tables, import_tables};

use crate::{BadInput, bad_input, load, print_stdout};

/// `restake-mc export`: writes `avs.csv` and `operators.csv` of a scenario into `out`.
///
/// # Errors
/// [`BadInput`] for a bad scenario or a target that is not a regular file; an error
/// naming the file for a failed write.
pub fn export(scenario: Option<&Path>, out: &Path, excel: bool) -> Result<()> {
    let (scenario, origin) = load(scenario)?;
    let spec = scenario.spec();
    let (mut avs, mut operators) = export_tables(spec);
    if excel {
        (avs, operators) = (excel_csv(&avs)?, excel_csv(&operators)?);
    }
    let (avs_path, operators_path) = (out.join("avs.csv"), out.join("operators.csv"));
    write_files(vec![
        (
            avs_path.as_path(),
            Box::new(|w: &mut (dyn Write + Send)| w.write_all(&avs)),
        ),
        (
            operators_path.as_path(),
            Box::new(|w: &mut (dyn Write + Send)| w.write_all(&operators)),
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

/// `restake-mc import`: the base scenario with its AVSs and operators replaced by the
/// tables', named `name` (default: `out`'s file stem, or the base's name with
/// `-imported`, so that its runs never overwrite the base's reports), checked, written as
/// TOML to `out` (or printed when `out` is `None`): the base's text, with every value
/// the tables changed commented `# import: from ... (was ...)` and every other value
/// and comment as the base has it ([`restake_run::comments::rewrite`]).
///
/// # Errors
/// [`BadInput`] naming file, row and column for a bad cell or column, the field for a
/// scenario that fails its checks, or a target that is not a regular file; an error
/// naming the file for a failed write.
pub fn import(
    base: Option<&Path>,
    avs: &Path,
    operators: &Path,
    out: Option<PathBuf>,
    name: Option<String>,
) -> Result<()> {
    let source = restake_run::Source::read(base).map_err(bad_input)?;
    let base = source.scenario().map_err(bad_input)?;
    if let Some(path) = &out {
        restake_run::publish::check_file(path).map_err(bad_input)?;
    }
    let name = name
        .or_else(|| {
            out.as_ref()
                .and_then(|p| p.file_stem())
                .map(|s| s.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| format!("{}-imported", base.spec().name));
    let mut base_spec = base.spec().clone();
    base_spec.name = name;
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| BadInput(format!("cannot read {}: {e}", p.display())))
    };
    let (avs_name, operators_name) = (avs.display().to_string(), operators.display().to_string());
    let scenario = import_tables(
        &base_spec,
        (&avs_name, &read(avs)?),
        (&operators_name, &read(operators)?),
    )
    .map_err(bad_input)?;
    // The base's text with what the tables (and the name) changed, every other value
    // and comment kept as written, and a header saying where it came from.
    let note = format!("import: from {avs_name} and {operators_name}");
    let body = restake_run::comments::rewrite(&source.text, base.spec(), scenario.spec(), &note)
        .map_err(bad_input)?;
    let text = format!(
        "# Written by restake-mc import from {} with {avs_name} and {operators_name}: values\n# commented \"{note}\" come from the tables; every other value and comment is the base's.\n\n{body}",
        source.origin
    );
    let written = restake_core::Scenario::from_toml(&text)
        .map_err(|e| anyhow::anyhow!("import wrote a scenario that does not read back: {e}"))?;
    anyhow::ensure!(
        written.spec() == scenario.spec(),
        "import wrote a scenario that reads back different from the tables'"
    );
    match out {
        None => print_stdout(&text),
        Some(path) => {
            write_files(vec![(
                path.as_path(),
                Box::new(|w: &mut (dyn Write + Send)| w.write_all(text.as_bytes())),
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
