//! Leverage (`[leverage]`, `docs/model.md#leverage`): the LRT as collateral on a lending
//! market. What a file says and its checks, the compiled loan terms a path reads, and the
//! loan's arithmetic: the health factor, the closed-form time it crosses 1 between
//! events, and an Aave V3 liquidation.
//!
//! With equity `P` and leverage `L` the position holds collateral worth `L P` of the LRT
//! and owes `D(0) = (L - 1) P` ETH, growing as `D(t) = D(0) e^{r t}` at the borrow rate
//! `r`. The health factor is `HF = LT × C × o / D`: `C` the collateral at the exchange
//! rate, `o` the oracle's factor (`1 - d` during a depeg episode under a market oracle,
//! else 1). Below `HF = 1` a liquidator repays a share of the debt and seizes collateral
//! worth the repaid amount times `1 + bonus` at the oracle's price, repeatedly while
//! `HF < 1` (Aave V3's `LiquidationLogic.executeLiquidationCall`).

use serde::{Deserialize, Serialize};

use crate::error::ScenarioError;
use crate::sampling::Severity;
use crate::scenario::{Route, ScenarioSpec};
use crate::stress::FactorLaw;

/// How the lending market prices the collateral.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Oracle {
    /// The LRT's exchange rate (most LRT markets: Aave's weETH, Morpho's weETH/WETH on
    /// Base): a depeg alone does not move it.
    #[default]
    ExchangeRate,
    /// The market price, `x (1 - d)` during a depeg episode.
    Market,
}

/// `[leverage]` (route `liquid` only): a loop of the LRT on a lending market
/// (`docs/model.md#leverage`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeverageSpec {
    /// `L`: collateral value over equity at the start, in [1, 1000], with `L LT > L - 1`
    /// (not liquidatable at the start).
    pub leverage: f64,
    /// `LT`, in (0, 1).
    pub liquidation_threshold: f64,
    /// The liquidation bonus, in [0, 0.5), with `LT (1 + bonus) < 1`.
    pub liquidation_bonus: f64,
    /// Share of the debt one liquidation repays, in (0, 1]; Aave V3's 0.5 by default.
    #[serde(default = "default_close_factor")]
    pub close_factor: f64,
    /// Below this health factor a liquidation repays all the debt, in (0, 1]; Aave V3's
    /// 0.95 by default.
    #[serde(default = "default_full_close_below_hf")]
    pub full_close_below_hf: f64,
    /// ETH borrow rate `r`, a year, continuously compounded, in [0, 1].
    pub borrow_apr: f64,
    /// `exchange_rate` (default) or `market`.
    #[serde(default)]
    pub oracle: Oracle,
}

/// Aave V3's `DEFAULT_LIQUIDATION_CLOSE_FACTOR`, 50%.
fn default_close_factor() -> f64 {
    0.5
}

/// Aave V3's `CLOSE_FACTOR_HF_THRESHOLD`, 0.95.
fn default_full_close_below_hf() -> f64 {
    0.95
}

/// Largest leverage a file may ask for.
pub const MAX_LEVERAGE: f64 = 1000.0;

/// Longest depeg episode, in days.
pub const MAX_DEPEG_DAYS: f64 = 3650.0;

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

fn within(field: &str, x: f64, ok: bool, range: &str) -> Result<(), ScenarioError> {
    if x.is_finite() && ok {
        Ok(())
    } else {
        Err(invalid(field, format!("must be in {range}, got {x:?}")))
    }
}

/// Checks a depeg episode's length `days` at `field`: in (0, [`MAX_DEPEG_DAYS`]].
///
/// # Errors
/// [`ScenarioError::Invalid`] naming `field`.
pub(crate) fn check_depeg_days(field: &str, days: f64) -> Result<(), ScenarioError> {
    within(
        field,
        days,
        days > 0.0 && days <= MAX_DEPEG_DAYS,
        &format!("(0, {MAX_DEPEG_DAYS}]"),
    )
}

