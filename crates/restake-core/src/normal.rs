//! The tokens' standard normal increments: a ziggurat over interleaved Xoshiro256++
//! streams, drawn a block of paths at a time (`docs/performance.md#the-normal-streams`).
//!
//! A batch has [`LANES`] streams of its own, seeded from `(seed, batch)` apart from the
//! batch's generator ([`NormalStreams::new`]). Path `p` of the batch (counted from 0)
//! takes all its increments, token-major, from stream `p mod LANES`, one after the other.
//! A path alone ([`NormalStreams::path`]) and a block of paths ([`NormalStreams::block`])
//! therefore give the same numbers, bit for bit: the block steps its [`LANES`] streams
//! together in one vector register and tests the ziggurat's rectangles for all of them
//! at once, and only the rare candidate outside its rectangle (about 1.2%) goes to the
//! scalar rest of the algorithm on its own stream.
//!
//! The sampler is the ziggurat of Marsaglia and Tsang ("The ziggurat method for
//! generating random variables", J. Stat. Softw. 5(8), 2000) with 256 layers, the
//! improvement of Doornik ("An improved ziggurat method to generate normal random
//! samples", 2005) of taking the layer and the uniform from separate bits of one word,
//! and the tail by Marsaglia's method (1964). The tables are
//! [`crate::ziggurat_tables`], computed by `tools/ziggurat_tables.py`.

use crate::sampling::{DrawKind, batch_state, count_draws};
use crate::ziggurat_tables::{F, R, X};

/// Streams of a batch, the width of a 256-bit vector of 64-bit words.
pub const LANES: usize = 4;

/// Salt of the seed of the normal streams (the batch's generator has the seed itself).
const NORMAL_SALT: u64 = 0x6E6F_726D_616C_7321;

/// Bits of `2.0`: a word's top 52 bits under this exponent are a uniform on `[2, 4)`.
const TWO_BITS: u64 = 0x4000_0000_0000_0000;

/// One Xoshiro256++ stream (Blackman and Vigna, "Scrambled linear pseudorandom number
/// generators", 2021): the same outputs as `rand_xoshiro::Xoshiro256PlusPlus` from the
/// same state.
#[derive(Debug, Clone, Copy)]
struct Lane([u64; 4]);

impl Lane {
    #[inline(always)]
    fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let out = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        out
    }

    /// A uniform on `[0, 1)` from the top 53 bits of a word.
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform on `(0, 1)` from the top 52 bits of a word.
    fn open_uniform(&mut self) -> f64 {
        ((self.next_u64() >> 12) as f64 + 0.5) * (1.0 / (1u64 << 52) as f64)
    }
}

/// The candidate of word `w`: its layer `i` (the low 8 bits), the uniform `u` on
/// `[-1, 1)` (the top 52) and `x = u x_i`.
#[inline(always)]
fn candidate(w: u64) -> (usize, f64, f64) {
    let i = (w & 0xff) as usize;
    let u = f64::from_bits((w >> 12) | TWO_BITS) - 3.0;
    (i, u, u * X[i])
}

/// The rest of the ziggurat after word `w`'s candidate fell outside its layer's
/// rectangle: the tail of the base strip, or the wedge test against the density, and
/// new words from `lane` until a candidate is accepted.
#[cold]
fn rest(lane: &mut Lane, mut w: u64) -> f64 {
    loop {
        let (i, u, x) = candidate(w);
        if i == 0 {
            // The tail beyond r (Marsaglia 1964).
            loop {
                let x = lane.open_uniform().ln() / R;
                let y = lane.open_uniform().ln();
                if -2.0 * y >= x * x {
                    return if u < 0.0 { x - R } else { R - x };
                }
            }
        }
        if F[i + 1] + (F[i] - F[i + 1]) * lane.uniform() < (-0.5 * x * x).exp() {
            return x;
        }
        w = lane.next_u64();
        let (i, _, x) = candidate(w);
        if x.abs() < X[i + 1] {
            return x;
        }
    }
}

/// A standard normal from `lane`.
fn normal(lane: &mut Lane) -> f64 {
    let w = lane.next_u64();
    let (i, _, x) = candidate(w);
    if x.abs() < X[i + 1] { x } else { rest(lane, w) }
}

