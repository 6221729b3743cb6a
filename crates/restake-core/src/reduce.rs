//! The one reduction of a run: a [`Partial`] state of every statistic, built batch by
//! batch over any range of the run's fixed batch sequence, merged with the partials of
//! the other ranges in any grouping, saved and read back as bytes, and turned into
//! [`Results`] by [`Partial::finish`].
//!
//! What makes it mergeable to the bit:
//! - sums are exact ([`ExactSum`]) from the first batch-sized slice up: a slice of paths
//!   (a batch, cut at the convergence prefixes) is summed in path order in `f64`, and
//!   slices are added exactly, so no grouping of slices into chunks, threads or shards
//!   changes a bit; moments are power sums of deviations from path 0's values;
//! - counts are integers, and so are the sketches' ([`crate::sketch`]);
//! - the tails and the quantiles come from [`OrderStats`]: exact values at the ranks the
//!   statistics need, exact sums above them, in memory that grows like the square root
//!   of the path count.
//!
//! Every statistic but the fan chart and the two distribution files is exact: equal to
//! what keeping and sorting every path gives. Those three come from log-bucket sketches
//! ([`crate::sketch`]) with relative resolution [`SKETCH_RESOLUTION`] of `V/P`.

use std::io::{Read, Write};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError, TryLockError};

use serde::{Deserialize, Serialize};

use crate::block::{BLOCK_PATHS, PathBlock, PathView};
use crate::engine::{BATCH_PATHS, BatchWalker, RunConfig, overflow};
use crate::error::ScenarioError;
use crate::exact::ExactSum;
use crate::model::Model;
use crate::order::{Located, OrderStats, Payload};
use crate::path::{PathOutcome, PathScratch, simulate_path};
use crate::sampling::batch_rng;
use crate::sketch::{self, Sketch};
use crate::stats::{
    self, Bin, ConvergenceRow, FAN_LEVELS, FanRow, Histogram, Moments, OtherRows, QUANTILE_LEVELS,
    QuantileRow, ROUNDING_TOLERANCE, Results, SummaryInputs, TAIL_LEVELS, convergence_rows,
    convergence_sizes, order_statistic_ranks, quantile_rank, summary_metrics,
};

/// Paths in a chunk: a run keeps up to a chunk's worth of batches simulated but not
/// yet absorbed, or more with more than 8 workers ([`window_batches`]).
pub const CHUNK_PATHS: u64 = 1 << 17;

/// Batches a run on `threads` workers keeps simulated but not yet absorbed into its
/// [`Partial`], at most: a chunk's (32), or four a worker with more than 8 workers, so
/// that a worker can run that far ahead of one that is slow or descheduled.
fn window_batches(threads: usize) -> u64 {
    (CHUNK_PATHS / BATCH_PATHS).max(4 * threads as u64)
}

/// Tells the other workers of [`reduce_range`] to stop when the worker holding it
/// unwinds, so that none waits for a batch that will never come.
struct StopOnPanic<'a>(&'a AtomicBool);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

/// Relative resolution of a value read from a sketch (`V/P` or the loss fraction): at
/// most this far from the value, relatively (in fact within `2^-14`, [`crate::sketch`]).
pub const SKETCH_RESOLUTION: f64 = 1e-4;

/// Most checkpoints a run sketches (a sketch each: 32 KB per power of two its values
/// span).
pub const MAX_SKETCHED_CHECKPOINTS: usize = 400;

/// Version of the byte format of [`Partial::write_to`]; a reader refuses any other.
pub const PARTIAL_FORMAT_VERSION: u32 = 2;

/// First bytes of a saved partial.
const MAGIC: &[u8; 8] = b"RSTKPART";

/// Quantities with moments, in the order of [`SummaryInputs`]: net and excess return,
/// then slashing loss, base income, AVS fees, token value, depeg loss, liquidation
/// loss, borrow cost and bad debt (ETH).
const MOMENT_QUANTITIES: usize = 10;

fn quantities(o: &PathOutcome) -> [f64; MOMENT_QUANTITIES] {
    [
        o.net_return,
        o.excess_return,
        o.slashing_loss_eth,
        o.base_income_eth,
        o.avs_fee_income_eth,
        o.incentive_value_eth,
        o.depeg_loss_eth,
        o.liquidation_loss_eth,
        o.borrow_cost_eth,
        o.bad_debt_eth,
    ]
}

/// What a path in the tail carries: its loss per contribution row, ETH: the depeg and
/// the three income streams as negative losses inline, and its slashing rows (none, so no
/// allocation, on most paths).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TailRows {
    /// Depeg loss, then minus base income, AVS fees and token value.
    other: [f64; 4],
    /// `(row, loss)` of the slashing rows.
    slashed: Box<[(u32, f64)]>,
}

/// Exact sums over tail paths: the loss, its square, the depeg and income rows (as in
/// [`TailRows`]) and each slashing row.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TailSums {
    loss: ExactSum,
    loss_sq: ExactSum,
    other: [ExactSum; 4],
    rows: Vec<ExactSum>,
}

impl TailSums {
    /// The sum of contribution row `r` of `model`.
    fn row(&self, r: usize, model: &Model) -> f64 {
        let other = if r == model.depeg_row {
            Some(0)
        } else {
            (model.income_row..model.income_row + 3)
                .contains(&r)
                .then(|| 1 + r - model.income_row)
        };
        match other {
            Some(k) => self.other[k].value(),
            None => self.rows.get(r).map_or(0.0, ExactSum::value),
        }
    }
}

impl Payload for TailRows {
    type Sum = TailSums;

    fn add_to(&self, value: f64, sum: &mut TailSums) {
        NoRows.add_to(value, sum);
        for (a, x) in sum.other.iter_mut().zip(self.other) {
            a.add(x);
        }
        for &(r, x) in self.slashed.iter() {
            let r = r as usize;
            if sum.rows.len() <= r {
                sum.rows.resize(r + 1, ExactSum::default());
            }
            sum.rows[r].add(x);
        }
    }

    fn merge(sum: &mut TailSums, other: &TailSums) {
        sum.loss.merge(&other.loss);
        sum.loss_sq.merge(&other.loss_sq);
        for (a, b) in sum.other.iter_mut().zip(&other.other) {
            a.merge(b);
        }
        if sum.rows.len() < other.rows.len() {
            sum.rows.resize(other.rows.len(), ExactSum::default());
        }
        for (a, b) in sum.rows.iter_mut().zip(&other.rows) {
            a.merge(b);
        }
    }
}

