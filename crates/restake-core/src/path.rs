//! One path of the position (`docs/model.md#a-path`): the events in time order, the accrual
//! between them in closed form, and the outcome against plain staking.
//!
//! Between events every pool grows at the same rate `g = r_b (1 - phi_b)`, so the path
//! keeps each pool *discounted*, `A~ = A(t) e^{-g t}`, which changes only at events. Over
//! a segment `[t0, t1]` with no event:
//! - base income is `sum A~ (e^{g t1} - e^{g t0})`;
//! - an income stream with rate `sum c_p A_p(t)` accrues `sum c_p A~_p (G(t1) - G(t0))`
//!   with `G(t) = (e^{g t} - 1) / g` (and `G(t) = t` when `g = 0`), the closed form of
//!   `integral e^{g s} ds` (`docs/model.md#a-path`).
//!
//! The draws of a path from the batch's generator, in order: the base APR; the total
//! event count `N ~ Poisson(Lambda T)` of all sources superposed,
//! then for each event the source (chosen with probability `lambda_j / Lambda`), the
//! time (uniform on `[0, T]`) and the seed of the event's own generator, from which, in
//! time order, the event draws its veto and severities; last the depeg. Superposition is
//! exact for independent Poisson processes, and a path with no event costs a single draw
//! for its events. Giving each event its own generator keeps the draws of every event
//! the same whichever other events happen, which is what couples the models of a sweep
//! ([`crate::Model::couple`]). Each token's Brownian increments at the checkpoints come
//! from the batch's normal streams instead ([`crate::normal`]): path `p` of the batch
//! from stream `p mod 4`, so that a block of paths draws them four paths at a time.
//!
//! With a systematic factor (`docs/model.md#systematic-factor`) the path draws its
//! factor `Z` first, conditions each distinct law of its sources on it, and after the
//! base APR draws one seed: the generator it starts draws the depeg (its uniform and its
//! discount, always) and then the events as above, at the intensities given `Z`. A
//! stress's forced events (`docs/model.md#stress-tests`) take their days, picks and
//! seeds from the batch's stress generator ([`PathScratch::start_batch`]) and join the
//! random events in time order; neither changes the path's own draws.
//!
//! A levered path (`docs/model.md#leverage`) starts its pools at `L` times their size
//! and carries a loan whose debt is kept discounted by the borrow rate. Between events
//! its health factor moves as `e^{(g - r) t}`, so the loop takes, before each event, the
//! loan's own moments in time order: the closed-form time the health factor reaches 1
//! under a negative carry, and the edges of a market oracle's depeg episodes (drawn from
//! a generator of their own per batch, one seed a path). A slash of the collateral, an
//! episode's start or a crossing may liquidate; the seized collateral leaves every pool
//! in proportion.

use rand::{Rng, RngExt, SeedableRng};
use rand_distr::{Distribution, Poisson, StandardNormal};

use crate::exp::exp_in_place;
use crate::leverage::{Leverage, crossing_years};
use crate::model::{AvsModel, ForcedEvent, Hit, Model, SourceKind};
use crate::normal::NormalStreams;
use crate::sampling::{
    DrawKind, EventRng, PathRng, Severity, batch_rng, count_draw, truncated_normal,
};

/// The outcome of one path, in ETH unless the name says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PathOutcome {
    /// Net return `R = V / P - 1`, a fraction.
    pub net_return: f64,
    /// Excess return over plain staking on the same path, `(V - V_plain) / P`.
    pub excess_return: f64,
    /// Stake destroyed by slashing events and exploits, ETH at each event's time.
    pub slashing_loss_eth: f64,
    /// Base staking rewards accrued on the (slashed) stake, net of `phi_b`.
    pub base_income_eth: f64,
    /// AVS fees received in ETH, net of commission and LRT fee.
    pub avs_fee_income_eth: f64,
    /// Token rewards valued at their horizon price.
    pub incentive_value_eth: f64,
    /// Market-exit depeg haircut.
    pub depeg_loss_eth: f64,
    /// With leverage: the losses to liquidations, collateral seized less debt repaid.
    pub liquidation_loss_eth: f64,
    /// With leverage: the interest on the debt.
    pub borrow_cost_eth: f64,
    /// With leverage: debt left unpaid when the collateral ran out, the lender's loss
    /// (the holder's equity is floored at 0).
    pub bad_debt_eth: f64,
    /// With leverage: liquidation calls on the path (0: never liquidated).
    pub liquidations: u32,
}

impl PathOutcome {
    /// Whether the values a path can overflow (the returns, the slashing loss and the
    /// token value) are finite.
    pub fn is_finite(&self) -> bool {
        [
            self.net_return,
            self.excess_return,
            self.slashing_loss_eth,
            self.incentive_value_eth,
        ]
        .iter()
        .fold(true, |ok, x| ok & x.is_finite())
    }
}

/// Buffers reused from path to path, so that a path allocates nothing.
#[derive(Debug, Clone)]
pub struct PathScratch {
    pools: Vec<f64>,
    plain: Vec<f64>,
    events: Vec<(f64, u32, u64)>,
    rates: Vec<f64>,
    accrued: Vec<f64>,
    /// Token prices in ETH at each checkpoint, token-major.
    prices: Vec<f64>,
    /// The standard normal increments of the tokens' Brownian motions at each
    /// checkpoint, token-major, as drawn ([`crate::normal`]).
    normals: Vec<f64>,
    /// The batch's streams of normal increments.
    pub(crate) normal_streams: NormalStreams,
    /// `e^{g t_c}` at each checkpoint `c` of the path.
    growth_e: Vec<f64>,
    /// `G(t_c)` at each checkpoint `c` of the path.
    growth_g: Vec<f64>,
    /// `V(t)/P` at each checkpoint of the last path (the depeg only at the horizon).
    pub checkpoint_values: Vec<f64>,
    /// Loss in ETH of each contribution row in the last path (slashing rows, including
    /// the per-AVS and per-operator totals; rows not listed in `slashed_rows` are 0).
    pub row_loss_eth: Vec<f64>,
    /// Slashing rows with at least one non-vetoed request in the last path, in the order
    /// first hit. The caller reads them and then calls [`PathScratch::clear_rows`].
    pub slashed_rows: Vec<usize>,
    /// Whether each contribution row is in `slashed_rows`, so that a charge finds out in
    /// one look-up rather than a scan.
    row_hit: Vec<bool>,
    /// The generator of a stress test's own draws (forced events' days, severities and
    /// picks), one per batch ([`PathScratch::start_batch`]), apart from the path's so
    /// that a stress draws the base scenario's random numbers.
    forced_rng: PathRng,
    /// The forced events of the last path: source and severity slot; an event of
    /// [`PathScratch::events`] with source `sources + j` is entry `j`.
    forced: Vec<(u32, Option<u32>)>,
    /// Members of a pick's group, shuffled in part on each path.
    pick_order: Vec<usize>,
    /// With a factor: an upper bound of the intensity of each of its laws given the
    /// path's `Z` ([`crate::model::Factor::bounds`]).
    law_bound: Vec<f64>,
    /// With a factor: each set of sampling laws' intensity on the path
    /// ([`crate::model::Factor::sets`]), the largest bound of its laws.
    set_bound: Vec<f64>,
    /// With a factor: running sums of the sources' sampling intensities on the path,
    /// filled only on a path with events.
    cumulative: Vec<f64>,
    /// The generator of a levered position's random depeg episodes, one per batch
    /// ([`PathScratch::start_batch`]), one seed a path: apart from the path's, so that
    /// a loan draws the unlevered position's random numbers.
    episode_rng: PathRng,
    /// A levered path's depeg episodes as edges: time, depth, whether it starts.
    edges: Vec<(f64, f64, bool)>,
    /// Depths of the episodes under way.
    active: Vec<f64>,
}

