//! A slow reference simulation of the model, written to be read against `docs/model.md`
//! line by line rather than to be fast. It shares no code with the engine's path
//! simulation: it keeps every pool in ETH (not discounted), samples each risk source's
//! Poisson process on its own (not superposed), walks the horizon day by day with the
//! events of each day taken at their exact times, draws the token price at the horizon in
//! one step, and uses its own generator seeding. With a systematic factor it draws `Z`
//! and conditions each source's probability by the Vasicek formula written with statrs's
//! normal law (the engine has its own). With `[leverage]` it holds the debt in ETH and
//! looks for liquidations on a grid of [`LOAN_STEPS_PER_DAY`] steps a day, where the
//! engine solves for the time the health factor reaches 1; it samples the depeg episodes
//! of a market oracle as events of their own. Only the scenario types and rand_distr's
//! samplers are common. The engine and this simulation must agree in distribution.

use rand::{RngExt, SeedableRng};
use rand_distr::{Beta, Distribution, Poisson, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;
use restake_core::ScenarioSpec;
use restake_core::scenario::{ExitMode, Route, StakeMode};

/// The outcome of one reference path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// `V / P - 1`, a fraction.
    pub net_return: f64,
    /// `(V - V_plain) / P`, a fraction.
    pub excess_return: f64,
    /// Stake destroyed by slashing and exploits, ETH.
    pub slashing_loss_eth: f64,
    /// With leverage: collateral seized less debt repaid, ETH.
    pub liquidation_loss_eth: f64,
    /// With leverage: interest on the debt, ETH.
    pub borrow_cost_eth: f64,
    /// With leverage: whether the position was liquidated.
    pub liquidated: bool,
}

/// Steps a day at which a levered path checks its health factor.
pub const LOAN_STEPS_PER_DAY: usize = 12;

/// A levered path's loan, in ETH at the time of the last accrual.
struct Loan {
    debt: f64,
    borrow_cost: f64,
    liquidation_loss: f64,
    liquidated: bool,
    /// Depths of the depeg episodes under way.
    active: Vec<f64>,
}

/// A risk event: which source, at what time (years).
#[derive(Debug, Clone, Copy)]
enum Event {
    /// Operator `k` slashed by AVS `i` (`docs/model.md#a-path`, first row of the table).
    OperatorAvs { k: usize, i: usize },
    /// AVS `i`'s incident hitting every operator allocated to it.
    Incident { i: usize },
    /// Operator `k`'s fault: every AVS it is allocated to slashes it.
    Fault { k: usize },
    /// Beacon-chain slashing of operator `k`'s validators.
    Beacon { k: usize },
    /// Protocol exploit of every operator's stake.
    Exploit,
    /// A depeg episode of depth `depth` starts (or ends) under a market oracle.
    Episode { depth: f64, starts: bool },
}

/// One operator's stake in ETH.
struct Operator {
    /// `(AVS index, allocation a_{k,i})` for each AVS with `a_{k,i} > 0`.
    allocations: Vec<(usize, f64)>,
    /// `unique`: the pool `A_{k,i}` of each allocation. Unused under `shared`.
    pools: Vec<f64>,
    /// `unique`: the unallocated remainder `U_k`; `shared`: the whole stake `S_k`.
    rest: f64,
    /// The same operator's stake under plain staking.
    plain: f64,
}

impl Operator {
    /// `S_k`.
    fn stake(&self, mode: StakeMode) -> f64 {
        match mode {
            StakeMode::Unique => self.pools.iter().sum::<f64>() + self.rest,
            StakeMode::Shared => self.rest,
        }
    }

    /// `E_{k,i}` of allocation `j`: the pool, or `a_{k,i} S_k`.
    fn exposure(&self, mode: StakeMode, j: usize) -> f64 {
        match mode {
            StakeMode::Unique => self.pools[j],
            StakeMode::Shared => self.allocations[j].1 * self.rest,
        }
    }

    /// AVS slash of allocation `j` with severity `s`; returns the ETH destroyed.
    fn slash(&mut self, mode: StakeMode, j: usize, s: f64) -> f64 {
        let loss = s * self.exposure(mode, j);
        match mode {
            StakeMode::Unique => self.pools[j] -= loss,
            StakeMode::Shared => self.rest -= loss,
        }
        loss
    }

