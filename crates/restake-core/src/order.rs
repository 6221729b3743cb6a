//! Exact order statistics at a few ranks in memory that grows like the square root of
//! the path count, mergeable across shards.
//!
//! An [`OrderStats`] is told in advance which ranks (counted from the largest value) of
//! a sample of `target` values will be asked for. It keeps every value it sees until it
//! has seen [`NARROW_AFTER`] of them; from then on it keeps exactly only the values in
//! *windows* around the places where those ranks will fall, and for the values between
//! the windows a count and an exact sum ([`Payload::Sum`]). Below the lowest window it
//! keeps a count alone.
//!
//! Where a rank will fall: the `m` values seen so far are a random `m` of the `target`
//! (the values are independent and identically distributed), so the number of them above
//! the final `k`-th largest is hypergeometric: `k - 1` marked of `target`, `m` drawn. A
//! window spans the counts [`rank_spread`] gives, outside which that law puts
//! probability at most `exp(-WINDOW_LOG_ODDS)` on each side: 1e-11 per window and
//! narrowing, whatever `m`, `k` and `target`. The law narrows as a sample runs out, so
//! the windows are widest half way through a sample and close in on their ranks towards
//! its end. Windows only ever shrink, so a value in the final window was kept whenever
//! it came. [`OrderStats::at_rank`] says when a rank did escape its window (the run
//! then fails loudly, it never guesses).
//!
//! Two states of disjoint samples merge into the state of their union: the windows
//! intersect, and what falls out of them joins the counts and sums. Values, counts and
//! sums are exact, so the answer at a rank inside a window does not depend on where
//! the windows lay, on how the sample was split or on the order of the merges.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Values seen before the first narrowing: below this, a state keeps everything.
pub const NARROW_AFTER: u64 = 1 << 16;

/// `ln(2e11)`: a window misses its rank, on either side, with probability at most
/// `exp(-WINDOW_LOG_ODDS)` = 5e-12 ([`rank_spread`]), 1e-11 in all.
pub const WINDOW_LOG_ODDS: f64 = 26.021;

/// Where the final `k`-th largest (1-based) of a sample of `target` values falls among
/// `m` of them seen so far: the counts `(lo, hi)` of seen values above it such that
/// `P(count < lo)` and `P(count > hi)` are each at most `exp(-WINDOW_LOG_ODDS)`, the
/// tightest such, under the exact law of the count.
///
/// That law is hypergeometric: `K = min(k - 1, target)` of `target` marked, `m` drawn
/// (`target` at least `m`; a smaller one counts as `m`). Its probabilities are
/// walked from the mode outwards by the ratio of neighbours,
/// `P(x + 1) / P(x) = (K - x)(m - x) / ((x + 1)(target - K - m + x + 1))`, until they
/// fall below `1e-20` of the mode's (the law is log-concave, so what lies beyond is
/// smaller still), and each tail is summed from its far end: no factorial is formed,
/// and the walk is about 10 standard deviations of the count each side.
pub fn rank_spread(m: u64, k: u64, target: u64) -> (u64, u64) {
    let n = target.max(m);
    let marked = k.saturating_sub(1).min(n);
    let (first, last) = ((m + marked).saturating_sub(n), marked.min(m));
    if first == last {
        return (first, last);
    }
    let (nf, kf, mf) = (n as f64, marked as f64, m as f64);
    let mode = (((mf + 1.0) * (kf + 1.0) / (nf + 2.0)).floor() as u64).clamp(first, last);
    // `below[i]`, `above[i]`: the probability of `mode - 1 - i`, `mode + 1 + i`, over the
    // mode's, each step the ratio at `i` steps out.
    let walk = |steps: u64, ratio: &dyn Fn(f64) -> f64| {
        let mut out = Vec::new();
        let mut w = 1.0;
        for i in 0..steps {
            w *= ratio(i as f64);
            out.push(w);
            if w < 1e-20 {
                break;
            }
        }
        out
    };
    let x0 = mode as f64;
    let below = walk(mode - first, &|i| {
        let x = x0 - i;
        x * (nf - kf - mf + x) / ((kf - x + 1.0) * (mf - x + 1.0))
    });
    let above = walk(last - mode, &|i| {
        let x = x0 + i;
        (kf - x) * (mf - x) / ((x + 1.0) * (nf - kf - mf + x + 1.0))
    });
    let total = 1.0 + below.iter().sum::<f64>() + above.iter().sum::<f64>();
    let allowed = (-WINDOW_LOG_ODDS).exp() * total;
    // The most of each tail, from its far end, that stays within `allowed`.
    let within = |tail: &[f64]| {
        let mut sum = 0.0;
        tail.iter()
            .rev()
            .take_while(|w| {
                sum += **w;
                sum <= allowed
            })
            .count() as u64
    };
    (
        mode - below.len() as u64 + within(&below),
        mode + above.len() as u64 - within(&above),
    )
}