/// Salt of the stress generators' seeds, so that they differ from the paths' batch
/// generators of the same seed ("stress" in ASCII).
const STRESS_SALT: u64 = 0x7374_7265_7373;

/// Salt of the episode generators' seeds ("episode" in ASCII).
const EPISODE_SALT: u64 = 0x65_7069_736f_6465;

impl PathScratch {
    /// Buffers sized for `model`.
    pub fn new(model: &Model) -> Self {
        Self {
            pools: model.pools0.clone(),
            plain: model.plain0.clone(),
            events: Vec::new(),
            rates: vec![0.0; model.streams],
            accrued: vec![0.0; model.streams],
            prices: vec![0.0; model.tokens.len() * model.checkpoints_years.len()],
            normals: vec![0.0; model.tokens.len() * model.checkpoints_years.len()],
            growth_e: vec![1.0; model.checkpoints_years.len()],
            growth_g: vec![0.0; model.checkpoints_years.len()],
            checkpoint_values: vec![0.0; model.checkpoints_years.len()],
            row_loss_eth: vec![0.0; model.rows.len()],
            slashed_rows: Vec::new(),
            row_hit: vec![false; model.rows.len()],
            forced_rng: batch_rng(STRESS_SALT, 0),
            forced: Vec::new(),
            pick_order: Vec::new(),
            law_bound: vec![0.0; model.factor.as_ref().map_or(0, |f| f.laws.len())],
            set_bound: vec![0.0; model.factor.as_ref().map_or(0, |f| f.sets.len())],
            cumulative: vec![0.0; model.sources.len()],
            episode_rng: batch_rng(EPISODE_SALT, 0),
            normal_streams: NormalStreams::new(0, 0),
            edges: Vec::new(),
            active: Vec::new(),
        }
    }

    /// Starts batch `batch` of a run with seed `seed` at its path 0: seeds the stress
    /// generator, the depeg-episode generator ([`crate::sampling::batch_rng`] of the seed
    /// with a salt each) and the normal streams ([`NormalStreams::new`]) from
    /// `(seed, batch)`, so that a run is reproducible whatever the threads.
    pub fn start_batch(&mut self, seed: u64, batch: u64) {
        self.forced_rng = batch_rng(seed ^ STRESS_SALT, batch);
        self.episode_rng = batch_rng(seed ^ EPISODE_SALT, batch);
        self.normal_streams = NormalStreams::new(seed, batch);
    }

    /// The candidate events of the last path, in time order: time in years since the
    /// start, the index of the source in [`Model::sources`] (for a stress's forced event,
    /// the number of sources plus its index among the path's forced events), and the
    /// seed of the event's own generator (vetoed requests, and thinned candidates of
    /// coupled models, included).
    pub fn events(&self) -> &[(f64, u32, u64)] {
        &self.events
    }

    /// The tokens' normal increments of the next path, token-major
    /// (`[token × checkpoints + c]`), for [`finish_path`] to read: 0 for a token
    /// without volatility, the rows [`Model::normal_rows`] set by the caller.
    pub(crate) fn normals_mut(&mut self) -> &mut [f64] {
        &mut self.normals
    }

    /// Sets the path's growth factors and token prices at the checkpoints to column
    /// `i` of a block's (`[c n + i]` and `[(token × checkpoints + c) n + i]`, `n` the
    /// block's width), for [`finish_drawn`].
    ///
    /// # Panics
    /// If the block's buffers are shorter than that.
    pub(crate) fn set_checkpoint_column(
        &mut self,
        (growth_e, growth_g, prices): (&[f64], &[f64], &[f64]),
        n: usize,
        i: usize,
    ) {
        for (to, from) in [
            (&mut self.growth_e, growth_e),
            (&mut self.growth_g, growth_g),
            (&mut self.prices, prices),
        ] {
            for (k, x) in to.iter_mut().enumerate() {
                *x = from[k * n + i];
            }
        }
    }

    /// The candidate events of the last path and, with a factor, its sets' intensities:
    /// what [`finish_drawn`] reads of its draws besides [`Drawn`], to be put back with
    /// [`PathScratch::restore_draws`] after other paths' draws.
    pub(crate) fn saved_draws(&self) -> (&[(f64, u32, u64)], &[f64]) {
        (&self.events, &self.set_bound)
    }

    /// Puts back what [`PathScratch::saved_draws`] gave of a path.
    ///
    /// # Panics
    /// If `set_bound` is not as long as the model's sets.
    pub(crate) fn restore_draws(&mut self, events: &[(f64, u32, u64)], set_bound: &[f64]) {
        self.events.clear();
        self.events.extend_from_slice(events);
        self.set_bound.copy_from_slice(set_bound);
    }

    /// Resets the per-row losses of the last path.
    pub fn clear_rows(&mut self) {
        for &r in &self.slashed_rows {
            self.row_loss_eth[r] = 0.0;
            self.row_hit[r] = false;
        }
        self.slashed_rows.clear();
    }

    /// The income streams' accrued amounts and their rates, to accrue.
    fn accrued_rates(&mut self) -> (&mut [f64], &[f64]) {
        (&mut self.accrued, &self.rates)
    }

    fn record(&mut self, row: usize, loss_eth: f64) {
        if !self.row_hit[row] {
            self.row_hit[row] = true;
            self.slashed_rows.push(row);
        }
        self.row_loss_eth[row] += loss_eth;
    }

    /// Charges a loss to the source's row, to its AVS's row (if it went through an AVS)
    /// and to its operator's row.
    fn charge(
        &mut self,
        model: &Model,
        row: usize,
        avs: Option<usize>,
        operator: usize,
        loss_eth: f64,
    ) {
        self.record(row, loss_eth);
        if let Some(i) = avs {
            self.record(model.avs_row(i), loss_eth);
        }
        self.record(model.operator_row(operator), loss_eth);
    }
}

/// Where a path's clock stands: `e = e^{g t}` and `G(t)` at its time `t`.
struct Clock {
    e: f64,
    big_g: f64,
}

impl Clock {
    /// The clock at the start of a path, `t = 0`.
    const START: Self = Self { e: 1.0, big_g: 0.0 };
}

/// Accrues income from the clock's time to the time where the growth factor is `e` and
/// `G` is `big_g` (closed form): `stake (e - e_clock)` to `base`, and to each stream's
/// `accrued` its `rate (G - G_clock)`; then moves the clock there.
#[inline(always)]
fn advance(
    clock: &mut Clock,
    (e, big_g): (f64, f64),
    stake: f64,
    (accrued, rates): (&mut [f64], &[f64]),
    base: &mut f64,
) {
    *base = base_income_to(*base, stake, e, clock.e);
    let dg = big_g - clock.big_g;
    for (acc, rate) in accrued.iter_mut().zip(rates) {
        *acc = accrued_to(*acc, *rate, dg);
    }
    clock.e = e;
    clock.big_g = big_g;
}

/// The base income `base` accrued at growth factor `e0`, brought to growth factor `e` on
/// the discounted stake `stake`, ETH: `base + stake (e - e0)`.
#[inline(always)]
fn base_income_to(base: f64, stake: f64, e: f64, e0: f64) -> f64 {
    base + stake * (e - e0)
}