    /// Multiplies the whole stake by `factor`; returns the ETH removed.
    fn scale(&mut self, factor: f64) -> f64 {
        let before: f64 = self.pools.iter().sum::<f64>() + self.rest;
        self.pools.iter_mut().for_each(|a| *a *= factor);
        self.rest *= factor;
        before * (1.0 - factor)
    }
}

/// A severity draw (`docs/model.md#a-path`); no severity is 0.
fn severity(spec: Option<&restake_core::SeveritySpec>, rng: &mut Xoshiro256PlusPlus) -> f64 {
    use restake_core::SeveritySpec as S;
    match spec {
        None => 0.0,
        Some(S::Fixed { value }) => *value,
        Some(S::Uniform { min, max }) => min + (max - min) * rng.random::<f64>(),
        Some(S::Beta {
            alpha,
            beta,
            min,
            max,
        }) => {
            let (lo, hi) = (min.unwrap_or(0.0), max.unwrap_or(1.0));
            let b = Beta::new(*alpha, *beta).expect("checked shapes");
            lo + (hi - lo) * b.sample(rng)
        }
    }
}

/// Samples the times of a Poisson process with annual probability `p` over `[0, T]`.
fn poisson_times(p: f64, horizon: f64, rng: &mut Xoshiro256PlusPlus) -> Vec<f64> {
    if p <= 0.0 {
        return Vec::new();
    }
    let mean = -(-p).ln_1p() * horizon;
    if mean <= 0.0 {
        return Vec::new();
    }
    let count = Poisson::new(mean).expect("finite mean").sample(rng) as usize;
    (0..count).map(|_| rng.random::<f64>() * horizon).collect()
}

/// Annual probability `p` of a source with factor correlation `rho` given the factor at
/// `z`: `Phi((Phi^-1(p) + sqrt(rho) z) / sqrt(1 - rho))` (`docs/model.md#systematic-factor`).
pub fn vasicek(p: f64, rho: f64, z: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, Normal};
    if rho == 0.0 || p == 0.0 || p == 1.0 {
        return p;
    }
    let n = Normal::standard();
    n.cdf((n.inverse_cdf(p) + rho.sqrt() * z) / (1.0 - rho).sqrt())
}

/// Simulates `paths` paths of the checked scenario `spec` with generator seed `seed`.
pub fn simulate(spec: &ScenarioSpec, paths: usize, seed: u64) -> Vec<Outcome> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    (0..paths).map(|_| path(spec, &mut rng)).collect()
}

