//! `restake-mc sweep`: a grid of variants of one scenario, each `--set PATH=VALUES`
//! giving one axis, run on common random numbers: one seed, and models coupled
//! ([`restake_core::Model::couple`]) when only probabilities change, so that a riskier
//! grid point is riskier path by path and no Monte Carlo noise crosses the curves.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use restake_core::{Model, Scenario, ScenarioSpec};
use restake_report::{SweepPoint, write_sweep_table};

use crate::{BadInput, RunOptions, load, print_stdout, simulate};

/// Most grid points a sweep runs.
const MAX_POINTS: usize = 10_000;

/// One axis of the grid: a scenario path and its values.
#[derive(Debug, Clone, PartialEq)]
struct Axis {
    path: String,
    values: Vec<f64>,
}

/// Parses `PATH=VALUES` with VALUES `a,b,c` or `start:stop:count` (count values evenly
/// spaced from start to stop, both included).
fn parse_axis(arg: &str) -> Result<Axis, BadInput> {
    let bad = |why: &str| BadInput(format!("--set {arg}: {why}"));
    let (path, values) = arg
        .split_once('=')
        .ok_or_else(|| bad("expected PATH=VALUES, e.g. avs.EigenDA.slash_prob=0.005,0.01"))?;
    let number = |s: &str| {
        s.trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| bad(&format!("{s:?} is not a number")))
    };
    let values = if let [start, stop, count] = values.split(':').collect::<Vec<_>>()[..] {
        let (a, b) = (number(start)?, number(stop)?);
        let n: usize = count
            .trim()
            .parse()
            .ok()
            .filter(|n| (2..=MAX_POINTS).contains(n))
            .ok_or_else(|| {
                bad(&format!(
                    "count {count:?} must be an integer in [2, {MAX_POINTS}]"
                ))
            })?;
        (0..n)
            .map(|i| a + (b - a) * i as f64 / (n - 1) as f64)
            .collect()
    } else {
        values
            .split(',')
            .map(number)
            .collect::<Result<Vec<_>, _>>()?
    };
    if path.trim().is_empty() || values.is_empty() {
        return Err(bad("needs a path and at least one value"));
    }
    Ok(Axis {
        path: path.trim().to_string(),
        values,
    })
}

/// `spec` with the value at `path` set to `x`. Path segments name table keys; after an
/// array of tables (`avs`, `operator`, `token`, `incentive`) a segment names an element
/// by its `name` (`token` for an incentive).
fn set_value(spec: &ScenarioSpec, path: &str, x: f64) -> Result<ScenarioSpec, BadInput> {
    let bad = |why: String| BadInput(format!("--set {path}: {why}"));
    let mut root = toml::Value::try_from(spec).map_err(|e| bad(e.to_string()))?;
    let segments: Vec<&str> = path.split('.').collect();
    let mut at = &mut root;
    let mut i = 0;
    let mut done = false;
    while i < segments.len() {
        let key = segments[i];
        let table = at
            .as_table_mut()
            .ok_or_else(|| bad(format!("{} is not a table", segments[..i].join("."))))?;
        let last = i + 1 == segments.len();
        if last {
            match table.get(key) {
                Some(toml::Value::Float(_) | toml::Value::Integer(_)) => {
                    table.insert(key.to_string(), toml::Value::Float(x));
                    done = true;
                }
                Some(_) => return Err(bad(format!("{key} is not a number"))),
                None => return Err(bad(format!("no field {key:?} here"))),
            }
            break;
        }
        let next = table
            .get_mut(key)
            .ok_or_else(|| bad(format!("no field {key:?}")))?;
        if let toml::Value::Array(items) = next {
            let name = segments
                .get(i + 1)
                .ok_or_else(|| bad(format!("{key} needs an element name")))?;
            let name_key = if key == "incentive" { "token" } else { "name" };
            at = items
                .iter_mut()
                .find(|item| item.get(name_key).and_then(|v| v.as_str()) == Some(*name))
                .ok_or_else(|| bad(format!("no {key} named {name:?}")))?;
            i += 2;
        } else {
            at = next;
            i += 1;
        }
    }
    if !done {
        return Err(bad("names a table, not a value".into()));
    }
    root.try_into()
        .map_err(|e: toml::de::Error| bad(e.to_string()))
}