/// What a kept value carries, and its exact sum over the values between the windows.
pub trait Payload: Clone + std::fmt::Debug + Serialize + DeserializeOwned {
    /// The exact sum of payloads (and of whatever else is needed of their values).
    type Sum: Clone + std::fmt::Debug + Default + Serialize + DeserializeOwned;
    /// Adds this payload, of the value `value`, to `sum`.
    fn add_to(&self, value: f64, sum: &mut Self::Sum);
    /// Adds `other` to `sum`.
    fn merge(sum: &mut Self::Sum, other: &Self::Sum);
}

/// No payload: order statistics of the values alone.
impl Payload for () {
    type Sum = ();
    fn add_to(&self, _: f64, _: &mut ()) {}
    fn merge(_: &mut (), _: &()) {}
}

/// Paths tied at one value: their count and the sum of their payloads.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Atom<P: Payload> {
    /// The value.
    pub value: f64,
    /// Paths with exactly that value.
    pub count: u64,
    /// Their payloads, summed.
    pub sum: P::Sum,
}

/// Values kept exactly: every value in `[lo, hi]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "")]
struct Window<P: Payload> {
    lo: f64,
    hi: f64,
    singles: Vec<(f64, P)>,
    atoms: Vec<Atom<P>>,
}

impl<P: Payload> Window<P> {
    fn new(lo: f64, hi: f64) -> Self {
        Self {
            lo,
            hi,
            singles: Vec::new(),
            atoms: Vec::new(),
        }
    }

    fn push(&mut self, value: f64, payload: P) {
        if let Some(a) = self.atoms.iter_mut().find(|a| a.value == value) {
            a.count += 1;
            payload.add_to(value, &mut a.sum);
        } else if self.lo == self.hi {
            let mut sum = P::Sum::default();
            payload.add_to(value, &mut sum);
            self.atoms.push(Atom {
                value,
                count: 1,
                sum,
            });
        } else {
            self.singles.push((value, payload));
        }
    }

    fn push_atom(&mut self, atom: &Atom<P>) {
        if let Some(a) = self.atoms.iter_mut().find(|a| a.value == atom.value) {
            a.count += atom.count;
            P::merge(&mut a.sum, &atom.sum);
        } else {
            self.atoms.push(atom.clone());
        }
    }

    fn count(&self) -> u64 {
        self.singles.len() as u64 + self.atoms.iter().map(|a| a.count).sum::<u64>()
    }

