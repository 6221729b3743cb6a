//! Leverage (`docs/model.md#leverage`), read from the engine's paths:
//! - the liquidation threshold rule at `t = 0+`: a whole-stake slash `s` liquidates iff
//!   `s > 1 - (L - 1) / (L LT)`, checked just above and just below it, for Seamless's
//!   17x loop (0.40%) and for an Aave-style 10x one;
//! - a slash without liquidation costs the equity `L s` of `P`, exactly;
//! - a negative carry liquidates at the closed-form times `ln(HF) / (r - g)`, each
//!   liquidation at `HF = 1` restoring `HF' = (1 - c LT (1 + b)) / (1 - c)`: the count,
//!   the liquidation loss and the borrow cost equal their closed forms;
//! - an Aave V3 sequence of a forced slash (50%, 50%, then a full close that runs out of
//!   collateral) gives the hand-computed loss and bad debt;
//! - a market oracle liquidates in a depeg episode the exchange-rate oracle ignores;
//! - at `L = 1` the loan changes nothing: every path equals the unlevered one, bit for
//!   bit;
//! - the accounting identity with the loan's rows, and equity never below 0.
//!
//! Every check but the last is exact arithmetic on forced events (no randomness left);
//! seeds are fixed.

use restake_core::engine::PathSet;
use restake_core::{ContributionKind, Model, RunConfig, Scenario, analyse, simulate};
use restake_validation::harness::scenario;

/// A levered liquid position of 100 ETH on one operator, no income but `apr` and no risk
/// but what `extra` adds; `leverage` is the `[leverage]` table's body.
fn levered(apr: f64, days: u32, leverage: &str, extra: &str) -> Scenario {
    scenario(&format!(
        r#"
name = "loop"
[position]
principal_eth = 100.0
route = "liquid"
horizon_days = {days}
[base]
apr_mean = {apr}
[liquid]
reward_fee = 0.0
[[operator]]
name = "op"
weight = 1.0
[leverage]
{leverage}
{extra}
"#
    ))
}

/// `paths` paths of `model` on seed 3.
fn paths_of(model: &Model, paths: u64) -> PathSet {
    simulate(
        model,
        &RunConfig {
            paths,
            seed: 3,
            threads: 0,
        },
        &|_| {},
    )
    .unwrap()
}

fn run(s: &Scenario, paths: u64) -> PathSet {
    paths_of(&Model::new(s), paths)
}

/// A stress `name` forcing a whole-stake slash `s` on day `day` with no random source.
fn forced_slash(name: &str, day: f64, s: f64) -> String {
    format!(
        "[[stress]]\nname = \"{name}\"\nrandom = false\nevents = [{{ kind = \"protocol_exploit\", day = {day}, severity = {{ dist = \"fixed\", value = {s} }} }}]\n"
    )
}

/// The paths of stress 0 of `s`.
fn stressed(s: &Scenario, paths: u64) -> PathSet {
    paths_of(&Model::for_stress(s, 0), paths)
}

const SEAMLESS: &str = "leverage = 17.0\nliquidation_threshold = 0.945\nliquidation_bonus = 0.016777\nclose_factor = 1.0\nfull_close_below_hf = 1.0\nborrow_apr = 0.0";
const AAVE: &str =
    "leverage = 10.0\nliquidation_threshold = 0.95\nliquidation_bonus = 0.01\nborrow_apr = 0.0";

#[test]
fn the_threshold_rule_holds_on_both_sides() {
    for (terms, l, lt) in [(SEAMLESS, 17.0, 0.945), (AAVE, 10.0, 0.95)] {
        let threshold: f64 = 1.0 - (l - 1.0) / (l * lt);
        if l == 17.0 {
            // Seamless's weETH 17x loop liquidates on a slash above 0.40%.
            assert!((threshold - 0.0040).abs() < 5e-5, "{threshold}");
        }
        for (s, liquidated) in [(threshold * 1.001, true), (threshold * 0.999, false)] {
            let sc = levered(0.0, 365, terms, &forced_slash("x", 0.0, s));
            for o in &stressed(&sc, 200).outcomes {
                assert_eq!(o.liquidations > 0, liquidated, "L = {l}, s = {s}: {o:?}");
                if !liquidated {
                    // Without a liquidation the slash costs the equity L s of P.
                    assert!((o.net_return + l * s).abs() < 1e-12, "{o:?}");
                    assert!((o.slashing_loss_eth - l * s * 100.0).abs() < 1e-10);
                }
            }
        }
    }
}

