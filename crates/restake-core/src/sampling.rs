//! Which random draw each model quantity takes: the generator and its seeding, severities,
//! the truncated-normal base APR.

use rand::{Rng, RngExt, SeedableRng};
use rand_distr::{Beta, Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::scenario::SeveritySpec;

/// The engine's generator: Xoshiro256++ (Blackman and Vigna, "Scrambled linear
/// pseudorandom number generators", 2021), portable and value-stable across platforms
/// (crate `rand_xoshiro`).
pub type PathRng = Xoshiro256PlusPlus;

/// The generator of one event's own draws (thinning, veto, severity): SplitMix64 (Steele,
/// Lea and Flood 2014) started at a 64-bit seed drawn from the path's generator.
pub type EventRng = rand_xoshiro::SplitMix64;

/// Golden-ratio increment of SplitMix64 (Steele, Lea and Flood 2014).
const SPLITMIX_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// Output `i` (0-based) of SplitMix64 started at `seed`: the generator's state after
/// `i + 1` steps, put through its finaliser. Computable for any `i` in O(1).
fn splitmix64_output(seed: u64, i: u64) -> u64 {
    let mut z = seed.wrapping_add(i.wrapping_add(1).wrapping_mul(SPLITMIX_GAMMA));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The generator of batch `batch` of a run with seed `seed`: its 256-bit Xoshiro256++
/// state is [`batch_state`], little-endian. Depends on `(seed, batch)` only, so the
/// result of a run does not depend on how batches are spread over threads.
pub fn batch_rng(seed: u64, batch: u64) -> PathRng {
    let mut state = [0u8; 32];
    for (chunk, word) in state.chunks_exact_mut(8).zip(batch_state(seed, batch)) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    PathRng::from_seed(state)
}

/// The Xoshiro256++ state of batch `batch` of a run with seed `seed`: outputs
/// `4 batch .. 4 batch + 3` of SplitMix64 started at `seed` (the seeding Vigna
/// recommends).
pub(crate) fn batch_state(seed: u64, batch: u64) -> [u64; 4] {
    std::array::from_fn(|i| splitmix64_output(seed, batch.wrapping_mul(4).wrapping_add(i as u64)))
}

/// Kinds of random draws of a path, as counted by the `draw-count` feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrawKind {
    /// A uniform on [0, 1): one 64-bit word.
    Uniform = 0,
    /// A standard normal (ziggurat).
    Normal = 1,
    /// A Poisson count (Knuth's product of uniforms for a small mean).
    Poisson = 2,
    /// A beta variate.
    Beta = 3,
    /// A token's standard normal increment from the batch's normal streams
    /// ([`crate::normal`]), four paths at a time.
    StreamNormal = 4,
}

/// How many kinds of draw [`DrawKind`] names.
pub const DRAW_KINDS: usize = 5;

/// Counts one draw of `kind` on this thread when the `draw-count` feature is on; does
/// nothing (and compiles to nothing) otherwise, so release builds of the engine carry no
/// counter in their hot loop.
#[inline(always)]
pub fn count_draw(kind: DrawKind) {
    count_draws(kind, 1);
}

/// Counts `n` draws of `kind` at once, as [`count_draw`] `n` times.
#[inline(always)]
pub fn count_draws(kind: DrawKind, n: u64) {
    #[cfg(feature = "draw-count")]
    draw_count::COUNTS.with(|c| {
        let mut counts = c.get();
        counts[kind as usize] += n;
        c.set(counts);
    });
    #[cfg(not(feature = "draw-count"))]
    let _ = (kind, n);
}

/// The per-thread draw counters of the `draw-count` feature.
#[cfg(feature = "draw-count")]
pub mod draw_count {
    use std::cell::Cell;

    thread_local! {
        /// Draws of each [`super::DrawKind`] on this thread since the last [`take`].
        pub(super) static COUNTS: Cell<[u64; super::DRAW_KINDS]> =
            const { Cell::new([0; super::DRAW_KINDS]) };
    }

    /// This thread's counts by kind, indexed by [`super::DrawKind`] (uniform, normal,
    /// Poisson, beta, stream normal), reset to zero.
    pub fn take() -> [u64; super::DRAW_KINDS] {
        COUNTS.with(|c| c.replace([0; super::DRAW_KINDS]))
    }
}

/// A severity sampler on [0, 1], built from a checked [`SeveritySpec`].
#[derive(Debug, Clone)]
pub enum Severity {
    /// Always this value; takes no draw.
    Fixed(f64),
    /// `min + width U`, `U` uniform on [0, 1): one draw.
    Uniform {
        /// Lower end.
        min: f64,
        /// `max - min`.
        width: f64,
    },
    /// `min + width B`, `B ~ Beta(alpha, beta)`.
    Beta {
        /// The unscaled beta sampler.
        beta: BetaSampler,
        /// Lower end.
        min: f64,
        /// `max - min`.
        width: f64,
    },
}

impl Severity {
    /// Builds the sampler of a checked spec (shapes > 0, ends within [0, 1]).
    ///
    /// # Panics
    /// If the spec has a beta shape that is not > 0 or finite, which
    /// [`crate::Scenario`]'s checks exclude.
    pub fn new(spec: &SeveritySpec) -> Self {
        match *spec {
            SeveritySpec::Fixed { value } => Self::Fixed(value),
            SeveritySpec::Uniform { min, max } => Self::Uniform {
                min,
                width: max - min,
            },
            SeveritySpec::Beta {
                alpha,
                beta,
                min,
                max,
            } => {
                let (lo, hi) = (min.unwrap_or(0.0), max.unwrap_or(1.0));
                Self::Beta {
                    beta: BetaSampler::new(alpha, beta),
                    min: lo,
                    width: hi - lo,
                }
            }
        }
    }

    /// One severity in [0, 1].
    #[inline]
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        let s = match self {
            Self::Fixed(v) => *v,
            Self::Uniform { min, width } => {
                count_draw(DrawKind::Uniform);
                min + width * rng.random::<f64>()
            }
            Self::Beta { beta, min, width } => {
                count_draw(DrawKind::Beta);
                min + width * beta.sample(rng)
            }
        };
        s.clamp(0.0, 1.0)
    }
}

