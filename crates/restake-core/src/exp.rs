//! `e^x` over a slice, inlined: the token prices of a path at its checkpoints are its
//! largest block of transcendental work, and the C library's `exp` (a call through the
//! dynamic linker per value, with `errno` handling) cost a third of a path.
//!
//! Method (Tang 1989, "Table-driven implementation of the exponential function in IEEE
//! floating-point arithmetic", ACM TOMS 15(2)): write `x = (128 k + j) ln 2 / 128 + r`
//! with `128 k + j` the integer nearest `128 x / ln 2`, `0 <= j < 128` and
//! `|r| <= ln 2 / 256`, taking the product with `ln 2 / 128` in two parts (Cody and Waite
//! 1980) so that `r` is exact to about 2^-60; then `e^x = 2^k × 2^(j/128) × e^r`, with
//! `2^(j/128)` from a table and `e^r` from its Taylor polynomial of degree 5. Measured
//! difference from the C library's `exp` over `[-708, 709]`: at most 2 units in the last
//! place (the tests below). Arguments outside that range, where the result would leave
//! the normal range, go to the standard library's `exp`.

/// `1.5 × 2^52`: adding it rounds a double below `2^51` to an integer.
const ROUNDER: f64 = 6_755_399_441_055_744.0;
/// Table size: `x = (128 k + j) ln 2 / 128 + r`.
const TABLE_BITS: u32 = 7;
const TABLE_SIZE: usize = 1 << TABLE_BITS;
const SCALED_INV_LN2: f64 = std::f64::consts::LOG2_E * TABLE_SIZE as f64;
/// `ln 2 / 128` in two parts, so that `m × LN2_HI_N` is exact for `|m| < 2^21`
/// (fdlibm's split of `ln 2`, divided by 128 exactly).
const LN2_HI_N: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000) / TABLE_SIZE as f64;
const LN2_LO_N: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76) / TABLE_SIZE as f64;

/// `2^(j / 128)` for `j = 0..128`, from the standard library's `exp2` (within 1 ulp).
static TABLE: std::sync::LazyLock<[f64; TABLE_SIZE]> =
    std::sync::LazyLock::new(|| std::array::from_fn(|j| (j as f64 / TABLE_SIZE as f64).exp2()));

/// `ROUNDER`'s bits less `1023 × 128`: subtracted from the bits of `y + ROUNDER` (`y`
/// the scaled argument) it gives `128 (k + 1023) + j`, non-negative over the range, so
/// that `k + 1023` and `j` come out of logical shifts and masks, which vectorise.
const BIAS_BITS: u64 = ROUNDER.to_bits() - 1023 * TABLE_SIZE as u64;

/// `e^x` for `x` in `[-708, 709]` (no range check: see [`exp_in_place`]).
#[inline(always)]
fn exp_in_range(x: f64, table: &[f64; TABLE_SIZE]) -> f64 {
    let shifted = x * SCALED_INV_LN2 + ROUNDER;
    let m = shifted - ROUNDER;
    let r = (x - m * LN2_HI_N) - m * LN2_LO_N;
    // 128 (k + 1023) + j, with m = 128 k + j and 0 <= j < 128.
    let biased = shifted.to_bits().wrapping_sub(BIAS_BITS);
    let j = (biased & (TABLE_SIZE as u64 - 1)) as usize;
    // e^r by its Taylor polynomial of degree 5: |r| <= ln 2 / 256 leaves r^6/720 < 6e-19.
    let p = 1.0 + r * (1.0 + r * (0.5 + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0)))));
    let scale = f64::from_bits((biased >> TABLE_BITS) << 52);
    table[j] * p * scale
}

/// [`exp_in_range`] of every value.
#[inline(always)]
fn exp_all(xs: &mut [f64], table: &[f64; TABLE_SIZE]) {
    for x in xs.iter_mut() {
        *x = exp_in_range(*x, table);
    }
}

/// Replaces every `x` of `xs` by `e^x`, to within 2 units in the last place; values
/// outside `[-708, 709]` (and NaN) get the standard library's `exp`. Always inlined, so
/// that inside the block loop's AVX2 build (`crate::block`, chosen at run time) it runs
/// four at a time, to the same bits.
#[inline(always)]
pub fn exp_in_place(xs: &mut [f64]) {
    let table = &*TABLE;
    // Not `all`: a check without an early exit runs at the vector width.
    if !xs
        .iter()
        .fold(true, |ok, x| ok & (-708.0..=709.0).contains(x))
    {
        for x in xs.iter_mut() {
            *x = if (-708.0..=709.0).contains(x) {
                exp_in_range(*x, table)
            } else {
                x.exp()
            };
        }
        return;
    }
    exp_all(xs, table);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two positive doubles.
    fn ulps(a: f64, b: f64) -> u64 {
        a.to_bits().abs_diff(b.to_bits())
    }

    #[test]
    fn within_two_ulps_of_the_library_over_the_range() {
        // The library's exp is within 1 ulp of e^x (glibc documents < 1 ulp), so
        // agreement to 2 ulps bounds our error by 3 ulps; the observed maximum is printed.
        let mut worst = 0;
        let mut xs: Vec<f64> = (0..2_000_001)
            .map(|i| -708.0 + 1417.0 * f64::from(i) / 2_000_000.0)
            .collect();
        xs.extend((0..200_001).map(|i| -1.0 + 2.0 * f64::from(i) / 200_000.0));
        let mut ys = xs.clone();
        exp_in_place(&mut ys);
        for (x, y) in xs.iter().zip(&ys) {
            worst = worst.max(ulps(*y, x.exp()));
        }
        println!("worst difference from the library: {worst} ulps");
        assert!(worst <= 2, "worst error {worst} ulps");
    }

    #[test]
    fn the_vector_code_gives_the_scalar_bits() {
        let table = &*TABLE;
        let xs: Vec<f64> = (0..100_003)
            .map(|i| -708.0 + 1417.0 * f64::from(i) / 100_002.0)
            .collect();
        let mut fast = xs.clone();
        exp_in_place(&mut fast);
        for (x, y) in xs.iter().zip(&fast) {
            assert_eq!(y.to_bits(), exp_in_range(*x, table).to_bits(), "x = {x}");
        }
    }

    #[test]
    fn edges_and_out_of_range_values() {
        let mut xs = [0.0, 1.0, -1.0, 709.5, -745.0, -800.0, f64::NAN, 710.0];
        exp_in_place(&mut xs);
        assert_eq!(xs[0], 1.0);
        assert!(ulps(xs[1], std::f64::consts::E) <= 2);
        assert!(ulps(xs[2], (-1.0f64).exp()) <= 1);
        assert_eq!(xs[3], 709.5f64.exp());
        assert_eq!(xs[4], (-745.0f64).exp());
        assert_eq!(xs[5], 0.0);
        assert!(xs[6].is_nan());
        assert_eq!(xs[7], f64::INFINITY);
    }
}
