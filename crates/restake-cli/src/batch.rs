//! `restake-mc batch`: several scenarios run with one seed, so that they share their
//! random numbers where their structures match (common random numbers), each written to
//! its own output folder, and compared in `batch_summary.csv` (a row per scenario) and
//! `batch_metrics.csv` (long form).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use restake_core::Model;
use restake_report::{BatchEntry, write_batch_tables, write_comparison, write_output_folder};

use crate::{BadInput, RunOptions, Simulated, load, print_stdout, simulate};

/// The batch seed when `--seed` is not given (the scenario files' default seed).
const DEFAULT_SEED: u64 = 42;

/// The scenario files of `inputs`: files as given, folders' `*.toml` files in name order.
///
/// # Errors
/// [`BadInput`] for an input that is neither, or a folder without scenario files.
fn scenario_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(|e| BadInput(format!("cannot read folder {}: {e}", input.display())))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect();
            if found.is_empty() {
                return Err(
                    BadInput(format!("{}: no *.toml scenario files", input.display())).into(),
                );
            }
            found.sort();
            files.extend(found);
        } else if input.is_file() {
            files.push(input.clone());
        } else {
            return Err(BadInput(format!(
                "cannot read scenario {}: no such file or folder",
                input.display()
            ))
            .into());
        }
    }
    Ok(files)
}

/// Runs the batch: checks every scenario before simulating any (a bad one stops the
/// batch with nothing written), simulates them in order, then writes each scenario's
/// folder under `out` and the two batch tables.
///
/// # Errors
/// [`BadInput`] for a bad scenario, a duplicate scenario name or a bad flag; an error
/// naming the file for a failed write.
pub fn run(inputs: &[PathBuf], options: RunOptions, out: PathBuf) -> Result<()> {
    let options = RunOptions {
        seed: Some(options.seed.unwrap_or(DEFAULT_SEED)),
        ..options
    };
    let files = scenario_files(inputs)?;
    let mut loaded = Vec::new();
    let mut names = BTreeSet::new();
    for file in &files {
        let (scenario, origin) = load(Some(file))?;
        let name = scenario.spec().name.clone();
        if !names.insert(name.clone()) {
            return Err(BadInput(format!(
                "{origin}: scenario name {name:?} is used by another scenario of the batch (it names the output folder)"
            ))
            .into());
        }
        loaded.push((scenario, origin));
    }
    let simulated: Vec<Simulated> = loaded
        .into_iter()
        .map(|(scenario, origin)| {
            let model = Model::new(&scenario);
            simulate(scenario, origin, options, &model)
        })
        .collect::<Result<_>>()?;

    for sim in &simulated {
        let dir = out.join(&sim.scenario.spec().name);
        write_output_folder(&dir, &sim.results, &sim.info, options.csv_style())
            .with_context(|| format!("writing the output folder {}", dir.display()))?;
    }
    let entries: Vec<BatchEntry> = simulated
        .iter()
        .map(|sim| BatchEntry {
            scenario: &sim.scenario.spec().name,
            file: &sim.origin,
            paths: sim.config.paths,
            seed: sim.config.seed,
            results: &sim.results,
        })
        .collect();
    write_batch_tables(&out, &entries, options.csv_style())
        .with_context(|| format!("writing the batch tables in {}", out.display()))?;
    write_comparison(&out, &entries)
        .with_context(|| format!("writing the comparison chart in {}", out.display()))?;
    if options.quiet {
        return Ok(());
    }
    print_stdout(&render(&simulated, &out))
}

/// The comparison table printed after a batch.
fn render(simulated: &[Simulated], out: &Path) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<28} {:>10} {:>12} {:>10} {:>10} {:>10} {:>10}",
        "scenario", "paths", "mean return", "P(loss)", "P(under)", "VaR 99", "ES 99"
    );
    for sim in simulated {
        let pct = |name: &str| {
            format!(
                "{:.3}%",
                100.0 * sim.results.metric(name).expect("summary metric").value
            )
        };
        let _ = writeln!(
            s,
            "{:<28} {:>10} {:>12} {:>10} {:>10} {:>10} {:>10}",
            sim.scenario.spec().name,
            sim.config.paths,
            pct("mean_net_return"),
            pct("prob_loss"),
            pct("prob_underperform"),
            pct("var_99"),
            pct("es_99"),
        );
    }
    let _ = writeln!(
        s,
        "seed {} for every scenario; wrote {} scenario folders, batch_summary.csv, batch_metrics.csv and comparison.svg/.png to {}",
        simulated.first().map_or(0, |sim| sim.config.seed),
        simulated.len(),
        out.display()
    );
    s
}
