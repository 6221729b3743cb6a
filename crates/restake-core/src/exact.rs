//! Exact sums of `f64` values: a fixed-point accumulator wide enough for every finite
//! double, so that a sum does not depend on the order of its terms.
//!
//! This is what makes a run mergeable: the statistics of a run split into shards, or
//! into any number of threads, add up to the same bits as a run in one piece, because
//! every sum that crosses a chunk boundary is exact until it is read. The accumulator is
//! the classical "long accumulator" (Kulisch and Miranker, *Computer Arithmetic in
//! Theory and Practice*, 1981): 66 signed 64-bit limbs, each holding a 32-bit digit of
//! the binary fixed-point number `sum x_i / 2^-1074` plus room for carries.

use serde::{Deserialize, Serialize};

/// Limbs of 32 bits from `2^-1074` up: 2046 exponent positions plus 53 mantissa bits,
/// with room for the carries of a negative top limb.
const LIMBS: usize = 68;

/// Adds between carry normalisations: each add puts less than `2^32` into a limb, so a
/// limb (kept below `2^32` in magnitude after normalising) cannot overflow an `i64`.
const ADDS_BEFORE_NORMALISING: u32 = 1 << 30;

/// The exact sum of finitely many finite `f64` values.
///
/// [`ExactSum::add`] costs a few nanoseconds; [`ExactSum::value`] rounds the exact sum
/// to a double (within a few units in the last place). Merging two sums
/// ([`ExactSum::merge`]) is exact, so any grouping and order of the same terms gives the
/// same value, bit for bit.
#[derive(Clone, PartialEq, Eq)]
pub struct ExactSum {
    limbs: [i64; LIMBS],
    pending: u32,
}

impl Default for ExactSum {
    fn default() -> Self {
        Self {
            limbs: [0; LIMBS],
            pending: 0,
        }
    }
}

impl std::fmt::Debug for ExactSum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ExactSum({})", self.value())
    }
}

impl ExactSum {
    /// Adds `x`.
    ///
    /// # Panics
    /// If `x` is not finite (the engine refuses non-finite path values before they reach
    /// a sum).
    #[inline]
    pub fn add(&mut self, x: f64) {
        assert!(x.is_finite(), "ExactSum::add of a non-finite value");
        if x == 0.0 {
            return;
        }
        let bits = x.to_bits();
        let biased = ((bits >> 52) & 0x7ff) as u32;
        let fraction = bits & ((1 << 52) - 1);
        // x = mantissa × 2^(shift - 1074), shift in [0, 2045].
        let (mantissa, shift) = if biased == 0 {
            (fraction, 0)
        } else {
            (fraction | (1 << 52), biased - 1)
        };
        let (index, offset) = ((shift / 32) as usize, shift % 32);
        let wide = u128::from(mantissa) << offset;
        let digits = [
            (wide & 0xffff_ffff) as i64,
            ((wide >> 32) & 0xffff_ffff) as i64,
            (wide >> 64) as i64,
        ];
        let negative = bits >> 63 == 1;
        for (k, d) in digits.iter().enumerate() {
            if negative {
                self.limbs[index + k] -= d;
            } else {
                self.limbs[index + k] += d;
            }
        }
        self.pending += 1;
        if self.pending >= ADDS_BEFORE_NORMALISING {
            self.normalise();
        }
    }

    /// Adds every term of `other`.
    pub fn merge(&mut self, other: &Self) {
        self.normalise();
        let mut o = other.clone();
        o.normalise();
        for (a, b) in self.limbs.iter_mut().zip(o.limbs) {
            *a += b;
        }
        self.pending = 2;
        self.normalise();
    }

    /// Propagates carries so that every limb but the top one is in `[0, 2^32)`.
    fn normalise(&mut self) {
        for i in 0..LIMBS - 1 {
            let carry = self.limbs[i] >> 32;
            self.limbs[i] -= carry << 32;
            self.limbs[i + 1] += carry;
        }
        self.pending = 0;
    }