/// Largest smaller shape sampled by order statistics: the most that
/// [`MAX_ORDER_UNIFORMS`] admits, since the rank is at most half of `uniforms + 1`.
const MAX_ORDER_RANK: usize = 6;
/// Largest number of uniforms an order-statistic beta draws: beyond, Cheng's algorithm
/// (about 40 ns) is faster (measured by the `blocks` benchmark).
const MAX_ORDER_UNIFORMS: u32 = 12;

/// A `Beta(alpha, beta)` sampler: by order statistics when both shapes are integers, the
/// smaller at most 8 and their sum at most 13 (the `a`-th smallest of `a + b - 1`
/// uniforms is `Beta(a, b)`: David and Nagaraja, *Order Statistics*, §2.1), faster for
/// the presets' shapes than the general method (16 ns against 44 ns for (2, 5), measured
/// by the `blocks` benchmark); otherwise rand_distr's (Cheng 1978).
#[derive(Debug, Clone)]
pub enum BetaSampler {
    /// The `rank`-th smallest of `uniforms` uniforms, or one minus it when `flip` (the
    /// smaller shape is `beta`).
    OrderStatistic {
        /// Rank among the uniforms, the smaller shape.
        rank: usize,
        /// `alpha + beta - 1`.
        uniforms: u32,
        /// The smaller shape is `beta`: return `1 - U_(rank)`.
        flip: bool,
    },
    /// rand_distr's sampler.
    Cheng(Beta<f64>),
}