/// A negative carry: base APR 2%, borrow 22%, so `HF(t) = HF0 e^{-0.2 t}`.
#[test]
fn a_negative_carry_liquidates_at_the_closed_form_times() {
    let (g, r, l, lt, b, c) = (0.02, 0.22, 10.0, 0.95, 0.01, 0.5);
    let terms = format!(
        "leverage = {l}\nliquidation_threshold = {lt}\nliquidation_bonus = {b}\nclose_factor = {c}\nborrow_apr = {r}"
    );
    for days in [146u32, 365, 730] {
        let horizon = f64::from(days) / 365.0;
        let out = run(&levered(g, days, &terms, ""), 50);
        // Expected, from the closed forms: crossings at t1 = ln(HF0) / (r - g), then
        // every ln(HF') / (r - g).
        let hf0: f64 = l * lt / (l - 1.0);
        let hf_after = (1.0 - c * lt * (1.0 + b)) / (1.0 - c);
        let (mut t, mut debt, mut collateral) = (hf0.ln() / (r - g), (l - 1.0) * 100.0, l * 100.0);
        let (mut count, mut loss, mut borrow, mut last) = (0u32, 0.0, 0.0, 0.0);
        while t < horizon {
            let d = debt * (r * (t - last)).exp();
            let x = collateral * (g * (t - last)).exp();
            borrow += d - debt;
            let repaid = c * d;
            loss += repaid * b;
            debt = d - repaid;
            collateral = x - repaid * (1.0 + b);
            count += 1;
            last = t;
            t += hf_after.ln() / (r - g);
        }
        borrow += debt * ((r * (horizon - last)).exp() - 1.0);
        let expected_count = match days {
            146 => 1,
            365 => 4,
            _ => 9,
        };
        assert_eq!(count, expected_count, "the closed forms at {days} days");
        for o in &out.outcomes {
            assert_eq!(o.liquidations, count, "{days} days: {o:?}");
            assert!(
                (o.liquidation_loss_eth - loss).abs() < 1e-9 * loss,
                "{o:?} vs {loss}"
            );
            assert!(
                (o.borrow_cost_eth - borrow).abs() < 1e-9 * borrow,
                "{o:?} vs {borrow}"
            );
            let equity =
                collateral * (g * (horizon - last)).exp() - debt * (r * (horizon - last)).exp();
            assert!(
                (o.net_return - (equity / 100.0 - 1.0)).abs() < 1e-10,
                "{o:?}"
            );
        }
    }
}

/// Aave V3's sequence on a forced slash, computed by hand: LT 0.95, bonus 4%, 2x (100 of
/// equity, 200 of collateral, 100 of debt), a 48.42105% slash leaves 103.157894 and
/// HF = 0.98; repay 50 and seize 52: collateral 51.157894, debt 50, HF = 0.972; repay 25
/// and seize 26: collateral 25.157894, debt 25, HF = 0.956; repay 12.5 and seize 13:
/// collateral 12.157894, debt 12.5, HF = 0.924 < 0.95: a full close would seize 13 >
/// 12.157894, so all of it goes for 12.157894 / 1.04 = 11.690283 and 0.809717 is bad debt.
#[test]
fn an_aave_sequence_gives_the_hand_computed_loss() {
    let terms =
        "leverage = 2.0\nliquidation_threshold = 0.95\nliquidation_bonus = 0.04\nborrow_apr = 0.0";
    let s = 1.0 - 0.98 * 100.0 / (0.95 * 200.0);
    let sc = levered(0.0, 365, terms, &forced_slash("x", 0.0, s));
    let repaid = 50.0 + 25.0 + 12.5 + (200.0 * (1.0 - s) - 52.0 - 26.0 - 13.0) / 1.04;
    let bad = 100.0 - repaid;
    assert!((bad - 0.809_717).abs() < 1e-6, "hand arithmetic: {bad}");
    for o in &stressed(&sc, 100).outcomes {
        assert_eq!(o.liquidations, 4, "{o:?}");
        assert!((o.liquidation_loss_eth - (200.0 * (1.0 - s) - repaid)).abs() < 1e-9);
        assert!((o.bad_debt_eth - bad).abs() < 1e-9, "{o:?}");
        // The holder is left with nothing: V = 0.
        assert!((o.net_return + 1.0).abs() < 1e-12, "{o:?}");
    }
}