/// Checks `[leverage]` and `liquid.depeg_days` of `spec`, whose other tables are checked.
///
/// # Errors
/// [`ScenarioError::Invalid`] naming the first field found wrong.
pub(crate) fn validate(spec: &ScenarioSpec) -> Result<(), ScenarioError> {
    if let Some(days) = spec.liquid.as_ref().and_then(|l| l.depeg_days) {
        check_depeg_days("liquid.depeg_days", days)?;
    }
    let Some(lev) = &spec.leverage else {
        return Ok(());
    };
    if spec.position.route != Route::Liquid {
        return Err(invalid(
            "leverage",
            "a loop holds a liquid restaking token as collateral: it needs position.route = \"liquid\"",
        ));
    }
    let (l, lt, bonus) = (
        lev.leverage,
        lev.liquidation_threshold,
        lev.liquidation_bonus,
    );
    within(
        "leverage.leverage",
        l,
        (1.0..=MAX_LEVERAGE).contains(&l),
        &format!("[1, {MAX_LEVERAGE}]"),
    )?;
    within(
        "leverage.liquidation_threshold",
        lt,
        lt > 0.0 && lt < 1.0,
        "(0, 1)",
    )?;
    within(
        "leverage.liquidation_bonus",
        bonus,
        (0.0..0.5).contains(&bonus),
        "[0, 0.5)",
    )?;
    within(
        "leverage.close_factor",
        lev.close_factor,
        lev.close_factor > 0.0 && lev.close_factor <= 1.0,
        "(0, 1]",
    )?;
    within(
        "leverage.full_close_below_hf",
        lev.full_close_below_hf,
        lev.full_close_below_hf > 0.0 && lev.full_close_below_hf <= 1.0,
        "(0, 1]",
    )?;
    within(
        "leverage.borrow_apr",
        lev.borrow_apr,
        (0.0..=1.0).contains(&lev.borrow_apr),
        "[0, 1]",
    )?;
    if lt * (1.0 + bonus) >= 1.0 {
        return Err(invalid(
            "leverage.liquidation_bonus",
            format!(
                "liquidation_threshold x (1 + liquidation_bonus) = {:?} must be below 1: at HF = 1 a liquidation would seize at least the collateral that backs the debt it repays, and the health factor could never recover (Aave V3 requires it to be at most 1)",
                lt * (1.0 + bonus)
            ),
        ));
    }
    if l * lt <= l - 1.0 {
        return Err(invalid(
            "leverage.leverage",
            format!(
                "at leverage {l} the position starts liquidatable: L x LT = {:?} is not above the debt L - 1 = {:?}; with this liquidation threshold the leverage must stay below 1 / (1 - LT) = {:?}",
                l * lt,
                l - 1.0,
                1.0 / (1.0 - lt)
            ),
        ));
    }
    let liquid = spec.liquid.as_ref().expect("route liquid has [liquid]");
    if lev.oracle == Oracle::Market && liquid.depeg_prob > 0.0 {
        if liquid.depeg_days.is_none() {
            return Err(invalid(
                "liquid.depeg_days",
                "is required with leverage.oracle = \"market\" and liquid.depeg_prob > 0: a market oracle sees each depeg episode for its length",
            ));
        }
        if liquid.depeg_discount.is_none() {
            return Err(invalid(
                "liquid.depeg_discount",
                "is required with leverage.oracle = \"market\" and liquid.depeg_prob > 0 (the depth of a depeg episode)",
            ));
        }
    }
    Ok(())
}

/// The terms of a compiled loan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoanTerms {
    /// `LT`.
    pub liquidation_threshold: f64,
    /// The bonus, a fraction of the repaid debt.
    pub liquidation_bonus: f64,
    /// Share of the debt one liquidation repays.
    pub close_factor: f64,
    /// Below this health factor a liquidation repays all the debt.
    pub full_close_below_hf: f64,
}

impl LoanTerms {
    /// The terms of `spec`.
    pub fn of(spec: &LeverageSpec) -> Self {
        Self {
            liquidation_threshold: spec.liquidation_threshold,
            liquidation_bonus: spec.liquidation_bonus,
            close_factor: spec.close_factor,
            full_close_below_hf: spec.full_close_below_hf,
        }
    }