impl BetaSampler {
    /// The sampler of `Beta(alpha, beta)`.
    ///
    /// # Panics
    /// If a shape is not > 0 and finite, which [`crate::Scenario`]'s checks exclude.
    pub fn new(alpha: f64, beta: f64) -> Self {
        let integer = |x: f64| x.fract() == 0.0 && x >= 1.0;
        let small = alpha.min(beta);
        if integer(alpha)
            && integer(beta)
            && small <= MAX_ORDER_RANK as f64
            && alpha + beta - 1.0 <= f64::from(MAX_ORDER_UNIFORMS)
        {
            Self::OrderStatistic {
                rank: small as usize,
                uniforms: (alpha + beta - 1.0) as u32,
                flip: beta < alpha,
            }
        } else {
            Self::Cheng(Beta::new(alpha, beta).expect("beta shapes checked by Scenario"))
        }
    }

    /// One draw in [0, 1].
    #[inline]
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        match self {
            Self::OrderStatistic {
                rank,
                uniforms,
                flip,
            } => {
                // A loop of its own for each rank, unrolled, its slots in registers.
                let k = match rank {
                    1 => kth_smallest::<1, R>(*uniforms, rng),
                    2 => kth_smallest::<2, R>(*uniforms, rng),
                    3 => kth_smallest::<3, R>(*uniforms, rng),
                    4 => kth_smallest::<4, R>(*uniforms, rng),
                    5 => kth_smallest::<5, R>(*uniforms, rng),
                    _ => kth_smallest::<MAX_ORDER_RANK, R>(*uniforms, rng),
                };
                if *flip { 1.0 - k } else { k }
            }
            Self::Cheng(b) => b.sample(rng),
        }
    }
}

/// The `K`-th smallest of `n` uniforms drawn from `rng` (`1 <= K <= n`), keeping the
/// `K` smallest so far in ascending slots: each uniform `u` goes in branch-free, slot
/// `i` becoming `min(slot i, max(slot i - 1, u))` from the top down, so that the largest
/// drops out. The uniforms lie in `[0, 1)`, never NaN nor `-0`, so a comparison and a
/// select give the same number as `f64::min` and `f64::max`, in one instruction each.
#[inline(always)]
fn kth_smallest<const K: usize, R: Rng + ?Sized>(n: u32, rng: &mut R) -> f64 {
    let lesser = |a: f64, b: f64| if b < a { b } else { a };
    let greater = |a: f64, b: f64| if b > a { b } else { a };
    let mut lowest = [f64::INFINITY; K];
    for _ in 0..n {
        let u: f64 = rng.random();
        for i in (1..K).rev() {
            lowest[i] = lesser(lowest[i], greater(lowest[i - 1], u));
        }
        lowest[0] = lesser(lowest[0], u);
    }
    lowest[K - 1]
}