/// No payload but the loss: the tails of a convergence prefix need VaR and ES, not
/// their allocation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NoRows;

impl Payload for NoRows {
    type Sum = TailSums;

    fn add_to(&self, value: f64, sum: &mut TailSums) {
        sum.loss.add(value);
        sum.loss_sq.add(value * value);
    }

    fn merge(sum: &mut TailSums, other: &TailSums) {
        TailRows::merge(sum, other);
    }
}

/// Moments and counts of the paths of one convergence interval.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct SummaryAcc {
    n: u64,
    /// `sum (x - shift)^p` for `p = 1..4`, of each of the [`MOMENT_QUANTITIES`].
    power: Vec<[ExactSum; 4]>,
    losses: u64,
    underperforms: u64,
    slashed: u64,
    liquidated: u64,
    beyond: Vec<u64>,
}

impl SummaryAcc {
    fn new(thresholds: usize) -> Self {
        Self {
            power: vec![Default::default(); MOMENT_QUANTITIES],
            beyond: vec![0; thresholds],
            ..Self::default()
        }
    }

    fn add(&mut self, s: &Slice) {
        self.n += s.n;
        for (q, acc) in self.power.iter_mut().enumerate() {
            for (a, p) in acc.iter_mut().zip(&s.power) {
                a.add(p[q]);
            }
        }
        self.losses += s.losses;
        self.underperforms += s.underperforms;
        self.slashed += s.slashed;
        self.liquidated += s.liquidated;
        for (a, b) in self.beyond.iter_mut().zip(&s.beyond) {
            *a += b;
        }
    }

    fn merge(&mut self, o: &Self) {
        self.n += o.n;
        for (acc, p) in self.power.iter_mut().zip(&o.power) {
            for (a, x) in acc.iter_mut().zip(p) {
                a.merge(x);
            }
        }
        self.losses += o.losses;
        self.underperforms += o.underperforms;
        self.slashed += o.slashed;
        self.liquidated += o.liquidated;
        for (a, b) in self.beyond.iter_mut().zip(&o.beyond) {
            *a += b;
        }
    }

    fn inputs(&self, shift: &[f64; MOMENT_QUANTITIES]) -> SummaryInputs {
        let m: Vec<Moments> = self
            .power
            .iter()
            .zip(shift)
            .map(|(p, k)| Moments::from_power_sums(self.n, *k, p.clone().map(|s| s.value())))
            .collect();
        SummaryInputs {
            n: self.n,
            net_return: m[0],
            excess_return: m[1],
            eth: [m[2], m[3], m[4], m[5], m[6], m[7], m[8], m[9]],
            losses: self.losses,
            underperforms: self.underperforms,
            slashed: self.slashed,
            liquidated: self.liquidated,
            beyond: self.beyond.clone(),
        }
    }
}

/// The sums of one slice (a batch cut at the convergence prefixes) in path order.
#[derive(Debug)]
struct Slice {
    interval: usize,
    n: u64,
    /// `power[p - 1][q]`: `sum (x - shift)^p` of quantity `q`, power by power (a path's
    /// ten deviations add along one array a power, with fewer loads and stores than
    /// quantity by quantity).
    power: [[f64; MOMENT_QUANTITIES]; 4],
    losses: u64,
    underperforms: u64,
    slashed: u64,
    liquidated: u64,
    beyond: Vec<u64>,
    row_sums: Vec<f64>,
    row_events: Vec<u64>,
}

impl Slice {
    fn new(interval: usize, thresholds: usize, rows: usize) -> Self {
        Self {
            interval,
            n: 0,
            power: [[0.0; MOMENT_QUANTITIES]; 4],
            losses: 0,
            underperforms: 0,
            slashed: 0,
            liquidated: 0,
            beyond: vec![0; thresholds],
            row_sums: vec![0.0; rows],
            row_events: vec![0; rows],
        }
    }

    /// Adds the next path: its outcome and its slashing rows `(row, ETH)`. Inlined
    /// into [`ReduceBlock`], built for the processor's vector instructions.
    #[inline(always)]
    fn add(
        &mut self,
        model: &Model,
        o: &PathOutcome,
        rows: &[(u32, f64)],
        shift: &[f64; MOMENT_QUANTITIES],
        thresholds: &[f64],
    ) {
        self.n += 1;
        let x = quantities(o);
        let [p1, p2, p3, p4] = &mut self.power;
        for q in 0..MOMENT_QUANTITIES {
            let d = x[q] - shift[q];
            let d2 = d * d;
            p1[q] += d;
            p2[q] += d2;
            p3[q] += d2 * d;
            p4[q] += d2 * d2;
        }
        self.losses += u64::from(o.net_return < -ROUNDING_TOLERANCE);
        self.underperforms += u64::from(o.excess_return < -ROUNDING_TOLERANCE);
        self.slashed += u64::from(o.slashing_loss_eth > 0.0);
        self.liquidated += u64::from(o.liquidations > 0);
        for (c, x) in self.beyond.iter_mut().zip(thresholds) {
            *c += u64::from(-o.net_return > *x);
        }
        let other = OtherRows::of(o);
        stats::add_path_loss(model, &mut self.row_sums, rows.iter().copied(), other, 1.0);
        for &(r, _) in rows {
            self.row_events[r as usize] += 1;
        }
        self.row_events[model.depeg_row] += u64::from(other.depeg > 0.0);
        for (k, income) in other.income.iter().enumerate() {
            self.row_events[model.income_row + k] += u64::from(*income != 0.0);
        }
    }
}

/// What the order statistics need of one path: its loss `L = -R` and its depeg and
/// income rows, as in [`TailRows`].
#[derive(Debug, Clone, Copy)]
struct TailInput {
    loss: f64,
    other: [f64; 4],
}

/// One batch (the part of it in the range), reduced by the worker that simulated it:
/// its slices' sums, and what the order statistics need of each path. A run keeps a
/// ring of them ([`window_batches`]), reused from batch to batch, so that it allocates
/// no per-path buffer but these.
#[derive(Debug, Default)]
struct BatchOut {
    first: u64,
    slices: Vec<Slice>,
    inputs: Vec<TailInput>,
    /// Slashing rows `(row, ETH)` of the paths in order: path `i`'s are
    /// `rows[row_start[i]..row_start[i + 1]]`.
    rows: Vec<(u32, f64)>,
    row_start: Vec<u32>,
    min_return: f64,
    max_return: f64,
    max_loss: f64,
    /// Every value of every path is finite.
    finite: bool,
}