/// An income stream's amount `acc` accrued at `G_clock`, brought to `G_clock + dg` at
/// `rate`: `acc + rate dg`.
#[inline(always)]
fn accrued_to(acc: f64, rate: f64, dg: f64) -> f64 {
    acc + rate * dg
}

/// The staked value and AVS fees at a checkpoint, ETH: the discounted stake `stake`
/// grown by `e = e^{g t_c}`, plus the fees accrued at the clock (`fees`, at `G_clock =
/// g0`) and at `fee_rate` since (`G(t_c) = big_g`).
#[inline(always)]
pub(crate) fn staked_value(
    stake: f64,
    e: f64,
    fees: f64,
    fee_rate: f64,
    big_g: f64,
    g0: f64,
) -> f64 {
    stake * e + fees + fee_rate * (big_g - g0)
}

/// A token stream's value at a checkpoint, ETH: the units accrued at the clock (`units`,
/// at `G_clock = g0`) and at `rate` since (`G(t_c) = big_g`), at the price `price`.
#[inline(always)]
pub(crate) fn token_value(units: f64, rate: f64, big_g: f64, g0: f64, price: f64) -> f64 {
    (units + rate * (big_g - g0)) * price
}

/// `(e^{g t}, G(t))` at time `t`, from one `expm1`.
fn growth_at(g: f64, t: f64) -> (f64, f64) {
    let m = (g * t).exp_m1();
    (1.0 + m, if g == 0.0 { t } else { m / g })
}

/// The severity of a slashing request to `avs` with law `severity`, or `None` when the
/// request is vetoed (probability `veto_prob`). A plain model draws nothing for a veto
/// at `veto_prob = 0` nor a severity after one; a coupled model
/// ([`AvsModel::coupled_veto`]) draws both every time, so that every model of the sweep
/// reads the same draws for each request.
#[inline]
fn unless_vetoed<R: Rng + ?Sized>(avs: &AvsModel, severity: &Severity, rng: &mut R) -> Option<f64> {
    let vetoed = (avs.veto_prob > 0.0 || avs.coupled_veto) && {
        count_draw(DrawKind::Uniform);
        rng.random::<f64>() < avs.veto_prob
    };
    if vetoed && !avs.coupled_veto {
        return None;
    }
    let s = severity.sample(rng);
    (!vetoed).then_some(s)
}

/// The severity of a slashing request: a forced one (a stress's) is never vetoed and
/// draws only its severity; a random one goes through [`unless_vetoed`].
#[inline]
fn request_severity<R: Rng + ?Sized>(
    avs: &AvsModel,
    law: &Severity,
    forced: bool,
    rng: &mut R,
) -> Option<f64> {
    if forced {
        Some(law.sample(rng))
    } else {
        unless_vetoed(avs, law, rng)
    }
}

/// The count of a path's candidate events, from `count`.
fn event_count<R: Rng + ?Sized>(count: &Poisson<f64>, rng: &mut R) -> usize {
    count_draw(DrawKind::Poisson);
    count.sample(rng) as usize
}

/// Draws `n` candidate events of a path: for each its source (from `cumulative`, the
/// running sums of the sampling intensities), its time (uniform on `[0, horizon]`) and
/// the seed of its own generator.
fn draw_events<R: Rng + ?Sized>(
    n: usize,
    cumulative: &[f64],
    horizon: f64,
    rng: &mut R,
    events: &mut Vec<(f64, u32, u64)>,
) {
    if n == 0 {
        return;
    }
    let total = *cumulative.last().expect("sources exist");
    for _ in 0..n {
        count_draw(DrawKind::Uniform);
        count_draw(DrawKind::Uniform);
        count_draw(DrawKind::Uniform);
        let x = rng.random::<f64>() * total;
        let source = cumulative
            .partition_point(|&c| c <= x)
            .min(cumulative.len() - 1);
        let t = rng.random::<f64>() * horizon;
        let seed: u64 = rng.random();
        events.push((t, source as u32, seed));
    }
}

/// Appends the forced events of `event` to the path's events: its time (drawn when not
/// fixed) and, per source, a seed, all from the stress generator.
fn push_forced(event: &ForcedEvent, horizon: f64, scratch: &mut PathScratch, sources: usize) {
    let t = event
        .time_years
        .unwrap_or_else(|| scratch.forced_rng.random::<f64>() * horizon);
    for &source in &event.sources {
        let seed: u64 = scratch.forced_rng.random();
        let slot = (sources + scratch.forced.len()) as u32;
        scratch
            .forced
            .push((source as u32, event.severity.map(|i| i as u32)));
        scratch.events.push((t, slot, seed));
    }
}

/// Cuts a pool by `share × s` of its amount; returns the discounted loss.
#[inline]
fn cut(pools: &mut [f64], hit: Hit, s: f64) -> f64 {
    let loss = hit.share * s * pools[hit.pool];
    pools[hit.pool] -= loss;
    loss
}

/// Scales every pool by `1 - s`; returns the discounted loss.
#[inline]
fn scale(pools: &mut [f64], s: f64) -> f64 {
    pools
        .iter_mut()
        .map(|a| {
            let loss = s * *a;
            *a -= loss;
            loss
        })
        .sum()
}

/// Fills `growth_e[c n + p]` with `e^{g_p t_c}` and `growth_g[c n + p]` with `G(t_c)` at
/// each checkpoint `c`, for each of the `g.len()` paths `p` of a block (one path: `g` of
/// length 1), `n` the buffers' length over the checkpoints' (at least `g.len()`): through
/// `m_c = e^{g t_c} - 1` and `expm1(a + b) = expm1(a) + expm1(b) + expm1(a) expm1(b)`,
/// accurate for small `g t` where `e^{g t} - 1` would cancel. Over the leading run of
/// equal steps `a`, four interleaved chains advance by `4a` (`expm1(2a) = expm1(a) (2 +
/// expm1(a))`), so that no long chain of dependent operations holds the processor up;
/// the remaining steps go one by one. One `expm1` a path for the run, one per later
/// step; `d4` and `inv_g` (length `g.len()` each) are scratch.
///
/// # Panics
/// If `d4` or `inv_g` is shorter than `g`, or the growth buffers are shorter than `g`
/// times the checkpoints.
#[inline(always)]
pub(crate) fn checkpoint_growth(
    model: &Model,
    g: &[f64],
    (d4, inv_g): (&mut [f64], &mut [f64]),
    growth_e: &mut [f64],
    growth_g: &mut [f64],
) {
    let k = g.len();
    let n = growth_e.len() / model.checkpoints_years.len();
    let m = growth_e; // holds m_c until the last loop
    let run = model.equal_steps;
    for (p, g) in g.iter().enumerate() {
        let a = (g * model.checkpoint_steps[0]).exp_m1();
        let d2 = a * (2.0 + a);
        let d = d2 * (2.0 + d2);
        let first = [a, d2, d2 + a + d2 * a, d];
        for (c, x) in first.iter().take(run).enumerate() {
            m[c * n + p] = *x;
        }
        d4[p] = d;
    }
    for c in 4..run {
        let (before, at) = m.split_at_mut(c * n);
        let earlier = &before[(c - 4) * n..];
        for ((x, a), d) in at[..k].iter_mut().zip(earlier).zip(&d4[..k]) {
            *x = a + d + a * d;
        }
    }
    for c in run..model.checkpoints_years.len() {
        let (before, at) = m.split_at_mut(c * n);
        let previous = &before[(c - 1) * n..];
        for ((x, a), g) in at[..k].iter_mut().zip(previous).zip(g) {
            let d = (g * model.checkpoint_steps[c]).exp_m1();
            *x = a + d + a * d;
        }
    }
    for (inv, g) in inv_g.iter_mut().zip(g) {
        *inv = 1.0 / g;
    }
    for (c, (m, big_g)) in m
        .chunks_exact_mut(n)
        .zip(growth_g.chunks_exact_mut(n))
        .enumerate()
    {
        let t = model.checkpoints_years[c];
        for (((e, big_g), g), inv) in m.iter_mut().zip(big_g).zip(g).zip(&inv_g[..k]) {
            let grown = *e * inv;
            *big_g = if *g == 0.0 { t } else { grown };
            *e += 1.0;
        }
    }
}