/// A 2% episode for 3 days liquidates the 17x loop under a market oracle, not under the
/// exchange rate; the liquidator's collateral is priced at the discount.
#[test]
fn a_market_oracle_liquidates_in_a_depeg_episode() {
    let episode = "[[stress]]\nname = \"d\"\nrandom = false\nevents = [{ kind = \"depeg_episode\", day = 100, days = 3, severity = { dist = \"fixed\", value = 0.02 } }]\n";
    let exchange = levered(0.0, 365, SEAMLESS, episode);
    let market = levered(
        0.0,
        365,
        &format!("{SEAMLESS}\noracle = \"market\""),
        episode,
    );
    for o in &stressed(&exchange, 50).outcomes {
        assert_eq!(o.liquidations, 0, "{o:?}");
        assert!(o.net_return.abs() < 1e-12);
    }
    // Full close at the market price: repay 1600, seize 1600 × 1.016777 / 0.98.
    let seized = 1600.0 * 1.016777 / 0.98;
    for o in &stressed(&market, 50).outcomes {
        assert_eq!(o.liquidations, 1, "{o:?}");
        assert!(
            (o.liquidation_loss_eth - (seized - 1600.0)).abs() < 1e-9,
            "{o:?}"
        );
        assert!((o.net_return - ((1700.0 - seized) / 100.0 - 1.0)).abs() < 1e-12);
    }
}

/// At `L = 1` there is no debt: every path equals the unlevered position's, bit for bit,
/// with a market oracle and random depeg episodes too (their draws come from their own
/// generator).
#[test]
fn leverage_one_is_the_unlevered_position() {
    let text = include_str!("../../../data/scenarios/renzo-ezeth.toml");
    let plain = scenario(text);
    let mut spec = plain.spec().clone();
    spec.leverage = Some(restake_core::leverage::LeverageSpec {
        leverage: 1.0,
        liquidation_threshold: 0.9,
        liquidation_bonus: 0.05,
        close_factor: 0.5,
        full_close_below_hf: 0.95,
        borrow_apr: 0.03,
        oracle: restake_core::leverage::Oracle::Market,
    });
    if let Some(l) = &mut spec.liquid {
        l.depeg_days = Some(3.0);
        assert!(l.depeg_prob > 0.0, "the preset has depeg episodes to draw");
    }
    let looped = Scenario::try_from(spec).unwrap();
    let (a, b) = (run(&plain, 20_000), run(&looped, 20_000));
    for (x, y) in a.outcomes.iter().zip(&b.outcomes) {
        assert_eq!(x.net_return.to_bits(), y.net_return.to_bits());
        assert_eq!(x.excess_return.to_bits(), y.excess_return.to_bits());
        assert_eq!(y.liquidations, 0);
        assert_eq!(y.borrow_cost_eth, 0.0);
    }
}

/// On the two loop presets: every path's value is the principal plus income less every
/// loss term (`V = P + base + fees + tokens - slashing - depeg - liquidation - borrow +
/// bad debt`), never below 0; the contributions, the loan's rows included, add up to the
/// expected loss and to every ES.
#[test]
fn the_identity_holds_with_the_loans_rows() {
    for text in [
        include_str!("../../../data/scenarios/weeth-aave-loop.toml"),
        include_str!("../../../data/scenarios/weeth-seamless-17x.toml"),
    ] {
        let s = scenario(text);
        let model = Model::new(&s);
        let set = run(&s, 100_000);
        let p = model.principal_eth;
        let mut liquidated = 0;
        for o in &set.outcomes {
            let v = (1.0 + o.net_return) * p;
            let identity = p + o.base_income_eth + o.avs_fee_income_eth + o.incentive_value_eth
                - o.slashing_loss_eth
                - o.depeg_loss_eth
                - o.liquidation_loss_eth
                - o.borrow_cost_eth
                + o.bad_debt_eth;
            assert!((v - identity).abs() <= 1e-9 * p * 20.0, "{o:?}");
            assert!(v >= -1e-9, "equity below 0: {o:?}");
            assert!(o.liquidation_loss_eth >= 0.0 && o.bad_debt_eth >= 0.0);
            liquidated += u64::from(o.liquidations > 0);
        }
        assert!(
            liquidated > 100,
            "the test needs liquidated paths: {liquidated}"
        );
        let r = analyse(&model, &set, &[]);
        let mean = r
            .metric(restake_core::stats::MetricId::MeanNetReturn)
            .unwrap()
            .value;
        let sum: f64 = r.contributions.iter().map(|c| c.expected_loss_eth).sum();
        assert!((sum + mean * p).abs() <= 1e-8 * p, "{sum} vs {}", -mean * p);
        for (k, level) in restake_core::stats::TAIL_LEVELS.iter().enumerate() {
            let es = r
                .metric(restake_core::stats::MetricId::Es(*level))
                .unwrap()
                .value;
            let sum: f64 = r
                .contributions
                .iter()
                .map(|c| c.es_contribution_eth[k])
                .sum();
            assert!(
                (sum - es * p).abs() <= 1e-8 * p,
                "ES {level}: {sum} vs {}",
                es * p
            );
        }
        for kind in [
            ContributionKind::Liquidation,
            ContributionKind::BorrowCost,
            ContributionKind::BadDebt,
        ] {
            assert!(
                r.contributions.iter().any(|c| c.row.kind == kind),
                "{kind:?}"
            );
        }
    }
}
