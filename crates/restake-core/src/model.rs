//! The compiled position: stake pools, the risk sources with their intensities, the
//! income rates and the contribution rows, all precomputed from a [`Scenario`].

use rand_distr::Poisson;

use crate::DAYS_PER_YEAR;
use crate::sampling::Severity;
use crate::scenario::{ExitMode, Route, Scenario, StakeMode};
use crate::stress::FactorLaw;

/// Kind of a row of `contributions.csv` (README, "Output files").
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ContributionKind {
    /// Operator–AVS slashings of one AVS, over all operators.
    AvsSlashing,
    /// AVS-wide incidents of one AVS.
    AvsIncident,
    /// Operator-wide faults of one operator.
    OperatorFault,
    /// Beacon-chain slashings of one operator's validators.
    Beacon,
    /// Restaking-protocol or LRT contract exploit.
    ProtocolExploit,
    /// Market-exit depeg of the LRT.
    Depeg,
    /// Income, entered as a negative loss.
    Income,
    /// A levered position's losses to liquidations: collateral seized less debt repaid
    /// (`docs/model.md#leverage`).
    Liquidation,
    /// A levered position's interest on its debt.
    BorrowCost,
    /// Debt left unpaid when a levered position's collateral ran out: the lender's loss,
    /// entered as a negative loss (the holder loses no more than its equity).
    BadDebt,
    /// All slashing through one AVS: its slashings, its incidents and its share of
    /// operator faults (a breakdown of the rows above, not added to them).
    Avs,
    /// All slashing of one operator's stake, from every source (a breakdown of the rows
    /// above, not added to them).
    Operator,
}

impl ContributionKind {
    /// The `kind` column's text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AvsSlashing => "avs_slashing",
            Self::AvsIncident => "avs_incident",
            Self::OperatorFault => "operator_fault",
            Self::Beacon => "beacon",
            Self::ProtocolExploit => "protocol_exploit",
            Self::Depeg => "depeg",
            Self::Income => "income",
            Self::Liquidation => "liquidation",
            Self::BorrowCost => "borrow_cost",
            Self::BadDebt => "bad_debt",
            Self::Avs => "avs",
            Self::Operator => "operator",
        }
    }
}

/// One row of the loss attribution: a kind and the AVS, operator or income stream it
/// belongs to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContributionRow {
    /// AVS name, operator name, `protocol`, `lrt`, the income stream (`base_rewards`,
    /// `avs_fees`, `token_incentives`), or `loan` (the leverage rows).
    pub source: String,
    /// What kind of source it is.
    pub kind: ContributionKind,
}

/// Where a slashing lands: stake pool `pool` loses `share × s` of its amount, for a
/// severity `s` (`share` is 1 under `unique`, `a_{k,i}` under `shared`; `docs/model.md#a-path`).
#[derive(Debug, Clone, Copy)]
pub struct Hit {
    /// Index into the path's pool vector.
    pub pool: usize,
    /// Slashable share of the pool.
    pub share: f64,
}

/// What an event of a risk source does (`docs/model.md#a-path`, the table of sources).
#[derive(Debug, Clone)]
pub enum SourceKind {
    /// Operator–AVS slashing `(k, i)`: one request to AVS `avs`, severity from its
    /// slashing distribution.
    OperatorAvs {
        /// AVS index.
        avs: usize,
        /// Operator `k`'s exposure to it.
        hit: Hit,
    },
    /// AVS-wide incident: one request, one severity shared by every hit.
    AvsIncident {
        /// AVS index.
        avs: usize,
        /// Every operator allocated to the AVS.
        hits: Vec<Hit>,
    },
    /// Operator-wide fault: one request per AVS the operator is allocated to, each with
    /// its own veto and severity draw.
    OperatorFault {
        /// `(AVS index, exposure)` for each allocation of the operator.
        hits: Vec<(usize, Hit)>,
    },
    /// Beacon-chain slashing: every pool of operator `operator` shrinks by `(1 - s)`, and
    /// so does the plain-staking benchmark's stake with that operator.
    Beacon {
        /// Operator index.
        operator: usize,
    },
    /// Protocol exploit: every pool shrinks by `(1 - s)`.
    Exploit,
}