/// Runs the sweep: builds and checks every grid point before simulating any, couples
/// their models when they differ only in probabilities, simulates them in grid order
/// (the first `--set` varies slowest) and writes `sweep.csv`.
///
/// # Errors
/// [`BadInput`] for a bad `--set`, a grid point that fails the scenario's checks, or a
/// bad flag; an error naming the file for a failed write.
pub fn run(
    scenario: Option<&Path>,
    sets: &[String],
    options: RunOptions,
    out: Option<PathBuf>,
) -> Result<()> {
    let (base, origin) = load(scenario)?;
    let axes: Vec<Axis> = sets
        .iter()
        .map(|s| parse_axis(s))
        .collect::<Result<_, _>>()?;
    let points: usize = axes.iter().map(|a| a.values.len()).product();
    if points > MAX_POINTS {
        return Err(BadInput(format!(
            "the grid has {points} points, at most {MAX_POINTS}"
        ))
        .into());
    }
    // Grid points in order, the last axis fastest.
    let mut grid: Vec<Vec<f64>> = vec![Vec::new()];
    for axis in &axes {
        grid = grid
            .into_iter()
            .flat_map(|p| {
                axis.values.iter().map(move |x| {
                    let mut q = p.clone();
                    q.push(*x);
                    q
                })
            })
            .collect();
    }
    let mut scenarios = Vec::new();
    for point in &grid {
        let mut spec = base.spec().clone();
        for (axis, x) in axes.iter().zip(point) {
            spec = set_value(&spec, &axis.path, *x)?;
        }
        let scenario = Scenario::try_from(spec)
            .map_err(|e| BadInput(format!("{origin}: grid point {point:?}: {e}")))?;
        scenarios.push(scenario);
    }
    let mut models: Vec<Model> = scenarios.iter().map(Model::new).collect();
    let coupled = Model::couple(&mut models);
    if !coupled {
        eprintln!(
            "warning: the grid changes the scenario's structure, not just probabilities: points share the seed but are not coupled path by path"
        );
    }
    let options = RunOptions {
        seed: Some(options.seed.unwrap_or(base.spec().simulation.seed)),
        ..options
    };
    let mut results = Vec::new();
    for (scenario, model) in scenarios.into_iter().zip(&models) {
        results.push(simulate(scenario, origin.clone(), options, model)?);
    }

    let out =
        out.unwrap_or_else(|| Path::new("reports").join(format!("{}-sweep", base.spec().name)));
    let parameters: Vec<String> = axes.iter().map(|a| a.path.clone()).collect();
    let rows: Vec<SweepPoint> = grid
        .iter()
        .zip(&results)
        .map(|(values, sim)| SweepPoint {
            values,
            paths: sim.config.paths,
            seed: sim.config.seed,
            coupled,
            results: &sim.results,
        })
        .collect();
    let written = write_sweep_table(&out, &parameters, &rows, options.csv_style())
        .with_context(|| format!("writing sweep.csv in {}", out.display()))?;
    if options.quiet {
        return Ok(());
    }
    let mut text = format!(
        "{} grid points of {origin}, seed {}{}:\n",
        rows.len(),
        options.seed.unwrap_or_default(),
        if coupled {
            ", coupled path by path"
        } else {
            ""
        }
    );
    for (values, sim) in grid.iter().zip(&results) {
        let metric = |name: &str| sim.results.metric(name).expect("summary metric").value;
        let labels: Vec<String> = axes
            .iter()
            .zip(values)
            .map(|(a, x)| format!("{} = {x}", a.path))
            .collect();
        text.push_str(&format!(
            "  {:<40} VaR 99 {:>8.3}%  ES 99 {:>8.3}%  P(underperform) {:>7.3}%\n",
            labels.join(", "),
            100.0 * metric("var_99"),
            100.0 * metric("es_99"),
            100.0 * metric("prob_underperform"),
        ));
    }
    text.push_str(&format!("wrote {}\n", written.display()));
    print_stdout(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_parse_lists_and_ranges() {
        let a = parse_axis("avs.EigenDA.slash_prob=0.005, 0.01,0.02").unwrap();
        assert_eq!(a.path, "avs.EigenDA.slash_prob");
        assert_eq!(a.values, vec![0.005, 0.01, 0.02]);
        let r = parse_axis("base.apr_mean=0.02:0.04:3").unwrap();
        assert_eq!(r.values, vec![0.02, 0.03, 0.04]);
        for bad in ["nopath", "x=", "x=a,b", "x=0:1:1", "x=0:1:z", "=1"] {
            assert!(parse_axis(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn values_are_set_by_name_and_unknown_paths_refused() {
        let s = Scenario::from_toml(include_str!("../../../data/scenarios/etherfi-weeth.toml"))
            .unwrap();
        let spec = set_value(s.spec(), "avs.EigenDA.slash_prob", 0.07).unwrap();
        let eigen_da = spec.avs.iter().find(|a| a.name == "EigenDA").unwrap();
        assert_eq!(eigen_da.slash_prob, 0.07);
        let spec = set_value(s.spec(), "base.apr_mean", 0.04).unwrap();
        assert_eq!(spec.base.apr_mean, 0.04);
        for (path, why) in [
            ("avs.Nope.slash_prob", "no avs named"),
            ("base.nope", "no field"),
            ("name", "not a number"),
            ("avs.EigenDA", "not a value"),
            ("avs", "not a number"),
        ] {
            let e = set_value(s.spec(), path, 1.0).unwrap_err().to_string();
            assert!(e.contains(path) && e.contains(why), "{path}: {e}");
        }
    }
}
