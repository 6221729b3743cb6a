//! Building blocks of a path, one draw or operation per iteration: the generator, the
//! samplers (uniform, normal, Poisson count, severities), `exp`, one whole path of each
//! benchmark scenario, and the statistics (`analyse`, which sorts the losses and
//! extracts the quantiles, VaR and ES).
//!
//! `cargo bench -p restake-benches --bench blocks`; criterion's time per iteration is the
//! cost of one block.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, RngExt};
use rand_distr::{Distribution, Poisson, StandardNormal};
use restake_benches::{SCENARIOS, scenario};
use restake_core::exp::exp_in_place;
use restake_core::path::{PathScratch, simulate_path};
use restake_core::sampling::{Severity, batch_rng};
use restake_core::{Model, RunConfig, SeveritySpec, analyse, simulate};

fn draws(c: &mut Criterion) {
    let mut g = c.benchmark_group("draw");
    let mut rng = batch_rng(1, 0);
    g.bench_function("next_u64", |b| b.iter(|| black_box(rng.next_u64())));
    g.bench_function("uniform_f64", |b| b.iter(|| black_box(rng.random::<f64>())));
    g.bench_function("normal", |b| {
        b.iter(|| black_box::<f64>(StandardNormal.sample(&mut rng)))
    });
    let poisson = Poisson::new(0.1).unwrap();
    g.bench_function("poisson_mean_0.1", |b| {
        b.iter(|| black_box(poisson.sample(&mut rng)))
    });
    let beta = |alpha, beta| SeveritySpec::Beta {
        alpha,
        beta,
        min: None,
        max: None,
    };
    for (name, spec) in [
        ("uniform", SeveritySpec::Uniform { min: 0.0, max: 0.1 }),
        ("beta_2_5", beta(2.0, 5.0)),
        ("beta_2_8", beta(2.0, 8.0)),
        ("beta_2_40", beta(2.0, 40.0)),
        ("beta_0.5_0.5", beta(0.5, 0.5)),
    ] {
        let s = Severity::new(&spec);
        g.bench_function(format!("severity_{name}"), |b| {
            b.iter(|| black_box(s.sample(&mut rng)))
        });
    }
    let mut x = 0.01f64;
    g.bench_function("exp", |b| {
        b.iter(|| {
            x = black_box(x) + 1e-9;
            black_box(x.exp())
        })
    });
    // A path's token prices: 13 monthly checkpoints at once.
    let mut prices = [0.0f64; 13];
    g.bench_function("exp_in_place_13", |b| {
        b.iter(|| {
            for (i, p) in prices.iter_mut().enumerate() {
                *p = -7.6 + 0.01 * i as f64 + x;
            }
            exp_in_place(black_box(&mut prices));
            black_box(prices[12])
        })
    });
    g.finish();
}

fn one_path(c: &mut Criterion) {
    let mut g = c.benchmark_group("path");
    g.throughput(Throughput::Elements(1));
    for (name, _) in SCENARIOS {
        let model = Model::new(&scenario(name));
        let mut scratch = PathScratch::new(&model);
        let mut rng = batch_rng(2, 0);
        g.bench_function(name, |b| {
            b.iter(|| {
                let out = simulate_path(&model, &mut rng, &mut scratch);
                scratch.clear_rows();
                black_box(out)
            })
        });
    }
    g.finish();
}

fn statistics(c: &mut Criterion) {
    const PATHS: u64 = 200_000;
    let mut g = c.benchmark_group("statistics");
    g.throughput(Throughput::Elements(PATHS));
    g.sample_size(10);
    let model = Model::new(&scenario("etherfi-weeth"));
    let config = RunConfig {
        paths: PATHS,
        seed: 3,
        threads: 0,
    };
    let set = simulate(&model, &config, &|_| {}).expect("runs");
    g.bench_function("analyse_etherfi-weeth", |b| {
        b.iter(|| black_box(analyse(&model, &set, &[])))
    });
    g.finish();
}

criterion_group!(benches, draws, one_path, statistics);
criterion_main!(benches);