/// A Poisson risk source: its intensity, what it hits, and its contribution row.
#[derive(Debug, Clone)]
pub struct Source {
    /// Annual intensity `lambda = -ln(1 - p)` (0 for a source with `p = 0`).
    pub intensity: f64,
    /// Intensity its candidate events are drawn at, at least `intensity`: higher only
    /// when models are coupled ([`Model::couple`]), each candidate then kept with
    /// probability `keep` (thinning, Lewis and Shedler 1979).
    pub sampling_intensity: f64,
    /// `intensity / sampling_intensity` (1 unless coupled).
    pub keep: f64,
    /// Its annual probability and factor correlation (`rho = 0` without `[systematic]`).
    pub law: FactorLaw,
    /// With a factor, the laws of this source in the models it is coupled with (its
    /// own included): a path samples its candidate events at the largest of their
    /// intensities given the factor. Just its own law when not coupled.
    pub sampling_laws: Vec<FactorLaw>,
    /// What an event does.
    pub kind: SourceKind,
    /// Index of its row in [`Model::rows`].
    pub row: usize,
}

/// Per-AVS sampling data.
#[derive(Debug, Clone)]
pub struct AvsModel {
    /// Slashing severity (fixed 0 when the scenario gives none: unreachable then).
    pub slash_severity: Severity,
    /// Incident severity (fixed 0 when the scenario gives none).
    pub incident_severity: Severity,
    /// Veto probability `v_i`.
    pub veto_prob: f64,
    /// Set by [`Model::couple`] when a model it is coupled with has `v_i > 0`: every
    /// slashing request then draws its veto and its severity, vetoed or not, so that the
    /// draws of each request are the same at every point of the sweep.
    pub coupled_veto: bool,
}

/// A reward token's GBM, `X(t) = X(0) exp((mu - sigma^2/2) t + sigma W(t))`.
#[derive(Debug, Clone, Copy)]
pub struct TokenModel {
    /// `ln X(0)`, `X(0)` in ETH.
    pub ln_price0: f64,
    /// `mu - sigma^2 / 2`, a year.
    pub log_drift: f64,
    /// `sigma`, a year.
    pub volatility: f64,
}

/// Converts an annual probability of at least one event into a Poisson intensity a year,
/// `lambda = -ln(1 - p)` (`docs/model.md#a-path`). `p` must be in [0, 1).
pub fn intensity(p: f64) -> f64 {
    -(-p).ln_1p()
}

/// The compiled position, ready for path simulation.
///
/// Pools: under `unique`, operator `k` owns one pool per allocated AVS and one for its
/// unallocated remainder; under `shared`, one pool, its whole stake. Pool amounts are
/// kept *discounted by base growth*, `A(t) e^{-g t}`, so that they change only at events.
#[derive(Debug, Clone)]
pub struct Model {
    /// Principal `P` in ETH.
    pub principal_eth: f64,
    /// Horizon `T` in years.
    pub horizon_years: f64,
    /// Mean of the base APR.
    pub base_apr_mean: f64,
    /// Sd of the base APR before truncation.
    pub base_apr_sd: f64,
    /// `1 - phi_b`: the holder's share of base rewards.
    pub base_keep: f64,
    /// Initial pool amounts in ETH: the collateral `L P` with leverage, else `P`.
    pub pools0: Vec<f64>,
    /// Pools of each operator, as a range of pool indices.
    pub operator_pools: Vec<std::ops::Range<usize>>,
    /// Operator owning each pool.
    pub pool_operator: Vec<usize>,
    /// Initial stake with each operator in the plain-staking benchmark, `w_k P`.
    pub plain0: Vec<f64>,
    /// Sum of [`Model::plain0`].
    pub plain0_sum: f64,
    /// Income streams × pools, row-major: stream 0 is the AVS fee rate (ETH a year per
    /// discounted ETH of the pool), stream `1 + j` token `j`'s rate (tokens a year).
    pub income_coef: Vec<f64>,
    /// Income stream rates at the start of a path, [`Model::stream_rates`] of `pools0`.
    pub rates0: Vec<f64>,
    /// Discounted stake at the start of a path, the sum of `pools0`.
    pub stake0: f64,
    /// Number of income streams, `1 + tokens`.
    pub streams: usize,
    /// Risk sources, one for every structural possibility (zero-intensity ones included).
    pub sources: Vec<Source>,
    /// Running sum of the sources' sampling intensities (for picking an event's source).
    pub cumulative_intensity: Vec<f64>,
    /// Poisson law of the total event count over the horizon (`None` without risk).
    pub event_count: Option<Poisson<f64>>,
    /// Per-AVS severities and veto.
    pub avs: Vec<AvsModel>,
    /// Severity of beacon-chain slashings.
    pub beacon_severity: Severity,
    /// Severity of protocol exploits.
    pub exploit_severity: Severity,
    /// Market-exit depeg: probability and discount.
    pub depeg: Option<(f64, Severity)>,
    /// Reward tokens.
    pub tokens: Vec<TokenModel>,
    /// Checkpoint times in years: every `checkpoint_days` before the horizon, then `T`.
    pub checkpoints_years: Vec<f64>,
    /// The same checkpoints in days.
    pub checkpoints_days: Vec<f64>,
    /// Years from each checkpoint's predecessor (time 0 for the first) to it.
    pub checkpoint_steps: Vec<f64>,
    /// Square roots of [`Model::checkpoint_steps`], the sd of a Brownian increment.
    pub checkpoint_sqrt_steps: Vec<f64>,
    /// The rows `token × checkpoints + c` of the tokens with a volatility, ascending: a
    /// path's normal increments, in the order its stream draws them
    /// ([`crate::normal`]). The other tokens' increments are 0.
    pub normal_rows: Vec<usize>,
    /// Length of the leading run of equal steps (every step but maybe the last).
    pub equal_steps: usize,
    /// Contribution rows: per AVS `avs_slashing`, `avs_incident`; per operator
    /// `operator_fault`, `beacon`; then `protocol_exploit`, `depeg`, three `income`
    /// rows (see [`Model::ROW_BASE_INCOME`] and the two after it), and with leverage
    /// `liquidation`, `borrow_cost` and `bad_debt` ([`crate::leverage::Leverage::row`]).
    /// These add up to the loss. Then the breakdowns: one `avs` row per AVS and one `operator` row per
    /// operator ([`Model::avs_row`], [`Model::operator_row`]).
    pub rows: Vec<ContributionRow>,
    /// Row of the depeg.
    pub depeg_row: usize,
    /// Row of base income; AVS fees and token incentives follow.
    pub income_row: usize,
    /// Row of the first AVS's breakdown.
    avs_row0: usize,
    /// Row of the first operator's breakdown.
    operator_row0: usize,
    /// The systematic factor, when the scenario has `[systematic]`
    /// (`docs/model.md#systematic-factor`).
    pub factor: Option<Factor>,
    /// The stress test this model runs, if any (`docs/model.md#stress-tests`).
    pub stress: Option<Stress>,
    /// The loan of a levered position (`docs/model.md#leverage`).
    pub leverage: Option<crate::leverage::Leverage>,
}