/// The sketches one worker thread records into: `V/P`, the loss fraction of paths with
/// a positive one, and `V/P` at each checkpoint. Counts are integers, so which thread
/// records a path changes nothing once they are merged.
#[derive(Debug)]
struct Sketches {
    value: Sketch,
    loss: Sketch,
    checkpoints: Vec<Sketch>,
}

/// What a worker of [`reduce_range`] keeps from batch to batch: its sketches, and its
/// path buffers and the buckets of a block's checkpoint values, reused so that a batch
/// allocates nothing.
struct Worker {
    sketches: Sketches,
    walker: BatchWalker,
    /// The buckets of a block's checkpoint values, path-major.
    buckets: Vec<u64>,
}

impl Worker {
    fn new(model: &Model) -> Self {
        let checkpoints = model.checkpoints_years.len();
        Self {
            sketches: Sketches {
                value: Sketch::default(),
                loss: Sketch::default(),
                checkpoints: vec![Sketch::default(); checkpoints],
            },
            walker: BatchWalker::new(model),
            buckets: vec![0; BLOCK_PATHS * checkpoints],
        }
    }
}

/// Simulates paths `paths` of batch `b` with `worker`'s buffers and reduces each as it
/// comes out ([`BatchWalker::walk`]): its sums into `out`'s slices, its values into the
/// worker's sketches, its loss and rows into `out` for the order statistics.
#[allow(clippy::too_many_arguments)]
fn reduce_batch(
    model: &Model,
    seed: u64,
    (b, paths): (u64, Range<u64>),
    prefixes: &[u64],
    shift: &[f64; MOMENT_QUANTITIES],
    thresholds: &[f64],
    out: &mut BatchOut,
    worker: &mut Worker,
) {
    let n = (paths.end - paths.start) as usize;
    out.first = paths.start;
    out.slices.clear();
    out.inputs.clear();
    out.inputs.reserve_exact(n);
    out.rows.clear();
    out.row_start.clear();
    out.row_start.reserve_exact(n + 1);
    out.row_start.push(0);
    (out.min_return, out.max_return, out.max_loss) = (f64::INFINITY, f64::NEG_INFINITY, 0.0);
    out.finite = true;
    let arch = pulp::Arch::new();
    let Worker {
        sketches,
        walker,
        buckets,
    } = worker;
    let mut batch = BatchReduction {
        model,
        prefixes,
        shift,
        thresholds,
        end: paths.end,
        slice_end: paths.start,
        buckets,
        out,
        sketches,
    };
    walker.walk(model, seed, b, paths, |first, block, lanes| {
        arch.dispatch(ReduceBlock {
            batch: &mut batch,
            first,
            block,
            lanes,
        });
    });
}

/// What [`reduce_batch`] keeps from block to block of its batch.
struct BatchReduction<'a> {
    model: &'a Model,
    prefixes: &'a [u64],
    shift: &'a [f64; MOMENT_QUANTITIES],
    thresholds: &'a [f64],
    /// The end of the batch's paths in the range.
    end: u64,
    /// A slice ends at the batch's end or at the next convergence prefix.
    slice_end: u64,
    /// The buckets of a block's checkpoint values, path-major.
    buckets: &'a mut [u64],
    out: &'a mut BatchOut,
    sketches: &'a mut Sketches,
}

/// The reduction of a block's paths `lanes`, the first of them path `first` of the run,
/// as one operation for `pulp` to build for each instruction set and pick from at run
/// time: inlined whole into the function built for the processor's vector instructions
/// (the moments' ten quantities four at a time with AVX2). The compiler never fuses a
/// multiply and an add, so every sum has the same bits on every build.
struct ReduceBlock<'a, 'b> {
    batch: &'a mut BatchReduction<'b>,
    first: u64,
    block: &'a PathBlock,
    lanes: Range<usize>,
}

impl pulp::WithSimd for ReduceBlock<'_, '_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let Self {
            batch,
            first,
            block,
            lanes,
        } = self;
        let BatchReduction {
            model,
            prefixes,
            shift,
            thresholds,
            end,
            slice_end,
            buckets,
            out,
            sketches,
        } = batch;
        let (model, rows) = (*model, model.rows.len());
        let checkpoints = model.checkpoints_years.len();
        // A block's checkpoint values at once: checked and bucketed in one pass each,
        // with no branch a value, before the increments.
        let values = block.checkpoint_values(lanes.clone());
        out.finite &= values.iter().fold(true, |ok, v| ok & v.is_finite());
        sketch::buckets(values, buckets);
        for ((path, i), path_buckets) in (first..).zip(lanes).zip(buckets.chunks_exact(checkpoints))
        {
            let PathView {
                outcome: o,
                rows: path_rows,
                ..
            } = block.path(i);
            if path == *slice_end {
                let interval = prefixes.partition_point(|p| *p <= path);
                *slice_end = prefixes.get(interval).map_or(*end, |p| (*p).min(*end));
                out.slices
                    .push(Slice::new(interval, thresholds.len(), rows));
            }
            out.rows.extend_from_slice(path_rows);
            let slice = out.slices.last_mut().expect("a slice is open");
            slice.add(model, o, path_rows, shift, thresholds);
            out.row_start.push(out.rows.len() as u32);
            let other = OtherRows::of(o);
            out.inputs.push(TailInput {
                loss: -o.net_return,
                other: [
                    other.depeg,
                    -other.income[0],
                    -other.income[1],
                    -other.income[2],
                ],
            });
            let loss = o.slashing_loss_eth / model.principal_eth;
            out.min_return = out.min_return.min(o.net_return);
            out.max_return = out.max_return.max(o.net_return);
            out.max_loss = out.max_loss.max(loss);
            out.finite &= o.is_finite();
            sketches.value.record(1.0 + o.net_return);
            if o.slashing_loss_eth > 0.0 {
                sketches.loss.record(loss);
            }
            // A path's checkpoint values into their sketches one after the other: the
            // increments go to different sketches, so none waits on the one before, as
            // the paths of one checkpoint would (most share a bucket).
            for (sketch, b) in sketches.checkpoints.iter_mut().zip(path_buckets) {
                sketch.record_bucket(*b);
            }
        }
    }
}

