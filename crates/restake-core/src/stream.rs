//! Statistics of runs too large to keep every path (more than [`STREAM_THRESHOLD`]),
//! with memory flat in the path count but for the exact tail.
//!
//! The paths are simulated in chunks of at most [`CHUNK_PATHS`], each reduced and
//! dropped before the next, in path order:
//! - moments and counts merge exactly (Pébay's pairwise formulas, chunk by chunk in path
//!   order), and so do the contributions' expected losses and event counts;
//! - a tail buffer keeps the [`tail_capacity`]`(n)` largest losses with what the Euler
//!   allocation needs, so VaR, ES, their intervals, the ES contributions and the return
//!   quantiles up to 5% are exactly those of keeping every path;
//! - HDR histograms (crate `hdrhistogram`, [`SKETCH_SIGNIFICANT_DIGITS`] significant
//!   digits, integer counts so that merging does not depend on order) give the other
//!   quantiles, the fan chart and the two distribution CSVs, to a relative resolution of
//!   [`SKETCH_RESOLUTION`] of `V/P`.
//!
//! The convergence report's prefixes end on chunk boundaries, where the running state
//! is read off. Chunks are fixed by the path count, never by the thread count, so the
//! result is bit-identical for any number of threads.

use std::ops::Range;

use hdrhistogram::Histogram as Hdr;
use rayon::prelude::*;

use crate::engine::{PathSet, RunConfig, simulate_range, thread_pool};
use crate::error::ScenarioError;
use crate::model::Model;
use crate::stats::{
    self, Bin, Contribution, FAN_LEVELS, FanRow, Histogram, OtherRows, QUANTILE_LEVELS,
    QuantileRow, Results, SummaryInputs, TAIL_LEVELS, Tail, convergence_rows, convergence_sizes,
    order_statistic_ranks, quantile_rank, summary_metrics, tail, tail_capacity, tail_paths,
};

/// Runs of more paths than this stream their statistics; smaller runs keep every path
/// and compute every statistic exactly (about 200 bytes a path: 420 MB here).
pub const STREAM_THRESHOLD: u64 = 1 << 21;

/// Paths simulated and reduced at a time by a streaming run.
pub const CHUNK_PATHS: u64 = 1 << 19;

/// Paths per slice of a chunk whose moments and counts are computed in parallel and
/// merged in order (fixed, so the result does not depend on the thread count).
const REDUCE_PATHS: usize = 1 << 14;

/// Significant decimal digits of the HDR histograms.
pub const SKETCH_SIGNIFICANT_DIGITS: u8 = 4;

/// Relative resolution of a value read from a sketch (`V/P` or the loss fraction).
pub const SKETCH_RESOLUTION: f64 = 1e-4;

/// Most checkpoints a streaming run sketches (a sketch each, about 1.3 MB).
pub const MAX_STREAM_CHECKPOINTS: usize = 120;

/// Values are recorded in units of 1e-9 (of principal).
const SKETCH_SCALE: f64 = 1e9;

/// A mergeable histogram of non-negative values with relative resolution
/// [`SKETCH_RESOLUTION`].
#[derive(Debug, Clone)]
struct Sketch(Hdr<u32>);

impl Sketch {
    fn new() -> Self {
        // V/P up to 2^34 / 1e9 = 17 at first (about 1.3 MB); larger values resize it.
        let mut h =
            Hdr::new_with_bounds(1, 1 << 34, SKETCH_SIGNIFICANT_DIGITS).expect("valid HDR bounds");
        h.auto(true);
        Self(h)
    }

    fn record(&mut self, x: f64) {
        // Rounded to the nearest unit (the cast truncates a non-negative value).
        self.0
            .saturating_record((x.max(0.0) * SKETCH_SCALE + 0.5) as u64);
    }

    /// The value at 1-based ascending `rank` (the middle of its bucket).
    fn at_rank(&self, rank: u64) -> f64 {
        let mut seen = 0;
        for v in self.0.iter_recorded() {
            seen += u64::from(v.count_at_value());
            if seen >= rank {
                return self.0.median_equivalent(v.value_iterated_to()) as f64 / SKETCH_SCALE;
            }
        }
        self.0.max() as f64 / SKETCH_SCALE
    }