/// The systematic factor of a model: the distinct laws of its sources, which a path
/// conditions on its factor `Z` once each (`docs/model.md#systematic-factor`).
#[derive(Debug, Clone)]
pub struct Factor {
    /// Distinct `(p, rho)` laws of the sources and of their coupled counterparts.
    pub laws: Vec<FactorLaw>,
    /// Per source, the index in `laws` of its own law.
    pub own: Vec<u32>,
    /// The distinct sets of sampling laws ([`Source::sampling_laws`]) of the sources,
    /// each as indices in `laws`: a source samples its candidate events at the largest
    /// of its set's intensities given `Z`.
    pub sets: Vec<Vec<u32>>,
    /// Per source, the index in `sets` of its sampling laws.
    pub set_of: Vec<u32>,
    /// Per set, how many sources sample with it (a count, as a float): the path's total
    /// sampling intensity is `sum_m sources_m × bound_m`, one term a set.
    pub set_sources: Vec<f64>,
    /// The depeg's law (probability `q_depeg`), when the model has a depeg.
    pub depeg: Option<FactorLaw>,
    /// Per law, its intensity at the [`Factor::GRID_STEPS`] + 1 points of the factor's
    /// grid on [-[`Factor::GRID_MAX`], [`Factor::GRID_MAX`]], point-major (the laws of
    /// one point side by side: a path reads one run of them).
    pub table: Vec<f64>,
}

impl Factor {
    /// Half-width of the factor's grid: |factor_z| is at most 10, and a drawn `Z`
    /// beyond 10.5 (probability 1e-25) takes the exact intensities.
    pub const GRID_MAX: f64 = 10.5;
    /// Steps of the grid (0.0205 each): a bound exceeds the intensity by a few per cent
    /// at small correlations (tens of per cent at 0.8), the share of candidate events
    /// thinned away.
    pub const GRID_STEPS: usize = 1024;
    /// Relative margin of a bound over the tabulated intensity, for rounding.
    const MARGIN: f64 = 1.0 + 1e-12;

    /// Tabulates every law's intensity on the grid.
    fn tabulate(&mut self) {
        let h = 2.0 * Self::GRID_MAX / Self::GRID_STEPS as f64;
        self.table = (0..=Self::GRID_STEPS)
            .flat_map(|k| {
                self.laws
                    .iter()
                    .map(move |law| law.intensity_at(-Self::GRID_MAX + h * k as f64))
            })
            .collect();
    }