/// The token prices at the checkpoints (GBM, exact at each checkpoint:
/// `ln S_c = ln S_0 + mu_log t_c + sigma W_c`, `W_c` the running sum of `sqrt(dt_c) z_c`)
/// of the first `k` paths of a block, from their normal increments `normals`; both
/// buffers `[(token × checkpoints + c) n + p]`, `n` their length over the tokens' and
/// checkpoints' (`k = n = 1`: one path). `normals` is left holding `W_c`. The running
/// sums advance checkpoint by checkpoint, every path at once, and the exponentials
/// follow ([`exp_in_place`]), over the whole buffer when the paths fill it.
///
/// # Panics
/// If the buffers are shorter than `k` rows of every token and checkpoint.
#[inline(always)]
pub(crate) fn token_prices(model: &Model, k: usize, normals: &mut [f64], prices: &mut [f64]) {
    if model.tokens.is_empty() {
        return;
    }
    let checkpoints = model.checkpoints_years.len();
    let n = prices.len() / (checkpoints * model.tokens.len());
    for (j, token) in model.tokens.iter().enumerate() {
        for (c, &t) in model.checkpoints_years.iter().enumerate() {
            let row = (j * checkpoints + c) * n;
            let (before, at) = normals.split_at_mut(row);
            let step = model.checkpoint_sqrt_steps[c];
            let start = token.ln_price0 + token.log_drift * t;
            let price = &mut prices[row..row + k];
            for (p, (w, price)) in at[..k].iter_mut().zip(price.iter_mut()).enumerate() {
                let previous = if c == 0 { 0.0 } else { before[row - n + p] };
                *w = previous + step * *w;
                *price = start + token.volatility * *w;
            }
        }
    }
    if k == n {
        exp_in_place(prices);
    } else {
        for row in prices.chunks_exact_mut(n) {
            exp_in_place(&mut row[..k]);
        }
    }
}

/// What the draws of a path ([`draw_path`]) leave for the rest of it ([`finish_path`]),
/// besides the tokens' normal increments, the events and the episodes in its scratch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Drawn {
    /// The base growth rate `g = r_b (1 - phi_b)`, per year.
    pub(crate) g: f64,
    /// The systematic factor's value on the path (0 without a factor).
    z: f64,
    /// The depeg at exit, a fraction of the stake, if there is one.
    pub(crate) depeg_fraction: Option<f64>,
    /// Whether the random sources fire (false under a stress that turns them off).
    random: bool,
}

/// Simulates the next path of `model` with `rng` (the batch's generator) and the normal
/// streams of `scratch` (the batch's, [`PathScratch::start_batch`]), leaving the
/// checkpoint values and the per-row slashing losses in `scratch`
/// (`docs/model.md#a-path`): its draws ([`draw_path`]), its tokens' normal increments
/// ([`NormalStreams::path`]), then the rest ([`finish_path`]). Generic over the generator
/// so that a benchmark can count the draws; the engine uses
/// [`crate::sampling::PathRng`], a block of paths at a time ([`crate::block`]), with the
/// same numbers.
pub fn simulate_path<R: Rng + ?Sized>(
    model: &Model,
    rng: &mut R,
    scratch: &mut PathScratch,
) -> PathOutcome {
    let drawn = draw_path(model, rng, scratch);
    scratch
        .normal_streams
        .path(&model.normal_rows, &mut scratch.normals);
    finish_path(model, drawn, scratch)
}