    /// Sorts the values descending and folds values seen more than once into atoms.
    /// Unstable (in place, no scratch the size of the window): values that tie are
    /// folded into one atom whatever their order, and the others are distinct.
    fn tidy(&mut self) {
        self.singles.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        let repeated = self.singles.windows(2).any(|p| p[0].0 == p[1].0)
            || (!self.atoms.is_empty()
                && self
                    .singles
                    .iter()
                    .any(|s| self.atoms.iter().any(|a| a.value == s.0)));
        if !repeated {
            self.atoms.sort_by(|a, b| b.value.total_cmp(&a.value));
            return;
        }
        let mut kept = Vec::with_capacity(self.singles.len());
        let singles = std::mem::take(&mut self.singles);
        let mut i = 0;
        while i < singles.len() {
            let v = singles[i].0;
            let mut j = i + 1;
            while j < singles.len() && singles[j].0 == v {
                j += 1;
            }
            if j - i > 1 || self.atoms.iter().any(|a| a.value == v) {
                for (value, p) in &singles[i..j] {
                    self.push_tied(*value, p);
                }
            } else {
                kept.push(singles[i].clone());
            }
            i = j;
        }
        self.singles = kept;
        self.atoms.sort_by(|a, b| b.value.total_cmp(&a.value));
    }

    fn push_tied(&mut self, value: f64, payload: &P) {
        let mut sum = P::Sum::default();
        payload.add_to(value, &mut sum);
        self.push_atom(&Atom {
            value,
            count: 1,
            sum,
        });
    }

    /// The value at 1-based rank `rank` from the top within the window (tidied: its
    /// singles and atoms each sorted); `None` past its count.
    fn value_at(&self, rank: u64) -> Option<f64> {
        if self.atoms.is_empty() {
            return self
                .singles
                .get((rank as usize).checked_sub(1)?)
                .map(|s| s.0);
        }
        let (mut i, mut j, mut c) = (0, 0, 0u64);
        while i < self.singles.len() || j < self.atoms.len() {
            let single_next = j == self.atoms.len()
                || (i < self.singles.len() && self.singles[i].0 > self.atoms[j].value);
            let (v, k) = if single_next {
                i += 1;
                (self.singles[i - 1].0, 1)
            } else {
                j += 1;
                (self.atoms[j - 1].value, self.atoms[j - 1].count)
            };
            c += k;
            if c >= rank {
                return Some(v);
            }
        }
        None
    }
}

/// Values between two windows (or above the highest): a count and an exact sum.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "")]
struct Gap<P: Payload> {
    count: u64,
    sum: P::Sum,
}

impl<P: Payload> Default for Gap<P> {
    fn default() -> Self {
        Self {
            count: 0,
            sum: P::Sum::default(),
        }
    }
}

/// Exact order statistics of a sample at given ranks (the module docs say how).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct OrderStats<P: Payload> {
    target: u64,
    ranks: Vec<u64>,
    seen: u64,
    /// Disjoint, descending: `windows[0]` holds the largest kept values.
    windows: Vec<Window<P>>,
    /// `gaps[i]`: the values above `windows[i]` (and below `windows[i - 1]`).
    gaps: Vec<Gap<P>>,
    /// Values below the lowest window.
    below: u64,
    /// Kept single values after the last narrowing.
    kept_after_narrowing: u64,
}

/// A count of values and the sum of their payloads.
pub type Counted<P> = (u64, <P as Payload>::Sum);

/// Where a rank (from the top) fell.
#[derive(Debug, Clone, PartialEq)]
pub enum Located {
    /// In a window: the value there.
    Kept(f64),
    /// Between windows or below them: the rank escaped (the state cannot answer).
    Missed,
}

impl<P: Payload> OrderStats<P> {
    /// A state for a sample of `target` values that will be asked for the values at
    /// `ranks` (1-based, from the largest; clamped to `[1, target]`).
    pub fn new(target: u64, ranks: &[u64]) -> Self {
        let mut ranks: Vec<u64> = ranks.iter().map(|r| (*r).clamp(1, target.max(1))).collect();
        ranks.sort_unstable();
        ranks.dedup();
        Self {
            target,
            ranks,
            seen: 0,
            windows: vec![Window::new(f64::NEG_INFINITY, f64::INFINITY)],
            gaps: vec![Gap::default()],
            below: 0,
            kept_after_narrowing: 0,
        }
    }

    /// Values seen.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Adds a value with its payload.
    pub fn insert(&mut self, value: f64, payload: P) {
        self.seen += 1;
        self.place(value, payload);
    }