    /// An upper bound of each law's intensity given the factor at `z`, into `bounds`:
    /// the tabulated intensity at the next grid point above `z` (intensities increase
    /// with `z`), with a margin for rounding; the exact intensity off the grid.
    pub fn bounds(&self, z: f64, bounds: &mut [f64]) {
        let h = 2.0 * Self::GRID_MAX / Self::GRID_STEPS as f64;
        let x = (z + Self::GRID_MAX) / h;
        // The cell is `floor(x)`; on `[0, GRID_STEPS)` that is the truncation (no call
        // to the C library's `floor` on the x86-64 baseline).
        if (0.0..Self::GRID_STEPS as f64).contains(&x) {
            let n = self.laws.len();
            let next = (x as usize + 1) * n;
            for (b, at) in bounds.iter_mut().zip(&self.table[next..next + n]) {
                *b = at * Self::MARGIN;
            }
        } else {
            for (b, law) in bounds.iter_mut().zip(&self.laws) {
                *b = law.intensity_at(z);
            }
        }
    }
}

/// A forced event of a compiled stress: the sources it fires, at one time, each
/// without veto.
#[derive(Debug, Clone)]
pub struct ForcedEvent {
    /// Time in years; `None`: uniform over the horizon, drawn on each path.
    pub time_years: Option<f64>,
    /// Indices into [`Model::sources`]: one, or every operator–AVS slashing of an AVS
    /// (a pick of `avs_slashing`).
    pub sources: Vec<usize>,
    /// Index into [`Stress::severities`] of its severity; `None`: each source's law.
    pub severity: Option<usize>,
}

/// A forced depeg episode (`depeg_episode`): what a market oracle sees for its length.
#[derive(Debug, Clone)]
pub struct ForcedEpisode {
    /// Start in years; `None`: uniform over the horizon, drawn on each path.
    pub time_years: Option<f64>,
    /// Length in years.
    pub years: f64,
    /// Index into [`Stress::severities`] of its depth.
    pub depth: usize,
}

/// A compiled `[[stress.pick]]`: `count` distinct members of `group` on each path.
#[derive(Debug, Clone)]
pub struct ForcedPick {
    /// The events each member of the group would fire.
    pub group: Vec<ForcedEvent>,
    /// How many members fire on each path.
    pub count: usize,
}

/// A compiled stress test (`docs/model.md#stress-tests`).
#[derive(Debug, Clone)]
pub struct Stress {
    /// Whether the random risk sources (and the random depeg) stay on.
    pub random: bool,
    /// The factor's value on every path, if held.
    pub factor_z: Option<f64>,
    /// The forced events.
    pub events: Vec<ForcedEvent>,
    /// The picks.
    pub picks: Vec<ForcedPick>,
    /// The forced depeg's discount law, if the stress forces one.
    pub depeg: Option<Severity>,
    /// Forced depeg episodes of a levered position's oracle.
    pub episodes: Vec<ForcedEpisode>,
    /// Severities given by the stress's events and picks.
    pub severities: Vec<Severity>,
}

impl Model {
    /// Offset of the base-income row from [`Model::income_row`].
    pub const ROW_BASE_INCOME: usize = 0;
    /// Offset of the AVS-fee row from [`Model::income_row`].
    pub const ROW_AVS_FEES: usize = 1;
    /// Offset of the token-incentive row from [`Model::income_row`].
    pub const ROW_TOKENS: usize = 2;