/// Every random draw of a path but its tokens' normal increments, in the order the
/// module docs give: leaves the candidate events in time order and a levered path's
/// depeg episodes in `scratch`, and returns the rest. What follows ([`finish_path`])
/// draws nothing but the events' own generators, which the events' seeds fix, so a
/// block of paths can take its draws path by path and be evaluated after
/// (`crate::block`).
pub(crate) fn draw_path<R: Rng + ?Sized>(
    model: &Model,
    rng: &mut R,
    scratch: &mut PathScratch,
) -> Drawn {
    let horizon = model.horizon_years;

    // The systematic factor first, when the scenario has one (held at a stress's
    // `factor_z`, drawn all the same so that every later draw is the base's). The
    // sources are sampled at upper bounds of their intensities given it, read off a
    // table, and each candidate event is thinned to its exact intensity (Lewis and
    // Shedler 1979): exact, and only the events pay for the normal distribution function.
    let mut depeg_prob = model.depeg.as_ref().map_or(0.0, |d| d.0);
    let mut z = 0.0;
    if let Some(factor) = &model.factor {
        count_draw(DrawKind::Normal);
        let drawn: f64 = StandardNormal.sample(rng);
        z = model
            .stress
            .as_ref()
            .and_then(|s| s.factor_z)
            .unwrap_or(drawn);
        factor.bounds(z, &mut scratch.law_bound);
        for (bound, set) in scratch.set_bound.iter_mut().zip(&factor.sets) {
            *bound = set
                .iter()
                .map(|c| scratch.law_bound[*c as usize])
                .fold(0.0, f64::max);
        }
        if let Some(law) = &factor.depeg {
            depeg_prob = law.prob_at(z);
        }
    }

    // Base APR, once per path.
    let r_b = truncated_normal(model.base_apr_mean, model.base_apr_sd, rng);
    let g = r_b * model.base_keep;

    // Events of all sources superposed: count, then source and time of each. With a
    // factor, from the path's own generator (seeded by one draw), which draws the depeg
    // first: the path's generator then takes the same draws whatever the factor's value.
    scratch.events.clear();
    let mut depeg_fraction = None;
    if let Some(factor) = &model.factor {
        count_draw(DrawKind::Uniform);
        let mut own = EventRng::from_seed(rng.random::<u64>().to_le_bytes());
        if let Some((_, discount)) = &model.depeg {
            count_draw(DrawKind::Uniform);
            let u = own.random::<f64>();
            let d = discount.sample(&mut own);
            depeg_fraction = Some(if u < depeg_prob { d } else { 0.0 });
        }
        // The total sampling intensity one term a set of laws; the running sums over the
        // sources only when an event needs its source.
        let total: f64 = factor
            .set_sources
            .iter()
            .zip(&scratch.set_bound)
            .map(|(sources, bound)| sources * bound)
            .sum();
        let mean = total * horizon;
        if mean > 0.0 && mean.is_finite() {
            let count = Poisson::new(mean).expect("finite positive event mean");
            let n = event_count(&count, &mut own);
            if n > 0 {
                let mut running = 0.0;
                for (c, set) in scratch.cumulative.iter_mut().zip(&factor.set_of) {
                    running += scratch.set_bound[*set as usize];
                    *c = running;
                }
            }
            draw_events(
                n,
                &scratch.cumulative,
                horizon,
                &mut own,
                &mut scratch.events,
            );
        }
    } else if let Some(count) = &model.event_count {
        draw_events(
            event_count(count, rng),
            &model.cumulative_intensity,
            horizon,
            rng,
            &mut scratch.events,
        );
    }
    let random = model.stress.as_ref().is_none_or(|s| s.random);
    if let Some(stress) = &model.stress {
        scratch.forced.clear();
        let n = model.sources.len();
        for event in &stress.events {
            push_forced(event, horizon, scratch, n);
        }
        for pick in &stress.picks {
            // `count` distinct members, by a partial Fisher–Yates shuffle.
            scratch.pick_order.clear();
            scratch.pick_order.extend(0..pick.group.len());
            for j in 0..pick.count {
                let left = (pick.group.len() - j) as u64;
                let r = j + scratch.forced_rng.random_range(0..left) as usize;
                scratch.pick_order.swap(j, r);
                let member = scratch.pick_order[j];
                push_forced(&pick.group[member], horizon, scratch, n);
            }
        }
        // Stable: forced events of one time keep their order.
        scratch.events.sort_by(|a, b| a.0.total_cmp(&b.0));
    } else {
        scratch.events.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    }

    // A levered position's depeg episodes, as edges in time order: the random ones from
    // the batch's episode generator (one seed a path, drawn whatever happens), a
    // stress's forced ones from its generator. Only a market oracle sees them.
    scratch.edges.clear();
    if let Some(lev) = &model.leverage {
        if let Some(episodes) = &lev.episodes {
            let seed: u64 = scratch.episode_rng.random();
            let mut own = EventRng::from_seed(seed.to_le_bytes());
            let mean = episodes.law.intensity_at(z) * horizon;
            if random && mean > 0.0 && mean.is_finite() {
                count_draw(DrawKind::Poisson);
                let n = Poisson::new(mean)
                    .expect("finite positive episode mean")
                    .sample(&mut own) as usize;
                for _ in 0..n {
                    count_draw(DrawKind::Uniform);
                    let t = own.random::<f64>() * horizon;
                    let depth = episodes.discount.sample(&mut own);
                    push_episode(&mut scratch.edges, t, lev.episode_years, depth);
                }
            }
        }
        if let Some(stress) = &model.stress {
            for e in &stress.episodes {
                let t = e
                    .time_years
                    .unwrap_or_else(|| scratch.forced_rng.random::<f64>() * horizon);
                let depth = stress.severities[e.depth].sample(&mut scratch.forced_rng);
                if lev.market_oracle {
                    push_episode(&mut scratch.edges, t, e.years, depth);
                }
            }
        }
        scratch.edges.sort_by(|a, b| a.0.total_cmp(&b.0));
        scratch.active.clear();
    }

    // The depeg: drawn here from the path's generator without a factor (with one, it
    // was drawn with the events); a stress without random sources drops it, one with a
    // forced depeg replaces it.
    if model.factor.is_none()
        && let Some((prob, discount)) = &model.depeg
    {
        count_draw(DrawKind::Uniform);
        if rng.random::<f64>() < *prob {
            depeg_fraction = Some(discount.sample(rng));
        }
    }
    if !random {
        depeg_fraction = None;
    }
    if let Some(law) = model.stress.as_ref().and_then(|s| s.depeg.as_ref()) {
        depeg_fraction = Some(law.sample(&mut scratch.forced_rng));
    }
    Drawn {
        g,
        z,
        depeg_fraction,
        random,
    }
}

/// The rest of a path after its draws ([`draw_path`]): the growth factors and token
/// prices at the checkpoints, then the events in time order, the checkpoint values and
/// the outcome ([`finish_drawn`]).
pub(crate) fn finish_path(model: &Model, drawn: Drawn, scratch: &mut PathScratch) -> PathOutcome {
    checkpoint_growth(
        model,
        &[drawn.g],
        (&mut [0.0], &mut [0.0]),
        &mut scratch.growth_e,
        &mut scratch.growth_g,
    );
    token_prices(model, 1, &mut scratch.normals, &mut scratch.prices);
    finish_drawn(model, drawn, scratch)
}