/// Base APR `r_b ~ Normal(mean, sd)` conditioned on `r_b >= 0`, by redrawing
/// (`docs/model.md#a-path`). With `sd = 0` it is `mean` and takes no draw. `mean >= 0` (checked
/// by the scenario) keeps the acceptance rate at 1/2 or more.
#[inline]
pub fn truncated_normal<R: Rng + ?Sized>(mean: f64, sd: f64, rng: &mut R) -> f64 {
    if sd == 0.0 {
        return mean;
    }
    loop {
        count_draw(DrawKind::Normal);
        let z: f64 = StandardNormal.sample(rng);
        let r = mean + sd * z;
        if r >= 0.0 {
            return r;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_generators_differ_and_repeat() {
        let a: u64 = batch_rng(7, 0).random();
        let b: u64 = batch_rng(7, 1).random();
        let c: u64 = batch_rng(8, 0).random();
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, batch_rng(7, 0).random::<u64>());
    }

    #[test]
    fn splitmix_matches_reference_output() {
        // Reference: Vigna's splitmix64.c with x = 0 gives 0xE220A8397B1DCDAF first.
        assert_eq!(splitmix64_output(0, 0), 0xE220_A839_7B1D_CDAF);
    }

    fn mean_and_se(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let m = xs.iter().sum::<f64>() / n;
        let v = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0);
        (m, (v / n).sqrt())
    }

    #[test]
    fn severity_samplers_have_their_means() {
        let specs = [
            SeveritySpec::Fixed { value: 0.3 },
            SeveritySpec::Uniform { min: 0.1, max: 0.5 },
            SeveritySpec::Beta {
                alpha: 2.0,
                beta: 8.0,
                min: None,
                max: None,
            },
            SeveritySpec::Beta {
                alpha: 2.0,
                beta: 3.0,
                min: Some(0.2),
                max: Some(0.6),
            },
        ];
        let mut rng = batch_rng(1, 0);
        for spec in &specs {
            let s = Severity::new(spec);
            let xs: Vec<f64> = (0..200_000).map(|_| s.sample(&mut rng)).collect();
            let (m, se) = mean_and_se(&xs);
            assert!(
                (m - spec.mean()).abs() <= 5.0 * se + 1e-9,
                "{spec:?}: mean {m} vs {} (se {se})",
                spec.mean()
            );
            let (lo, hi) = match spec {
                SeveritySpec::Fixed { value } => (*value, *value),
                SeveritySpec::Uniform { min, max } => (*min, *max),
                SeveritySpec::Beta { min, max, .. } => (min.unwrap_or(0.0), max.unwrap_or(1.0)),
            };
            assert!(xs.iter().all(|x| (lo..=hi).contains(x)), "{spec:?} support");
        }
    }

    /// The order-statistic beta draws the `rank`-th smallest of its uniforms: the same
    /// number as sorting the same uniforms (the generator cloned), for every rank and
    /// count it covers, flipped when the smaller shape is `beta`.
    #[test]
    fn order_statistic_beta_is_the_sorted_uniforms() {
        let mut rng = EventRng::from_seed(7u64.to_le_bytes());
        let mut checked = 0;
        for rank in 1..=MAX_ORDER_RANK {
            // The other shape at least `rank`, so that `rank` is the smaller one.
            for uniforms in 2 * rank as u32 - 1..=MAX_ORDER_UNIFORMS {
                let shapes = (rank as f64, f64::from(uniforms) + 1.0 - rank as f64);
                for (alpha, beta, flip) in [(shapes.0, shapes.1, false), (shapes.1, shapes.0, true)]
                {
                    let sampler = BetaSampler::new(alpha, beta);
                    assert!(
                        matches!(sampler, BetaSampler::OrderStatistic { .. }),
                        "beta({alpha}, {beta}) by order statistics"
                    );
                    for _ in 0..50 {
                        let mut copy = rng.clone();
                        let mut us: Vec<f64> = (0..uniforms).map(|_| copy.random()).collect();
                        us.sort_by(f64::total_cmp);
                        let kth = us[rank - 1];
                        let expect = if flip && alpha != beta {
                            1.0 - kth
                        } else {
                            kth
                        };
                        let got = sampler.sample(&mut rng);
                        assert_eq!(got.to_bits(), expect.to_bits(), "beta({alpha}, {beta})");
                        assert_eq!(rng, copy, "beta({alpha}, {beta}) draws {uniforms} uniforms");
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(
            checked, 4200,
            "every rank up to {MAX_ORDER_RANK} with each count"
        );
    }

    #[test]
    fn truncated_normal_matches_its_mean() {
        // Normal(0.01, 0.02) truncated at 0: mean = mu + sd phi(a) / (1 - Phi(a)), a = -mu/sd.
        use statrs::distribution::{Continuous, ContinuousCDF, Normal};
        let (mu, sd) = (0.01, 0.02);
        let std = Normal::new(0.0, 1.0).unwrap();
        let a = -mu / sd;
        let exact = mu + sd * std.pdf(a) / (1.0 - std.cdf(a));
        let mut rng = batch_rng(2, 0);
        let xs: Vec<f64> = (0..200_000)
            .map(|_| truncated_normal(mu, sd, &mut rng))
            .collect();
        assert!(xs.iter().all(|x| *x >= 0.0));
        let (m, se) = mean_and_se(&xs);
        assert!(
            (m - exact).abs() <= 5.0 * se,
            "mean {m} vs {exact} (se {se})"
        );
        assert_eq!(truncated_normal(0.03, 0.0, &mut rng), 0.03);
    }
}