    /// Compiles a checked scenario (`docs/model.md#a-path`).
    pub fn new(scenario: &Scenario) -> Self {
        let spec = scenario.spec();
        let pos = &spec.position;
        let p = pos.principal_eth;
        let (reward_fee, depeg) = match (&spec.liquid, pos.route) {
            (Some(l), Route::Liquid) => (
                l.reward_fee,
                match (&l.exit, &l.depeg_discount) {
                    (ExitMode::Market, Some(d)) if l.depeg_prob > 0.0 => {
                        Some((l.depeg_prob, Severity::new(d)))
                    }
                    _ => None,
                },
            ),
            _ => (0.0, None),
        };
        let token_index = |name: &str| {
            spec.tokens
                .iter()
                .position(|t| t.name == name)
                .expect("token names checked by Scenario")
        };
        let streams = 1 + spec.tokens.len();

        // Contribution rows, in the documented order.
        let mut rows = Vec::new();
        for a in &spec.avs {
            for kind in [ContributionKind::AvsSlashing, ContributionKind::AvsIncident] {
                rows.push(ContributionRow {
                    source: a.name.clone(),
                    kind,
                });
            }
        }
        for o in &spec.operators {
            for kind in [ContributionKind::OperatorFault, ContributionKind::Beacon] {
                rows.push(ContributionRow {
                    source: o.name.clone(),
                    kind,
                });
            }
        }
        let exploit_row = rows.len();
        rows.push(ContributionRow {
            source: "protocol".into(),
            kind: ContributionKind::ProtocolExploit,
        });
        let depeg_row = rows.len();
        rows.push(ContributionRow {
            source: "lrt".into(),
            kind: ContributionKind::Depeg,
        });
        let income_row = rows.len();
        for name in ["base_rewards", "avs_fees", "token_incentives"] {
            rows.push(ContributionRow {
                source: name.into(),
                kind: ContributionKind::Income,
            });
        }
        let leverage_row = rows.len();
        if spec.leverage.is_some() {
            for kind in [
                ContributionKind::Liquidation,
                ContributionKind::BorrowCost,
                ContributionKind::BadDebt,
            ] {
                rows.push(ContributionRow {
                    source: "loan".into(),
                    kind,
                });
            }
        }
        let avs_row0 = rows.len();
        rows.extend(spec.avs.iter().map(|a| ContributionRow {
            source: a.name.clone(),
            kind: ContributionKind::Avs,
        }));
        let operator_row0 = rows.len();
        rows.extend(spec.operators.iter().map(|o| ContributionRow {
            source: o.name.clone(),
            kind: ContributionKind::Operator,
        }));
        let avs_row = |i: usize, incident: bool| 2 * i + usize::from(incident);
        let op_row = |k: usize, beacon: bool| 2 * spec.avs.len() + 2 * k + usize::from(beacon);

        // Pools and income coefficients.
        let mut pools0 = Vec::new();
        let mut operator_pools = Vec::new();
        let mut pool_coef: Vec<Vec<f64>> = Vec::new(); // per pool, per stream
        // exposures[k] = (avs, hit) for each allocation of operator k, in AVS order.
        let mut exposures: Vec<Vec<(usize, Hit)>> = Vec::new();
        // The collateral: everything that happens to the LRT's stake happens to `L P`.
        let collateral = p * spec.leverage.as_ref().map_or(1.0, |l| l.leverage);
        for o in &spec.operators {
            let stake = o.weight * collateral;
            let net = (1.0 - o.commission) * (1.0 - reward_fee);
            let start = pools0.len();
            let mut exp = Vec::new();
            // Incentives on the whole stake apply to every pool.
            let mut stake_coef = vec![0.0; streams];
            for inc in &spec.incentives {
                let j = token_index(&inc.token);
                stake_coef[1 + j] += net * inc.apr / spec.tokens[j].price_eth;
            }
            // Income coefficient of stake exposed to AVS i with allocation a.
            let avs_coef = |coef: &mut [f64], i: usize, a: f64| {
                let avs = &spec.avs[i];
                coef[0] += net * avs.fee_apr * a;
                if let Some(tok) = &avs.reward_token {
                    let j = token_index(tok);
                    coef[1 + j] += net * avs.reward_apr * a / spec.tokens[j].price_eth;
                }
            };
            let allocated: Vec<(usize, f64)> = spec
                .avs
                .iter()
                .enumerate()
                .filter_map(|(i, a)| {
                    o.allocations
                        .get(&a.name)
                        .copied()
                        .filter(|x| *x > 0.0)
                        .map(|x| (i, x))
                })
                .collect();
            match pos.stake_mode {
                StakeMode::Unique => {
                    let mut remainder = 1.0;
                    for &(i, a) in &allocated {
                        let mut coef = stake_coef.clone();
                        avs_coef(&mut coef, i, 1.0);
                        exp.push((
                            i,
                            Hit {
                                pool: pools0.len(),
                                share: 1.0,
                            },
                        ));
                        pools0.push(a * stake);
                        pool_coef.push(coef);
                        remainder -= a;
                    }
                    pools0.push(remainder.max(0.0) * stake);
                    pool_coef.push(stake_coef);
                }
                StakeMode::Shared => {
                    let mut coef = stake_coef;
                    for &(i, a) in &allocated {
                        avs_coef(&mut coef, i, a);
                        exp.push((
                            i,
                            Hit {
                                pool: pools0.len(),
                                share: a,
                            },
                        ));
                    }
                    pools0.push(stake);
                    pool_coef.push(coef);
                }
            }
            operator_pools.push(start..pools0.len());
            exposures.push(exp);
        }
        let n_pools = pools0.len();
        let pool_operator = operator_pools
            .iter()
            .enumerate()
            .flat_map(|(k, r)| r.clone().map(move |_| k))
            .collect();
        let mut income_coef = vec![0.0; streams * n_pools];
        for (pool, coef) in pool_coef.iter().enumerate() {
            for (m, c) in coef.iter().enumerate() {
                income_coef[m * n_pools + pool] = *c;
            }
        }

        // Risk sources.
        let mut sources = Vec::new();
        // Every source, even at p = 0 (it then never has an event), so that the list
        // depends on the scenario's structure only and models can be coupled.
        let rho_of =
            |kind: ContributionKind| spec.systematic.as_ref().map_or(0.0, |sys| sys.rho_of(kind));
        let mut push = |prob: f64, kind: SourceKind, row: usize| {
            let lambda = intensity(prob);
            let law = FactorLaw::new(prob, rho_of(rows[row].kind));
            sources.push(Source {
                intensity: lambda,
                sampling_intensity: lambda,
                keep: 1.0,
                law,
                sampling_laws: vec![law],
                kind,
                row,
            });
        };
        for (k, o) in spec.operators.iter().enumerate() {
            for &(i, hit) in &exposures[k] {
                let avs = &spec.avs[i];
                let prob = o
                    .slash_probs
                    .get(&avs.name)
                    .copied()
                    .unwrap_or(avs.slash_prob);
                push(
                    prob,
                    SourceKind::OperatorAvs { avs: i, hit },
                    avs_row(i, false),
                );
            }
        }
        for (i, a) in spec.avs.iter().enumerate() {
            let hits: Vec<Hit> = exposures
                .iter()
                .flat_map(|e| e.iter().filter(|(j, _)| *j == i).map(|(_, h)| *h))
                .collect();
            if !hits.is_empty() {
                push(
                    a.incident_prob,
                    SourceKind::AvsIncident { avs: i, hits },
                    avs_row(i, true),
                );
            }
        }
        for (k, o) in spec.operators.iter().enumerate() {
            if !exposures[k].is_empty() {
                push(
                    o.fault_prob,
                    SourceKind::OperatorFault {
                        hits: exposures[k].clone(),
                    },
                    op_row(k, false),
                );
            }
            push(
                spec.base.slash_prob,
                SourceKind::Beacon { operator: k },
                op_row(k, true),
            );
        }
        push(spec.protocol.exploit_prob, SourceKind::Exploit, exploit_row);

        let horizon_years = scenario.horizon_years();

        let zero = Severity::Fixed(0.0);
        let severity =
            |s: &Option<crate::SeveritySpec>| s.as_ref().map_or(zero.clone(), Severity::new);
        let avs = spec
            .avs
            .iter()
            .map(|a| AvsModel {
                slash_severity: severity(&a.slash_severity),
                incident_severity: severity(&a.incident_severity),
                veto_prob: a.veto_prob,
                coupled_veto: false,
            })
            .collect();
        let tokens: Vec<TokenModel> = spec
            .tokens
            .iter()
            .map(|t| TokenModel {
                ln_price0: t.price_eth.ln(),
                log_drift: t.drift - 0.5 * t.volatility * t.volatility,
                volatility: t.volatility,
            })
            .collect();

        let horizon_days = pos.horizon_days;
        let step = spec.simulation.checkpoint_days;
        let mut checkpoints_days: Vec<f64> = (1..)
            .map(|m| m as f64 * step)
            .take_while(|d| *d < horizon_days * (1.0 - 1e-12))
            .collect();
        checkpoints_days.push(horizon_days);
        let checkpoints_years = checkpoints_days.iter().map(|d| d / DAYS_PER_YEAR).collect();
        // Steps between checkpoints, from the days so that equal steps are equal floats.
        let checkpoint_steps: Vec<f64> = checkpoints_days
            .iter()
            .scan(0.0, |prev, &d| {
                let step = (d - *prev) / DAYS_PER_YEAR;
                *prev = d;
                Some(step)
            })
            .collect();
        let checkpoint_sqrt_steps = checkpoint_steps.iter().map(|s| s.sqrt()).collect();
        let equal_steps = checkpoint_steps
            .iter()
            .take_while(|s| **s == checkpoint_steps[0])
            .count();
        let n_checkpoints = checkpoint_steps.len();
        let normal_rows = tokens
            .iter()
            .enumerate()
            .filter(|(_, t)| t.volatility > 0.0)
            .flat_map(|(j, _)| j * n_checkpoints..(j + 1) * n_checkpoints)
            .collect();

        let mut model = Self {
            principal_eth: p,
            horizon_years,
            base_apr_mean: spec.base.apr_mean,
            base_apr_sd: spec.base.apr_sd,
            base_keep: 1.0 - spec.base.fee,
            plain0_sum: spec.operators.iter().map(|o| o.weight * p).sum(),
            plain0: spec.operators.iter().map(|o| o.weight * p).collect(),
            pools0,
            operator_pools,
            pool_operator,
            income_coef,
            streams,
            sources,
            cumulative_intensity: Vec::new(),
            event_count: None,
            avs,
            beacon_severity: severity(&spec.base.slash_severity),
            exploit_severity: severity(&spec.protocol.exploit_severity),
            depeg,
            tokens,
            checkpoints_years,
            checkpoints_days,
            checkpoint_steps,
            checkpoint_sqrt_steps,
            normal_rows,
            equal_steps,
            rows,
            depeg_row,
            income_row,
            avs_row0,
            operator_row0,
            rates0: Vec::new(),
            stake0: 0.0,
            factor: spec.systematic.as_ref().map(|_| Factor {
                laws: Vec::new(),
                own: Vec::new(),
                sets: Vec::new(),
                set_of: Vec::new(),
                set_sources: Vec::new(),
                depeg: None,
                table: Vec::new(),
            }),
            stress: None,
            leverage: None,
        };
        if let (Some(f), Some((prob, _))) = (&mut model.factor, &model.depeg) {
            f.depeg = Some(FactorLaw::new(*prob, rho_of(ContributionKind::Depeg)));
        }
        model.leverage = crate::leverage::Leverage::new(
            spec,
            p,
            leverage_row,
            &model.checkpoints_years,
            rho_of(ContributionKind::Depeg),
        );
        let mut rates0 = vec![0.0; model.streams];
        model.stake0 = model.stream_rates(&model.pools0, &mut rates0);
        model.rates0 = rates0;
        model.sample_sources();
        model
    }