    /// Adds `values` in order: the `i`-th with the payload `payload(i)` when it will be
    /// kept or summed (at or above the lowest window), the others only counted, so that
    /// a caller builds no payload for them. The same state as [`OrderStats::insert`] of
    /// each value with its payload.
    #[inline]
    pub fn offer(
        &mut self,
        values: impl IntoIterator<Item = f64>,
        mut payload: impl FnMut(usize) -> P,
    ) {
        // Windows change only when narrowed, so the lowest one's bound holds throughout;
        // no window (NaN): nothing is wanted.
        let lo = self.windows.last().map_or(f64::NAN, |w| w.lo);
        let mut below = 0;
        for (i, value) in values.into_iter().enumerate() {
            if value >= lo {
                self.insert(value, payload(i));
            } else {
                below += 1;
            }
        }
        self.seen += below;
        self.below += below;
    }

    /// Where `value` goes: `Some((k, true))` into window `k`, `Some((k, false))` into
    /// the gap above it, `None` below every window (NaN too). The windows wholly above
    /// it are a prefix (they are disjoint and descending), counted without a branch on
    /// each, which a value's place among them would mispredict.
    #[inline]
    fn locate(&self, value: f64) -> Option<(usize, bool)> {
        if value.is_nan() {
            return None;
        }
        let k = self.windows.iter().filter(|w| w.lo > value).count();
        self.windows.get(k).map(|w| (k, value <= w.hi))
    }

    fn place(&mut self, value: f64, payload: P) {
        match self.locate(value) {
            Some((k, true)) => self.windows[k].push(value, payload),
            Some((k, false)) => {
                let g = &mut self.gaps[k];
                g.count += 1;
                payload.add_to(value, &mut g.sum);
            }
            None => self.below += 1,
        }
    }

    fn place_atom(&mut self, atom: &Atom<P>) {
        match self.locate(atom.value) {
            Some((k, true)) => self.windows[k].push_atom(atom),
            Some((k, false)) => {
                let g = &mut self.gaps[k];
                g.count += atom.count;
                P::merge(&mut g.sum, &atom.sum);
            }
            None => self.below += atom.count,
        }
    }

    /// Where the values just above `h` go: the gap above the first window lying at or
    /// below `h`, or below every window.
    fn place_gap(&mut self, h: f64, gap: &Gap<P>) {
        match self.windows.iter().position(|w| w.hi <= h) {
            Some(j) => {
                self.gaps[j].count += gap.count;
                P::merge(&mut self.gaps[j].sum, &gap.sum);
            }
            None => self.below += gap.count,
        }
    }

    fn kept(&self) -> u64 {
        self.windows.iter().map(|w| w.singles.len() as u64).sum()
    }

    /// Narrows the windows once enough values have come since the last time (amortised:
    /// when the kept values have grown by a quarter, so they never exceed 1.25 times
    /// what the windows need).
    pub fn maybe_narrow(&mut self) {
        let kept = self.kept();
        if self.seen >= NARROW_AFTER && kept > self.kept_after_narrowing * 5 / 4 + 4096 {
            self.narrow();
        }
    }

    /// Shrinks the windows to [`rank_spread`] around where each rank will fall.
    fn narrow(&mut self) {
        self.tidy();
        let m = self.seen;
        let mut wanted: Vec<(f64, f64)> = Vec::new();
        for &k in &self.ranks {
            // Seen values above the final k-th largest: from `above_lo` to `above_hi`
            // (one more each side than the law needs).
            let (lo, hi) = rank_spread(m, k, self.target);
            let (above_lo, above_hi) = (lo.saturating_sub(1), (hi + 1).min(m));
            wanted.extend(self.values_between(above_lo, above_hi.max(above_lo) + 1));
        }
        wanted.sort_by(|x, y| y.1.total_cmp(&x.1));
        let mut merged: Vec<(f64, f64)> = Vec::new();
        for (lo, hi) in wanted {
            match merged.last_mut() {
                Some(last) if hi >= last.0 => last.0 = last.0.min(lo),
                _ => merged.push((lo, hi)),
            }
        }
        self.shrink_to(&merged);
        self.kept_after_narrowing = self.kept();
    }