    /// [`stats::HISTOGRAM_BINS`] equal bins over `[lo, hi]` of the recorded values minus
    /// `shift`, each bucket counted at its middle value.
    fn bins(&self, lo: f64, hi: f64, shift: f64) -> Vec<Bin> {
        let values = self.0.iter_recorded().map(|v| {
            let x = self.0.median_equivalent(v.value_iterated_to()) as f64 / SKETCH_SCALE;
            (x - shift, u64::from(v.count_at_value()))
        });
        stats::equal_bins(values, lo, hi)
    }
}

/// A path of the tail buffer: what its VaR, ES and Euler allocation need.
#[derive(Debug, Clone, Copy)]
struct TailPath {
    loss: f64,
    path: u64,
    other: OtherRows,
    /// Its slashing rows: a range of the buffer's row arena.
    rows: (u32, u32),
}

/// The largest losses seen so far, at least `capacity` of them once that many paths have
/// been seen, ordered by loss descending then path ascending.
#[derive(Debug, Default)]
struct TailBuffer {
    capacity: usize,
    paths: Vec<TailPath>,
    /// Row arena: contribution row and loss (ETH) of the buffered paths' slashing rows.
    row_ids: Vec<u32>,
    row_losses: Vec<f64>,
    /// No path below this loss can enter the `capacity` largest any more.
    threshold: f64,
}

fn by_loss_then_path(a: &TailPath, b: &TailPath) -> std::cmp::Ordering {
    b.loss.total_cmp(&a.loss).then(a.path.cmp(&b.path))
}

impl TailBuffer {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            paths: Vec::with_capacity(capacity + Self::slack(capacity)),
            threshold: f64::NEG_INFINITY,
            ..Self::default()
        }
    }

    /// Paths beyond `capacity` collected before pruning.
    fn slack(capacity: usize) -> usize {
        (capacity / 4).max(1 << 16)
    }

    /// Offers the paths of `set`, whose first path is path `first` of the run.
    fn offer(&mut self, set: &PathSet, first: u64, row_start: &[usize]) {
        for (i, o) in set.outcomes.iter().enumerate() {
            let loss = -o.net_return;
            if loss < self.threshold {
                continue;
            }
            let start = self.row_ids.len() as u32;
            for r in &set.row_losses[row_start[i]..row_start[i + 1]] {
                self.row_ids.push(r.row);
                self.row_losses.push(r.loss_eth);
            }
            self.paths.push(TailPath {
                loss,
                path: first + i as u64,
                other: OtherRows::of(o),
                rows: (start, self.row_ids.len() as u32),
            });
            if self.paths.len() >= self.capacity + Self::slack(self.capacity) {
                self.prune();
            }
        }
    }

    /// Keeps the `capacity` largest, in arena order, and compacts the row arena in place
    /// (each kept path's rows moved down to the end of the previous one's).
    fn prune(&mut self) {
        if self.paths.len() > self.capacity {
            // The boundary: the capacity-th largest loss v; of the paths tied at v, keep
            // those with the smallest path indices.
            let mut losses: Vec<f64> = self.paths.iter().map(|p| p.loss).collect();
            let (_, v, _) = losses.select_nth_unstable_by(self.capacity - 1, |a, b| b.total_cmp(a));
            let v = *v;
            drop(losses);
            let above = self.paths.iter().filter(|p| p.loss > v).count();
            let mut tied: Vec<u64> = self
                .paths
                .iter()
                .filter(|p| p.loss == v)
                .map(|p| p.path)
                .collect();
            tied.sort_unstable();
            let last_tied = tied[self.capacity - above - 1];
            self.paths
                .retain(|p| p.loss > v || (p.loss == v && p.path <= last_tied));
            self.threshold = v;
        }
        let mut end = 0usize;
        for p in &mut self.paths {
            let (a, b) = (p.rows.0 as usize, p.rows.1 as usize);
            self.row_ids.copy_within(a..b, end);
            self.row_losses.copy_within(a..b, end);
            p.rows = (end as u32, (end + b - a) as u32);
            end += b - a;
        }
        self.row_ids.truncate(end);
        self.row_losses.truncate(end);
    }

    /// The losses of the buffer's `capacity` largest, in descending order.
    fn descending_losses(&mut self) -> Vec<f64> {
        self.prune();
        let mut desc: Vec<f64> = self.paths.iter().map(|p| p.loss).collect();
        desc.par_sort_unstable_by(|a, b| b.total_cmp(a));
        desc
    }

    /// The buffer in order, at most `capacity` paths (the arena is not compacted after).
    fn sorted(&mut self) -> &[TailPath] {
        self.prune();
        self.paths.par_sort_unstable_by(by_loss_then_path);
        &self.paths
    }
}

