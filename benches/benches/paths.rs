//! Paths per second of the full simulation (sampling core, then statistics) for each
//! preset in `data/scenarios/`, on one thread and on all threads.
//!
//! `cargo bench -p restake-benches` runs it; criterion reports the throughput in
//! paths (elements) per second.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use restake_core::{Model, RunConfig, Scenario, analyse, simulate};

const PRESETS: [(&str, &str); 3] = [
    (
        "etherfi-weeth",
        include_str!("../../data/scenarios/etherfi-weeth.toml"),
    ),
    (
        "eigenlayer-native",
        include_str!("../../data/scenarios/eigenlayer-native.toml"),
    ),
    (
        "renzo-ezeth",
        include_str!("../../data/scenarios/renzo-ezeth.toml"),
    ),
];

const PATHS: u64 = 200_000;

fn paths(c: &mut Criterion) {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    for (name, text) in PRESETS {
        let scenario = Scenario::from_toml(text).expect("preset parses");
        let model = Model::new(&scenario);
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
        let set = simulate(
            &model,
            &RunConfig {
                paths: PATHS,
                seed: 42,
                threads,
            },
            &|_| {},
        )
        .expect("runs");
        group.bench_function("analyse", |b| {
            b.iter(|| black_box(analyse(&model, &set, &[0.01])))
        });
        group.finish();
    }
}

criterion_group!(benches, paths);
criterion_main!(benches);