/// The ranks (from the largest loss) the tails at [`TAIL_LEVELS`] of `n` paths need:
/// the ES boundary, the VaR and its interval's ends.
fn tail_level_ranks(n: u64) -> Vec<u64> {
    let nz = n as usize;
    TAIL_LEVELS
        .iter()
        .flat_map(|&l| {
            let (r, s) = order_statistic_ranks(nz, f64::from(l) / 10_000.0);
            let c = (n * u64::from(10_000 - l)).div_ceil(10_000).max(1);
            [
                c,
                n + 1 - quantile_rank(nz, l) as u64,
                n + 1 - r as u64,
                n + 1 - s as u64,
            ]
        })
        .collect()
}

/// The ranks (from the largest loss, i.e. ascending in the return) of the return
/// quantiles at `levels` and their intervals.
fn quantile_ranks(n: u64, levels: impl Iterator<Item = u32>) -> Vec<u64> {
    let nz = n as usize;
    levels
        .flat_map(|q| {
            let (r, s) = order_statistic_ranks(nz, f64::from(q) / 10_000.0);
            [quantile_rank(nz, q) as u64, r as u64, s as u64]
        })
        .collect()
}

/// Return quantile levels at or below this (in 1/10,000) are read from the tail state.
const TAIL_QUANTILE_MAX: u32 = 500;

/// The mergeable state of every statistic over some of a run's paths.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Partial {
    paths: u64,
    seed: u64,
    /// Path ranges reduced, disjoint and ascending.
    covered: Vec<(u64, u64)>,
    /// Path 0's values of the moment quantities: the shift of the power sums.
    shift: [f64; MOMENT_QUANTITIES],
    /// Moments and counts of each convergence interval `[N/32.., N/16)` ..
    intervals: Vec<SummaryAcc>,
    prefixes: Vec<u64>,
    row_sums: Vec<ExactSum>,
    row_events: Vec<u64>,
    min_return: f64,
    max_return: f64,
    max_loss: f64,
    /// `V/P = 1 + R` of each path.
    value: Sketch,
    /// Slashing loss as a fraction of principal, of paths with a positive one.
    loss: Sketch,
    /// `V(t)/P` at each checkpoint.
    checkpoints: Vec<Sketch>,
    /// The loss `L = -R` with its rows: the tails and the return quantiles up to 5%.
    tail: OrderStats<TailRows>,
    /// The return quantiles above 5%.
    body: OrderStats<()>,
    /// The tails of each convergence prefix but the whole run.
    prefix_tails: Vec<OrderStats<NoRows>>,
}

impl Partial {
    /// An empty state for a run of `paths` paths of `model` with seed `seed` and
    /// `thresholds` loss thresholds (path 0 is simulated once for the moment shift).
    ///
    /// # Errors
    /// [`ScenarioError::Invalid`] for a path count outside [1,
    /// [`crate::scenario::MAX_SHARDED_PATHS`]] or
    /// more than [`MAX_SKETCHED_CHECKPOINTS`] checkpoints.
    pub fn new(
        model: &Model,
        paths: u64,
        seed: u64,
        thresholds: usize,
    ) -> Result<Self, ScenarioError> {
        crate::scenario::check_paths_within("paths", paths, crate::scenario::MAX_SHARDED_PATHS)?;
        let checkpoints = model.checkpoints_years.len();
        if checkpoints > MAX_SKETCHED_CHECKPOINTS {
            return Err(ScenarioError::Invalid {
                field: "simulation.checkpoint_days".into(),
                message: format!(
                    "a run keeps a fan-chart sketch per checkpoint, at most {MAX_SKETCHED_CHECKPOINTS}; this horizon has {checkpoints}: use a larger checkpoint_days"
                ),
            });
        }
        let mut rng = batch_rng(seed, 0);
        let mut scratch = PathScratch::new(model);
        scratch.start_batch(seed, 0);
        let first = simulate_path(model, &mut rng, &mut scratch);
        let prefixes = convergence_sizes(paths);
        let tail_ranks = |n: u64| {
            let mut r = tail_level_ranks(n);
            r.extend(quantile_ranks(
                n,
                QUANTILE_LEVELS
                    .iter()
                    .copied()
                    .filter(|q| *q <= TAIL_QUANTILE_MAX),
            ));
            r
        };
        Ok(Self {
            paths,
            seed,
            covered: Vec::new(),
            shift: quantities(&first),
            intervals: vec![SummaryAcc::new(thresholds); prefixes.len()],
            row_sums: vec![ExactSum::default(); model.rows.len()],
            row_events: vec![0; model.rows.len()],
            min_return: f64::INFINITY,
            max_return: f64::NEG_INFINITY,
            max_loss: 0.0,
            value: Sketch::default(),
            loss: Sketch::default(),
            checkpoints: (0..checkpoints).map(|_| Sketch::default()).collect(),
            tail: OrderStats::new(paths, &tail_ranks(paths)),
            body: OrderStats::new(
                paths,
                &quantile_ranks(
                    paths,
                    QUANTILE_LEVELS
                        .iter()
                        .copied()
                        .filter(|q| *q > TAIL_QUANTILE_MAX),
                ),
            ),
            prefix_tails: prefixes[..prefixes.len() - 1]
                .iter()
                .map(|&p| OrderStats::new(p, &tail_level_ranks(p)))
                .collect(),
            prefixes,
        })
    }

    /// Paths of the run this state belongs to.
    pub fn run_paths(&self) -> u64 {
        self.paths
    }

    /// Path ranges reduced so far, disjoint and ascending.
    pub fn covered(&self) -> &[(u64, u64)] {
        &self.covered
    }