    /// Narrows a tidied state to `intervals` (disjoint, descending, each within one
    /// window) in place: a window's sorted values are cut into the runs that stay, so
    /// the kept values are moved, not copied, and no second copy of them is ever made.
    fn shrink_to(&mut self, intervals: &[(f64, f64)]) {
        let old_windows = std::mem::take(&mut self.windows);
        let old_gaps = std::mem::take(&mut self.gaps);
        self.windows = intervals
            .iter()
            .map(|&(lo, hi)| Window::new(lo, hi))
            .collect();
        self.gaps = intervals.iter().map(|_| Gap::default()).collect();
        for (w, g) in old_windows.into_iter().zip(old_gaps) {
            self.place_gap(w.hi, &g);
            for a in &w.atoms {
                self.place_atom(a);
            }
            let mut singles = w.singles;
            let inside: Vec<usize> = (0..self.windows.len())
                .filter(|&j| self.windows[j].lo >= w.lo && self.windows[j].hi <= w.hi)
                .collect();
            // From the lowest new window up: what lies below it leaves, its run stays.
            for (k, &j) in inside.iter().enumerate().rev() {
                let (lo, hi) = (self.windows[j].lo, self.windows[j].hi);
                while singles.last().is_some_and(|s| s.0 < lo) {
                    let (v, p) = singles.pop().expect("a last value");
                    self.place(v, p);
                }
                let start = singles.partition_point(|s| s.0 > hi);
                let run = if k == 0 {
                    // The highest: keep the vector, moving out what lies above.
                    let above: Vec<(f64, P)> = singles.drain(..start).collect();
                    for (v, p) in above {
                        self.place(v, p);
                    }
                    std::mem::take(&mut singles)
                } else {
                    singles.split_off(start)
                };
                let kept = &mut self.windows[j].singles;
                if kept.is_empty() {
                    *kept = run;
                } else {
                    kept.extend(run);
                }
            }
            for (v, p) in singles {
                self.place(v, p);
            }
        }
        self.tidy();
        // Until the next narrowing the kept values grow by a quarter and 4096, each
        // window in proportion to what it holds: room for that (and a sixteenth more
        // for chance), so that a window neither keeps the capacity it had before, as
        // the first one would (every value of the first `NARROW_AFTER`), nor doubles.
        let kept = self.kept().max(1);
        for w in &mut self.windows {
            let len = w.singles.len() as u64;
            let room = (len + len / 4 + len / 16 + 4096 * len / kept + 16) as usize;
            if w.singles.capacity() > room {
                w.singles.shrink_to(room);
            } else {
                w.singles.reserve_exact(room - w.singles.len());
            }
        }
    }

    /// The closed value intervals, one per window, from the value at rank `b` from the
    /// top up to the value at rank `a`, where rank 0 stands for `+inf` and rank `seen + 1`
    /// for `-inf`; a rank that falls between windows reaches to the edge of the window.
    fn values_between(&self, a: u64, b: u64) -> Vec<(f64, f64)> {
        let mut out = Vec::new();
        let mut before = 0u64;
        for (w, g) in self.windows.iter().zip(&self.gaps) {
            before += g.count;
            let n = w.count();
            let (s, e) = (before + 1, before + n);
            if a <= e && b >= s {
                let value = |rank: u64| w.value_at(rank - before).unwrap_or(w.lo);
                let hi = if a < s { w.hi } else { value(a) };
                let lo = if b > e { w.lo } else { value(b) };
                out.push((lo, hi));
            }
            before += n;
        }
        out
    }