fn path(spec: &ScenarioSpec, rng: &mut Xoshiro256PlusPlus) -> Outcome {
    let mode = spec.position.stake_mode;
    let principal = spec.position.principal_eth;
    let days = spec.position.horizon_days;
    let horizon = days / 365.0;
    let liquid = match spec.position.route {
        Route::Liquid => spec.liquid.as_ref(),
        Route::Native => None,
    };
    let reward_fee = liquid.map_or(0.0, |l| l.reward_fee);
    let lev = spec.leverage.as_ref();
    let leverage = lev.map_or(1.0, |l| l.leverage);

    // The systematic factor, and each kind's probability given it.
    let z: Option<f64> = spec.systematic.as_ref().map(|_| StandardNormal.sample(rng));
    let given_z = |p: f64, own: fn(&restake_core::stress::SystematicSpec) -> Option<f64>| match (
        &spec.systematic,
        z,
    ) {
        (Some(sys), Some(z)) => vasicek(p, own(sys).unwrap_or(sys.rho), z),
        _ => p,
    };

    // Base APR: Normal(mean, sd) redrawn until >= 0 (`docs/model.md#a-path`).
    let r_b = if spec.base.apr_sd == 0.0 {
        spec.base.apr_mean
    } else {
        loop {
            let z: f64 = StandardNormal.sample(rng);
            let r = spec.base.apr_mean + spec.base.apr_sd * z;
            if r >= 0.0 {
                break r;
            }
        }
    };
    let growth_rate = r_b * (1.0 - spec.base.fee);

    let mut operators: Vec<Operator> = spec
        .operators
        .iter()
        .map(|o| {
            let s0 = o.weight * principal * leverage;
            let allocations: Vec<(usize, f64)> = spec
                .avs
                .iter()
                .enumerate()
                .filter_map(|(i, a)| {
                    o.allocations
                        .get(&a.name)
                        .filter(|x| **x > 0.0)
                        .map(|x| (i, *x))
                })
                .collect();
            let allocated: f64 = allocations.iter().map(|a| a.1).sum();
            match mode {
                StakeMode::Unique => Operator {
                    pools: allocations.iter().map(|a| a.1 * s0).collect(),
                    rest: (1.0 - allocated).max(0.0) * s0,
                    allocations,
                    plain: o.weight * principal,
                },
                StakeMode::Shared => Operator {
                    pools: Vec::new(),
                    rest: s0,
                    allocations,
                    plain: o.weight * principal,
                },
            }
        })
        .collect();

    // Every source's events, each source on its own (`docs/model.md#a-path`).
    let mut events: Vec<(f64, Event)> = Vec::new();
    let mut add = |p: f64, e: Event, rng: &mut Xoshiro256PlusPlus| {
        for t in poisson_times(p, horizon, rng) {
            events.push((t, e));
        }
    };
    for (k, o) in spec.operators.iter().enumerate() {
        for &(i, _) in &operators[k].allocations {
            let a = &spec.avs[i];
            let p = o.slash_probs.get(&a.name).copied().unwrap_or(a.slash_prob);
            add(
                given_z(p, |s| s.avs_slashing),
                Event::OperatorAvs { k, i },
                rng,
            );
        }
        if !operators[k].allocations.is_empty() {
            add(
                given_z(o.fault_prob, |s| s.operator_fault),
                Event::Fault { k },
                rng,
            );
        }
        add(
            given_z(spec.base.slash_prob, |s| s.beacon),
            Event::Beacon { k },
            rng,
        );
    }
    for (i, a) in spec.avs.iter().enumerate() {
        if operators
            .iter()
            .any(|o| o.allocations.iter().any(|x| x.0 == i))
        {
            add(
                given_z(a.incident_prob, |s| s.avs_incident),
                Event::Incident { i },
                rng,
            );
        }
    }
    add(
        given_z(spec.protocol.exploit_prob, |s| s.protocol_exploit),
        Event::Exploit,
        rng,
    );
    // A market oracle's depeg episodes: start, depth, and end a fixed length later.
    if let (Some(l), Some(q)) = (lev, liquid)
        && l.oracle == restake_core::leverage::Oracle::Market
        && q.depeg_prob > 0.0
    {
        let length = q.depeg_days.expect("checked") / 365.0;
        for t in poisson_times(given_z(q.depeg_prob, |s| s.depeg), horizon, rng) {
            let depth = severity(q.depeg_discount.as_ref(), rng);
            events.push((
                t,
                Event::Episode {
                    depth,
                    starts: true,
                },
            ));
            events.push((
                t + length,
                Event::Episode {
                    depth,
                    starts: false,
                },
            ));
        }
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut loan = Loan {
        debt: (leverage - 1.0) * principal,
        borrow_cost: 0.0,
        liquidation_loss: 0.0,
        liquidated: false,
        active: Vec::new(),
    };
    let borrow_rate = lev.map_or(0.0, |l| l.borrow_apr);

    // Income accrued in ETH (AVS fees) and in token units.
    let mut fees_eth = 0.0;
    let mut token_units = vec![0.0; spec.tokens.len()];
    let token_index = |name: &str| spec.tokens.iter().position(|t| t.name == name);
    // Accrual over `d` years without events: every stake grows by e^{g d}; a rate on a
    // stake S earns S (e^{g d} - 1) / g (`docs/model.md#a-path`).
    let accrue = |operators: &mut [Operator], fees: &mut f64, units: &mut [f64], d: f64| {
        let factor = (growth_rate * d).exp();
        let integral = if growth_rate == 0.0 {
            d
        } else {
            (factor - 1.0) / growth_rate
        };
        for (k, op) in operators.iter_mut().enumerate() {
            let o = &spec.operators[k];
            let net = (1.0 - o.commission) * (1.0 - reward_fee);
            for inc in &spec.incentives {
                let j = token_index(&inc.token).expect("checked token");
                units[j] += net * inc.apr * op.stake(mode) * integral / spec.tokens[j].price_eth;
            }
            for j in 0..op.allocations.len() {
                let a = &spec.avs[op.allocations[j].0];
                let e = op.exposure(mode, j);
                *fees += net * a.fee_apr * e * integral;
                if let Some(t) = a.reward_token.as_deref().and_then(token_index) {
                    units[t] += net * a.reward_apr * e * integral / spec.tokens[t].price_eth;
                }
            }
            op.scale(factor);
            op.plain *= factor;
        }
    };
    // The debt over `d` years at the borrow rate.
    let grow_debt = |loan: &mut Loan, d: f64| {
        let grown = loan.debt * (borrow_rate * d).exp();
        loan.borrow_cost += grown - loan.debt;
        loan.debt = grown;
    };
    let stake_of = |operators: &[Operator]| operators.iter().map(|o| o.stake(mode)).sum::<f64>();

    let mut slashing_loss = 0.0;
    let mut t = 0.0;
    let mut next_event = 0;
    let steps = days.ceil() as usize;
    // A levered path looks at its health factor on a grid of steps; between accruals
    // the stake grows as e^{g d} and the debt as e^{r d}.
    let substeps = if lev.is_some() { LOAN_STEPS_PER_DAY } else { 1 };
    for day in 1..=steps {
        let day_start = ((day - 1) as f64 / 365.0).min(horizon);
        let day_end = (day as f64 / 365.0).min(horizon);
        for k in 1..=substeps {
            let step_end = day_start + (day_end - day_start) * k as f64 / substeps as f64;
            while next_event < events.len() && events[next_event].0 < step_end {
                let (te, event) = events[next_event];
                accrue(&mut operators, &mut fees_eth, &mut token_units, te - t);
                grow_debt(&mut loan, te - t);
                t = te;
                slashing_loss += apply(spec, mode, &mut operators, event, &mut loan, rng);
                if let Some(l) = lev {
                    liquidate(l, &mut operators, &mut loan, mode);
                }
                next_event += 1;
            }
            if let Some(l) = lev {
                let d = step_end - t;
                let collateral = stake_of(&operators) * (growth_rate * d).exp();
                let debt = loan.debt * (borrow_rate * d).exp();
                if health(l, collateral, oracle(&loan, l), debt) < 1.0 {
                    accrue(&mut operators, &mut fees_eth, &mut token_units, d);
                    grow_debt(&mut loan, d);
                    t = step_end;
                    liquidate(l, &mut operators, &mut loan, mode);
                }
            }
        }
        accrue(&mut operators, &mut fees_eth, &mut token_units, day_end - t);
        grow_debt(&mut loan, day_end - t);
        t = day_end;
    }

    // The horizon (`docs/model.md#a-path`): tokens at X(T), then the market exit.
    let tokens_eth: f64 = spec
        .tokens
        .iter()
        .zip(&token_units)
        .map(|(tok, units)| {
            let z: f64 = if tok.volatility > 0.0 {
                StandardNormal.sample(rng)
            } else {
                0.0
            };
            let log_growth = (tok.drift - 0.5 * tok.volatility * tok.volatility) * horizon
                + tok.volatility * horizon.sqrt() * z;
            units * tok.price_eth * log_growth.exp()
        })
        .sum();
    let stake_eth: f64 = operators.iter().map(|o| o.stake(mode)).sum();
    // The market exit: one draw decides the depeg, a second its discount.
    let depeg_loss = match liquid {
        Some(l)
            if l.exit == ExitMode::Market
                && l.depeg_prob > 0.0
                && rng.random::<f64>() < given_z(l.depeg_prob, |s| s.depeg) =>
        {
            severity(l.depeg_discount.as_ref(), rng) * stake_eth
        }
        _ => 0.0,
    };
    // The loan is repaid out of the collateral sold; the holder's part is at least 0.
    let value = (stake_eth - depeg_loss - loan.debt).max(0.0) + fees_eth + tokens_eth;
    let plain: f64 = operators.iter().map(|o| o.plain).sum();
    Outcome {
        net_return: value / principal - 1.0,
        excess_return: (value - plain) / principal,
        slashing_loss_eth: slashing_loss,
        liquidation_loss_eth: loan.liquidation_loss,
        borrow_cost_eth: loan.borrow_cost,
        liquidated: loan.liquidated,
    }
}

/// The oracle's factor: `1 - d` of the deepest episode under way (market oracle).
fn oracle(loan: &Loan, lev: &restake_core::leverage::LeverageSpec) -> f64 {
    match lev.oracle {
        restake_core::leverage::Oracle::Market => {
            1.0 - loan.active.iter().copied().fold(0.0, f64::max)
        }
        restake_core::leverage::Oracle::ExchangeRate => 1.0,
    }
}

/// `LT × collateral × oracle / debt`.
fn health(
    lev: &restake_core::leverage::LeverageSpec,
    collateral: f64,
    oracle: f64,
    debt: f64,
) -> f64 {
    if debt > 0.0 {
        lev.liquidation_threshold * collateral * oracle / debt
    } else {
        f64::INFINITY
    }
}

/// Aave V3's liquidations while `HF < 1` (`docs/model.md#leverage`): repay the close
/// factor's share of the debt (all below `full_close_below_hf`), seize `repaid (1 + bonus)`
/// at the oracle's price from every operator in proportion; when the collateral runs out
/// the rest of the debt is written off.
fn liquidate(
    lev: &restake_core::leverage::LeverageSpec,
    operators: &mut [Operator],
    loan: &mut Loan,
    mode: StakeMode,
) {
    let o = oracle(loan, lev);
    let gross = 1.0 + lev.liquidation_bonus;
    for _ in 0..2000 {
        let collateral: f64 = operators.iter().map(|op| op.stake(mode)).sum();
        let hf = health(lev, collateral, o, loan.debt);
        if hf >= 1.0 || collateral <= 0.0 {
            break;
        }
        loan.liquidated = true;
        let share = if hf < lev.full_close_below_hf {
            1.0
        } else {
            lev.close_factor
        };
        let mut repay = share * loan.debt;
        let mut seize = repay * gross / o;
        if seize >= collateral {
            seize = collateral;
            repay = collateral * o / gross;
        }
        loan.liquidation_loss += seize - repay;
        loan.debt -= repay;
        let kept = 1.0 - seize / collateral;
        for op in operators.iter_mut() {
            op.scale(kept);
        }
        if seize == collateral {
            loan.debt = 0.0;
        }
    }
}

/// Applies one event to the stakes; returns the ETH destroyed.
fn apply(
    spec: &ScenarioSpec,
    mode: StakeMode,
    operators: &mut [Operator],
    event: Event,
    loan: &mut Loan,
    rng: &mut Xoshiro256PlusPlus,
) -> f64 {
    let vetoed = |i: usize, rng: &mut Xoshiro256PlusPlus| {
        let v = spec.avs[i].veto_prob;
        v > 0.0 && rng.random::<f64>() < v
    };
    let slot = |op: &Operator, i: usize| op.allocations.iter().position(|a| a.0 == i);
    match event {
        Event::OperatorAvs { k, i } => {
            if vetoed(i, rng) {
                return 0.0;
            }
            let s = severity(spec.avs[i].slash_severity.as_ref(), rng);
            let j = slot(&operators[k], i).expect("allocated");
            operators[k].slash(mode, j, s)
        }
        Event::Incident { i } => {
            if vetoed(i, rng) {
                return 0.0;
            }
            let s = severity(spec.avs[i].incident_severity.as_ref(), rng);
            operators
                .iter_mut()
                .map(|op| slot(op, i).map_or(0.0, |j| op.slash(mode, j, s)))
                .sum()
        }
        Event::Fault { k } => {
            let mut loss = 0.0;
            for j in 0..operators[k].allocations.len() {
                let i = operators[k].allocations[j].0;
                if !vetoed(i, rng) {
                    let s = severity(spec.avs[i].slash_severity.as_ref(), rng);
                    loss += operators[k].slash(mode, j, s);
                }
            }
            loss
        }
        Event::Beacon { k } => {
            let s = severity(spec.base.slash_severity.as_ref(), rng);
            operators[k].plain *= 1.0 - s;
            operators[k].scale(1.0 - s)
        }
        Event::Exploit => {
            let s = severity(spec.protocol.exploit_severity.as_ref(), rng);
            operators.iter_mut().map(|op| op.scale(1.0 - s)).sum()
        }
        Event::Episode { depth, starts } => {
            if starts {
                loan.active.push(depth);
            } else if let Some(i) = loan.active.iter().position(|d| *d == depth) {
                loan.active.swap_remove(i);
            }
            0.0
        }
    }
}