    /// Adds a batch, reduced by its worker ([`reduce_batch`]), after the batches before
    /// it: its sums, and each of its paths to the order statistics in path order.
    fn absorb(&mut self, batch: &BatchOut) {
        for s in &batch.slices {
            self.intervals[s.interval].add(s);
            for (a, x) in self.row_sums.iter_mut().zip(&s.row_sums) {
                a.add(*x);
            }
            for (a, x) in self.row_events.iter_mut().zip(&s.row_events) {
                *a += x;
            }
        }
        self.min_return = self.min_return.min(batch.min_return);
        self.max_return = self.max_return.max(batch.max_return);
        self.max_loss = self.max_loss.max(batch.max_loss);
        let n = batch.inputs.len();
        let losses = || batch.inputs.iter().map(|input| input.loss);
        self.tail.offer(losses(), |i| {
            let (a, b) = (batch.row_start[i] as usize, batch.row_start[i + 1] as usize);
            TailRows {
                other: batch.inputs[i].other,
                slashed: batch.rows[a..b].into(),
            }
        });
        // The convergence prefixes need VaR and ES, not their allocation.
        for (p, state) in self.prefixes.iter().zip(self.prefix_tails.iter_mut()) {
            let within = p.saturating_sub(batch.first).min(n as u64) as usize;
            state.offer(losses().take(within), |_| NoRows);
        }
        self.body.offer(losses(), |_| ());
        // Each state narrows at a batch's end, so a range cut inside a batch does not.
        if n > 0 && (batch.first + n as u64).is_multiple_of(BATCH_PATHS) {
            self.tail.maybe_narrow();
            self.body.maybe_narrow();
            self.prefix_tails
                .iter_mut()
                .for_each(OrderStats::maybe_narrow);
        }
        if n > 0 {
            self.cover(batch.first, batch.first + n as u64);
        }
    }

    fn cover(&mut self, start: u64, end: u64) {
        self.covered.push((start, end));
        self.covered.sort_unstable();
        let mut out: Vec<(u64, u64)> = Vec::with_capacity(self.covered.len());
        for &(a, b) in &self.covered {
            match out.last_mut() {
                Some(last) if last.1 == a => last.1 = b,
                _ => out.push((a, b)),
            }
        }
        self.covered = out;
    }

    /// Adds the state of other paths of the same run.
    ///
    /// # Errors
    /// [`ScenarioError::Partial`] when `other` belongs to another run (path count,
    /// seed, path 0, thresholds, rows or checkpoints differ) or covers paths this one covers.
    pub fn merge(&mut self, other: &Self) -> Result<(), ScenarioError> {
        let mismatch = |what: &str| ScenarioError::Partial {
            message: format!("the partials belong to different runs: their {what} differ"),
        };
        if self.paths != other.paths {
            return Err(mismatch("path counts"));
        }
        if self.seed != other.seed {
            return Err(mismatch("seeds"));
        }
        if self.shift.map(f64::to_bits) != other.shift.map(f64::to_bits) {
            return Err(mismatch("first paths (scenario or seed)"));
        }
        if self.row_sums.len() != other.row_sums.len()
            || self.checkpoints.len() != other.checkpoints.len()
            || self.intervals.first().map(|i| i.beyond.len())
                != other.intervals.first().map(|i| i.beyond.len())
        {
            return Err(mismatch("scenarios"));
        }
        for &(a, b) in &other.covered {
            if self.covered.iter().any(|&(c, d)| a < d && c < b) {
                return Err(ScenarioError::Partial {
                    message: format!("paths {a}..{b} are in two partials (a shard given twice?)"),
                });
            }
        }
        for (a, b) in self.intervals.iter_mut().zip(&other.intervals) {
            a.merge(b);
        }
        for (a, b) in self.row_sums.iter_mut().zip(&other.row_sums) {
            a.merge(b);
        }
        for (a, b) in self.row_events.iter_mut().zip(&other.row_events) {
            *a += b;
        }
        self.min_return = self.min_return.min(other.min_return);
        self.max_return = self.max_return.max(other.max_return);
        self.max_loss = self.max_loss.max(other.max_loss);
        self.value.merge(&other.value);
        self.loss.merge(&other.loss);
        for (a, b) in self.checkpoints.iter_mut().zip(&other.checkpoints) {
            a.merge(b);
        }
        fn take<P: Payload>(s: &mut OrderStats<P>) -> OrderStats<P> {
            std::mem::replace(s, OrderStats::new(1, &[]))
        }
        self.tail = take(&mut self.tail).merge(other.tail.clone());
        self.body = take(&mut self.body).merge(other.body.clone());
        for (a, b) in self.prefix_tails.iter_mut().zip(&other.prefix_tails) {
            *a = take(a).merge(b.clone());
        }
        for &(a, b) in &other.covered {
            self.cover(a, b);
        }
        Ok(())
    }

    /// Writes the state as a frame ([`write_frame`]) with magic `RSTKPART`, format
    /// [`PARTIAL_FORMAT_VERSION`] and the state in postcard as its body.
    ///
    /// # Errors
    /// The writer's.
    pub fn write_to(&self, w: impl Write) -> std::io::Result<()> {
        let body = postcard::to_stdvec(self).map_err(std::io::Error::other)?;
        write_frame(w, MAGIC, PARTIAL_FORMAT_VERSION, &body)
    }

    /// Reads a state written by [`Partial::write_to`], and nothing after it (a file may
    /// hold several).
    ///
    /// # Errors
    /// [`ScenarioError::Partial`] for a truncated, corrupted or foreign file, or one of
    /// another format version.
    pub fn read_from(r: impl Read) -> Result<Self, ScenarioError> {
        let body = read_frame(r, MAGIC, PARTIAL_FORMAT_VERSION, u64::MAX)
            .map_err(|message| ScenarioError::Partial { message })?;
        postcard::from_bytes(&body).map_err(|e| ScenarioError::Partial {
            message: format!("corrupted: {e}"),
        })
    }