    /// `HF = LT × collateral × oracle / debt` (infinite without debt).
    pub fn health_factor(&self, collateral_eth: f64, oracle: f64, debt_eth: f64) -> f64 {
        if debt_eth > 0.0 {
            self.liquidation_threshold * collateral_eth * oracle / debt_eth
        } else {
            f64::INFINITY
        }
    }

    /// The liquidations at one moment, as Aave V3 does them, of a position with
    /// `collateral_eth` at the exchange rate, the oracle's factor `oracle` in (0, 1] and
    /// `debt_eth`: while `HF < 1` (and once regardless when `at_crossing`, the health
    /// factor having reached 1 from above), repay the close factor's share of the debt
    /// (all of it below [`LoanTerms::full_close_below_hf`]) and seize collateral worth
    /// `repaid × (1 + bonus)` at the oracle's price, so `repaid × (1 + bonus) / oracle`
    /// at the exchange rate; with too little collateral, seize all of it and repay
    /// `collateral × oracle / (1 + bonus)`. When the collateral runs out, the debt left is
    /// the lender's bad debt and the holder owes nothing more.
    pub fn liquidate(
        &self,
        collateral_eth: f64,
        oracle: f64,
        debt_eth: f64,
        at_crossing: bool,
    ) -> Liquidation {
        let mut out = Liquidation {
            collateral_eth,
            debt_eth,
            ..Liquidation::default()
        };
        let gross = 1.0 + self.liquidation_bonus;
        let mut hf = self.health_factor(collateral_eth, oracle, debt_eth);
        // A step at HF in [LT (1 + bonus), 1) raises HF, one below lowers it until a full
        // close ends the sequence; only HF exactly at LT (1 + bonus) stays put, its steps
        // halving the debt, which the cap stops.
        let mut force = at_crossing;
        while out.debt_eth > 0.0 && (hf < 1.0 || force) && out.steps < MAX_STEPS {
            force = false;
            let share = if hf < self.full_close_below_hf {
                1.0
            } else {
                self.close_factor
            };
            let mut repaid = share * out.debt_eth;
            let mut seized = repaid * gross / oracle;
            if seized >= out.collateral_eth {
                seized = out.collateral_eth;
                repaid = seized * oracle / gross;
            }
            out.steps += 1;
            out.seized_eth += seized;
            out.repaid_eth += repaid;
            out.collateral_eth -= seized;
            out.debt_eth -= repaid;
            if out.collateral_eth <= 0.0 {
                out.collateral_eth = 0.0;
                out.bad_debt_eth = out.debt_eth.max(0.0);
                out.debt_eth = 0.0;
            }
            hf = self.health_factor(out.collateral_eth, oracle, out.debt_eth);
        }
        out
    }
}

/// The random depeg episodes a market oracle sees: a Poisson process with the depeg's
/// annual probability (conditioned on the factor like every source), each episode
/// starting at a uniform time, lasting [`Leverage::episode_years`], its depth from the
/// depeg's discount law.
#[derive(Debug, Clone)]
pub struct Episodes {
    /// The depeg's annual probability and factor correlation.
    pub law: FactorLaw,
    /// Depth `d` of an episode.
    pub discount: Severity,
}

/// A compiled `[leverage]` (`docs/model.md#leverage`).
#[derive(Debug, Clone)]
pub struct Leverage {
    /// Debt at the start, `(L - 1) P`, ETH.
    pub debt0_eth: f64,
    /// Borrow rate `r`, a year.
    pub borrow_rate: f64,
    /// The liquidation terms.
    pub terms: LoanTerms,
    /// Whether the oracle is the market price (else the exchange rate).
    pub market_oracle: bool,
    /// Length of a depeg episode in years (0 when the scenario gives none).
    pub episode_years: f64,
    /// The random depeg episodes, with a market oracle and a depeg law.
    pub episodes: Option<Episodes>,
    /// `e^{r t_c}` at each checkpoint `t_c` of the model.
    pub debt_growth: Vec<f64>,
    /// Row of the liquidation losses; the borrow cost and the bad debt follow.
    pub row: usize,
}

