//! A block of paths (`docs/performance.md#the-block-loop`): the draws path by path, then
//! the arithmetic at the checkpoints of every path at once, then each path's events.
//!
//! Most paths of a scenario have no candidate event. For such a path (with no loan and
//! no stress) the evaluation is closed form: the growth factors, token prices and
//! checkpoint values depend only on its base growth rate and its tokens' normal draws. A
//! block takes the draws of [`BLOCK_PATHS`] paths in path order
//! ([`crate::path::draw_path`]), so that every generator gives the same numbers as path
//! by path, keeping what a path with events needs of them for later. The growth factors,
//! prices and closed-form checkpoint values of all its paths are computed together, as
//! a structure of arrays `[checkpoint][path]`, in loops over the paths that the compiler
//! vectorises, built for the widest vector instructions the processor has (chosen at run
//! time through `pulp`). A path without events takes its values from there; a path with
//! events takes its growth factors and prices from there and goes through its events on
//! its own ([`crate::path::finish_drawn`]). Any path of a levered or stressed scenario
//! goes one by one, whole ([`crate::path::finish_path`]). Each path goes through the same
//! operations, in the same order, as on its own, so the block changes no bit of any
//! result.

use rand::Rng;

use crate::model::Model;
use crate::path::{
    Drawn, PathOutcome, PathScratch, checkpoint_growth, draw_path, finish_drawn, finish_path,
    settle_eventless, staked_value, token_prices, token_value,
};

/// Paths in a block: enough for the loops over them to run at full vector width, few
/// enough for a block's arrays (about `13 × BLOCK_PATHS × 8` bytes per checkpoint array
/// on a year of monthly checkpoints) to stay in the first-level cache.
pub const BLOCK_PATHS: usize = 64;

/// One path of a block as it comes out ([`PathBlock::path`]).
#[derive(Debug, Clone, Copy)]
pub struct PathView<'a> {
    /// Its outcome.
    pub outcome: &'a PathOutcome,
    /// `V(t_c)/P` at each checkpoint (the depeg only at the horizon).
    pub checkpoint_values: &'a [f64],
    /// Its slashing rows in the order first hit: the row's index into
    /// [`Model::rows`] and its loss in ETH at the events' times.
    pub rows: &'a [(u32, f64)],
}

/// The buffers of a block of up to [`BLOCK_PATHS`] paths, reused from block to block.
#[derive(Debug)]
pub struct PathBlock {
    arch: pulp::Arch,
    /// Paths in the last block.
    len: usize,
    outcomes: Vec<PathOutcome>,
    /// Checkpoint values, path-major: `values[path × checkpoints + c]`.
    values: Vec<f64>,
    /// Slashing rows of every path, path after path; path `i`'s are
    /// `rows[row_start[i]..row_start[i + 1]]`.
    rows: Vec<(u32, f64)>,
    row_start: Vec<usize>,
    /// Base growth rate of each path, per year, and its depeg fraction.
    g: Vec<f64>,
    depeg: Vec<Option<f64>>,
    /// The paths with events, in order: index, draws, and the end of their candidate
    /// events in `events` (each path's after the one before's); their sets'
    /// intensities in `set_bounds`, as many a path as the model has sets.
    pending: Vec<(usize, Drawn, usize)>,
    events: Vec<(f64, u32, u64)>,
    set_bounds: Vec<f64>,
    /// The tokens' normal increments of the block's paths, then their running sums,
    /// `[(token × checkpoints + c) × BLOCK_PATHS + i]`, and the paths' prices.
    normals: Vec<f64>,
    prices: Vec<f64>,
    /// `e^{g t_c}` and `G(t_c)` of the paths, `[c × BLOCK_PATHS + i]`.
    growth_e: Vec<f64>,
    growth_g: Vec<f64>,
    /// Closed-form checkpoint values of the paths (those of a path without events),
    /// `[c × BLOCK_PATHS + i]`.
    closed_form: Vec<f64>,
    /// Scratch: [`checkpoint_growth`]'s.
    d4: Vec<f64>,
    inv_g: Vec<f64>,
}

