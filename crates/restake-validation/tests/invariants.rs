//! Invariants that hold for every scenario, checked on random small scenarios (proptest,
//! fixed seeds): the ordering of VaR and ES, no path losing more than it ever held,
//! risk contributions adding up to the totals, monotonicity of the expected slashing
//! loss in an AVS's slashing probability, and bit-identical results for any thread count;
//! with a loan, the identity with its terms, equity never below 0, and the contributions
//! (the loan's rows included) adding up.

use proptest::prelude::*;
use restake_core::stats::MetricId;
use restake_core::stats::TAIL_LEVELS;
use restake_core::{ContributionKind, Model, PathSet, RunConfig, Scenario, analyse, simulate};
use restake_validation::harness::metric;
use restake_validation::oracle::ENUMERATION_SCENARIO;
use restake_validation::scenarios::{fixed_config, levered_scenario, small_scenario};
use restake_validation::stat::TOLERANCE_SE;

/// Not a multiple of the batch size, so the last batch is partial.
const PATHS: u64 = 3 * 4096 + 1001;

fn simulate_with(model: &Model, seed: u64, threads: usize) -> PathSet {
    let config = RunConfig {
        paths: PATHS,
        seed,
        threads,
    };
    simulate(model, &config, &|_| {}).unwrap()
}

/// `|a - b| <= 1e-9 × scale`: sums of the same terms in another order.
fn close(a: f64, b: f64, scale: f64) -> bool {
    (a - b).abs() <= 1e-9 * scale.max(1.0)
}

proptest! {
    #![proptest_config(fixed_config(48, 11))]

    #[test]
    fn tail_measures_are_ordered(scenario in small_scenario()) {
        let model = Model::new(&scenario);
        let r = analyse(&model, &simulate_with(&model, 1, 0), &[]);
        let levels = TAIL_LEVELS;
        let var: Vec<f64> = levels.iter().map(|l| metric(&r, MetricId::Var(*l)).value).collect();
        let es: Vec<f64> = levels.iter().map(|l| metric(&r, MetricId::Es(*l)).value).collect();
        for i in 0..levels.len() {
            // ES is a mean of losses at or beyond VaR; allow the last bits of its sum.
            prop_assert!(es[i] >= var[i] - 1e-12, "es < var at {}: {:?} {:?}", levels[i], es, var);
            if i > 0 {
                prop_assert!(var[i] >= var[i - 1], "var decreasing: {var:?}");
                prop_assert!(es[i] >= es[i - 1] - 1e-12, "es decreasing: {es:?}");
            }
        }
    }

    #[test]
    fn no_path_loses_more_than_it_held(scenario in small_scenario()) {
        let model = Model::new(&scenario);
        let principal = scenario.spec().position.principal_eth;
        for o in &simulate_with(&model, 2, 0).outcomes {
            // The stake destroyed (slashing, depeg) is at most the principal plus the base
            // rewards it earned; the position's value is never negative.
            let held = principal + o.base_income_eth;
            prop_assert!(o.slashing_loss_eth + o.depeg_loss_eth <= held * (1.0 + 1e-12), "{o:?}");
            prop_assert!(o.net_return >= -1.0 - 1e-12, "{o:?}");
            prop_assert!(o.slashing_loss_eth >= 0.0 && o.depeg_loss_eth >= 0.0, "{o:?}");
        }
    }

    #[test]
    fn contributions_add_up_to_the_totals(scenario in small_scenario()) {
        let model = Model::new(&scenario);
        let r = analyse(&model, &simulate_with(&model, 3, 0), &[]);
        let p = scenario.spec().position.principal_eth;
        let total_loss = -metric(&r, MetricId::MeanNetReturn).value * p;
        let sum = |rows: &[restake_core::stats::Contribution], f: &dyn Fn(&restake_core::stats::Contribution) -> f64| {
            rows.iter().map(f).sum::<f64>()
        };
        prop_assert!(close(sum(&r.contributions, &|c| c.expected_loss_eth), total_loss, p));
        // By operator: all slashing of each operator's stake, plus the depeg and income.
        let not_slashing: Vec<_> = r
            .contributions
            .iter()
            .filter(|c| matches!(c.row.kind, ContributionKind::Depeg | ContributionKind::Income))
            .cloned()
            .collect();
        let by_operator = sum(&r.operator_contributions, &|c| c.expected_loss_eth)
            + sum(&not_slashing, &|c| c.expected_loss_eth);
        prop_assert!(close(by_operator, total_loss, p));
        // By AVS: everything that went through an AVS.
        let through_avs = sum(&r.contributions, &|c| match c.row.kind {
            ContributionKind::AvsSlashing | ContributionKind::AvsIncident | ContributionKind::OperatorFault => c.expected_loss_eth,
            _ => 0.0,
        });
        prop_assert!(close(sum(&r.avs_contributions, &|c| c.expected_loss_eth), through_avs, p));
        for (i, l) in TAIL_LEVELS.iter().enumerate() {
            let es = metric(&r, MetricId::Es(*l)).value * p;
            prop_assert!(close(sum(&r.contributions, &|c| c.es_contribution_eth[i]), es, p));
            let by_operator = sum(&r.operator_contributions, &|c| c.es_contribution_eth[i])
                + sum(&not_slashing, &|c| c.es_contribution_eth[i]);
            prop_assert!(close(by_operator, es, p));
        }
        let slashing = metric(&r, MetricId::ExpectedSlashingLossEth).value;
        prop_assert!(close(sum(&r.operator_contributions, &|c| c.expected_loss_eth), slashing, p));
    }
}