    /// Builds the superposed event process from the sources' sampling intensities: the
    /// running sums that pick an event's source, and the law of the event count.
    fn sample_sources(&mut self) {
        let mut total = 0.0;
        self.cumulative_intensity = self
            .sources
            .iter()
            .map(|s| {
                total += s.sampling_intensity;
                total
            })
            .collect();
        // The mean can underflow to 0 for a tiny probability over a short horizon: no
        // event then, as for no risk.
        let mean = total * self.horizon_years;
        self.event_count = (mean > 0.0 && mean.is_finite())
            .then(|| Poisson::new(mean).expect("finite positive event mean"));
        if let Some(factor) = &mut self.factor {
            let mut laws: Vec<FactorLaw> = Vec::new();
            let mut index = |law: &FactorLaw| {
                let at = laws.iter().position(|l| l == law).unwrap_or_else(|| {
                    laws.push(*law);
                    laws.len() - 1
                });
                at as u32
            };
            factor.own = self.sources.iter().map(|s| index(&s.law)).collect();
            let sampling: Vec<Vec<u32>> = self
                .sources
                .iter()
                .map(|s| s.sampling_laws.iter().map(&mut index).collect())
                .collect();
            factor.laws = laws;
            factor.sets.clear();
            factor.set_sources.clear();
            factor.set_of = sampling
                .into_iter()
                .map(|set| {
                    let at = factor
                        .sets
                        .iter()
                        .position(|s| *s == set)
                        .unwrap_or_else(|| {
                            factor.sets.push(set);
                            factor.set_sources.push(0.0);
                            factor.sets.len() - 1
                        });
                    factor.set_sources[at] += 1.0;
                    at as u32
                })
                .collect();
            factor.tabulate();
        }
    }