    /// The sum rounded to a double: the limbs added from the most significant down, so
    /// the result is within a few units in the last place of the exact sum (each limb is
    /// exact in a double; only the additions round), and the same
    /// for the same exact sum however it was built.
    pub fn value(&self) -> f64 {
        let mut s = self.clone();
        s.normalise();
        // A negative sum has every limb above its digits at 2^32 - 1 and a top of -1:
        // read its magnitude instead.
        let sign = if s.limbs[LIMBS - 1] < 0 {
            s.limbs.iter_mut().for_each(|l| *l = -*l);
            s.normalise();
            -1.0
        } else {
            1.0
        };
        let mut total = 0.0;
        for i in (0..LIMBS).rev() {
            if s.limbs[i] != 0 {
                // limb × 2^(32 i - 1074), split so that no power of two underflows.
                let e = 32 * i as i32 - 1074;
                total +=
                    s.limbs[i] as f64 * 2f64.powi(e.max(-1022)) * 2f64.powi(e.min(-1022) + 1022);
            }
        }
        sign * total
    }

    /// The normalised limbs from the lowest non-zero one: `(first index, limbs)`.
    fn trimmed(&self) -> (usize, Vec<i64>) {
        let mut s = self.clone();
        s.normalise();
        let first = s.limbs.iter().position(|l| *l != 0).unwrap_or(LIMBS);
        let last = s
            .limbs
            .iter()
            .rposition(|l| *l != 0)
            .map_or(first, |l| l + 1);
        (first, s.limbs[first..last].to_vec())
    }
}

impl Serialize for ExactSum {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.trimmed().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ExactSum {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (first, limbs) = <(usize, Vec<i64>)>::deserialize(deserializer)?;
        if first.checked_add(limbs.len()).is_none_or(|end| end > LIMBS)
            || limbs
                .iter()
                .rev()
                .skip(1)
                .any(|l| !(0..1 << 32).contains(l))
            || limbs.last().is_some_and(|l| l.unsigned_abs() >= 1 << 40)
        {
            return Err(serde::de::Error::custom("exact sum out of range"));
        }
        let mut s = Self::default();
        s.limbs[first..first + limbs.len()].copy_from_slice(&limbs);
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum_of(xs: &[f64]) -> ExactSum {
        let mut s = ExactSum::default();
        xs.iter().for_each(|x| s.add(*x));
        s
    }

    #[test]
    fn cancellation_a_float_sum_gets_wrong() {
        // 1e100 + 1 - 1e100 = 1 exactly; a float sum gives 0.
        assert_eq!(sum_of(&[1e100, 1.0, -1e100]).value(), 1.0);
        // The exact sum of the doubles nearest 0.1, 0.2 and -0.3 is 2^-55.
        assert_eq!(sum_of(&[0.1, 0.2, -0.3]).value(), 2f64.powi(-55));
        assert_eq!(sum_of(&[f64::MAX, -f64::MAX, 5e-324]).value(), 5e-324);
        assert_eq!(sum_of(&[]).value(), 0.0);
        assert_eq!(sum_of(&[-2.5, -0.5]).value(), -3.0);
    }

    #[test]
    fn order_and_grouping_do_not_matter() {
        let xs: Vec<f64> = (0..10_000)
            .map(|i| ((i * 7919 % 1000) as f64 - 500.0) * 1.1f64.powi(i % 300 - 150))
            .collect();
        let forward = sum_of(&xs);
        let mut reversed = xs.clone();
        reversed.reverse();
        let mut halves = sum_of(&xs[..3333]);
        halves.merge(&sum_of(&xs[3333..]));
        assert_eq!(
            forward.value().to_bits(),
            sum_of(&reversed).value().to_bits()
        );
        assert_eq!(forward.value().to_bits(), halves.value().to_bits());
        // And the value is the correctly rounded sum, checked against a sum in i128 of
        // values that are all multiples of 2^-40 below 2^80.
        let ints: Vec<i64> = (0..1000).map(|i| (i * 123_457) % 99_991 - 50_000).collect();
        let exact: i128 = ints.iter().map(|&k| i128::from(k)).sum();
        let floats: Vec<f64> = ints.iter().map(|&k| k as f64 / 1024.0).collect();
        assert_eq!(sum_of(&floats).value(), exact as f64 / 1024.0);
    }

    #[test]
    fn serialises_and_refuses_garbage() {
        let s = sum_of(&[1.5, -1e-300, 3e200]);
        let bytes = postcard::to_stdvec(&s).unwrap();
        let back: ExactSum = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back.value().to_bits(), s.value().to_bits());
        let garbage = |first: usize, limbs: Vec<i64>| {
            postcard::from_bytes::<ExactSum>(&postcard::to_stdvec(&(first, limbs)).unwrap())
        };
        assert!(garbage(67, vec![1, 2]).is_err());
        assert!(garbage(0, vec![-1, 2]).is_err());
        assert!(garbage(3, vec![1, -2]).is_ok());
    }
}
