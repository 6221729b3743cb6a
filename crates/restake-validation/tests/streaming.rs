//! Streaming statistics against the exact ones on the same paths: what the tail buffer
//! and the merged moments give must equal keeping every path (VaR, ES and their
//! intervals, counts, the lowest quantiles, the ES contributions bit for bit; means to
//! 1e-12), and what the sketches give must be within their stated resolution. And a
//! streaming run is bit-identical for any thread count.

use restake_core::stream::{self, CHUNK_PATHS, SKETCH_RESOLUTION};
use restake_core::{Model, Results, RunConfig, Scenario, analyse, simulate};
use restake_validation::oracle::ENUMERATION_SCENARIO;

/// Three chunks and a part, so that the convergence prefixes cut chunks.
const PATHS: u64 = 3 * CHUNK_PATHS + 12_345;

fn both(text: &str, thresholds: &[f64]) -> (Results, Results) {
    let scenario = Scenario::from_toml(text).unwrap();
    let model = Model::new(&scenario);
    let config = RunConfig {
        paths: PATHS,
        seed: 5,
        threads: 0,
    };
    let exact = analyse(
        &model,
        &simulate(&model, &config, &|_| {}).unwrap(),
        thresholds,
    );
    let streamed = stream::run(&model, &config, thresholds, &|_| {}).unwrap();
    (exact, streamed)
}

fn close(a: f64, b: f64, relative: f64) -> bool {
    (a - b).abs() <= relative * a.abs().max(b.abs()).max(1e-300)
}

fn check(text: &str) {
    let thresholds = [0.05, 0.2];
    let (exact, streamed) = both(text, &thresholds);
    assert_eq!(exact.sketch_resolution, None);
    assert_eq!(streamed.sketch_resolution, Some(SKETCH_RESOLUTION));
    for (e, s) in exact.summary.iter().zip(&streamed.summary) {
        assert_eq!(e.name, s.name);
        let exact_tail = e.name.starts_with("var_") || e.name.starts_with("es_");
        let counted = e.name.starts_with("prob_");
        if exact_tail || counted {
            assert_eq!(e, s, "{}", e.name);
        } else {
            // Moments merged chunk by chunk instead of in one pass.
            for (a, b) in [
                (e.estimate.value, s.estimate.value),
                (e.estimate.std_error, s.estimate.std_error),
            ] {
                assert!(close(a, b, 1e-9), "{}: {a} vs {b}", e.name);
            }
        }
    }
    for (e, s) in exact.quantiles.iter().zip(&streamed.quantiles) {
        let tolerance = |x: f64| 2.0 * SKETCH_RESOLUTION * (1.0 + x).abs();
        if e.probability <= 0.05 {
            assert_eq!(e, s, "quantile {}", e.probability);
        } else {
            for (a, b) in [
                (e.net_return, s.net_return),
                (e.ci_low, s.ci_low),
                (e.ci_high, s.ci_high),
            ] {
                assert!(
                    (a - b).abs() <= tolerance(a),
                    "quantile {}: {a} vs {b}",
                    e.probability
                );
            }
        }
    }
    for (e, s) in exact.fan_chart.iter().zip(&streamed.fan_chart) {
        assert_eq!(e.day, s.day);
        for (a, b) in e.values.iter().zip(&s.values) {
            assert!(
                (a - b).abs() <= 2.0 * SKETCH_RESOLUTION * a.abs(),
                "fan chart day {}: {a} vs {b}",
                e.day
            );
        }
    }
    let all = |r: &Results| {
        let mut v = r.contributions.clone();
        v.extend(r.avs_contributions.clone());
        v.extend(r.operator_contributions.clone());
        v
    };
    for (e, s) in all(&exact).iter().zip(&all(&streamed)) {
        assert_eq!(e.row, s.row);
        assert_eq!(e.event_probability, s.event_probability, "{:?}", e.row);
        assert!(
            (e.expected_loss_eth - s.expected_loss_eth).abs()
                <= 1e-9 * e.expected_loss_eth.abs().max(1.0),
            "{:?}",
            e.row
        );
        for (a, b) in e.es_contribution_eth.iter().zip(&s.es_contribution_eth) {
            assert!(
                (a - b).abs() <= 1e-9 * a.abs().max(1.0),
                "{:?}: {a} vs {b}",
                e.row
            );
        }
    }
    assert_eq!(exact.tail_paths, streamed.tail_paths);
    let total = |h: &restake_core::stats::Histogram| h.bins.iter().map(|b| b.paths).sum::<u64>();
    assert_eq!(total(&streamed.return_distribution), PATHS);
    assert_eq!(total(&streamed.loss_distribution), PATHS);
    assert_eq!(
        exact.loss_distribution.bins[0], streamed.loss_distribution.bins[0],
        "the atom at 0"
    );
    // Convergence: the same prefixes; VaR and ES exact, the rest to 1e-9.
    assert_eq!(exact.convergence.len(), streamed.convergence.len());
    for (e, s) in exact.convergence.iter().zip(&streamed.convergence) {
        assert_eq!((e.paths, &e.metric.name), (s.paths, &s.metric.name));
        if e.metric.name.starts_with("var_")
            || e.metric.name.starts_with("es_")
            || e.metric.name.starts_with("prob_")
        {
            assert_eq!(e, s, "{} at {}", e.metric.name, e.paths);
        } else {
            assert!(close(
                e.metric.estimate.value,
                s.metric.estimate.value,
                1e-9
            ));
        }
    }
}

#[test]
fn streaming_equals_keeping_every_path_on_the_default_preset() {
    check(include_str!("../../../data/scenarios/etherfi-weeth.toml"));
}

#[test]
fn streaming_equals_keeping_every_path_with_atoms_and_ties() {
    // Fixed severities and no income: the losses are atoms, so the tails end in ties.
    check(ENUMERATION_SCENARIO);
}

#[test]
fn a_streaming_run_is_identical_for_any_thread_count() {
    let scenario = Scenario::from_toml(include_str!(
        "../../../benches/scenarios/stress-10avs-5ops.toml"
    ))
    .unwrap();
    let model = Model::new(&scenario);
    let config = |threads| RunConfig {
        paths: 2 * CHUNK_PATHS + 777,
        seed: 9,
        threads,
    };
    let one = stream::run(&model, &config(1), &[0.1], &|_| {}).unwrap();
    let two = stream::run(&model, &config(2), &[0.1], &|_| {}).unwrap();
    assert_eq!(one, two);
}