    /// Couples models of scenarios that differ only in their probabilities (a sweep):
    /// each source is sampled at the largest of its intensities over the models and its
    /// candidate events thinned to its own, every event drawing its vetoes and severities
    /// (all of them at every model, as soon as one has a veto probability for the AVS)
    /// from its own generator (`docs/model.md#sweeps`; thinning: Lewis and Shedler
    /// 1979). With one seed, the
    /// models then see the same candidate events, and a model whose event probabilities
    /// are all at least another's (veto probabilities at most) has, path by path, a
    /// superset of its events with the same severities: its value at the horizon is never
    /// higher. With a systematic factor the largest intensity is taken on each path,
    /// given its factor, over the laws of the source in every model
    /// ([`Source::sampling_laws`]). Returns `false`, and changes nothing, when the
    /// models' sources do not correspond one to one or only some have a factor or a
    /// loan. A loan's terms draw nothing: its models see the same paths whatever their
    /// leverage, borrow rate or liquidation terms.
    pub fn couple(models: &mut [Model]) -> bool {
        let Some(first) = models.first() else {
            return true;
        };
        let shape: Vec<(usize, std::mem::Discriminant<SourceKind>)> = first
            .sources
            .iter()
            .map(|s| (s.row, std::mem::discriminant(&s.kind)))
            .collect();
        let same = models.iter().all(|m| {
            m.horizon_years == first.horizon_years
                && m.factor.is_some() == first.factor.is_some()
                && m.leverage.is_some() == first.leverage.is_some()
                && m.avs.len() == first.avs.len()
                && m.sources.len() == shape.len()
                && m.sources.iter().zip(&shape).all(|(s, (row, kind))| {
                    s.row == *row && std::mem::discriminant(&s.kind) == *kind
                })
        });
        if !same {
            return false;
        }
        let sampling: Vec<f64> = (0..shape.len())
            .map(|j| {
                models
                    .iter()
                    .map(|m| m.sources[j].intensity)
                    .fold(0.0, f64::max)
            })
            .collect();
        let coupled_veto: Vec<bool> = (0..first.avs.len())
            .map(|i| models.iter().any(|m| m.avs[i].veto_prob > 0.0))
            .collect();
        let sampling_laws: Vec<Vec<FactorLaw>> = (0..shape.len())
            .map(|j| {
                let mut laws: Vec<FactorLaw> = Vec::new();
                for m in models.iter() {
                    if !laws.contains(&m.sources[j].law) {
                        laws.push(m.sources[j].law);
                    }
                }
                laws
            })
            .collect();
        for m in models.iter_mut() {
            for (s, laws) in m.sources.iter_mut().zip(&sampling_laws) {
                s.sampling_laws.clone_from(laws);
            }
            for (a, coupled) in m.avs.iter_mut().zip(&coupled_veto) {
                a.coupled_veto = *coupled;
            }
            for (s, lambda) in m.sources.iter_mut().zip(&sampling) {
                s.sampling_intensity = *lambda;
                s.keep = if *lambda > 0.0 {
                    s.intensity / lambda
                } else {
                    1.0
                };
            }
            m.sample_sources();
        }
        true
    }

