//! The engine against the slow reference simulation (`restake_validation::reference`) on
//! random small scenarios: the two must agree in distribution. Per scenario, two-sample
//! Kolmogorov–Smirnov tests of the net return and of the slashing loss (rejecting at
//! p < 1e-3), and the means of the net return, the excess return and the slashing loss
//! within 4 standard errors of their difference. Proptest's seed is fixed, so the same
//! scenarios are drawn every run.

use proptest::prelude::*;
use restake_core::{Model, RunConfig, simulate};
use restake_validation::reference;
use restake_validation::scenarios::{
    factor_scenario, fixed_config, levered_scenario, small_scenario,
};
use restake_validation::stat::{assert_within, ks_two_sample, mean_se};

/// Paths of each side.
const PATHS: usize = 20_000;

/// Values of the two simulations closer than this (relative to principal) are ties.
const TIE_TOLERANCE: f64 = 1e-9;

/// Means within 4 se of the difference of two independent means.
fn assert_same_mean(what: &str, engine: &[f64], reference: &[f64]) {
    let (m1, se1) = mean_se(engine);
    let (m2, se2) = mean_se(reference);
    assert_within(what, m1, m2, se1.hypot(se2), 1e-12);
}

/// The checks of the module docs on one scenario.
fn assert_agrees(scenario: &restake_core::Scenario) {
    let model = Model::new(scenario);
    let config = RunConfig {
        paths: PATHS as u64,
        seed: 7,
        threads: 0,
    };
    let engine = simulate(&model, &config, &|_| {}).unwrap().outcomes;
    let slow = reference::simulate(scenario.spec(), PATHS, 8);
    let principal = scenario.spec().position.principal_eth;

    let pick =
        |f: fn(&restake_core::PathOutcome) -> f64| engine.iter().map(f).collect::<Vec<f64>>();
    let e_return = pick(|o| o.net_return);
    let e_excess = pick(|o| o.excess_return);
    let e_loss: Vec<f64> = engine
        .iter()
        .map(|o| o.slashing_loss_eth / principal)
        .collect();
    let r_return: Vec<f64> = slow.iter().map(|o| o.net_return).collect();
    let r_excess: Vec<f64> = slow.iter().map(|o| o.excess_return).collect();
    let r_loss: Vec<f64> = slow
        .iter()
        .map(|o| o.slashing_loss_eth / principal)
        .collect();

    let spec = format!("{:?}", scenario.spec());
    ks_two_sample(&e_return, &r_return, TIE_TOLERANCE)
        .assert_accepts(&format!("net return, {spec}"));
    ks_two_sample(&e_loss, &r_loss, TIE_TOLERANCE)
        .assert_accepts(&format!("slashing loss, {spec}"));
    assert_same_mean(&format!("mean net return, {spec}"), &e_return, &r_return);
    assert_same_mean(&format!("mean excess return, {spec}"), &e_excess, &r_excess);
    assert_same_mean(&format!("mean slashing loss, {spec}"), &e_loss, &r_loss);
}

proptest! {
    #![proptest_config(fixed_config(40, 1))]

    #[test]
    fn engine_agrees_with_the_reference_simulation(scenario in small_scenario()) {
        assert_agrees(&scenario);
    }
}

proptest! {
    #![proptest_config(fixed_config(24, 2))]

    /// With a systematic factor: the engine's copula (its own Phi, conditioned once per
    /// path for each distinct law, superposed and thinned) against the reference's
    /// (statrs's normal law, each source on its own).
    #[test]
    fn engine_agrees_with_the_reference_simulation_with_a_factor(scenario in factor_scenario()) {
        assert_agrees(&scenario);
    }
}

/// Levered values of the two simulations closer than this (a fraction of principal)
/// are ties: the reference liquidates at its next step after the health factor
/// reaches 1, up to two hours later than the engine's closed-form time, which moves a
/// deterministic path's value by about 1e-6.
const LEVERED_TIE_TOLERANCE: f64 = 1e-5;

proptest! {
    #![proptest_config(fixed_config(12, 3))]

    /// With a loan: the engine's closed-form crossings and exact liquidations against
    /// the reference's health factor checked on a grid of steps, its own liquidation
    /// arithmetic and its own depeg episodes. KS on the net return; P(liquidation)
    /// within 4 standard errors of the difference; mean liquidation loss and borrow cost.
    #[test]
    fn engine_agrees_with_the_reference_simulation_with_leverage(scenario in levered_scenario()) {
        let model = Model::new(&scenario);
        let config = RunConfig { paths: PATHS as u64, seed: 9, threads: 0 };
        let engine = simulate(&model, &config, &|_| {}).unwrap().outcomes;
        let slow = reference::simulate(scenario.spec(), PATHS, 10);
        let p = scenario.spec().position.principal_eth;
        let spec = format!("{:?}", scenario.spec());
        let e_return: Vec<f64> = engine.iter().map(|o| o.net_return).collect();
        let r_return: Vec<f64> = slow.iter().map(|o| o.net_return).collect();
        ks_two_sample(&e_return, &r_return, LEVERED_TIE_TOLERANCE)
            .assert_accepts(&format!("levered net return, {spec}"));
        let flag = |xs: Vec<bool>| xs.into_iter().map(f64::from).collect::<Vec<f64>>();
        assert_same_mean(
            &format!("P(liquidation), {spec}"),
            &flag(engine.iter().map(|o| o.liquidations > 0).collect()),
            &flag(slow.iter().map(|o| o.liquidated).collect()),
        );
        let e_loss: Vec<f64> = engine.iter().map(|o| o.liquidation_loss_eth / p).collect();
        let r_loss: Vec<f64> = slow.iter().map(|o| o.liquidation_loss_eth / p).collect();
        assert_same_mean(&format!("mean liquidation loss, {spec}"), &e_loss, &r_loss);
        let e_cost: Vec<f64> = engine.iter().map(|o| o.borrow_cost_eth / p).collect();
        let r_cost: Vec<f64> = slow.iter().map(|o| o.borrow_cost_eth / p).collect();
        assert_same_mean(&format!("mean borrow cost, {spec}"), &e_cost, &r_cost);
    }
}