    /// Every statistic of the run.
    ///
    /// # Errors
    /// [`ScenarioError::Partial`] when the state does not cover all the run's paths, or
    /// (with probability below 1e-10, [`crate::order`]) a rank escaped its window.
    pub fn finish(
        mut self,
        model: &Model,
        loss_thresholds: &[f64],
    ) -> Result<Results, ScenarioError> {
        let n = self.paths;
        self.tail.tidy();
        self.body.tidy();
        self.prefix_tails.iter_mut().for_each(OrderStats::tidy);
        if self.covered != [(0, n)] {
            return Err(ScenarioError::Partial {
                message: format!(
                    "the partials cover paths {:?} of 0..{n}: a shard is missing",
                    self.covered
                ),
            });
        }
        let tails: Vec<LevelTail> = TAIL_LEVELS
            .iter()
            .map(|&l| level_tail(&self.tail, n, l, Some(model)))
            .collect::<Result<_, _>>()?;
        let mut total = SummaryAcc::new(loss_thresholds.len());
        let mut convergence: Vec<ConvergenceRow> = Vec::new();
        for (j, (acc, &p)) in self.intervals.iter().zip(&self.prefixes).enumerate() {
            total.merge(acc);
            if p < n {
                let t: Vec<stats::Tail> = TAIL_LEVELS
                    .iter()
                    .map(|&l| level_tail(&self.prefix_tails[j], p, l, None).map(|t| t.tail))
                    .collect::<Result<_, _>>()?;
                let summary = summary_metrics(&total.inputs(&self.shift), &t, &[], false);
                convergence.extend(convergence_rows(p, &summary));
            }
        }
        let inputs = total.inputs(&self.shift);
        let tail_list: Vec<stats::Tail> = tails.iter().map(|t| t.tail.clone()).collect();
        let summary = summary_metrics(
            &inputs,
            &tail_list,
            loss_thresholds,
            model.leverage.is_some(),
        );
        convergence.extend(convergence_rows(n, &summary));

        let nz = n as usize;
        let loss_at = |rank: usize| -> Result<f64, ScenarioError> {
            let q = |s: &Located| match s {
                Located::Kept(v) => Some(*v),
                Located::Missed => None,
            };
            q(&self.tail.at_rank(rank as u64))
                .or_else(|| q(&self.body.at_rank(rank as u64)))
                .ok_or_else(|| missed(rank as u64))
        };
        let quantiles = QUANTILE_LEVELS
            .iter()
            .map(|&q| {
                let qf = f64::from(q) / 10_000.0;
                let (r, s) = order_statistic_ranks(nz, qf);
                Ok(QuantileRow {
                    probability: qf,
                    net_return: -loss_at(quantile_rank(nz, q))?,
                    ci_low: -loss_at(r)?,
                    ci_high: -loss_at(s)?,
                })
            })
            .collect::<Result<_, ScenarioError>>()?;

        let zero_paths = n - inputs.slashed;
        let upper = if self.max_loss > 0.0 {
            self.max_loss
        } else {
            0.01
        };
        let mut loss_bins = vec![Bin {
            lower: 0.0,
            upper: 0.0,
            paths: zero_paths,
        }];
        loss_bins.extend(stats::equal_bins(self.loss.buckets(), 0.0, upper));
        let r_hi = if self.max_return > self.min_return {
            self.max_return
        } else {
            self.min_return + 1e-9
        };
        let return_distribution = Histogram {
            bins: stats::equal_bins(
                self.value.buckets().map(|(x, c)| (x - 1.0, c)),
                self.min_return,
                r_hi,
            ),
            total: n,
        };

        let sums: Vec<f64> = self.row_sums.iter().map(ExactSum::value).collect();
        let es_rows: Vec<Vec<f64>> = tails.iter().map(|t| t.rows.clone()).collect();
        let all = stats::contribution_rows(model, &sums, &self.row_events, n, &es_rows);
        let (contributions, avs_contributions, operator_contributions) = stats::split_rows(all);

        let fan_chart = model
            .checkpoints_days
            .iter()
            .zip(&self.checkpoints)
            .map(|(&day, sketch)| FanRow {
                day,
                values: sketch.at_ranks(FAN_LEVELS.map(|l| quantile_rank(nz, l) as u64)),
            })
            .collect();

        Ok(Results {
            paths: n,
            summary,
            quantiles,
            loss_distribution: Histogram {
                bins: loss_bins,
                total: n,
            },
            return_distribution,
            contributions,
            avs_contributions,
            operator_contributions,
            fan_chart,
            tail_paths: tails
                .iter()
                .map(|t| t.at_or_beyond)
                .collect::<Vec<_>>()
                .try_into()
                .expect("four tail levels"),
            convergence,
            sketch_resolution: Some(SKETCH_RESOLUTION),
        })
    }
}

fn missed(rank: u64) -> ScenarioError {
    ScenarioError::Partial {
        message: format!(
            "rank {rank} escaped its exact window (a chance below 1e-10): run again with another seed, and please report it"
        ),
    }
}

/// VaR and ES at one level with their Euler allocation and the paths at or beyond VaR.
struct LevelTail {
    tail: stats::Tail,
    /// ES allocation per contribution row, ETH.
    rows: Vec<f64>,
    at_or_beyond: u64,
}

/// An [`OrderStats`] state as a [`stats::TailSource`]: it fails at a rank that escaped
/// its window.
impl<P: Payload<Sum = TailSums>> stats::TailSource for OrderStats<P> {
    type Error = ScenarioError;

    fn at(&self, rank: u64) -> Result<f64, ScenarioError> {
        match self.at_rank(rank) {
            Located::Kept(v) => Ok(v),
            Located::Missed => Err(missed(rank)),
        }
    }

    /// Sums the loss and its square alone: a path's loss is its value.
    fn around(&self, v: f64) -> Result<(u64, f64, f64, u64), ScenarioError> {
        let ((gt, (loss, loss_sq)), (eq, _)) = self
            .split_with(
                v,
                |x, _, (loss, loss_sq): &mut (ExactSum, ExactSum)| {
                    loss.add(x);
                    loss_sq.add(x * x);
                },
                |(loss, loss_sq), s| {
                    loss.merge(&s.loss);
                    loss_sq.merge(&s.loss_sq);
                },
            )
            .ok_or_else(|| missed(0))?;
        Ok((gt, loss.value(), loss_sq.value(), eq))
    }
}

/// VaR and ES of the loss at `myriad / 10,000` over the `n` paths of `state`
/// ([`stats::tail`]), and, given the model, the Euler allocation of ES over its
/// contribution rows: the exact row sums above the boundary plus the tied paths' share.
fn level_tail<P: Payload<Sum = TailSums>>(
    state: &OrderStats<P>,
    n: u64,
    myriad: u32,
    model: Option<&Model>,
) -> Result<LevelTail, ScenarioError> {
    let tail = stats::tail(state, n, myriad)?;
    let ((_, gt), (_, eq)) = state.split_at(tail.boundary).ok_or_else(|| missed(0))?;
    let (tied_weight, m) = (tail.tied_weight, tail.m);
    let es_rows = model.map_or_else(Vec::new, |model| {
        (0..model.rows.len())
            .map(|r| (gt.row(r, model) + tied_weight * eq.row(r, model)) / m)
            .collect()
    });
    let ((beyond, ()), (at_var, ())) = state
        .split_with(tail.var.value, |_, _, ()| {}, |(), _| {})
        .ok_or_else(|| missed(0))?;
    Ok(LevelTail {
        tail,
        rows: es_rows,
        at_or_beyond: beyond + at_var,
    })
}