    /// The state over `intervals` (disjoint, descending, each within the windows of
    /// every source) holding everything the sources hold.
    fn rebase(intervals: &[(f64, f64)], sources: Vec<Self>) -> Self {
        let first = &sources[0];
        let mut out = Self {
            target: first.target,
            ranks: first.ranks.clone(),
            seen: sources.iter().map(|s| s.seen).sum(),
            windows: intervals
                .iter()
                .map(|&(lo, hi)| Window::new(lo, hi))
                .collect(),
            gaps: intervals.iter().map(|_| Gap::default()).collect(),
            below: 0,
            kept_after_narrowing: 0,
        };
        // The payloads move: a narrowing allocates nothing for what it keeps.
        for s in sources {
            for (w, g) in s.windows.into_iter().zip(&s.gaps) {
                out.place_gap(w.hi, g);
                for (v, p) in w.singles {
                    out.place(v, p);
                }
                for a in &w.atoms {
                    out.place_atom(a);
                }
            }
            out.below += s.below;
        }
        for w in &mut out.windows {
            w.tidy();
        }
        out
    }

    /// The state of the union of two disjoint samples.
    ///
    /// # Panics
    /// If the two were made for different targets or ranks.
    pub fn merge(self, other: Self) -> Self {
        assert!(self.target == other.target && self.ranks == other.ranks);
        let mut both = Vec::new();
        for a in &self.windows {
            for b in &other.windows {
                let (lo, hi) = (a.lo.max(b.lo), a.hi.min(b.hi));
                if lo <= hi {
                    both.push((lo, hi));
                }
            }
        }
        both.sort_by(|x, y| y.1.total_cmp(&x.1));
        Self::rebase(&both, vec![self, other])
    }

    /// Sorts the kept values, as [`OrderStats::at_rank`] needs (a merge or a narrowing
    /// leaves them sorted; inserting does not).
    pub fn tidy(&mut self) {
        for w in &mut self.windows {
            w.tidy();
        }
    }

    /// The value at `rank` from the top (1-based), of a tidied state
    /// ([`OrderStats::tidy`]).
    pub fn at_rank(&self, rank: u64) -> Located {
        let mut before = 0u64;
        for (w, g) in self.windows.iter().zip(&self.gaps) {
            before += g.count;
            if rank <= before {
                return Located::Missed;
            }
            let n = w.count();
            if let Some(v) = w.value_at(rank - before).filter(|_| rank <= before + n) {
                return Located::Kept(v);
            }
            before += n;
        }
        Located::Missed
    }

    /// Of the values at or above `v` (a kept value): the count and sum of those above,
    /// and the count and sum of those equal to it. `None` when `v` is not kept.
    pub fn split_at(&self, v: f64) -> Option<(Counted<P>, Counted<P>)> {
        self.split_with(v, |x, p, sum| p.add_to(x, sum), |sum, s| P::merge(sum, s))
    }

    /// [`OrderStats::split_at`] with sums of another kind `S`, of what a caller needs of
    /// the values and payloads: `single(value, payload, sum)` adds a kept value,
    /// `summed(sum, payloads)` the exact sum of a gap's or an atom's payloads. Cheaper
    /// than a split with every payload summed when fewer sums are needed, and equal to
    /// the bit in those it does sum (the sums are exact).
    pub fn split_with<S: Default>(
        &self,
        v: f64,
        single: impl Fn(f64, &P, &mut S),
        summed: impl Fn(&mut S, &P::Sum),
    ) -> Option<((u64, S), (u64, S))> {
        let mut above = (0u64, S::default());
        let mut equal = (0u64, S::default());
        for (w, g) in self.windows.iter().zip(&self.gaps) {
            above.0 += g.count;
            summed(&mut above.1, &g.sum);
            let inside = v >= w.lo && v <= w.hi;
            for (x, p) in &w.singles {
                if *x > v {
                    above.0 += 1;
                    single(*x, p, &mut above.1);
                } else if *x == v {
                    equal.0 += 1;
                    single(*x, p, &mut equal.1);
                }
            }
            for a in &w.atoms {
                if a.value > v {
                    above.0 += a.count;
                    summed(&mut above.1, &a.sum);
                } else if a.value == v {
                    equal.0 += a.count;
                    summed(&mut equal.1, &a.sum);
                }
            }
            if inside {
                return Some((above, equal));
            }
        }
        None
    }

