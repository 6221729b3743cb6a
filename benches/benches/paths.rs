//! Paths per second of the full path simulation for each benchmark scenario (the presets
//! and the 10-AVS × 5-operator stress case), on one thread and on all threads, and of
//! the statistics over the simulated paths.
//!
//! `cargo bench -p restake-benches --bench paths`; criterion reports the throughput in
//! paths (elements) per second.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use restake_benches::{SCENARIOS, scenario};
use restake_core::{Model, RunConfig, analyse, simulate};

const PATHS: u64 = 200_000;

fn paths(c: &mut Criterion) {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    for (name, _) in SCENARIOS {
        let model = Model::new(&scenario(name));
        let mut group = c.benchmark_group(format!("paths/{name}"));
        group.throughput(Throughput::Elements(PATHS));
        group.sample_size(10);
        for t in [1, threads] {
            let config = RunConfig {
                paths: PATHS,
                seed: 42,
                threads: t,
            };
            group.bench_function(format!("simulate/{t}-threads"), |b| {
                b.iter(|| black_box(simulate(&model, &config, &|_| {}).expect("runs")))
            });
        }
        let config = RunConfig {
            paths: PATHS,
            seed: 42,
            threads,
        };
        let set = simulate(&model, &config, &|_| {}).expect("runs");
        group.bench_function("analyse", |b| {
            b.iter(|| black_box(analyse(&model, &set, &[0.01])))
        });
        group.finish();
    }
}

criterion_group!(benches, paths);
criterion_main!(benches);