/// Writes a frame: 8 magic bytes, the format version (u32 LE), the body's length (u64
/// LE), the body, and its CRC-32 (IEEE, u32 LE).
///
/// # Errors
/// The writer's.
pub fn write_frame(
    mut w: impl Write,
    magic: &[u8; 8],
    version: u32,
    body: &[u8],
) -> std::io::Result<()> {
    w.write_all(magic)?;
    w.write_all(&version.to_le_bytes())?;
    w.write_all(&(body.len() as u64).to_le_bytes())?;
    w.write_all(body)?;
    w.write_all(&crc32fast::hash(body).to_le_bytes())
}

/// Reads the body of a frame written by [`write_frame`] with `magic` and `version`, of
/// at most `max_len` bytes, and nothing after it.
///
/// # Errors
/// A message for a foreign frame (magic), another version, an implausible length, a
/// truncated body or a checksum that does not match.
pub fn read_frame(
    mut r: impl Read,
    magic: &[u8; 8],
    version: u32,
    max_len: u64,
) -> Result<Vec<u8>, String> {
    let mut head = [0u8; 20];
    r.read_exact(&mut head)
        .map_err(|_| "truncated: shorter than its header".to_string())?;
    if &head[..8] != magic {
        return Err("not a restake-mc partial file".into());
    }
    let found = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
    if found != version {
        return Err(format!(
            "format version {found}, this restake-mc reads version {version}"
        ));
    }
    let len = u64::from_le_bytes(head[12..20].try_into().expect("8 bytes"));
    if len > max_len {
        return Err("corrupted: its length is implausible".into());
    }
    let mut body = Vec::new();
    r.by_ref()
        .take(len)
        .read_to_end(&mut body)
        .map_err(|e| format!("cannot read: {e}"))?;
    let mut crc = [0u8; 4];
    if body.len() as u64 != len || r.read_exact(&mut crc).is_err() {
        return Err("truncated".into());
    }
    if crc32fast::hash(&body) != u32::from_le_bytes(crc) {
        return Err("corrupted: its checksum does not match".into());
    }
    Ok(body)
}

/// An upper estimate, in bytes, of the memory one process takes to reduce `paths` paths
/// of `model` (at most [`crate::MAX_PATHS`]), by the terms of `docs/performance.md`
/// ("What the memory is, as a formula"), each rounded up: the ring of batch buffers (32
/// batches, or four a core with more than 8 cores: what the order statistics need of
/// each path, its loss, depeg and income rows and slashing rows, and each batch's slice
/// sums), the run's sketches and one set per core for the workers (spanning at most 8
/// powers of two of `V/P`), the exact tail windows (at most about `2 × 3.6 × sqrt(n q (1 -
/// q))` values per needed rank, half way through the run, 1.25 times that between
/// narrowings: [`crate::order::rank_spread`]) and the exact sums
/// between them (`(6 + rows) × 544` bytes each), plus 64 MB for the program itself. A
/// check before the run, not a measurement: the README's memory table gives measured
/// figures.
pub fn memory_estimate_bytes(model: &Model, paths: u64) -> u64 {
    let n = paths.min(crate::MAX_PATHS) as f64;
    let checkpoints = model.checkpoints_years.len() as f64;
    let rows = model.rows.len() as f64;
    // Slashing rows of an average path: its expected events, each touching at most the
    // rows of one operator-AVS pair and its AVS and operator (3), never more than all.
    let events = model.cumulative_intensity.last().copied().unwrap_or(0.0) * model.horizon_years;
    let per_path_rows = (3.0 * events).min(rows) + 1.0;
    let cores = rayon::current_num_threads();
    let window = window_batches(cores) as f64;
    let window_paths = (window * BATCH_PATHS as f64).min(paths.max(1) as f64);
    let buffers = window_paths * (44.0 + 16.0 * per_path_rows) + window * 16.0 * rows;
    // 32 KB per power of two spanned, 40 powers of two at most for V/P and the loss;
    // a worker's sketches of V/P span its own paths' values, 8 powers of two at most.
    let sketches =
        32_768.0 * ((checkpoints + 2.0) * 40.0 + cores as f64 * ((checkpoints + 1.0) * 8.0 + 40.0));
    // Tail ranks (q = 0.05 .. 0.001: 6 sqrt(n) at the widest, with the VaR intervals'
    // ranks between), the other quantiles (22 sqrt(n)), the convergence prefixes
    // (9.5 sqrt(n) in all), 1.25 times between narrowings; a tail path keeps its rows,
    // a tail path being one with at least one event.
    let root = n.sqrt();
    let tail_row_bytes = 56.0 + 16.0 * ((3.0 * (events + 1.0)).min(rows) + 1.0);
    let windows = 1.25 * (6.0 * root * tail_row_bytes + (22.0 + 9.5) * root * 8.0);
    // Gaps and atoms with exact sums: two per window and level, generously 64.
    let sums = 64.0 * (6.0 + rows) * 544.0;
    (64e6 + buffers + sketches + windows + sums).ceil() as u64
}