/// Stream `l` of word-major states `state[word][lane]`.
fn lane_of(state: &[[u64; LANES]; 4], l: usize) -> Lane {
    Lane(state.map(|s| s[l]))
}

/// Writes `lane` back as stream `l` of word-major states.
fn set_lane(state: &mut [[u64; LANES]; 4], l: usize, lane: Lane) {
    for (s, w) in state.iter_mut().zip(lane.0) {
        s[l] = w;
    }
}

/// The normal streams of a batch and the batch's next path ([module docs](self)).
#[derive(Debug, Clone)]
pub struct NormalStreams {
    /// The instruction set to draw blocks with, found at run time.
    arch: pulp::Arch,
    /// The streams' states, word-major: `state[word][lane]`.
    state: [[u64; LANES]; 4],
    /// The batch's next path.
    next_path: u64,
}

impl NormalStreams {
    /// The streams of batch `batch` of a run with seed `seed`, at its path 0: stream `l`
    /// starts at [`crate::sampling::batch_rng`]'s state for `(seed ^ salt, LANES × batch
    /// + l)`, so that they depend on `(seed, batch)` only.
    pub fn new(seed: u64, batch: u64) -> Self {
        let mut state = [[0; LANES]; 4];
        for l in 0..LANES {
            let words = batch_state(seed ^ NORMAL_SALT, batch * LANES as u64 + l as u64);
            set_lane(&mut state, l, Lane(words));
        }
        Self {
            arch: pulp::Arch::new(),
            state,
            next_path: 0,
        }
    }

    /// The next path's increments from its stream: increment `j` into `out[rows[j]]`.
    ///
    /// # Panics
    /// If a row is past `out`.
    pub fn path(&mut self, rows: &[usize], out: &mut [f64]) {
        self.path_strided(rows, out, 1);
    }

    /// The next path's increments from its stream, increment `j` into
    /// `out[rows[j] × stride]`.
    fn path_strided(&mut self, rows: &[usize], out: &mut [f64], stride: usize) {
        let l = (self.next_path % LANES as u64) as usize;
        let mut lane = lane_of(&self.state, l);
        for r in rows {
            out[r * stride] = normal(&mut lane);
        }
        count_draws(DrawKind::StreamNormal, rows.len() as u64);
        set_lane(&mut self.state, l, lane);
        self.next_path += 1;
    }

    /// The next `n` paths' increments: path `i`'s increment `j` into
    /// `out[rows[j] × stride + i]`. The same numbers as [`Self::path`] `n` times.
    ///
    /// # Panics
    /// If `n` is above `stride` or a row is past `out`.
    pub fn block(&mut self, rows: &[usize], n: usize, out: &mut [f64], stride: usize) {
        assert!(n <= stride, "{n} paths in rows of {stride}");
        if rows.is_empty() {
            self.next_path += n as u64;
            return;
        }
        // Whole groups of LANES paths that start at stream 0 together, where the
        // processor has the vector instructions; the others alone.
        let mut i = 0;
        while i < n {
            if self.next_path.is_multiple_of(LANES as u64)
                && n - i >= LANES
                && group(self.arch, &mut self.state, rows, &mut out[i..], stride)
            {
                count_draws(DrawKind::StreamNormal, (rows.len() * LANES) as u64);
                self.next_path += LANES as u64;
                i += LANES;
            } else {
                self.path_strided(rows, &mut out[i..], stride);
                i += 1;
            }
        }
    }
}

/// The increments of [`LANES`] paths starting at stream 0, path `l` from stream `l`,
/// into `out[row × stride + l]`, with AVX2: the streams stepped together in one vector
/// register and the rectangle test on all of them at once ([`GroupV3`]). Returns
/// whether it drew them (false, and nothing drawn, without AVX2).
fn group(
    arch: pulp::Arch,
    state: &mut [[u64; LANES]; 4],
    rows: &[usize],
    out: &mut [f64],
    stride: usize,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if let pulp::Arch::V3(v3) = arch {
        pulp::Simd::vectorize(
            v3,
            GroupV3 {
                v3,
                state,
                rows,
                out,
                stride,
            },
        );
        return true;
    }
    let _ = (arch, state, rows, out, stride);
    false
}