/// A path after its draws and its growth factors and token prices at the checkpoints
/// (in `scratch`, as [`finish_path`] computes them, or from a block's, which are the
/// same numbers: [`PathScratch::set_checkpoint_column`]): the events in time order, the
/// checkpoint values and the outcome.
pub(crate) fn finish_drawn(model: &Model, drawn: Drawn, scratch: &mut PathScratch) -> PathOutcome {
    let Drawn {
        g,
        z,
        depeg_fraction,
        random,
    } = drawn;
    let n_checkpoints = model.checkpoints_years.len();
    let horizon = model.horizon_years;
    let principal = model.principal_eth;

    // The pools change only at events and liquidations: most unlevered paths never copy
    // them.
    if !scratch.events.is_empty() || model.leverage.is_some() {
        scratch.pools.copy_from_slice(&model.pools0);
    }
    if !scratch.events.is_empty() {
        scratch.plain.copy_from_slice(&model.plain0);
    }
    let inv_principal = 1.0 / principal;
    scratch.accrued.iter_mut().for_each(|a| *a = 0.0);
    scratch.rates.copy_from_slice(&model.rates0);
    let mut stake = model.stake0;
    let mut clock = Clock::START;
    let mut base_income = 0.0;
    let mut slashing_loss = 0.0;
    let mut next_checkpoint = 0;
    let mut loan = model.leverage.as_ref().map(|lev| {
        let mut loan = Loan::new(lev);
        loan.plan(lev, g, stake, 0.0);
        loan
    });

    // Records `V/P` at every checkpoint at or before `t`, then moves the clock to the last
    // of them. No event lies between the clock and these checkpoints, so at checkpoint
    // `c` the stake is `stake e_c`, the debt `debt e^{r t_c}` (`debt` discounted by the
    // borrow rate) and each income stream has accrued its amount at the clock plus
    // `rate (G_c - G_clock)`: one pass over the checkpoints, stream by stream.
    let catch_up = |t: f64,
                    next: &mut usize,
                    clock: &mut Clock,
                    stake: f64,
                    debt: f64,
                    scratch: &mut PathScratch,
                    base: &mut f64| {
        let start = *next;
        // A walk from the clock's next checkpoint (the checkpoints ascend): a path's
        // catch-ups pass each checkpoint once, where a binary search each time waited on
        // a chain of dependent loads.
        let end = start
            + model.checkpoints_years[start..]
                .iter()
                .take_while(|&&checkpoint| checkpoint <= t)
                .count();
        if end == start {
            return;
        }
        let g0 = clock.big_g;
        let tokens = model.tokens.len();
        // Checkpoint by checkpoint, each value's terms in the order of the closed form:
        // the stake and fees, less the debt, plus each token's value, over the principal.
        let PathScratch {
            growth_e,
            growth_g,
            prices,
            checkpoint_values,
            accrued,
            rates,
            ..
        } = &mut *scratch;
        let (fees, fee_rate) = (accrued[0], rates[0]);
        let (token_units, token_rates) = (&accrued[1..=tokens], &rates[1..=tokens]);
        let debt_growth = model
            .leverage
            .as_ref()
            .map(|lev| &lev.debt_growth[start..end]);
        let values = &mut checkpoint_values[start..end];
        let growth = growth_e[start..end].iter().zip(&growth_g[start..end]);
        for (k, (value, (e, big_g))) in values.iter_mut().zip(growth).enumerate() {
            let mut v = staked_value(stake, *e, fees, fee_rate, *big_g, g0);
            if let Some(grown) = debt_growth {
                v -= debt * grown[k];
            }
            for (j, (units, rate)) in token_units.iter().zip(token_rates).enumerate() {
                let price = prices[j * n_checkpoints + start + k];
                v += token_value(*units, *rate, *big_g, g0, price);
            }
            *value = v * inv_principal;
        }
        let last = (scratch.growth_e[end - 1], scratch.growth_g[end - 1]);
        advance(clock, last, stake, scratch.accrued_rates(), base);
        *next = end;
    };
    // Moves the clock to time `t`: the checkpoints up to it, then the accrual.
    let move_to = |t: f64,
                   next: &mut usize,
                   clock: &mut Clock,
                   stake: f64,
                   debt: f64,
                   scratch: &mut PathScratch,
                   base: &mut f64| {
        catch_up(t, next, clock, stake, debt, scratch, base);
        advance(clock, growth_at(g, t), stake, scratch.accrued_rates(), base);
    };
    // After a liquidation that kept the share `kept` of the collateral: the seized
    // collateral leaves every pool in proportion; returns the new stake.
    let keep = |kept: f64, scratch: &mut PathScratch| {
        scratch.pools.iter_mut().for_each(|a| *a *= kept);
        model.stream_rates(&scratch.pools, &mut scratch.rates)
    };

    let mut next_event = 0;
    let mut next_edge = 0;
    loop {
        let t_event = scratch
            .events
            .get(next_event)
            .map_or(f64::INFINITY, |e| e.0);
        // The loan's own moments first: its health factor reaching 1 (a negative carry),
        // a depeg episode starting or ending under a market oracle.
        if let Some(loan) = &mut loan {
            let lev = model.leverage.as_ref().expect("a loan has terms");
            let t_edge = scratch.edges.get(next_edge).map_or(f64::INFINITY, |e| e.0);
            let t = loan.crossing.min(t_edge);
            if t <= t_event && t < horizon {
                let at_crossing = loan.crossing <= t_edge;
                if !at_crossing {
                    let (_, depth, starts) = scratch.edges[next_edge];
                    next_edge += 1;
                    if starts {
                        scratch.active.push(depth);
                    } else if let Some(i) = scratch.active.iter().position(|d| *d == depth) {
                        scratch.active.swap_remove(i);
                    }
                    loan.oracle = 1.0 - scratch.active.iter().copied().fold(0.0, f64::max);
                }
                // The clock moves only for a liquidation: an episode that liquidates
                // nothing leaves the path's arithmetic as it was. The checkpoints up
                // to `t` see the debt before it.
                let debt = loan.debt;
                let collateral = stake * growth_at(g, t).0;
                if let Some(kept) = loan.liquidate(lev, t, collateral, at_crossing) {
                    move_to(
                        t,
                        &mut next_checkpoint,
                        &mut clock,
                        stake,
                        debt,
                        scratch,
                        &mut base_income,
                    );
                    stake = keep(kept, scratch);
                }
                loan.plan(lev, g, stake, t);
                continue;
            }
        }
        let Some(&(t, index, seed)) = scratch.events.get(next_event) else {
            break;
        };
        next_event += 1;
        let index = index as usize;
        // A forced event (a stress's) fires without thinning or veto, with the stress's
        // severity if it gives one.
        let (j, forced, given) = match index.checked_sub(model.sources.len()) {
            None => (index, false, None),
            Some(f) => {
                let (j, slot) = scratch.forced[f];
                let stress = model
                    .stress
                    .as_ref()
                    .expect("forced events come from a stress");
                (
                    j as usize,
                    true,
                    slot.map(|i| &stress.severities[i as usize]),
                )
            }
        };
        let source = &model.sources[j];
        // The event's own draws (thinning, veto, severity) come from its own generator,
        // so that each event's draws do not depend on which others happen: coupled models
        // share them (Model::couple).
        // Its first draw decides the thinning (always drawn, so that the veto and
        // severities that follow are the same draws whatever `keep` is).
        let mut rng = EventRng::from_seed(seed.to_le_bytes());
        if !forced {
            count_draw(DrawKind::Uniform);
            let keep = match &model.factor {
                Some(f) if scratch.set_bound[f.set_of[j] as usize] > 0.0 => {
                    f.laws[f.own[j] as usize].intensity_at(z)
                        / scratch.set_bound[f.set_of[j] as usize]
                }
                Some(_) => 0.0,
                None => source.keep,
            };
            if rng.random::<f64>() >= keep || !random {
                continue;
            }
        }
        let debt = loan.as_ref().map_or(0.0, |l| l.debt);
        move_to(
            t,
            &mut next_checkpoint,
            &mut clock,
            stake,
            debt,
            scratch,
            &mut base_income,
        );

        // The event (`docs/model.md#a-path`): cut the pools it reaches. Each cut is the stake it
        // destroys, in ETH at the event's time, charged to the source, the AVS and the
        // operator it went through.
        let rng = &mut rng;
        let row = source.row;
        let e = clock.e;
        // Cuts `hit` through AVS `i` with severity `s`; returns the loss in ETH.
        let through_avs = |scratch: &mut PathScratch, i: usize, hit: Hit, s: f64| {
            let l = cut(&mut scratch.pools, hit, s) * e;
            scratch.charge(model, row, Some(i), model.pool_operator[hit.pool], l);
            l
        };
        // One slashing request to AVS `i` on `hit`: vetoed, or cut with its own severity.
        let request = |scratch: &mut PathScratch, rng: &mut EventRng, i: usize, hit: Hit| {
            let avs = &model.avs[i];
            request_severity(avs, given.unwrap_or(&avs.slash_severity), forced, rng)
                .map(|s| through_avs(scratch, i, hit, s))
        };
        // Scales all of operator `k`'s pools by `1 - s`; returns the loss in ETH.
        let whole_stake = |scratch: &mut PathScratch, k: usize, s: f64| {
            let l = scale(&mut scratch.pools[model.operator_pools[k].clone()], s) * e;
            scratch.charge(model, row, None, k, l);
            l
        };
        let mut loss = 0.0;
        let mut slashed = false;
        match &source.kind {
            SourceKind::OperatorAvs { avs: i, hit } => {
                if let Some(l) = request(scratch, rng, *i, *hit) {
                    loss += l;
                    slashed = true;
                }
            }
            SourceKind::AvsIncident { avs: i, hits } => {
                let avs = &model.avs[*i];
                let law = given.unwrap_or(&avs.incident_severity);
                if let Some(s) = request_severity(avs, law, forced, rng) {
                    loss += hits
                        .iter()
                        .map(|h| through_avs(scratch, *i, *h, s))
                        .sum::<f64>();
                    slashed = true;
                }
            }
            SourceKind::OperatorFault { hits } => {
                for (i, hit) in hits {
                    if let Some(l) = request(scratch, rng, *i, *hit) {
                        loss += l;
                        slashed = true;
                    }
                }
            }
            SourceKind::Beacon { operator: k } => {
                let s = given.unwrap_or(&model.beacon_severity).sample(rng);
                scratch.plain[*k] *= 1.0 - s;
                loss += whole_stake(scratch, *k, s);
                slashed = true;
            }
            SourceKind::Exploit => {
                let s = given.unwrap_or(&model.exploit_severity).sample(rng);
                loss += (0..model.operator_pools.len())
                    .map(|k| whole_stake(scratch, k, s))
                    .sum::<f64>();
                slashed = true;
            }
        }
        if slashed {
            slashing_loss += loss;
            stake = model.stream_rates(&scratch.pools, &mut scratch.rates);
            // A slash of the collateral may make the position liquidatable.
            if let Some(loan) = &mut loan {
                let lev = model.leverage.as_ref().expect("a loan has terms");
                if let Some(kept) = loan.liquidate(lev, t, stake * e, false) {
                    stake = keep(kept, scratch);
                }
                loan.plan(lev, g, stake, t);
            }
        }
    }
    let debt = loan.as_ref().map_or(0.0, |l| l.debt);
    catch_up(
        f64::INFINITY,
        &mut next_checkpoint,
        &mut clock,
        stake,
        debt,
        scratch,
        &mut base_income,
    );

    // The horizon (`docs/model.md#a-path`): the clock stands at T, the last checkpoint.
    let stake_eth = stake * clock.e;
    let last = n_checkpoints - 1;
    let depeg_loss = depeg_fraction.map_or(0.0, |d| d * stake_eth);
    // A levered position repays its debt out of the collateral sold; what the sale does
    // not cover is the lender's (the holder's equity is floored at 0).
    let mut position = stake_eth - depeg_loss;
    if let (Some(loan), Some(lev)) = (&mut loan, &model.leverage) {
        let grown = lev.debt_growth[last];
        loan.borrow_cost += loan.debt * (grown - loan.grown);
        position -= loan.debt * grown;
        let shortfall = (-position).max(0.0);
        loan.bad_debt += shortfall;
        position += shortfall;
        scratch.checkpoint_values[last] += shortfall / principal;
        if lev.debt0_eth > 0.0 {
            scratch.record(lev.row + Leverage::ROW_BORROW_COST, loan.borrow_cost);
        }
        if loan.liquidations > 0 {
            scratch.record(lev.row, loan.liquidation_loss);
        }
        if loan.bad_debt > 0.0 {
            scratch.record(lev.row + Leverage::ROW_BAD_DEBT, -loan.bad_debt);
        }
    }
    let plain_stake = if scratch.events.is_empty() {
        model.plain0_sum
    } else {
        scratch.plain.iter().sum::<f64>()
    };
    let end = Horizon {
        position,
        depeg_loss,
        base_income,
        slashing_loss,
        plain_stake,
        e: clock.e,
    };
    let (prices, accrued) = (&scratch.prices, &scratch.accrued);
    settle(
        model,
        &end,
        loan.unwrap_or_else(Loan::none),
        |s| accrued[s],
        |j| prices[j * n_checkpoints + last],
        &mut scratch.checkpoint_values[last],
    )
}

