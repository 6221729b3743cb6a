//! The one reduction against the brute force of keeping and sorting every path: VaR,
//! ES and their intervals, every quantile, counts and tail path counts equal; ES, means
//! and contributions to 1e-9 (exact sums against sums in path order); what the sketches
//! give within their stated resolution. And a run cut into shards, saved, read back and
//! merged in any order is bit-identical to the run in one piece, for any thread count.

use restake_core::reduce::{CHUNK_PATHS, Partial, SKETCH_RESOLUTION, reduce_range};
use restake_core::stats::{MetricId, Unit};
use restake_core::{BATCH_PATHS, Model, Results, RunConfig, Scenario, analyse, simulate};
use restake_validation::oracle::ENUMERATION_SCENARIO;

/// Three chunks and a part, so that the convergence prefixes cut chunks (and every
/// order statistic has narrowed its windows many times).
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
    let reduced = restake_core::run_model(&model, &config, thresholds, &|_| {}).unwrap();
    (exact, reduced)
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
        assert_eq!(e.id, s.id);
        let order_statistic = matches!(e.id, MetricId::Var(_));
        let counted = e.id.unit() == Unit::Probability;
        if order_statistic || counted {
            assert_eq!(e, s, "{}", e.id);
        } else {
            // Exact sums against sums in path order (ES: and the tail variance from
            // power sums).
            for (a, b) in [
                (e.estimate.value, s.estimate.value),
                (e.estimate.std_error, s.estimate.std_error),
            ] {
                assert!(close(a, b, 1e-9), "{}: {a} vs {b}", e.id);
            }
        }
    }
    assert_eq!(exact.quantiles, streamed.quantiles);
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
    // Convergence: the same prefixes; VaR and probabilities exact, the rest to 1e-9.
    assert_eq!(exact.convergence.len(), streamed.convergence.len());
    for (e, s) in exact.convergence.iter().zip(&streamed.convergence) {
        assert_eq!((e.paths, e.metric.id), (s.paths, s.metric.id));
        if matches!(e.metric.id, MetricId::Var(_)) || e.metric.id.unit() == Unit::Probability {
            assert_eq!(e, s, "{} at {}", e.metric.id, e.paths);
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
fn the_reduction_equals_keeping_every_path_on_the_default_preset() {
    check(include_str!("../../../data/scenarios/etherfi-weeth.toml"));
}

#[test]
fn the_reduction_equals_keeping_every_path_with_atoms_and_ties() {
    // Fixed severities and no income: the losses are atoms, so the tails end in ties.
    check(ENUMERATION_SCENARIO);
}

/// The partials of `shards` batch-aligned pieces of a run, each saved and read back.
fn shard_partials(model: &Model, config: &RunConfig, shards: u64) -> Vec<Partial> {
    let batches = config.paths.div_ceil(BATCH_PATHS);
    (0..shards)
        .map(|i| {
            let cut = |k: u64| (batches * k / shards * BATCH_PATHS).min(config.paths);
            let p = reduce_range(model, config, cut(i)..cut(i + 1), &[0.1], &|_| {}).unwrap();
            let mut bytes = Vec::new();
            p.write_to(&mut bytes).unwrap();
            Partial::read_from(bytes.as_slice()).unwrap()
        })
        .collect()
}

#[test]
fn shards_merged_in_any_order_equal_the_whole_run_bit_for_bit() {
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
    let whole = restake_core::run_model(&model, &config(1), &[0.1], &|_| {}).unwrap();
    let two_threads = restake_core::run_model(&model, &config(2), &[0.1], &|_| {}).unwrap();
    assert_eq!(whole, two_threads);
    for shards in [3, 7] {
        let mut parts = shard_partials(&model, &config(2), shards);
        // Merged backwards, and as a tree: (0 + 1) + (2 + ...).
        parts.reverse();
        let mut merged = parts[0].clone();
        for p in &parts[1..] {
            merged.merge(p).unwrap();
        }
        assert_eq!(
            merged.finish(&model, &[0.1]).unwrap(),
            whole,
            "{shards} shards"
        );
        let (left, right) = parts.split_at(2);
        let mut a = left[1].clone();
        a.merge(&left[0]).unwrap();
        let mut b = right[0].clone();
        for p in &right[1..] {
            b.merge(p).unwrap();
        }
        b.merge(&a).unwrap();
        assert_eq!(
            b.finish(&model, &[0.1]).unwrap(),
            whole,
            "{shards} shards, a tree"
        );
    }
}

#[test]
fn bad_partials_are_refused() {
    let scenario = Scenario::from_toml(ENUMERATION_SCENARIO).unwrap();
    let model = Model::new(&scenario);
    let config = RunConfig {
        paths: 100_000,
        seed: 3,
        threads: 0,
    };
    let parts = shard_partials(&model, &config, 3);
    // A missing shard.
    let mut two = parts[0].clone();
    two.merge(&parts[2]).unwrap();
    let err = two.clone().finish(&model, &[0.1]).unwrap_err().to_string();
    assert!(err.contains("missing"), "{err}");
    // A repeated shard.
    let err = two.merge(&parts[2]).unwrap_err().to_string();
    assert!(err.contains("two partials"), "{err}");
    // Another seed.
    let other = shard_partials(&model, &RunConfig { seed: 4, ..config }, 3);
    let mut p = parts[0].clone();
    assert!(p.merge(&other[1]).is_err());
    // Truncated, corrupted, foreign bytes.
    let mut bytes = Vec::new();
    parts[1].write_to(&mut bytes).unwrap();
    for cut in [0, 10, 20, bytes.len() / 2, bytes.len() - 1] {
        assert!(Partial::read_from(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;
    let err = Partial::read_from(flipped.as_slice())
        .unwrap_err()
        .to_string();
    assert!(err.contains("corrupted"), "{err}");
    assert!(Partial::read_from(&b"RSTKPART\x02\0\0\0"[..]).is_err());
}