    /// Singles and atoms kept, for the memory accounting of the docs.
    pub fn kept_values(&self) -> u64 {
        self.windows
            .iter()
            .map(|w| w.singles.len() + w.atoms.len())
            .sum::<usize>() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A payload that sums the values, to check the sums.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    struct Id;

    impl Payload for Id {
        type Sum = (u64, crate::exact::ExactSum);
        fn add_to(&self, value: f64, sum: &mut Self::Sum) {
            sum.0 += 1;
            sum.1.add(value);
        }
        fn merge(sum: &mut Self::Sum, other: &Self::Sum) {
            sum.0 += other.0;
            sum.1.merge(&other.1);
        }
    }

    fn sample(n: usize, seed: u64) -> Vec<f64> {
        // A continuous body with atoms: 10% at 0.5, 2% at 0.9.
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = (s >> 11) as f64 / (1u64 << 53) as f64;
                if u < 0.02 {
                    0.9
                } else if u < 0.12 {
                    0.5
                } else {
                    u * u
                }
            })
            .collect()
    }

    fn fill(values: &[f64], target: u64, ranks: &[u64]) -> OrderStats<Id> {
        let mut s = OrderStats::new(target, ranks);
        for (i, v) in values.iter().enumerate() {
            s.insert(*v, Id);
            if i % 4096 == 4095 {
                s.maybe_narrow();
            }
        }
        s
    }

    /// Offering values a batch at a time leaves the same state, byte for byte, as
    /// inserting them one by one, narrowing at the same points: the values below the
    /// lowest window only counted, the others placed alike.
    #[test]
    fn offer_is_insert_one_by_one() {
        let n = 4096 * 73;
        let values = sample(n, 11);
        let ranks = [1, 50, 3_000, 15_000, 150_000];
        let one = fill(&values, n as u64, &ranks);
        let mut offered = OrderStats::new(n as u64, &ranks);
        let mut built = 0;
        for chunk in values.chunks(4096) {
            offered.offer(chunk.iter().copied(), |_| {
                built += 1;
                Id
            });
            offered.maybe_narrow();
        }
        assert!(one.below > 100_000, "{} below the windows", one.below);
        assert!(built < n - 100_000, "{built} payloads built");
        assert_eq!(
            postcard::to_stdvec(&offered).unwrap(),
            postcard::to_stdvec(&one).unwrap()
        );
    }

    #[test]
    fn exact_at_every_asked_rank_whole_and_merged() {
        let n = 400_000;
        let values = sample(n, 7);
        let mut sorted = values.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let ranks = [
            1, 2, 100, 8_000, 20_000, 39_999, 48_000, 200_000, 399_000, 400_000,
        ];
        let mut whole = fill(&values, n as u64, &ranks);
        whole.tidy();
        assert!(whole.kept_values() < 60_000, "kept {}", whole.kept_values());
        let parts: Vec<OrderStats<Id>> = values
            .chunks(57_000)
            .map(|c| fill(c, n as u64, &ranks))
            .collect();
        let merged = parts[1..]
            .iter()
            .fold(parts[0].clone(), |a, b| a.merge(b.clone()));
        let reversed = parts[..parts.len() - 1]
            .iter()
            .rev()
            .fold(parts[parts.len() - 1].clone(), |a, b| a.merge(b.clone()));
        for state in [&whole, &merged, &reversed] {
            for &k in &ranks {
                let expect = sorted[k as usize - 1];
                assert_eq!(state.at_rank(k), Located::Kept(expect), "rank {k}");
                let ((gt, gt_sum), (eq, eq_sum)) = state.split_at(expect).unwrap();
                let above: Vec<f64> = sorted.iter().copied().filter(|x| *x > expect).collect();
                assert_eq!(gt, above.len() as u64);
                assert_eq!(gt_sum.0, gt);
                let mut exact = crate::exact::ExactSum::default();
                above.iter().for_each(|x| exact.add(*x));
                assert_eq!(gt_sum.1.value().to_bits(), exact.value().to_bits());
                assert_eq!(eq, sorted.iter().filter(|x| **x == expect).count() as u64);
                assert_eq!(eq_sum.0, eq);
                // The values' sum alone, without the payloads' counts.
                let ((gt_with, sum_with), (eq_with, _)) = state
                    .split_with(
                        expect,
                        |x, _, sum: &mut crate::exact::ExactSum| sum.add(x),
                        |sum, s| sum.merge(&s.1),
                    )
                    .unwrap();
                assert_eq!((gt_with, eq_with), (gt, eq));
                assert_eq!(sum_with.value().to_bits(), exact.value().to_bits());
            }
        }
    }

    /// The spread is the exact law's: each tail outside `lo..=hi` has probability at
    /// most `exp(-WINDOW_LOG_ODDS)`, and one count further in would exceed it, at ranks
    /// from the top to the bottom, early, half way and with nearly every value seen
    /// (where a normal approximation to the count would miss: 3e-5 at 7 of its standard
    /// deviations with 99 marked and 576 values left of 1e6).
    #[test]
    fn the_spread_is_the_hypergeometric_tails() {
        use statrs::distribution::{DiscreteCDF, Hypergeometric};
        let allowed = (-WINDOW_LOG_ODDS).exp();
        for target in [70_000u64, 1_000_000] {
            for q in [1e-4, 1e-3, 0.01, 0.05, 0.5, 0.95, 0.999, 1.0] {
                let k = ((q * target as f64).round() as u64).max(1);
                for m in [
                    NARROW_AFTER,
                    target / 2,
                    target - target / 100,
                    target - 576,
                ] {
                    let (lo, hi) = rank_spread(m, k, target);
                    let x = Hypergeometric::new(target, k - 1, m).unwrap();
                    let case = format!("target {target}, k {k}, m {m}: {lo}..={hi}");
                    let (first, last) = ((m + k - 1).saturating_sub(target), (k - 1).min(m));
                    assert!(first <= lo && lo <= hi && hi <= last, "{case}");
                    // P(X < lo) within, P(X < lo + 1) not (unless lo is the last count).
                    if lo > first {
                        assert!(x.cdf(lo - 1) <= allowed, "{case}: {}", x.cdf(lo - 1));
                    }
                    assert!(lo == last || x.cdf(lo) > 0.99 * allowed, "{case}");
                    assert!(x.sf(hi) <= allowed, "{case}: {}", x.sf(hi));
                    assert!(hi == first || x.sf(hi - 1) > 0.99 * allowed, "{case}");
                }
            }
        }
        // Half way through, a window is about half as wide as 7 binomial standard
        // deviations of the whole sample each side.
        let (lo, hi) = rank_spread(500_000, 500_001, 1_000_000);
        assert!(
            ((hi - lo) as f64) < 0.55 * 14.0 * (1e6f64 * 0.25).sqrt(),
            "{lo}..={hi}"
        );
        assert_eq!(rank_spread(1_000, 1, 1_000_000), (0, 0));
        assert_eq!(rank_spread(1_000_000, 7, 1_000_000), (6, 6));
    }

    #[test]
    fn a_rank_outside_every_window_is_missed_not_guessed() {
        let values = sample(300_000, 3);
        let mut state = fill(&values, 300_000, &[150_000]);
        state.tidy();
        // Rank 10 was never asked for: its value was only counted.
        assert_eq!(state.at_rank(10), Located::Missed);
        assert!(state.split_at(0.9).is_none());
    }

    #[test]
    fn serialises() {
        let values = sample(100_000, 5);
        let mut state = fill(&values, 100_000, &[5_000]);
        state.tidy();
        let bytes = postcard::to_stdvec(&state).unwrap();
        let back: OrderStats<Id> = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back.at_rank(5_000), state.at_rank(5_000));
    }
}