/// [`group`] with AVX2: `Lane::next_u64` on four streams at once, its rotations as
/// shift pairs, then each word's candidate; the rare lane outside its rectangle takes
/// the scalar rest of the ziggurat on its own stream.
#[cfg(target_arch = "x86_64")]
struct GroupV3<'a> {
    v3: pulp::x86::V3,
    state: &'a mut [[u64; LANES]; 4],
    rows: &'a [usize],
    out: &'a mut [f64],
    stride: usize,
}

#[cfg(target_arch = "x86_64")]
impl pulp::WithSimd for GroupV3<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        use pulp::bytemuck::cast;
        use pulp::{Simd, f64x4, u64x4};
        let Self {
            v3,
            state,
            rows,
            out,
            stride,
        } = self;
        let [mut s0, mut s1, mut s2, mut s3]: [u64x4; 4] = state.map(cast);
        let two = v3.splat_u64x4(TWO_BITS);
        let three = v3.splat_f64x4(3.0);
        for r in rows {
            let sum = v3.add_u64s(s0, s3);
            let rotated = v3.or_u64s(v3.shl_const_u64x4::<23>(sum), v3.shr_const_u64x4::<41>(sum));
            let w = v3.add_u64s(rotated, s0);
            let t = v3.shl_const_u64x4::<17>(s1);
            s2 = v3.xor_u64s(s2, s0);
            s3 = v3.xor_u64s(s3, s1);
            s1 = v3.xor_u64s(s1, s2);
            s0 = v3.xor_u64s(s0, s3);
            s2 = v3.xor_u64s(s2, t);
            s3 = v3.or_u64s(v3.shl_const_u64x4::<45>(s3), v3.shr_const_u64x4::<19>(s3));
            let u: f64x4 = cast(v3.or_u64s(v3.shr_const_u64x4::<12>(w), two));
            let u = v3.sub_f64s(u, three);
            let words: [u64; LANES] = cast(w);
            let i = words.map(|w| (w & 0xff) as usize);
            let x = v3.mul_f64s(u, f64x4(X[i[0]], X[i[1]], X[i[2]], X[i[3]]));
            let edge = f64x4(X[i[0] + 1], X[i[1] + 1], X[i[2] + 1], X[i[3] + 1]);
            let inside: [u64; LANES] = cast(v3.cmp_lt_f64x4(v3.abs_f64x4(x), edge));
            let mut x: [f64; LANES] = cast(x);
            if inside.contains(&0) {
                let mut lanes: [[u64; LANES]; 4] = [s0, s1, s2, s3].map(cast);
                for l in (0..LANES).filter(|l| inside[*l] == 0) {
                    let mut lane = lane_of(&lanes, l);
                    x[l] = rest(&mut lane, words[l]);
                    set_lane(&mut lanes, l, lane);
                }
                [s0, s1, s2, s3] = lanes.map(cast);
            }
            out[r * stride..r * stride + LANES].copy_from_slice(&x);
        }
        *state = [s0, s1, s2, s3].map(cast);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    #[test]
    fn a_lane_is_xoshiro256_plus_plus() {
        let words = batch_state(11, 3);
        let mut bytes = [0u8; 32];
        for (c, w) in bytes.chunks_exact_mut(8).zip(words) {
            c.copy_from_slice(&w.to_le_bytes());
        }
        let mut reference = Xoshiro256PlusPlus::from_seed(bytes);
        let mut lane = Lane(words);
        for _ in 0..1000 {
            assert_eq!(lane.next_u64(), reference.next_u64());
        }
    }

    #[test]
    fn the_tables_have_layers_of_equal_area() {
        // The base strip, r f(r) + the tail beyond r, is v = x_0 f(r) (to the accuracy
        // of statrs' erfc, about 1e-11 relative here); each rectangle
        // x_i (f(x_{i+1}) - f(x_i)), i >= 1, has the same area (to rounding).
        let tail =
            (std::f64::consts::PI / 2.0).sqrt() * statrs::function::erf::erfc(R / 2f64.sqrt());
        let v = R * F[1] + tail;
        assert!(
            (X[0] * F[1] - v).abs() <= 1e-10 * v,
            "{} vs {v}",
            X[0] * F[1]
        );
        for i in 1..256 {
            let area = X[i] * (F[i + 1] - F[i]);
            assert!(
                (area - X[0] * F[1]).abs() <= 1e-13 * v,
                "layer {i}: {area} vs {v}"
            );
            // f(x_i) in doubles, to the rounding of x_i^2 / 2 carried through exp.
            let y = 0.5 * X[i] * X[i];
            let tolerance = 2.0 * f64::EPSILON * (1.0 + y) * F[i];
            assert!((F[i] - (-y).exp()).abs() <= tolerance, "f(x_{i})");
        }
        assert_eq!((X[256], F[256]), (0.0, 1.0));
    }

    #[test]
    fn a_block_is_its_paths_one_by_one() {
        // From path 0 and from misaligned paths, with 0, 1, 13 and 40 increments a path
        // (the rows skip some, as a token without volatility does).
        let stride = 64;
        for (start, k, n) in [(0, 13, 64), (2, 13, 61), (0, 1, 7), (3, 40, 64), (1, 0, 5)] {
            let rows: Vec<usize> = (0..k).map(|j| 2 * j + j % 3).collect();
            let len = rows.last().map_or(0, |r| r + 1);
            let mut block = NormalStreams::new(5, 2);
            for _ in 0..start {
                block.path(&rows, &mut vec![0.0; len]);
            }
            let mut alone = block.clone();
            let mut out = vec![f64::NAN; len * stride];
            block.block(&rows, n, &mut out, stride);
            for i in 0..n {
                let mut one = vec![0.0; len];
                alone.path(&rows, &mut one);
                for r in &rows {
                    assert_eq!(
                        out[r * stride + i].to_bits(),
                        one[*r].to_bits(),
                        "path {i}, row {r}"
                    );
                }
            }
            assert_eq!(block.next_path, alone.next_path);
            assert_eq!(block.state, alone.state);
        }
    }

    #[test]
    fn normals_fall_in_bins_as_the_standard_normal() {
        // 4e6 draws over 4 streams; each bin's count within 5 standard errors of its
        // probability, the bins reaching into the tail beyond r (expected about 1,030).
        use statrs::distribution::{ContinuousCDF, Normal};
        let std = Normal::new(0.0, 1.0).unwrap();
        let edges = [-R, -3.0, -2.0, -1.0, -0.3, 0.0, 0.3, 1.0, 2.0, 3.0, R];
        let mut counts = [0u64; 12];
        let (mut sum, mut sum2) = (0.0, 0.0);
        let n = 4_000_000;
        let mut streams = NormalStreams::new(9, 0);
        let rows: Vec<usize> = (0..100).collect();
        let mut z = vec![0.0; 100 * 64];
        for _ in 0..n / (100 * 64) {
            streams.block(&rows, 64, &mut z, 64);
            for x in &z {
                counts[edges.partition_point(|e| e <= x)] += 1;
                sum += x;
                sum2 += x * x;
            }
        }
        let total = (n / 6400 * 6400) as f64;
        for (b, c) in counts.iter().enumerate() {
            let lo = if b == 0 { 0.0 } else { std.cdf(edges[b - 1]) };
            let hi = if b == edges.len() {
                1.0
            } else {
                std.cdf(edges[b])
            };
            let p = hi - lo;
            let se = (total * p * (1.0 - p)).sqrt();
            assert!(
                (*c as f64 - total * p).abs() <= 5.0 * se,
                "bin {b}: {c} vs {}",
                total * p
            );
        }
        // Mean 0 (se 1/sqrt(n)) and variance 1 (se sqrt(2/n)).
        let mean = sum / total;
        assert!(mean.abs() <= 5.0 / total.sqrt(), "mean {mean}");
        let var = sum2 / total - mean * mean;
        assert!(
            (var - 1.0).abs() <= 5.0 * (2.0 / total).sqrt(),
            "variance {var}"
        );
    }

    #[test]
    fn streams_differ_by_batch_and_seed() {
        let draw = |seed, batch| {
            let mut s = NormalStreams::new(seed, batch);
            let mut z = [0.0; 4];
            s.path(&[0, 1, 2, 3], &mut z);
            z
        };
        assert_ne!(draw(1, 0), draw(1, 1));
        assert_ne!(draw(1, 0), draw(2, 0));
        assert_eq!(draw(1, 0), draw(1, 0));
    }
}