impl Leverage {
    /// Offset of the borrow-cost row from [`Leverage::row`].
    pub const ROW_BORROW_COST: usize = 1;
    /// Offset of the bad-debt row from [`Leverage::row`].
    pub const ROW_BAD_DEBT: usize = 2;

    /// The loan of a checked `spec`, `None` without `[leverage]`: equity
    /// `principal_eth`, its rows from `row` on, checkpoints at `checkpoints_years`, the
    /// depeg's factor correlation `depeg_rho`.
    pub(crate) fn new(
        spec: &ScenarioSpec,
        principal_eth: f64,
        row: usize,
        checkpoints_years: &[f64],
        depeg_rho: f64,
    ) -> Option<Self> {
        let lev = spec.leverage.as_ref()?;
        let liquid = spec.liquid.as_ref().expect("checked: liquid");
        let market_oracle = lev.oracle == Oracle::Market;
        let episodes = match &liquid.depeg_discount {
            Some(d) if market_oracle && liquid.depeg_prob > 0.0 => Some(Episodes {
                law: FactorLaw::new(liquid.depeg_prob, depeg_rho),
                discount: Severity::new(d),
            }),
            _ => None,
        };
        Some(Self {
            debt0_eth: (lev.leverage - 1.0) * principal_eth,
            borrow_rate: lev.borrow_apr,
            terms: LoanTerms::of(lev),
            market_oracle,
            episode_years: liquid.depeg_days.unwrap_or(0.0) / crate::DAYS_PER_YEAR,
            episodes,
            debt_growth: checkpoints_years
                .iter()
                .map(|t| (lev.borrow_apr * t).exp())
                .collect(),
            row,
        })
    }
}

/// Most liquidation steps at one moment.
const MAX_STEPS: u32 = 2000;

/// What [`LoanTerms::liquidate`] did, ETH at the moment.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Liquidation {
    /// Collateral left, at the exchange rate.
    pub collateral_eth: f64,
    /// Debt left (0 once the collateral ran out).
    pub debt_eth: f64,
    /// Collateral seized, at the exchange rate.
    pub seized_eth: f64,
    /// Debt repaid by the liquidators.
    pub repaid_eth: f64,
    /// Debt left unpaid when the collateral ran out.
    pub bad_debt_eth: f64,
    /// Liquidation calls.
    pub steps: u32,
}

impl Liquidation {
    /// The holder's loss to the liquidations: collateral seized less debt repaid (the
    /// bonus, and under a market oracle in a depeg the discount too).
    pub fn loss_eth(&self) -> f64 {
        self.seized_eth - self.repaid_eth
    }
}

