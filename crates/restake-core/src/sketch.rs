//! A mergeable histogram of non-negative values with fixed log-spaced buckets: the
//! fan chart's quantiles and the distribution files of a run.
//!
//! A bucket is a value's binary exponent and the top [`SUB_BUCKET_BITS`] bits of its
//! mantissa, read straight off the bits of the `f64` (the log-linear layout of HDR
//! histograms, Tene 2012, on the float format itself): `2^13` buckets per power of two,
//! each `2^-13` of its lower edge wide, so a bucket's middle is within `2^-14 = 6.1e-5`
//! of any value in it. The counts are a dense vector over the buckets between the
//! smallest and the largest value seen, so recording is a shift, a subtraction and an
//! increment, and reading walks only the occupied range. A count is kept in 32 bits,
//! and the rare one that passes `2^32` carries its high part into a map: one process
//! counts at most [`crate::MAX_PATHS`] values, so only shards merged into one state
//! ever carry, and the counts take half the memory (and cache) 64 bits would.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Mantissa bits that name a bucket within a power of two.
pub const SUB_BUCKET_BITS: u32 = 13;

/// Values below this (zero included) share the first bucket, read as 0.
pub const SMALLEST_VALUE: f64 = 1.0 / (1u64 << 40) as f64;

/// A histogram of non-negative values ([module docs](self)). Two sketches are equal when
/// they hold the same counts in the same buckets, whatever range each has allocated.
#[derive(Debug, Clone, Default)]
pub struct Sketch {
    /// Bucket index of `counts[0]`.
    offset: u64,
    /// Each bucket's count modulo `2^32`.
    counts: Vec<u32>,
    /// Bucket → its count divided by `2^32`, for the buckets whose count reached it.
    carries: BTreeMap<u64, u64>,
}

const SHIFT: u32 = 52 - SUB_BUCKET_BITS;

/// Buckets the counts' range grows by at a time: an eighth of a power of two, 4 KB.
const GROWTH_BUCKETS: u64 = 1 << (SUB_BUCKET_BITS - 3);

/// Bucket of `x`: 0 below [`SMALLEST_VALUE`] (and for a value that is not finite, which
/// no run records: it fails first), else 1 + the bucket of its bits counted from that of
/// `SMALLEST_VALUE`. A select, not a branch, so that [`buckets`] has none a value.
#[inline]
fn bucket(x: f64) -> u64 {
    let b = (x.to_bits() >> SHIFT)
        .wrapping_sub(SMALLEST_VALUE.to_bits() >> SHIFT)
        .wrapping_add(1);
    if (SMALLEST_VALUE..=f64::MAX).contains(&x) {
        b
    } else {
        0
    }
}

/// The bucket of each of `xs` into `out`, for [`Sketch::record_bucket`]: a block of
/// values in one pass with no branch, which the compiler can vectorise.
///
/// # Panics
/// If `out` is shorter than `xs`.
#[inline]
pub fn buckets(xs: &[f64], out: &mut [u64]) {
    for (b, x) in out[..xs.len()].iter_mut().zip(xs) {
        *b = bucket(*x);
    }
}

/// The middle of bucket `b` (0 for the first).
fn middle(b: u64) -> f64 {
    if b == 0 {
        return 0.0;
    }
    let base = (SMALLEST_VALUE.to_bits() >> SHIFT) + b - 1;
    let lo = f64::from_bits(base << SHIFT);
    let hi = f64::from_bits((base + 1) << SHIFT);
    0.5 * (lo + hi)
}

impl Sketch {
    /// Counts `x` (non-negative; finite).
    #[inline]
    pub fn record(&mut self, x: f64) {
        self.record_bucket(bucket(x));
    }

    /// Counts a value of bucket `b` ([`buckets`]): as [`Sketch::record`] of the value.
    #[inline]
    pub fn record_bucket(&mut self, b: u64) {
        self.add(b, 1);
    }

    /// Adds `other`'s counts.
    pub fn merge(&mut self, other: &Self) {
        for (b, c) in other.occupied() {
            self.add(b, c);
        }
    }

    /// Adds `other`'s counts, taking its memory when this sketch is empty: the same
    /// counts as [`Sketch::merge`], without a copy of them beside `other`'s.
    pub fn merge_owned(&mut self, other: Self) {
        // An empty range has no carries either: a carry belongs to a bucket in range.
        if self.counts.is_empty() {
            *self = other;
        } else {
            self.merge(&other);
        }
    }