impl PathBlock {
    /// Buffers sized for `model`.
    pub fn new(model: &Model) -> Self {
        let checkpoints = model.checkpoints_years.len();
        let lanes = checkpoints * BLOCK_PATHS;
        Self {
            arch: pulp::Arch::new(),
            len: 0,
            outcomes: vec![PathOutcome::default(); BLOCK_PATHS],
            values: vec![0.0; lanes],
            rows: Vec::new(),
            row_start: Vec::with_capacity(BLOCK_PATHS + 1),
            g: Vec::with_capacity(BLOCK_PATHS),
            depeg: Vec::with_capacity(BLOCK_PATHS),
            pending: Vec::with_capacity(BLOCK_PATHS),
            events: Vec::new(),
            set_bounds: Vec::new(),
            normals: vec![0.0; model.tokens.len() * lanes],
            prices: vec![0.0; model.tokens.len() * lanes],
            growth_e: vec![0.0; lanes],
            growth_g: vec![0.0; lanes],
            closed_form: vec![0.0; lanes],
            d4: vec![0.0; BLOCK_PATHS],
            inv_g: vec![0.0; BLOCK_PATHS],
        }
    }

    /// Simulates the next `n` paths of `model` with `rng` (the batch's generator,
    /// `scratch` the batch's), exactly as [`crate::path::simulate_path`] would one after
    /// the other.
    ///
    /// # Panics
    /// If `n` is above [`BLOCK_PATHS`].
    pub fn simulate<R: Rng + ?Sized>(
        &mut self,
        model: &Model,
        rng: &mut R,
        scratch: &mut PathScratch,
        n: usize,
    ) {
        assert!(
            n <= BLOCK_PATHS,
            "a block holds at most {BLOCK_PATHS} paths"
        );
        self.len = n;
        self.rows.clear();
        self.row_start.clear();
        self.row_start.push(0);
        // The tokens' normal increments of every path first, `[row][path]`: their streams
        // are the batch's own, apart from the paths' other draws.
        scratch
            .normal_streams
            .block(&model.normal_rows, n, &mut self.normals, BLOCK_PATHS);
        if model.leverage.is_some() || model.stress.is_some() {
            for i in 0..n {
                let drawn = draw_path(model, rng, scratch);
                let normals = scratch.normals_mut();
                for &r in &model.normal_rows {
                    normals[r] = self.normals[r * BLOCK_PATHS + i];
                }
                let outcome = finish_path(model, drawn, scratch);
                self.keep(i, outcome, scratch);
            }
            return;
        }
        self.g.clear();
        self.depeg.clear();
        self.pending.clear();
        self.events.clear();
        self.set_bounds.clear();
        for i in 0..n {
            let drawn = draw_path(model, rng, scratch);
            self.g.push(drawn.g);
            self.depeg.push(drawn.depeg_fraction);
            if !scratch.events().is_empty() {
                let (events, set_bound) = scratch.saved_draws();
                self.events.extend_from_slice(events);
                self.set_bounds.extend_from_slice(set_bound);
                self.pending.push((i, drawn, self.events.len()));
            }
        }
        self.evaluate(model, scratch);
    }