/// The running state of a streaming run.
struct Stream {
    inputs: SummaryInputs,
    row_sums: Vec<f64>,
    row_events: Vec<u64>,
    /// `V/P = 1 + R` of each path.
    value: Sketch,
    /// Slashing loss as a fraction of principal, of paths with a positive one.
    loss: Sketch,
    /// `V(t)/P` at each checkpoint.
    checkpoints: Vec<Sketch>,
    min_return: f64,
    max_return: f64,
    max_loss: f64,
    tail: TailBuffer,
}

impl Stream {
    /// Reduces the paths of `set` (paths `range` of the run) into the state.
    fn absorb(&mut self, model: &Model, set: &PathSet, range: &Range<u64>, thresholds: &[f64]) {
        let outcomes = &set.outcomes;
        let principal = model.principal_eth;
        let row_start = stats::row_index(set);
        // Moments, counts and row totals of fixed slices in parallel, merged in order.
        let parts: Vec<(SummaryInputs, Vec<f64>, Vec<u64>)> = (0..outcomes.len())
            .step_by(REDUCE_PATHS)
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|from| {
                let to = (from + REDUCE_PATHS).min(outcomes.len());
                let slice = &outcomes[from..to];
                let (sums, events) = stats::row_totals(
                    model,
                    slice,
                    &set.row_losses[row_start[from]..row_start[to]],
                    from,
                );
                (SummaryInputs::of(slice, thresholds), sums, events)
            })
            .collect();
        for (inputs, sums, events) in &parts {
            self.inputs.merge(inputs);
            for (a, b) in self.row_sums.iter_mut().zip(sums) {
                *a += b;
            }
            for (a, b) in self.row_events.iter_mut().zip(events) {
                *a += b;
            }
        }
        self.tail.offer(set, range.start, &row_start);
        for o in outcomes {
            self.min_return = self.min_return.min(o.net_return);
            self.max_return = self.max_return.max(o.net_return);
            self.max_loss = self.max_loss.max(o.slashing_loss_eth / principal);
        }
        // One sketch per task: the value, the loss, each checkpoint.
        let n_cp = set.checkpoints;
        let mut sketches: Vec<&mut Sketch> = vec![&mut self.value, &mut self.loss];
        sketches.extend(self.checkpoints.iter_mut());
        sketches
            .into_par_iter()
            .enumerate()
            .for_each(|(k, sketch)| match k {
                0 => outcomes
                    .iter()
                    .for_each(|o| sketch.record(1.0 + o.net_return)),
                1 => outcomes
                    .iter()
                    .filter(|o| o.slashing_loss_eth > 0.0)
                    .for_each(|o| sketch.record(o.slashing_loss_eth / principal)),
                c => set
                    .checkpoint_values
                    .chunks_exact(n_cp)
                    .for_each(|v| sketch.record(v[c - 2])),
            });
    }

    /// `R` at 1-based ascending rank `rank` of `n`: exact from the tail buffer for the
    /// lowest returns (the largest losses), else from the value sketch.
    fn return_at(desc: &[f64], value: &Sketch, rank: usize) -> f64 {
        if rank <= desc.len() {
            -desc[rank - 1]
        } else {
            value.at_rank(rank as u64) - 1.0
        }
    }
}