    /// Income stream rates `sum_p c_{m,p} A~_p` of the discounted `pools` into `rates`
    /// (one per stream), and the discounted stake `sum_p A~_p` (`docs/model.md#a-path`).
    pub fn stream_rates(&self, pools: &[f64], rates: &mut [f64]) -> f64 {
        let n = pools.len();
        for (m, rate) in rates.iter_mut().enumerate() {
            let coef = &self.income_coef[m * n..(m + 1) * n];
            *rate = coef.iter().zip(pools).map(|(c, a)| c * a).sum();
        }
        pools.iter().sum()
    }

    /// Row of AVS `i`'s breakdown.
    pub fn avs_row(&self, i: usize) -> usize {
        self.avs_row0 + i
    }

    /// Row of operator `k`'s breakdown.
    pub fn operator_row(&self, k: usize) -> usize {
        self.operator_row0 + k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The factor's tabulated bounds are upper bounds of the exact intensities everywhere
    /// a factor can be, and where the paths' factors are (|z| <= 6) tight to 30% (at
    /// rho = 0.8; far less at small correlations) or to 1e-9 events a year.
    #[test]
    fn factor_bounds_are_tight_upper_bounds() {
        let laws: Vec<FactorLaw> = [
            (0.005, 0.1),
            (0.01, 0.45),
            (0.2, 0.8),
            (0.0, 0.3),
            (0.3, 0.0),
        ]
        .iter()
        .map(|(p, rho)| FactorLaw::new(*p, *rho))
        .collect();
        let mut factor = Factor {
            laws: laws.clone(),
            own: Vec::new(),
            sets: Vec::new(),
            set_of: Vec::new(),
            set_sources: Vec::new(),
            depeg: None,
            table: Vec::new(),
        };
        factor.tabulate();
        let mut bounds = vec![0.0; laws.len()];
        for i in 0..=20_000 {
            let z = -12.0 + 24.0 * f64::from(i) / 20_000.0;
            factor.bounds(z, &mut bounds);
            for (law, b) in laws.iter().zip(&bounds) {
                let exact = law.intensity_at(z);
                assert!(*b >= exact, "z = {z}: bound {b} < {exact} for {law:?}");
                assert!(
                    z.abs() > 6.0 || *b <= exact * 1.3 || *b - exact < 1e-9,
                    "z = {z}: bound {b} far above {exact}"
                );
            }
        }
    }

    #[test]
    fn intensity_inverts_the_annual_probability() {
        for p in [0.0, 1e-6, 0.01, 0.5, 0.99] {
            let lambda = intensity(p);
            assert!((1.0 - (-lambda).exp() - p).abs() < 1e-15, "p = {p}");
        }
    }
}
