//! How paths are spread over threads and put back in order: fixed-size batches, one
//! generator per batch seeded from `(seed, batch)`, results written in batch order.

use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use crate::error::ScenarioError;
use crate::model::Model;
use crate::path::{PathOutcome, PathScratch, simulate_path};
use crate::sampling::batch_rng;

/// Paths in every batch but the last. Fixed, so that batch `b` always simulates paths
/// `b × BATCH_PATHS ..`, whatever the number of threads.
pub const BATCH_PATHS: u64 = 4096;

/// Largest number of checkpoint values (paths × checkpoints) a run keeps in memory, 8
/// bytes each: 2.4 GB.
pub const MAX_CHECKPOINT_VALUES: u64 = 300_000_000;

/// What to run: path count, seed and threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunConfig {
    /// Number of paths, in [1, [`crate::MAX_PATHS`]].
    pub paths: u64,
    /// Seed of the run; with the scenario it fixes every number of the output.
    pub seed: u64,
    /// Worker threads; 0 means one per core. Does not change any result.
    pub threads: usize,
}

/// Slashing loss of one contribution row on one path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowLoss {
    /// Path index, 0-based.
    pub path: u32,
    /// Row index into [`Model::rows`].
    pub row: u32,
    /// Stake destroyed, ETH at the events' times.
    pub loss_eth: f64,
}

/// Every path's outcome, in path order.
#[derive(Debug, Clone, PartialEq)]
pub struct PathSet {
    /// One outcome per path.
    pub outcomes: Vec<PathOutcome>,
    /// `V(t)/P` per path and checkpoint, path-major: `values[path × checkpoints + c]`.
    pub checkpoint_values: Vec<f64>,
    /// Number of checkpoints per path.
    pub checkpoints: usize,
    /// Slashing losses by row, sorted by path, then by the order first hit in the path;
    /// one entry per row that had at least one non-vetoed request on that path.
    pub row_losses: Vec<RowLoss>,
}

/// Simulates `config.paths` paths of `model`, batch by batch in parallel, and returns
/// them in path order. `progress` is called after each batch with the number of paths
/// done so far (from any worker thread).
///
/// Batch `b` covers paths `b × BATCH_PATHS ..` with the generator
/// [`crate::sampling::batch_rng`]`(seed, b)`; each batch writes into its own slice of
/// the output, so the result is bit-identical for any thread count.
///
/// # Errors
/// [`ScenarioError::Invalid`] for a path count outside [1, `MAX_PATHS`], more than
/// [`MAX_CHECKPOINT_VALUES`] checkpoint values, or a path value that overflows;
/// [`ScenarioError::Threads`] when the thread pool cannot be built.
pub fn simulate(
    model: &Model,
    config: &RunConfig,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<PathSet, ScenarioError> {
    crate::scenario::check_paths("paths", config.paths)?;
    let checkpoints = model.checkpoints_years.len();
    if config.paths.saturating_mul(checkpoints as u64) > MAX_CHECKPOINT_VALUES {
        return Err(ScenarioError::Invalid {
            field: "simulation.checkpoint_days".into(),
            message: format!(
                "{} paths x {checkpoints} checkpoints would keep more than {MAX_CHECKPOINT_VALUES} fan-chart values in memory: use fewer paths or a larger checkpoint_days",
                config.paths
            ),
        });
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(config.threads)
        .build()
        .map_err(|e| ScenarioError::Threads {
            threads: config.threads,
            message: e.to_string(),
        })?;
    let n = config.paths as usize;
    let batch = BATCH_PATHS as usize;
    let mut outcomes = vec![PathOutcome::default(); n];
    let mut checkpoint_values = vec![0.0; n * checkpoints];
    let done = AtomicU64::new(0);
    let row_losses: Vec<Vec<RowLoss>> = pool.install(|| {
        outcomes
            .par_chunks_mut(batch)
            .zip(checkpoint_values.par_chunks_mut(batch * checkpoints))
            .enumerate()
            .map(|(b, (outs, values))| {
                let mut rng = batch_rng(config.seed, b as u64);
                let mut scratch = PathScratch::new(model);
                let mut losses = Vec::new();
                let first = b * batch;
                for (i, (out, vals)) in outs
                    .iter_mut()
                    .zip(values.chunks_exact_mut(checkpoints))
                    .enumerate()
                {
                    *out = simulate_path(model, &mut rng, &mut scratch);
                    vals.copy_from_slice(&scratch.checkpoint_values);
                    for &row in &scratch.slashed_rows {
                        losses.push(RowLoss {
                            path: (first + i) as u32,
                            row: row as u32,
                            loss_eth: scratch.row_loss_eth[row],
                        });
                    }
                    scratch.clear_rows();
                }
                let total =
                    done.fetch_add(outs.len() as u64, Ordering::Relaxed) + outs.len() as u64;
                progress(total);
                losses
            })
            .collect()
    });
    let finite = |o: &PathOutcome| {
        [
            o.net_return,
            o.excess_return,
            o.slashing_loss_eth,
            o.incentive_value_eth,
        ]
        .iter()
        .all(|x| x.is_finite())
    };
    if !outcomes.iter().all(finite) || !checkpoint_values.iter().all(|v| v.is_finite()) {
        return Err(ScenarioError::Invalid {
            field: "token".into(),
            message: "a path value overflows a 64-bit float (a token price far out in its GBM tail, or a very long horizon): lower the drift, the volatility or the horizon".into(),
        });
    }
    Ok(PathSet {
        outcomes,
        checkpoint_values,
        checkpoints,
        row_losses: row_losses.concat(),
    })
}