/// A path at its horizon `T`, ETH unless the name says otherwise.
struct Horizon {
    /// The position after the depeg and any loan.
    position: f64,
    depeg_loss: f64,
    base_income: f64,
    slashing_loss: f64,
    /// Plain staking's discounted stake on the path.
    plain_stake: f64,
    /// `e^{g T}`.
    e: f64,
}

/// The outcome of a path at its horizon: the fees and token value from the streams'
/// accrued amounts `accrued(s)` (stream 0 the fees, then one per token) at the tokens'
/// prices at the horizon (`price_at_horizon(j)`), and the depeg taken off the last
/// checkpoint value.
fn settle(
    model: &Model,
    h: &Horizon,
    loan: Loan,
    accrued: impl Fn(usize) -> f64,
    price_at_horizon: impl Fn(usize) -> f64,
    last_value: &mut f64,
) -> PathOutcome {
    let principal = model.principal_eth;
    let avs_fees = accrued(0);
    let tokens: f64 = (0..model.tokens.len())
        .map(|j| accrued(1 + j) * price_at_horizon(j))
        .sum();
    *last_value -= h.depeg_loss / principal;
    let value = h.position + avs_fees + tokens;
    let plain_value = h.plain_stake * h.e;
    PathOutcome {
        net_return: value / principal - 1.0,
        excess_return: (value - plain_value) / principal,
        slashing_loss_eth: h.slashing_loss,
        base_income_eth: h.base_income,
        avs_fee_income_eth: avs_fees,
        incentive_value_eth: tokens,
        depeg_loss_eth: h.depeg_loss,
        liquidation_loss_eth: loan.liquidation_loss,
        borrow_cost_eth: loan.borrow_cost,
        bad_debt_eth: loan.bad_debt,
        liquidations: loan.liquidations,
    }
}

/// The outcome of a path with no candidate event, no loan and no stress, from its growth
/// `(e^{g T}, G(T))` at the horizon and its depeg: what [`finish_path`] gives such a
/// path, with the same arithmetic. Its one move of the clock, from the start (nothing
/// accrued, `e = 1`, `G = 0`) to the horizon, is [`advance`]'s, each stream's amount
/// computed where [`settle`] reads it instead of kept in a buffer. The token prices at
/// the horizon come from `price_at_horizon(j)` and the depeg is taken off `last_value`,
/// the path's last checkpoint value.
pub(crate) fn settle_eventless(
    model: &Model,
    (e, big_g): (f64, f64),
    depeg_fraction: Option<f64>,
    price_at_horizon: impl Fn(usize) -> f64,
    last_value: &mut f64,
) -> PathOutcome {
    let Clock { e: e0, big_g: g0 } = Clock::START;
    let base_income = base_income_to(0.0, model.stake0, e, e0);
    let dg = big_g - g0;
    let stake_eth = model.stake0 * e;
    let depeg_loss = depeg_fraction.map_or(0.0, |d| d * stake_eth);
    let end = Horizon {
        position: stake_eth - depeg_loss,
        depeg_loss,
        base_income,
        slashing_loss: 0.0,
        plain_stake: model.plain0_sum,
        e,
    };
    settle(
        model,
        &end,
        Loan::none(),
        |s| accrued_to(0.0, model.rates0[s], dg),
        price_at_horizon,
        last_value,
    )
}

/// A levered path's loan: its debt discounted by the borrow rate, `D(t) e^{-r t}`
/// (changed only by liquidations), what it has cost so far, the oracle's factor and
/// when its health factor next reaches 1 (`docs/model.md#leverage`).
#[derive(Debug)]
struct Loan {
    debt: f64,
    /// `e^{r t}` at the time the borrow cost was last accrued to.
    grown: f64,
    borrow_cost: f64,
    liquidation_loss: f64,
    bad_debt: f64,
    liquidations: u32,
    /// `1 - d` of the deepest active depeg episode (market oracle), else 1.
    oracle: f64,
    /// Time in years at which the health factor next reaches 1 (infinite if never).
    crossing: f64,
}

impl Loan {
    fn new(lev: &Leverage) -> Self {
        Self {
            debt: lev.debt0_eth,
            ..Self::none()
        }
    }

    /// No loan: no debt, nothing paid.
    fn none() -> Self {
        Self {
            debt: 0.0,
            grown: 1.0,
            borrow_cost: 0.0,
            liquidation_loss: 0.0,
            bad_debt: 0.0,
            liquidations: 0,
            oracle: 1.0,
            crossing: f64::INFINITY,
        }
    }