/// Runs a scenario's model over `config.paths` paths with streaming statistics (the
/// module docs say how); the same [`Results`] as [`stats::analyse`], with the quantiles
/// above 5%, the fan chart and the distributions read from sketches.
///
/// # Errors
/// As [`crate::simulate`].
pub fn run(
    model: &Model,
    config: &RunConfig,
    loss_thresholds: &[f64],
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Results, ScenarioError> {
    crate::scenario::check_paths("paths", config.paths)?;
    if model.checkpoints_years.len() > MAX_STREAM_CHECKPOINTS {
        return Err(ScenarioError::Invalid {
            field: "simulation.checkpoint_days".into(),
            message: format!(
                "a run of more than {STREAM_THRESHOLD} paths keeps a fan-chart sketch per checkpoint, at most {MAX_STREAM_CHECKPOINTS}; this horizon has {}: use a larger checkpoint_days",
                model.checkpoints_years.len()
            ),
        });
    }
    let pool = thread_pool(config.threads)?;
    let n = config.paths;
    let checkpoints = model.checkpoints_years.len() as u64;
    let chunk = CHUNK_PATHS
        .min(crate::engine::MAX_CHECKPOINT_VALUES / checkpoints)
        .max(1);
    let rows = model.rows.len();
    let mut state = Stream {
        inputs: SummaryInputs::default(),
        row_sums: vec![0.0; rows],
        row_events: vec![0; rows],
        value: Sketch::new(),
        loss: Sketch::new(),
        checkpoints: (0..checkpoints).map(|_| Sketch::new()).collect(),
        min_return: f64::INFINITY,
        max_return: f64::NEG_INFINITY,
        max_loss: 0.0,
        tail: TailBuffer::new(tail_capacity(n as usize)),
    };
    // Chunks in path order, cut at the convergence prefixes. Each chunk is reduced while
    // the next one is simulated (two buffers), so that the reduction's sequential parts
    // leave no core idle.
    let prefixes = convergence_sizes(n);
    let mut ranges = Vec::new();
    let mut at = 0;
    for &prefix in &prefixes {
        while at < prefix {
            ranges.push(at..(at + chunk).min(prefix));
            at = (at + chunk).min(prefix);
        }
    }
    let simulate_chunk = |range: &Range<u64>, set: &mut PathSet| {
        let start = range.start;
        simulate_range(
            model,
            config.seed,
            range.clone(),
            &pool,
            &|k| progress(start + k),
            set,
        )
    };
    let mut convergence = Vec::new();
    let (mut current, mut next) = (PathSet::default(), PathSet::default());
    simulate_chunk(&ranges[0], &mut current)?;
    for (i, range) in ranges.iter().enumerate() {
        let (simulated, ()) = pool.install(|| {
            rayon::join(
                || match ranges.get(i + 1) {
                    Some(r) => simulate_chunk(r, &mut next),
                    None => Ok(()),
                },
                || state.absorb(model, &current, range, loss_thresholds),
            )
        });
        simulated?;
        std::mem::swap(&mut current, &mut next);
        if range.end < n && prefixes.contains(&range.end) {
            let desc = state.tail.descending_losses();
            let tails: Vec<Tail> = TAIL_LEVELS
                .iter()
                .map(|&l| tail(&desc, range.end as usize, l))
                .collect();
            let summary = summary_metrics(&state.inputs, &tails, &[]);
            convergence.extend(convergence_rows(range.end, &summary));
        }
    }
    let mut set = current;
    // The final tails. Where the paths tied at a boundary run past the buffer (atoms in
    // the loss, e.g. fixed severities) a second pass gathers every tied path's rows, so
    // that they share the boundary's weight equally as in an exact run, and counts the
    // paths at or beyond that VaR.
    let desc: Vec<f64> = state.tail.sorted().iter().map(|p| p.loss).collect();
    let tails: Vec<Tail> = TAIL_LEVELS
        .iter()
        .map(|&l| tail(&desc, n as usize, l))
        .collect();
    let truncated = desc.len() < n as usize;
    let open: Vec<Option<f64>> = tails
        .iter()
        .map(|t| (truncated && t.count_gt + t.count_eq == desc.len()).then(|| desc[t.count_gt]))
        .collect();
    let mut tail_counts = tail_paths(&desc, &tails);
    let mut ties: Vec<Option<(Vec<f64>, u64)>> = vec![None; tails.len()];
    let uncounted: Vec<bool> = tail_counts
        .iter()
        .map(|c| truncated && *c as usize == desc.len())
        .collect();
    if open.iter().any(Option::is_some) || uncounted.iter().any(|u| *u) {
        for (i, v) in open.iter().enumerate() {
            ties[i] = v.map(|_| (vec![0.0; rows], 0));
        }
        for (i, u) in uncounted.iter().enumerate() {
            if *u {
                tail_counts[i] = 0;
            }
        }
        let mut done = 0;
        while done < n {
            let range = done..(done + chunk).min(n);
            simulate_range(model, config.seed, range.clone(), &pool, &|_| {}, &mut set)?;
            let row_start = stats::row_index(&set);
            for (p, o) in set.outcomes.iter().enumerate() {
                let loss = -o.net_return;
                for (i, t) in tails.iter().enumerate() {
                    if uncounted[i] && loss >= t.var.value {
                        tail_counts[i] += 1;
                    }
                    if let (Some(v), Some((sums, count))) = (open[i], ties[i].as_mut())
                        && loss == v
                    {
                        let path_rows = set.row_losses[row_start[p]..row_start[p + 1]]
                            .iter()
                            .map(|e| (e.row, e.loss_eth));
                        stats::add_path_loss(model, sums, path_rows, OtherRows::of(o), 1.0);
                        *count += 1;
                    }
                }
            }
            done = range.end;
        }
    }
    let end = Ending {
        desc,
        tails,
        ties,
        tail_counts,
    };
    Ok(pool.install(|| finish(model, state, end, n, loss_thresholds, convergence)))
}

/// The final tails of a streaming run: the buffer's losses in descending order, the tail
/// at each level, the loss sums and count of all paths tied at a boundary that runs past
/// the buffer, and the paths at or beyond each VaR.
struct Ending {
    desc: Vec<f64>,
    tails: Vec<Tail>,
    ties: Vec<Option<(Vec<f64>, u64)>>,
    tail_counts: [u64; 4],
}

/// The results of a finished streaming run.
fn finish(
    model: &Model,
    state: Stream,
    end: Ending,
    n: u64,
    loss_thresholds: &[f64],
    mut convergence: Vec<stats::ConvergenceRow>,
) -> Results {
    let nz = n as usize;
    let tail_buffer = &state.tail;
    let entries = &tail_buffer.paths;
    let Ending {
        desc,
        tails,
        ties,
        tail_counts,
    } = end;
    let summary = summary_metrics(&state.inputs, &tails, loss_thresholds);
    convergence.extend(convergence_rows(n, &summary));

    let quantiles = QUANTILE_LEVELS
        .iter()
        .map(|&q| {
            let qf = f64::from(q) / 10_000.0;
            let (r, s) = order_statistic_ranks(nz, qf);
            let at = |rank| Stream::return_at(&desc, &state.value, rank);
            QuantileRow {
                probability: qf,
                net_return: at(quantile_rank(nz, q)),
                ci_low: at(r),
                ci_high: at(s),
            }
        })
        .collect();

    let zero_paths = n - state.inputs.slashed;
    let upper = if state.max_loss > 0.0 {
        state.max_loss
    } else {
        0.01
    };
    let mut loss_bins = vec![Bin {
        lower: 0.0,
        upper: 0.0,
        paths: zero_paths,
    }];
    loss_bins.extend(state.loss.bins(0.0, upper, 0.0));
    let r_hi = if state.max_return > state.min_return {
        state.max_return
    } else {
        state.min_return + 1e-9
    };
    let return_distribution = Histogram {
        bins: state.value.bins(state.min_return, r_hi, 1.0),
        total: n,
    };

    // Contributions: expected losses from the merged sums, ES allocations over the tail
    // buffer's worst paths with the weights of `tails` (stats::contributions).
    let rows = model.rows.len();
    let es_rows: Vec<Vec<f64>> = tails
        .iter()
        .zip(&ties)
        .map(|(t, tie)| {
            let mut acc = vec![0.0; rows];
            // The tied paths: all of them from the second pass, or those in the buffer.
            let buffered_ties = if tie.is_some() { 0 } else { t.count_eq };
            if let Some((sums, count)) = tie {
                let w = (t.m - t.count_gt as f64) / *count as f64;
                for (a, s) in acc.iter_mut().zip(sums) {
                    *a += w * s;
                }
            }
            let weighted = entries.iter().take(t.count_gt).map(|p| (p, 1.0)).chain(
                entries
                    .iter()
                    .skip(t.count_gt)
                    .take(buffered_ties)
                    .map(|p| (p, t.tied_weight)),
            );
            for (p, w) in weighted {
                let (a, b) = p.rows;
                let (a, b) = (a as usize, b as usize);
                let path_rows = tail_buffer.row_ids[a..b]
                    .iter()
                    .copied()
                    .zip(tail_buffer.row_losses[a..b].iter().copied());
                stats::add_path_loss(model, &mut acc, path_rows, p.other, w);
            }
            acc.iter().map(|x| x / t.m).collect()
        })
        .collect();
    let all: Vec<Contribution> =
        stats::contribution_rows(model, &state.row_sums, &state.row_events, n, &es_rows);

    let fan_chart = model
        .checkpoints_days
        .iter()
        .zip(&state.checkpoints)
        .map(|(&day, sketch)| FanRow {
            day,
            values: FAN_LEVELS.map(|l| sketch.at_rank(quantile_rank(nz, l) as u64)),
        })
        .collect();

    let (contributions, avs_contributions, operator_contributions) = stats::split_rows(all);
    Results {
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
        tail_paths: tail_counts,
        convergence,
        sketch_resolution: Some(SKETCH_RESOLUTION),
    }
}