    /// Path `i` of the last block.
    ///
    /// # Panics
    /// If `i` is not below the last block's path count.
    #[inline]
    pub fn path(&self, i: usize) -> PathView<'_> {
        assert!(i < self.len, "path {i} of a block of {}", self.len);
        let checkpoints = self.values.len() / BLOCK_PATHS;
        PathView {
            outcome: &self.outcomes[i],
            checkpoint_values: &self.values[i * checkpoints..(i + 1) * checkpoints],
            rows: &self.rows[self.row_start[i]..self.row_start[i + 1]],
        }
    }

    /// The checkpoint values of paths `lanes` of the last block, path after path (as
    /// [`PathView::checkpoint_values`] of each).
    ///
    /// # Panics
    /// If `lanes` does not lie within the last block's paths.
    pub fn checkpoint_values(&self, lanes: std::ops::Range<usize>) -> &[f64] {
        assert!(
            lanes.end <= self.len,
            "paths {lanes:?} of a block of {}",
            self.len
        );
        let checkpoints = self.values.len() / BLOCK_PATHS;
        &self.values[lanes.start * checkpoints..lanes.end * checkpoints]
    }

    /// Path `i`'s outcome, its checkpoint values and its rows from `scratch`, where it was
    /// finished.
    fn keep(&mut self, i: usize, outcome: PathOutcome, scratch: &mut PathScratch) {
        let checkpoints = self.values.len() / BLOCK_PATHS;
        self.outcomes[i] = outcome;
        self.values[i * checkpoints..(i + 1) * checkpoints]
            .copy_from_slice(&scratch.checkpoint_values);
        self.rows.extend(
            scratch
                .slashed_rows
                .iter()
                .map(|&r| (r as u32, scratch.row_loss_eth[r])),
        );
        self.row_start.push(self.rows.len());
        scratch.clear_rows();
    }

    /// The growth factors, prices and closed-form checkpoint values of the block's
    /// paths, over all of them at once ([`Kernel`]), then each path's outcome: from
    /// those values without events, through its events ([`finish_drawn`]) with them.
    fn evaluate(&mut self, model: &Model, scratch: &mut PathScratch) {
        let checkpoints = model.checkpoints_years.len();
        self.arch.dispatch(Kernel {
            model,
            g: &self.g,
            d4: &mut self.d4,
            inv_g: &mut self.inv_g,
            normals: &mut self.normals,
            prices: &mut self.prices,
            growth_e: &mut self.growth_e,
            growth_g: &mut self.growth_g,
            values: &mut self.closed_form,
        });
        // The closed-form values of every path, path after path, a checkpoint at a time
        // (a path with events puts its own in place of its column's when it is kept).
        for (c, column) in self.closed_form.chunks_exact(BLOCK_PATHS).enumerate() {
            for (values, v) in self
                .values
                .chunks_exact_mut(checkpoints)
                .zip(&column[..self.len])
            {
                values[c] = *v;
            }
        }
        let last = checkpoints - 1;
        let sets = scratch.saved_draws().1.len();
        let (mut next, mut events_from) = (0, 0);
        for i in 0..self.len {
            if let Some(&(j, drawn, events_to)) = self.pending.get(next)
                && j == i
            {
                scratch.restore_draws(
                    &self.events[events_from..events_to],
                    &self.set_bounds[next * sets..(next + 1) * sets],
                );
                (next, events_from) = (next + 1, events_to);
                scratch.set_checkpoint_column(
                    (&self.growth_e, &self.growth_g, &self.prices),
                    BLOCK_PATHS,
                    i,
                );
                let outcome = finish_drawn(model, drawn, scratch);
                self.keep(i, outcome, scratch);
                continue;
            }
            let at = last * BLOCK_PATHS + i;
            let prices = &self.prices;
            self.outcomes[i] = settle_eventless(
                model,
                (self.growth_e[at], self.growth_g[at]),
                self.depeg[i],
                |j| prices[(j * checkpoints + last) * BLOCK_PATHS + i],
                &mut self.values[i * checkpoints + last],
            );
            self.row_start.push(self.rows.len());
        }
    }
}

/// The arithmetic of a block's paths at the checkpoints, `[checkpoint][path]` (the
/// fields are [`PathBlock`]'s): growth factors, prices and closed-form values, as one
/// operation for `pulp` to build for each instruction set and pick from at run time:
/// inlined whole into the function built for the processor's vector instructions, its
/// loops over the paths run at their full width.
struct Kernel<'a> {
    model: &'a Model,
    g: &'a [f64],
    d4: &'a mut [f64],
    inv_g: &'a mut [f64],
    normals: &'a mut [f64],
    prices: &'a mut [f64],
    growth_e: &'a mut [f64],
    growth_g: &'a mut [f64],
    values: &'a mut [f64],
}