/// Years from now until a health factor `hf >= 1` that moves as `e^{carry t}` reaches 1:
/// `ln(hf) / -carry` for a negative carry `g - r` (collateral growth less the borrow
/// rate), `None` when it never falls (`docs/model.md#leverage`).
pub fn crossing_years(hf: f64, carry: f64) -> Option<f64> {
    (carry < 0.0 && hf.is_finite()).then(|| hf.max(1.0).ln() / -carry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aave(lt: f64, bonus: f64) -> LoanTerms {
        LoanTerms {
            liquidation_threshold: lt,
            liquidation_bonus: bonus,
            close_factor: 0.5,
            full_close_below_hf: 0.95,
        }
    }

    /// A worked Aave V3 sequence, by hand: LT 0.9, bonus 5%, collateral 100, debt 92.
    /// HF = 0.9 × 100 / 92 = 0.97826 (>= 0.95): repay 46, seize 48.3; collateral 51.7,
    /// debt 46, HF = 0.9 × 51.7 / 46 = 1.01152: done. Loss 2.3 = 5% of 46.
    #[test]
    fn close_factor_sequence_by_hand() {
        let out = aave(0.9, 0.05).liquidate(100.0, 1.0, 92.0, false);
        assert_eq!(out.steps, 1);
        assert!((out.repaid_eth - 46.0).abs() < 1e-12);
        assert!((out.seized_eth - 48.3).abs() < 1e-12);
        assert!((out.collateral_eth - 51.7).abs() < 1e-12);
        assert!((out.debt_eth - 46.0).abs() < 1e-12);
        assert!((out.loss_eth() - 2.3).abs() < 1e-12);
        assert_eq!(out.bad_debt_eth, 0.0);
    }

    /// Two steps, the second a full close: LT 0.95, bonus 4%, collateral 100, debt 98.
    /// HF = 95 / 98 = 0.96939: repay 49, seize 50.96; collateral 49.04, debt 49,
    /// HF = 0.95 × 49.04 / 49 = 0.95078 (< 1, >= 0.95): repay 24.5, seize 25.48;
    /// collateral 23.56, debt 24.5, HF = 0.91355 (< 0.95): full close, repay 24.5 would
    /// seize 25.48 > 23.56: seize all 23.56, repay 23.56 / 1.04 = 22.653846; bad debt
    /// 24.5 - 22.653846 = 1.846154. Loss: seized 100 less repaid 96.153846.
    #[test]
    fn a_spiral_to_a_full_close_leaves_bad_debt() {
        let out = aave(0.95, 0.04).liquidate(100.0, 1.0, 98.0, false);
        assert_eq!(out.steps, 3);
        let repaid = 49.0 + 24.5 + 23.56 / 1.04;
        assert!((out.repaid_eth - repaid).abs() < 1e-9, "{out:?}");
        assert!((out.seized_eth - 100.0).abs() < 1e-9);
        assert_eq!(out.collateral_eth, 0.0);
        assert_eq!(out.debt_eth, 0.0);
        assert!((out.bad_debt_eth - (98.0 - repaid)).abs() < 1e-9);
        assert!((out.bad_debt_eth - 1.846_153_846).abs() < 1e-8);
        // Equity before: 2; after: 0, with the lender's 1.846 unpaid.
        assert!((out.loss_eth() - out.bad_debt_eth - 2.0).abs() < 1e-9);
    }

    /// At a crossing (HF = 1 exactly) one step fires: HF then jumps to
    /// `(1 - c LT (1 + b)) / (1 - c)`.
    #[test]
    fn a_crossing_liquidates_once_and_restores_the_health_factor() {
        let terms = aave(0.75, 0.01);
        let debt = 75.0;
        assert_eq!(terms.health_factor(100.0, 1.0, debt), 1.0);
        let out = terms.liquidate(100.0, 1.0, debt, true);
        assert_eq!(out.steps, 1);
        let hf = terms.health_factor(out.collateral_eth, 1.0, out.debt_eth);
        assert!((hf - (1.0 - 0.5 * 0.75 * 1.01) / 0.5).abs() < 1e-12);
        // Without the crossing, HF = 1 is not liquidatable.
        assert_eq!(terms.liquidate(100.0, 1.0, debt, false).steps, 0);
    }

    /// Under a market oracle in a depeg of 2%, the liquidator's collateral is priced at
    /// the discount: seizing 0.5 D × 1.01 at the market is 0.5 D × 1.01 / 0.98 at the
    /// exchange rate.
    #[test]
    fn a_market_oracle_seizes_at_the_discount() {
        let terms = aave(0.95, 0.01);
        let out = terms.liquidate(100.0, 0.98, 94.0, false);
        assert_eq!(out.steps, 1);
        assert!((out.seized_eth - 47.0 * 1.01 / 0.98).abs() < 1e-12);
    }

    /// The crossing time solves `hf e^{carry t} = 1`.
    #[test]
    fn crossing_time_solves_the_health_factor() {
        let (hf, carry) = (1.0168, -0.004);
        let t = crossing_years(hf, carry).unwrap();
        assert!((hf * (carry * t).exp() - 1.0).abs() < 1e-14);
        assert_eq!(crossing_years(hf, 0.0), None);
        assert_eq!(crossing_years(hf, 0.001), None);
        assert_eq!(crossing_years(f64::INFINITY, -0.1), None);
    }
}