    /// Sets the next crossing of `HF = 1` after time `now`, for a discounted stake
    /// `stake` growing at `g`. With both discounted, `HF(t) = K e^{(g - r) t}`,
    /// `K = LT stake oracle / debt`, so it reaches 1 at `ln K / (r - g)` when the carry
    /// `g - r` is negative ([`crossing_years`] from 0).
    fn plan(&mut self, lev: &Leverage, g: f64, stake: f64, now: f64) {
        let k = lev.terms.health_factor(stake, self.oracle, self.debt);
        self.crossing =
            crossing_years(k, g - lev.borrow_rate).map_or(f64::INFINITY, |t| t.max(now));
    }

    /// The liquidations at time `t` of collateral `collateral_eth` (at the exchange
    /// rate); `Some(share of the collateral kept)` when there was one.
    fn liquidate(
        &mut self,
        lev: &Leverage,
        t: f64,
        collateral_eth: f64,
        at_crossing: bool,
    ) -> Option<f64> {
        let grown = (lev.borrow_rate * t).exp();
        let out = lev
            .terms
            .liquidate(collateral_eth, self.oracle, self.debt * grown, at_crossing);
        if out.steps == 0 {
            return None;
        }
        self.borrow_cost += self.debt * (grown - self.grown);
        self.grown = grown;
        self.debt = out.debt_eth / grown;
        self.liquidations += out.steps;
        self.liquidation_loss += out.loss_eth();
        self.bad_debt += out.bad_debt_eth;
        Some(if collateral_eth > 0.0 {
            out.collateral_eth / collateral_eth
        } else {
            0.0
        })
    }
}

/// Adds a depeg episode from `t` for `years` with depth `depth` to `edges`.
fn push_episode(edges: &mut Vec<(f64, f64, bool)>, t: f64, years: f64, depth: f64) {
    edges.push((t, depth, true));
    edges.push((t + years, depth, false));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scenario;
    use crate::sampling::batch_rng;

    /// A one-operator native scenario; `extra` is appended to the file.
    fn scenario(stake_mode: &str, base: &str, extra: &str) -> Scenario {
        let text = format!(
            r#"
name = "t"
[position]
principal_eth = 200.0
route = "native"
horizon_days = 365
stake_mode = "{stake_mode}"
[base]
{base}
{extra}
"#
        );
        Scenario::from_toml(&text).unwrap()
    }

    fn run_one(s: &Scenario, seed: u64) -> (PathOutcome, PathScratch) {
        let model = Model::new(s);
        let mut scratch = PathScratch::new(&model);
        let mut rng = batch_rng(seed, 0);
        let out = simulate_path(&model, &mut rng, &mut scratch);
        (out, scratch)
    }

    /// ELIP-002's example (`docs/model.md#independent-checks`): 200 with 20% to AVS_1, 25% to AVS_2, 20% to
    /// EigenDA; AVS_1 slashes 50% → 180; then AVS_2 slashes 50% → 155 under `unique`.
    #[test]
    fn elip002_unique_stake_example() {
        let avs = |name: &str, p: f64| {
            format!(
                "[[avs]]\nname = \"{name}\"\nslash_prob = {p}\nslash_severity = {{ dist = \"fixed\", value = 0.5 }}\n"
            )
        };
        let one = format!(
            "{}{}{}[[operator]]\nname = \"op\"\nweight = 1.0\nallocations = {{ AVS_1 = 0.2, AVS_2 = 0.25, EigenDA = 0.2 }}\n",
            avs("AVS_1", 0.6),
            avs("AVS_2", 0.0),
            avs("EigenDA", 0.0)
        );
        let s = scenario("unique", "apr_mean = 0.0", &one);
        let model = Model::new(&s);
        // Find a seed whose path has exactly one AVS_1 event.
        let mut found = false;
        for seed in 0..200 {
            let (out, scratch) = run_one(&s, seed);
            let n = scratch.events.len();
            if n == 1 {
                assert!((out.slashing_loss_eth - 20.0).abs() < 1e-12);
                assert!((out.net_return * 200.0 + 200.0 - 180.0).abs() < 1e-12);
                // pools: AVS_1 20, AVS_2 50, EigenDA 40, remainder 70
                let expect = [20.0, 50.0, 40.0, 70.0];
                for (p, e) in scratch.pools.iter().zip(expect) {
                    assert!((p - e).abs() < 1e-12, "{:?}", scratch.pools);
                }
                found = true;
                break;
            }
        }
        assert!(found);
        // Pools in AVS order, then the remainder: 40, 50, 40, 70. AVS_1 slashes 50%:
        // 180; then AVS_2 slashes 50%: 155.
        assert_eq!(model.pools0, vec![40.0, 50.0, 40.0, 70.0]);
        let mut pools = model.pools0.clone();
        cut(
            &mut pools,
            Hit {
                pool: 0,
                share: 1.0,
            },
            0.5,
        );
        assert_eq!(pools.iter().sum::<f64>(), 180.0);
        cut(
            &mut pools,
            Hit {
                pool: 1,
                share: 1.0,
            },
            0.5,
        );
        assert_eq!(pools.iter().sum::<f64>(), 155.0);
        assert_eq!(pools, vec![20.0, 25.0, 40.0, 70.0]);
    }

    /// EigenLayer's dual-slashing example (`docs/model.md#a-path`): 32 ETH, a 75% AVS slash of the
    /// fully allocated stake leaves 8, a beacon-chain slash of half leaves 4.
    #[test]
    fn dual_slashing_example() {
        let mut pools = vec![32.0, 0.0];
        cut(
            &mut pools,
            Hit {
                pool: 0,
                share: 1.0,
            },
            0.75,
        );
        assert_eq!(pools.iter().sum::<f64>(), 8.0);
        let loss = scale(&mut pools, 0.5);
        assert_eq!(pools.iter().sum::<f64>(), 4.0);
        assert_eq!(loss, 4.0);
        // Shared mode: a 0.5 slashable share slashed fully takes half the stake.
        let mut shared = vec![32.0];
        cut(
            &mut shared,
            Hit {
                pool: 0,
                share: 0.5,
            },
            1.0,
        );
        assert_eq!(shared[0], 16.0);
    }

    /// No risk, no spread: V = P e^{r (1 - phi_b) T} + fees exactly (docs/model.md#independent-checks).
    #[test]
    fn no_risk_growth_is_closed_form() {
        let extra = r#"
[[avs]]
name = "A"
fee_apr = 0.01
[[operator]]
name = "op"
weight = 1.0
commission = 0.1
allocations = { A = 0.5 }
"#;
        let s = scenario("unique", "apr_mean = 0.03\nfee = 0.1", extra);
        for seed in 0..5 {
            let (out, scratch) = run_one(&s, seed);
            let g: f64 = 0.03 * 0.9;
            let stake = 200.0 * g.exp();
            // fees: 0.9 * 0.01 * 100 * (e^g - 1)/g
            let fees = 0.9 * 0.01 * 100.0 * g.exp_m1() / g;
            let v = stake + fees;
            assert!((out.net_return - (v / 200.0 - 1.0)).abs() < 1e-14);
            assert!((out.base_income_eth - (stake - 200.0)).abs() < 1e-11);
            assert!((out.avs_fee_income_eth - fees).abs() < 1e-12);
            assert!((scratch.checkpoint_values.last().unwrap() - v / 200.0).abs() < 1e-14);
            assert!((out.excess_return - fees / 200.0).abs() < 1e-14);
        }
    }
}
