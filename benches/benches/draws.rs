//! Draws per path and the bound they imply, for each benchmark scenario.
//!
//! Built with restake-core's `draw-count` feature, which counts every random draw of a
//! path by kind (uniform, normal, Poisson count, beta, and a token's increment from the
//! batch's normal streams). In the same run it times each kind of draw alone
//! (`UNIT_DRAWS` draws, the best of three; the streams' as a block draws them) and one
//! path of each
//! scenario, and prints: mean draws per path by kind, the bound
//! `sum_kind draws × cost` in ns per path (what the draws alone cost), the measured ns per
//! path one path at a time (`simulate_path`) and in the engine's blocks of paths
//! (`PathBlock`, timed in turn with it), and the ratio of the block figure to the bound.
//! The counters themselves cost a little, so the measured figures here are upper bounds of
//! the uninstrumented ones (`--bench paths` measures those).
//!
//! `cargo bench -p restake-benches --bench draws --features draw-count`

use std::hint::black_box;
use std::time::Instant;

use rand::RngExt;
use rand_distr::{Distribution, Poisson, StandardNormal};
use restake_benches::{SCENARIOS, scenario};
use restake_core::Model;
use restake_core::block::{BLOCK_PATHS, PathBlock};
use restake_core::normal::NormalStreams;
use restake_core::path::{PathScratch, simulate_path};
use restake_core::sampling::{BetaSampler, DRAW_KINDS, batch_rng, draw_count};

const UNIT_DRAWS: u32 = 20_000_000;
const PATHS: u32 = 2_000_000;

/// Best of three timings of `f` run `n` times, in ns per call.
fn ns_per_call(n: u32, mut f: impl FnMut() -> f64) -> f64 {
    (0..3)
        .map(|_| {
            let start = Instant::now();
            let mut acc = 0.0;
            for _ in 0..n {
                acc += f();
            }
            black_box(acc);
            start.elapsed().as_secs_f64() * 1e9 / f64::from(n)
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    // Unit costs, in DRAW_KINDS order: uniform, normal, Poisson (mean 0.1, the order of a
    // preset's event count), the engine's beta sampler at (2, 5), the presets' common
    // severity shape, and a token increment from the normal streams, drawn as a block
    // of paths draws them (13 a path, 64 paths at a time).
    let mut rng = batch_rng(1, 0);
    let poisson = Poisson::new(0.1).unwrap();
    let beta = BetaSampler::new(2.0, 5.0);
    let mut streams = NormalStreams::new(1, 0);
    let rows: Vec<usize> = (0..13).collect();
    let mut increments = vec![0.0; rows.len() * BLOCK_PATHS];
    let per_block = (rows.len() * BLOCK_PATHS) as u32;
    let costs: [f64; DRAW_KINDS] = [
        ns_per_call(UNIT_DRAWS, || rng.random::<f64>()),
        ns_per_call(UNIT_DRAWS, || StandardNormal.sample(&mut rng)),
        ns_per_call(UNIT_DRAWS, || poisson.sample(&mut rng)),
        ns_per_call(UNIT_DRAWS, || beta.sample(&mut rng)),
        ns_per_call(UNIT_DRAWS / per_block, || {
            streams.block(&rows, BLOCK_PATHS, &mut increments, BLOCK_PATHS);
            increments[0]
        }) / f64::from(per_block),
    ];
    println!(
        "unit cost (ns): uniform {:.2}, normal {:.2}, poisson {:.2}, beta {:.2}, stream normal {:.2}",
        costs[0], costs[1], costs[2], costs[3], costs[4]
    );
    println!(
        "{:<24} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10} {:>10} {:>10} {:>6}",
        "scenario",
        "uniform",
        "normal",
        "poisson",
        "beta",
        "stream",
        "bound ns",
        "path ns",
        "block ns",
        "ratio"
    );
    for (name, _) in SCENARIOS {
        let model = Model::new(&scenario(name));
        let mut scratch = PathScratch::new(&model);
        let mut rng = batch_rng(2, 0);
        draw_count::take();
        for _ in 0..PATHS {
            black_box(simulate_path(&model, &mut rng, &mut scratch));
            scratch.clear_rows();
        }
        let counts = draw_count::take();
        let per_path: Vec<f64> = counts
            .iter()
            .map(|c| *c as f64 / f64::from(PATHS))
            .collect();
        let bound: f64 = per_path.iter().zip(costs).map(|(d, c)| d * c).sum();
        let path_ns = ns_per_call(PATHS, || {
            let out = simulate_path(&model, &mut rng, &mut scratch);
            scratch.clear_rows();
            out.net_return
        });
        let mut block = PathBlock::new(&model);
        let mut block_rng = batch_rng(2, 0);
        let mut block_scratch = PathScratch::new(&model);
        let block_ns = ns_per_call(PATHS / BLOCK_PATHS as u32, || {
            block.simulate(&model, &mut block_rng, &mut block_scratch, BLOCK_PATHS);
            block.path(BLOCK_PATHS - 1).outcome.net_return
        }) / BLOCK_PATHS as f64;
        println!(
            "{name:<24} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {bound:>10.1} {path_ns:>10.1} {block_ns:>10.1} {:>6.2}",
            per_path[0],
            per_path[1],
            per_path[2],
            per_path[3],
            per_path[4],
            block_ns / bound
        );
    }
}
