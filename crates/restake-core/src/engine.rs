//! How paths are spread over threads and put back in order: fixed-size batches, one
//! generator per batch seeded from `(seed, batch)`, results written in batch order.

use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use crate::block::{BLOCK_PATHS, PathBlock};
use crate::error::ScenarioError;
use crate::model::Model;
use crate::path::{PathOutcome, PathScratch};
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
#[derive(Debug, Clone, PartialEq, Default)]
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
    let pool = thread_pool(config.threads)?;
    let mut set = PathSet::default();
    simulate_range(
        model,
        config.seed,
        0..config.paths,
        &pool,
        progress,
        &mut set,
    )?;
    Ok(set)
}

/// The batches `range` touches, in order, each with the paths of the range in it.
pub(crate) fn batch_pieces(range: &std::ops::Range<u64>) -> Vec<(u64, std::ops::Range<u64>)> {
    let mut pieces = Vec::new();
    let mut at = range.start;
    while at < range.end {
        let b = at / BATCH_PATHS;
        let end = ((b + 1) * BATCH_PATHS).min(range.end);
        pieces.push((b, at..end));
        at = end;
    }
    pieces
}

/// A worker's path scratch and block, kept from batch to batch so that a batch
/// allocates nothing: [`BatchWalker::walk`] sets all of them that a batch reads
/// ([`PathScratch::start_batch`], then [`PathBlock::simulate`] of each block).
pub(crate) struct BatchWalker {
    scratch: PathScratch,
    block: PathBlock,
}

impl BatchWalker {
    /// Buffers sized for `model`.
    pub(crate) fn new(model: &Model) -> Self {
        Self {
            scratch: PathScratch::new(model),
            block: PathBlock::new(model),
        }
    }

    /// Simulates paths `paths` of batch `b` of a run with seed `seed` in path order,
    /// with the batch's generator ([`crate::sampling::batch_rng`]`(seed, b)`), a block
    /// of [`BLOCK_PATHS`] paths at a time ([`PathBlock`]), calling `each(path, block,
    /// lanes)` on each block in path order: `lanes` are the block's paths in the range,
    /// the first of them path `path`. The batch's paths before the range are simulated
    /// for their draws only, so a path's numbers do not depend on where a range starts.
    ///
    /// # Panics
    /// If `paths` is not within batch `b`.
    pub(crate) fn walk(
        &mut self,
        model: &Model,
        seed: u64,
        b: u64,
        paths: std::ops::Range<u64>,
        mut each: impl FnMut(u64, &PathBlock, std::ops::Range<usize>),
    ) {
        assert!(paths.start >= b * BATCH_PATHS && paths.end <= (b + 1) * BATCH_PATHS);
        let Self { scratch, block } = self;
        let mut rng = batch_rng(seed, b);
        scratch.start_batch(seed, b);
        let mut first = b * BATCH_PATHS;
        while first < paths.end {
            let n = (paths.end - first).min(BLOCK_PATHS as u64) as usize;
            block.simulate(model, &mut rng, scratch, n);
            let skip = paths.start.saturating_sub(first).min(n as u64);
            if (skip as usize) < n {
                each(first + skip, block, skip as usize..n);
            }
            first += n as u64;
        }
    }
}

/// The error of a path value that overflows a 64-bit float.
pub(crate) fn overflow() -> ScenarioError {
    ScenarioError::Invalid {
        field: "token".into(),
        message: "a path value overflows a 64-bit float (a token price far out in its GBM tail, or a very long horizon): lower the drift, the volatility or the horizon".into(),
    }
}

/// A pool of `threads` workers (0: one per core).
///
/// # Errors
/// [`ScenarioError::Threads`] when the pool cannot be built.
pub fn thread_pool(threads: usize) -> Result<rayon::ThreadPool, ScenarioError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| ScenarioError::Threads {
            threads,
            message: e.to_string(),
        })
}

/// Simulates paths `range` of a run with seed `seed` on `pool` into `set` (its buffers
/// are reused): the same paths, bit for bit, as a run of all of them (a batch cut by the
/// range is simulated from its start and the paths before the range are dropped). Path
/// indices of [`PathSet::row_losses`] count from `range.start`. `progress` gets the
/// paths done in the range so far.
///
/// # Errors
/// [`ScenarioError::Invalid`] when a path value overflows.
///
/// # Panics
/// If the range is empty or holds more than `u32::MAX` paths.
pub fn simulate_range(
    model: &Model,
    seed: u64,
    range: std::ops::Range<u64>,
    pool: &rayon::ThreadPool,
    progress: &(dyn Fn(u64) + Sync),
    set: &mut PathSet,
) -> Result<(), ScenarioError> {
    assert!(!range.is_empty() && range.end - range.start <= u64::from(u32::MAX));
    let checkpoints = model.checkpoints_years.len();
    let n = (range.end - range.start) as usize;
    set.outcomes.resize(n, PathOutcome::default());
    set.checkpoint_values.resize(n * checkpoints, 0.0);
    set.checkpoints = checkpoints;
    let (outcomes, checkpoint_values) = (&mut set.outcomes, &mut set.checkpoint_values);
    let pieces = batch_pieces(&range);
    let mut out_slices = Vec::with_capacity(pieces.len());
    let (mut rest_o, mut rest_v) = (outcomes.as_mut_slice(), checkpoint_values.as_mut_slice());
    for (_, paths) in &pieces {
        let len = (paths.end - paths.start) as usize;
        let (o, ro) = rest_o.split_at_mut(len);
        let (v, rv) = rest_v.split_at_mut(len * checkpoints);
        out_slices.push((o, v));
        (rest_o, rest_v) = (ro, rv);
    }
    let done = AtomicU64::new(0);
    let row_losses: Vec<Vec<RowLoss>> = pool.install(|| {
        pieces
            .par_iter()
            .zip(out_slices.into_par_iter())
            .map_init(
                || BatchWalker::new(model),
                |walker, ((b, paths), (outs, values))| {
                    let mut losses = Vec::new();
                    let mut slots = outs.iter_mut().zip(values.chunks_exact_mut(checkpoints));
                    walker.walk(model, seed, *b, paths.clone(), |first, block, lanes| {
                        for (path, i) in (first..).zip(lanes) {
                            let view = block.path(i);
                            let (out, vals) = slots.next().expect("one slot per path");
                            *out = *view.outcome;
                            vals.copy_from_slice(view.checkpoint_values);
                            losses.extend(view.rows.iter().map(|&(row, loss_eth)| RowLoss {
                                path: (path - range.start) as u32,
                                row,
                                loss_eth,
                            }));
                        }
                    });
                    let total =
                        done.fetch_add(outs.len() as u64, Ordering::Relaxed) + outs.len() as u64;
                    progress(total);
                    losses
                },
            )
            .collect()
    });
    if !outcomes.iter().all(PathOutcome::is_finite)
        || !checkpoint_values.iter().all(|v| v.is_finite())
    {
        return Err(overflow());
    }
    set.row_losses.clear();
    for losses in row_losses {
        set.row_losses.extend(losses);
    }
    Ok(())
}