    /// Adds `n` to bucket `b`: within the counts' range (nearly every value once a run
    /// is under way) one addition, else the range grows first; past `2^32` the high
    /// part carries.
    #[inline]
    fn add(&mut self, b: u64, n: u64) {
        match self.counts.get_mut(b.wrapping_sub(self.offset) as usize) {
            Some(c) => {
                let sum = u64::from(*c) + n;
                *c = sum as u32;
                if sum >> 32 != 0 {
                    self.carry(b, sum >> 32);
                }
            }
            None => self.grow_to(b, n),
        }
    }

    #[cold]
    fn carry(&mut self, b: u64, high: u64) {
        *self.carries.entry(b).or_default() += high;
    }

    /// Widens the counts' range to hold bucket `b` and adds `n`. The range grows on the
    /// side of `b` by at least half its length, in whole steps of [`GROWTH_BUCKETS`], so
    /// that a sketch whose extremes creep outwards, as a tail's do when paths come,
    /// reallocates a number of times logarithmic in its range, not once per step.
    #[cold]
    fn grow_to(&mut self, b: u64, n: u64) {
        let end = self.offset + self.counts.len() as u64;
        let half = self.counts.len() as u64 / 2;
        let (lo, hi) = if self.counts.is_empty() {
            (b, b + 1)
        } else if b < self.offset {
            (b.min(self.offset.saturating_sub(half)), end)
        } else {
            (self.offset, (b + 1).max(end + half))
        };
        let lo = lo - lo % GROWTH_BUCKETS;
        let hi = hi.div_ceil(GROWTH_BUCKETS) * GROWTH_BUCKETS;
        if self.counts.is_empty() {
            self.offset = lo;
        } else if lo < self.offset {
            let grow = (self.offset - lo) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = lo;
        }
        self.counts.resize((hi - self.offset) as usize, 0);
        self.add(b, n);
    }

    /// `(bucket, count)` of the occupied buckets, ascending.
    fn occupied(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.counts.iter().enumerate().filter_map(|(i, c)| {
            let b = self.offset + i as u64;
            let high = if self.carries.is_empty() {
                0
            } else {
                self.carries.get(&b).copied().unwrap_or(0)
            };
            let count = (high << 32) | u64::from(*c);
            (count > 0).then_some((b, count))
        })
    }

    /// `(middle, count)` of the occupied buckets, ascending.
    pub fn buckets(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        self.occupied().map(|(b, c)| (middle(b), c))
    }

    /// The values at 1-based ascending `ranks` (ascending): each the middle of its
    /// bucket; past the count, the largest.
    pub fn at_ranks<const K: usize>(&self, ranks: [u64; K]) -> [f64; K] {
        let last = self.occupied().last().map_or(0.0, |(b, _)| middle(b));
        let mut out = [last; K];
        let (mut next, mut seen) = (0, 0);
        for (x, c) in self.buckets() {
            seen += c;
            while next < K && seen >= ranks[next] {
                out[next] = x;
                next += 1;
            }
            if next == K {
                break;
            }
        }
        out
    }
}

impl Serialize for Sketch {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let occupied: Vec<(u64, u64)> = self.occupied().collect();
        occupied.serialize(serializer)
    }
}

impl PartialEq for Sketch {
    fn eq(&self, other: &Self) -> bool {
        self.occupied().eq(other.occupied())
    }
}

impl Eq for Sketch {}