impl pulp::WithSimd for Kernel<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let Self {
            model,
            g,
            d4,
            inv_g,
            normals,
            prices,
            growth_e,
            growth_g,
            values,
        } = self;
        let k = g.len();
        let checkpoints = model.checkpoints_years.len();
        let inv_principal = 1.0 / model.principal_eth;
        let (fee_rate, token_rates) = (model.rates0[0], &model.rates0[1..]);
        let stake = model.stake0;
        checkpoint_growth(model, g, (d4, inv_g), growth_e, growth_g);
        token_prices(model, k, normals, prices);
        // `catch_up` of `crate::path` from the start to the horizon, at the start's
        // clock: nothing accrued, `G_clock = 0`.
        for c in 0..checkpoints {
            let at = c * BLOCK_PATHS..c * BLOCK_PATHS + k;
            let values = &mut values[at.clone()];
            let big_g = &growth_g[at.clone()];
            for ((v, e), big_g) in values.iter_mut().zip(&growth_e[at]).zip(big_g) {
                *v = staked_value(stake, *e, 0.0, fee_rate, *big_g, 0.0);
            }
            for (j, rate) in token_rates.iter().enumerate() {
                let row = (j * checkpoints + c) * BLOCK_PATHS;
                let price = &prices[row..row + k];
                for ((v, big_g), price) in values.iter_mut().zip(big_g).zip(price) {
                    *v += token_value(0.0, *rate, *big_g, 0.0, *price);
                }
            }
            for v in values.iter_mut() {
                *v *= inv_principal;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scenario;
    use crate::path::simulate_path;
    use crate::sampling::batch_rng;

    /// A block gives every path, its checkpoint values and its rows bit for bit as path
    /// by path, on presets with a factor, with leverage and with a stress, and on a
    /// scenario without a factor, for blocks of sizes from 1 to [`BLOCK_PATHS`].
    #[test]
    fn a_block_is_its_paths_one_by_one() {
        let presets = [
            (
                "etherfi-weeth",
                include_str!("../../../data/scenarios/etherfi-weeth.toml"),
            ),
            (
                "renzo-ezeth",
                include_str!("../../../data/scenarios/renzo-ezeth.toml"),
            ),
            (
                "weeth-aave-loop",
                include_str!("../../../data/scenarios/weeth-aave-loop.toml"),
            ),
            (
                "avs-100-cascade",
                include_str!("../../../data/scenarios/avs-100-cascade.toml"),
            ),
            (
                "every-source-5avs-3ops (no factor)",
                include_str!("../../../benches/scenarios/every-source-5avs-3ops.toml"),
            ),
        ];
        for (name, text) in presets {
            let scenario = Scenario::from_toml(text).unwrap();
            let model = Model::new(&scenario);
            let mut one = (batch_rng(9, 3), PathScratch::new(&model));
            let mut many = (batch_rng(9, 3), PathScratch::new(&model));
            one.1.start_batch(9, 3);
            many.1.start_batch(9, 3);
            let mut block = PathBlock::new(&model);
            let mut checked = 0;
            for n in (1..=BLOCK_PATHS).rev().step_by(7).chain([BLOCK_PATHS; 30]) {
                block.simulate(&model, &mut many.0, &mut many.1, n);
                for i in 0..n {
                    let expect = simulate_path(&model, &mut one.0, &mut one.1);
                    let got = block.path(i);
                    assert_eq!(got.outcome, &expect, "{name}: outcome of path {i}");
                    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(got.checkpoint_values),
                        bits(&one.1.checkpoint_values),
                        "{name}: checkpoint values of path {i}"
                    );
                    let rows: Vec<(u32, f64)> = one
                        .1
                        .slashed_rows
                        .iter()
                        .map(|&r| (r as u32, one.1.row_loss_eth[r]))
                        .collect();
                    assert_eq!(got.rows, rows.as_slice(), "{name}: rows of path {i}");
                    one.1.clear_rows();
                    checked += 1;
                }
            }
            assert!(checked > 2000, "{name}: {checked} paths");
        }
    }
}