proptest! {
    #![proptest_config(fixed_config(24, 13))]

    #[test]
    fn a_loan_keeps_the_identity_and_the_equity_floor(scenario in levered_scenario()) {
        let model = Model::new(&scenario);
        let set = simulate_with(&model, 14, 0);
        let p = scenario.spec().position.principal_eth;
        let l = scenario.spec().leverage.as_ref().expect("levered").leverage;
        for o in &set.outcomes {
            let v = (1.0 + o.net_return) * p;
            let identity = p + o.base_income_eth + o.avs_fee_income_eth + o.incentive_value_eth
                - o.slashing_loss_eth - o.depeg_loss_eth - o.liquidation_loss_eth
                - o.borrow_cost_eth + o.bad_debt_eth;
            prop_assert!((v - identity).abs() <= 1e-9 * p * l, "{o:?}");
            // The holder keeps its fees and tokens whatever happens to the loan.
            prop_assert!(v >= o.avs_fee_income_eth + o.incentive_value_eth - 1e-9 * p * l, "{o:?}");
            prop_assert!(o.liquidation_loss_eth >= 0.0 && o.bad_debt_eth >= 0.0 && o.borrow_cost_eth >= 0.0);
            prop_assert!(o.bad_debt_eth == 0.0 || o.liquidations > 0 || o.depeg_loss_eth > 0.0, "{o:?}");
        }
        let r = analyse(&model, &set, &[]);
        let total_loss = -metric(&r, MetricId::MeanNetReturn).value * p;
        let sum: f64 = r.contributions.iter().map(|c| c.expected_loss_eth).sum();
        prop_assert!((sum - total_loss).abs() <= 1e-9 * p * l, "{sum} vs {total_loss}");
        for (i, level) in TAIL_LEVELS.iter().enumerate() {
            let es = metric(&r, MetricId::Es(*level)).value * p;
            let sum: f64 = r.contributions.iter().map(|c| c.es_contribution_eth[i]).sum();
            prop_assert!((sum - es).abs() <= 1e-9 * p * l, "ES {level}: {sum} vs {es}");
        }
    }
}

/// `scenario` with AVS `A0`'s slashing probability raised by `delta` (capped below 1),
/// and every operator's own probability for it alike.
fn raise_first_avs(scenario: &Scenario, delta: f64) -> Scenario {
    let mut spec = scenario.spec().clone();
    let raise = |p: &mut f64| *p = (*p + delta).min(0.99);
    raise(&mut spec.avs[0].slash_prob);
    for o in &mut spec.operators {
        if let Some(p) = o.slash_probs.get_mut("A0") {
            raise(p);
        }
    }
    Scenario::try_from(spec).unwrap()
}

proptest! {
    #![proptest_config(fixed_config(24, 12))]

    #[test]
    fn a_riskier_avs_never_lowers_the_expected_slashing_loss(
        scenario in small_scenario(),
        delta in 0.01..0.3f64,
    ) {
        // Coupled models on one seed (Model::couple): the riskier one sees a superset of
        // the events with the same severities, so on every path its value is never
        // higher. Its expected slashing loss (a sum of stake destroyed at different
        // times, not pathwise monotone under growth) may not fall below the other's by
        // more than 4 standard errors of the paired mean difference.
        let riskier = raise_first_avs(&scenario, delta);
        let mut models = [Model::new(&scenario), Model::new(&riskier)];
        prop_assert!(Model::couple(&mut models));
        let (a, b) = (simulate_with(&models[0], 4, 0), simulate_with(&models[1], 4, 0));
        for (x, y) in a.outcomes.iter().zip(&b.outcomes) {
            prop_assert!(y.net_return <= x.net_return + 1e-12, "{x:?} then {y:?}");
        }
        let d: Vec<f64> = a
            .outcomes
            .iter()
            .zip(&b.outcomes)
            .map(|(x, y)| y.slashing_loss_eth - x.slashing_loss_eth)
            .collect();
        let n = d.len() as f64;
        let mean = d.iter().sum::<f64>() / n;
        let sd = (d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        prop_assert!(mean >= -TOLERANCE_SE * sd / n.sqrt(), "mean change {mean}, se {}", sd / n.sqrt());
    }

    #[test]
    fn coupling_does_not_change_a_models_law(scenario in small_scenario(), delta in 0.01..0.3f64) {
        // A model coupled to a riskier one keeps its own distribution: thinning the
        // dominating process gives back its own Poisson processes. Two-sample KS of its
        // net return, coupled and alone, on different seeds.
        let riskier = raise_first_avs(&scenario, delta);
        let alone = Model::new(&scenario);
        let mut models = [Model::new(&scenario), Model::new(&riskier)];
        prop_assert!(Model::couple(&mut models));
        let r = |set: &PathSet| set.outcomes.iter().map(|o| o.net_return).collect::<Vec<f64>>();
        let ks = restake_validation::stat::ks_two_sample(
            &r(&simulate_with(&alone, 6, 0)),
            &r(&simulate_with(&models[0], 7, 0)),
            1e-9,
        );
        prop_assert!(ks.p_value >= restake_validation::stat::SIGNIFICANCE, "{ks:?}");
    }

    #[test]
    fn identical_for_any_thread_count(scenario in small_scenario()) {
        let model = Model::new(&scenario);
        let one = simulate_with(&model, 5, 1);
        let two = simulate_with(&model, 5, 2);
        let eight = simulate_with(&model, 5, 8);
        prop_assert!(one == two && two == eight);
        prop_assert_eq!(analyse(&model, &one, &[0.1]), analyse(&model, &eight, &[0.1]));
    }
}

#[test]
fn another_seed_gives_other_paths() {
    let s = Scenario::from_toml(ENUMERATION_SCENARIO).unwrap();
    let model = Model::new(&s);
    assert!(simulate_with(&model, 99, 2) != simulate_with(&model, 100, 2));
}