impl<'de> Deserialize<'de> for Sketch {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let occupied = Vec::<(u64, u64)>::deserialize(deserializer)?;
        let largest = bucket(f64::MAX);
        let mut s = Self::default();
        let mut previous = None;
        for (b, c) in occupied {
            if b > largest || previous.is_some_and(|p| p >= b) || c == 0 {
                return Err(serde::de::Error::custom(
                    "sketch buckets out of order or range",
                ));
            }
            previous = Some(b);
            s.add(b, c);
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_reads_back_within_the_resolution() {
        for &x in &[1e-9, 0.0123, 0.5, 1.0, 1.0271, 3.7, 1234.5, 1e30] {
            let mut s = Sketch::default();
            s.record(x);
            let [back] = s.at_ranks([1]);
            assert!((back - x).abs() <= x * 2f64.powi(-14), "{x} read as {back}");
        }
        let mut s = Sketch::default();
        s.record(0.0);
        s.record(1e-20);
        assert_eq!(s.at_ranks([1, 2]), [0.0, 0.0]);
    }

    /// A block's buckets count as its values would; a value that is negative, or not
    /// finite, lands in the first bucket (read as 0) instead of stretching the range
    /// up to the bits of an infinity or a NaN.
    #[test]
    fn buckets_count_as_the_values() {
        let xs = [
            0.0,
            -1.0,
            1e-13,
            SMALLEST_VALUE,
            0.37,
            1.0,
            1.0271,
            5e300,
            f64::MAX,
            f64::INFINITY,
            f64::NAN,
            -f64::NAN,
            f64::NEG_INFINITY,
        ];
        let mut out = [u64::MAX; 13];
        buckets(&xs, &mut out);
        assert_eq!(out[..3], [0; 3]);
        assert_eq!(out[3], 1);
        assert_eq!(out[9..], [0; 4]);
        let (mut values, mut blocks) = (Sketch::default(), Sketch::default());
        for (x, b) in xs[..9].iter().zip(out) {
            values.record(*x);
            blocks.record_bucket(b);
        }
        assert_eq!(values, blocks);
        let mut s = Sketch::default();
        s.record(1.0);
        s.record(f64::NAN);
        s.record(-f64::NAN);
        assert_eq!(s.at_ranks([1, 2, 3]), [0.0, 0.0, middle(bucket(1.0))]);
        assert!(
            s.counts.len() as u64 <= bucket(2.0),
            "{} buckets",
            s.counts.len()
        );
    }

    /// Extremes creeping outwards bucket by bucket, as a loss tail's smallest values do,
    /// reallocate the counts a number of times logarithmic in the range (12 here; growing
    /// an eighth of a power of two at a time took 620), and the range stays within twice
    /// the span of the values.
    #[test]
    fn creeping_extremes_grow_the_range_geometrically() {
        let mut s = Sketch::default();
        let mut grown = 0;
        let mut x = 1.0;
        while x > 2f64.powi(-40) {
            let len = s.counts.len();
            s.record(x);
            s.record(2.0 / x);
            grown += usize::from(s.counts.len() != len);
            x *= 1.0 - 2f64.powi(-12);
        }
        let first = s.occupied().next().unwrap().0;
        let span = (s.occupied().last().unwrap().0 - first + 1) as usize;
        assert!(grown <= 40, "{grown} reallocations");
        assert!(s.counts.len() <= 2 * span + 2 * GROWTH_BUCKETS as usize);
    }

    /// Counts past `2^32` (shards merged) carry, and read, merge and serialise whole.
    #[test]
    fn counts_past_32_bits_carry() {
        let (b, big) = (bucket(1.5), 3_000_000_000u64);
        let mut s = Sketch::default();
        s.add(b, big);
        s.add(b, big);
        s.record(1.5);
        s.add(b + 1, 1 << 32);
        assert_eq!(
            s.occupied().collect::<Vec<_>>(),
            [(b, 2 * big + 1), (b + 1, 1 << 32)]
        );
        let mut merged = s.clone();
        merged.merge(&s);
        assert_eq!(
            merged.occupied().collect::<Vec<_>>(),
            [(b, 4 * big + 2), (b + 1, 2 << 32)]
        );
        assert_eq!(
            s.at_ranks([2 * big, 2 * big + 2]),
            [middle(b), middle(b + 1)]
        );
        let bytes = postcard::to_stdvec(&s).unwrap();
        assert_eq!(postcard::from_bytes::<Sketch>(&bytes).unwrap(), s);
        // A record that takes a count through 2^32 carries.
        let mut r = Sketch::default();
        r.add(b, u64::from(u32::MAX));
        r.record(1.5);
        assert_eq!(r.occupied().collect::<Vec<_>>(), [(b, 1 << 32)]);
    }

    #[test]
    fn ranks_merge_and_serialise() {
        let xs: Vec<f64> = (1..=10_000).map(|i| f64::from(i) / 1000.0).collect();
        let mut whole = Sketch::default();
        xs.iter().for_each(|x| whole.record(*x));
        // Recorded in two halves, the second first (the range grows downwards).
        let (mut a, mut b) = (Sketch::default(), Sketch::default());
        xs[5000..].iter().for_each(|x| a.record(*x));
        xs[..5000].iter().rev().for_each(|x| b.record(*x));
        let mut owned = Sketch::default();
        owned.merge_owned(a.clone());
        assert_eq!(owned, a);
        owned.merge_owned(b.clone());
        assert_eq!(owned, whole);
        a.merge(&b);
        assert_eq!(a, whole);
        let q = whole.at_ranks([1, 2500, 5000, 10_000, 20_000]);
        for (got, want) in q.iter().zip([0.001, 2.5, 5.0, 10.0, 10.0]) {
            assert!(
                (got - want).abs() <= want * 2f64.powi(-14),
                "{got} vs {want}"
            );
        }
        let bytes = postcard::to_stdvec(&whole).unwrap();
        assert_eq!(postcard::from_bytes::<Sketch>(&bytes).unwrap(), whole);
        let bad = postcard::to_stdvec(&vec![(5u64, 1u64), (3, 1)]).unwrap();
        assert!(postcard::from_bytes::<Sketch>(&bad).is_err());
    }
}