/// Simulates paths `range` of a run (`config.paths` paths, seed `config.seed`) and
/// reduces them into a fresh [`Partial`]. Every worker thread takes the next batch to
/// simulate and reduce ([`reduce_batch`]), up to [`window_batches`] ahead of the
/// batches absorbed, and whichever worker finds the next batch in path order simulated
/// absorbs it ([`Partial::absorb`]), so no worker waits for a chunk's last batch.
/// `progress` gets the paths of the range done so far.
///
/// # Errors
/// As [`Partial::new`] and [`crate::simulate`]; [`ScenarioError::Invalid`] for a range
/// outside the run, not starting on a batch boundary, or of more than
/// [`crate::MAX_PATHS`] paths.
pub fn reduce_range(
    model: &Model,
    config: &RunConfig,
    range: Range<u64>,
    loss_thresholds: &[f64],
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Partial, ScenarioError> {
    let state = Partial::new(model, config.paths, config.seed, loss_thresholds.len())?;
    if range.end > config.paths
        || range.start > range.end
        || !range.start.is_multiple_of(BATCH_PATHS)
    {
        return Err(ScenarioError::Invalid {
            field: "paths".into(),
            message: format!(
                "range {range:?} is not a batch-aligned part of 0..{}",
                config.paths
            ),
        });
    }
    if range.end - range.start > crate::MAX_PATHS {
        return Err(ScenarioError::Invalid {
            field: "paths".into(),
            message: format!(
                "one process simulates at most {} paths, this one would simulate {}: split the run into shards (--shard-count, docs/scale-out.md)",
                crate::MAX_PATHS,
                range.end - range.start
            ),
        });
    }
    if range.is_empty() {
        return Ok(state);
    }
    let pool = crate::engine::thread_pool(config.threads)?;
    let first_batch = range.start / BATCH_PATHS;
    let batches = (range.end - range.start).div_ceil(BATCH_PATHS);
    let window = window_batches(pool.current_num_threads()).min(batches);
    let slots: Vec<Mutex<BatchOut>> = (0..window).map(|_| Mutex::default()).collect();
    // `ready[j % window]` is `j + 1` once batch `j` of the range is in its slot.
    let ready: Vec<AtomicU64> = (0..window).map(|_| AtomicU64::new(0)).collect();
    let (claimed, absorbed, done) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let stop = AtomicBool::new(false);
    let (prefixes, shift) = (state.prefixes.clone(), state.shift);
    let state = Mutex::new(state);
    // Absorbs the batches that are next in order and simulated, unless another worker
    // is at it; false when it absorbed none. A batch with a value that is not finite
    // stops the run there.
    let absorb_ready = || {
        let mut state = match state.try_lock() {
            Ok(state) => state,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return false,
        };
        let mut any = false;
        loop {
            let j = absorbed.load(Ordering::Relaxed);
            let slot = (j % window) as usize;
            if j == batches || ready[slot].load(Ordering::Acquire) != j + 1 {
                return any;
            }
            let out = slots[slot].lock().unwrap_or_else(PoisonError::into_inner);
            if !out.finite {
                stop.store(true, Ordering::Relaxed);
                return any;
            }
            state.absorb(&out);
            absorbed.store(j + 1, Ordering::Release);
            any = true;
        }
    };
    let wait = |absorbed_at_least: u64| {
        while absorbed.load(Ordering::Acquire) < absorbed_at_least && !stop.load(Ordering::Relaxed)
        {
            if !absorb_ready() {
                std::thread::yield_now();
            }
        }
    };
    let work = |_: rayon::BroadcastContext<'_>| {
        let _stop_on_panic = StopOnPanic(&stop);
        let mut worker = Worker::new(model);
        loop {
            absorb_ready();
            let j = claimed.fetch_add(1, Ordering::Relaxed);
            if j >= batches {
                break;
            }
            // Batch `j` takes the slot of batch `j - window`, once that one is absorbed.
            wait((j + 1).saturating_sub(window));
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let b = first_batch + j;
            let paths = (b * BATCH_PATHS).max(range.start)..((b + 1) * BATCH_PATHS).min(range.end);
            let n = paths.end - paths.start;
            let slot = (j % window) as usize;
            reduce_batch(
                model,
                config.seed,
                (b, paths),
                &prefixes,
                &shift,
                loss_thresholds,
                &mut slots[slot].lock().unwrap_or_else(PoisonError::into_inner),
                &mut worker,
            );
            ready[slot].store(j + 1, Ordering::Release);
            progress(done.fetch_add(n, Ordering::Relaxed) + n);
        }
        wait(batches);
        worker.sketches
    };
    let worker_sketches = pool.broadcast(work);
    let mut state = state.into_inner().unwrap_or_else(PoisonError::into_inner);
    if absorbed.into_inner() < batches {
        return Err(overflow());
    }
    // The first worker's sketches become the run's: no copy of them is built beside.
    for sketches in worker_sketches {
        state.value.merge_owned(sketches.value);
        state.loss.merge_owned(sketches.loss);
        for (a, b) in state.checkpoints.iter_mut().zip(sketches.checkpoints) {
            a.merge_owned(b);
        }
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use crate::{Model, RunConfig, Scenario};

    /// A run whose values stop being finite part of the way through fails with the
    /// overflow error, on any number of workers, without a worker left waiting for a
    /// batch that will never be absorbed. The checks of a scenario refuse such values
    /// before a run, so the model is edited after them: the token's price grows like
    /// `e^(1000 t)` and overflows from about 0.71 years on, which the horizon's
    /// checkpoint of every path reaches.
    #[test]
    fn a_value_that_overflows_stops_every_worker_with_an_error() {
        let scenario =
            Scenario::from_toml(include_str!("../../../data/scenarios/etherfi-weeth.toml"))
                .unwrap();
        let mut model = Model::new(&scenario);
        model.tokens[0].log_drift = 1000.0;
        for threads in [1, 2, 3] {
            let config = RunConfig {
                paths: 3 * super::CHUNK_PATHS + 100,
                seed: 5,
                threads,
            };
            let err = super::reduce_range(&model, &config, 0..config.paths, &[], &|_| {})
                .expect_err("a value overflows");
            assert!(
                err.to_string().contains("overflows a 64-bit float"),
                "{err}"
            );
        }
    }

    #[test]
    fn results_serialise_and_read_back_equal() {
        let scenario = Scenario::from_toml(
            r#"
            name = "solo"
            [position]
            principal_eth = 32.0
            route = "native"
            horizon_days = 365
            [base]
            apr_mean = 0.03
            apr_sd = 0.004
            slash_prob = 0.2
            slash_severity = { dist = "uniform", min = 0.0, max = 0.5 }
            [[operator]]
            name = "me"
            weight = 1.0
            [report]
            loss_thresholds = [0.1]
            "#,
        )
        .unwrap();
        let config = RunConfig {
            paths: 5000,
            seed: 1,
            threads: 1,
        };
        let r = crate::run(&scenario, &config, &|_| {}).unwrap();
        let bytes = postcard::to_stdvec(&r).unwrap();
        let back: crate::Results = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, r);
        let names: Vec<String> = r.summary.iter().map(|m| m.id.name()).collect();
        assert!(names.contains(&"prob_loss_gt_0.1".to_string()));
        assert!(names.contains(&"es_975".to_string()));
    }
}
