//! The exact-enumeration oracle (docs/model.md#independent-checks): independent sources with fixed
//! severities and no income, whose loss distribution is a finite mixture over the event
//! counts of each source. Shared by the library-level test and the command-line test,
//! which read the same metrics from `Results` and from `summary.csv`.

use statrs::distribution::{ContinuousCDF, Normal};

use crate::stat::assert_within;

/// The enumeration scenario: two operators in unique-stake mode, two AVSs, and every
/// kind of source (operator–AVS slashing, an AVS-wide incident, an operator-wide fault,
/// beacon-chain slashing, a protocol exploit), all with fixed severities and no income,
/// on a principal of 1 ETH over one year.
pub const ENUMERATION_SCENARIO: &str = r#"
name = "enumeration"
[position]
principal_eth = 1.0
route = "native"
horizon_days = 365
stake_mode = "unique"
[base]
apr_mean = 0.0
slash_prob = 0.01
slash_severity = { dist = "fixed", value = 0.25 }
[protocol]
exploit_prob = 0.005
exploit_severity = { dist = "fixed", value = 0.4 }
[[avs]]
name = "X"
slash_prob = 0.02
slash_severity = { dist = "fixed", value = 0.5 }
incident_prob = 0.01
incident_severity = { dist = "fixed", value = 0.3 }
[[avs]]
name = "Y"
slash_prob = 0.03
slash_severity = { dist = "fixed", value = 0.2 }
[[operator]]
name = "A"
weight = 0.6
fault_prob = 0.01
allocations = { X = 0.3, Y = 0.2 }
[[operator]]
name = "B"
weight = 0.4
allocations = { X = 0.5 }
"#;

/// A Poisson source of the enumeration: its intensity a year and what one event does to
/// the pools `[A.X, A.Y, A.rest, B.X, B.rest]` (ETH).
struct Source {
    intensity: f64,
    apply: fn(&mut [f64; 5]),
}

/// The exact loss distribution of [`ENUMERATION_SCENARIO`] as `(loss, probability)`
/// atoms sorted by loss, loss as a fraction of principal. Events compound
/// multiplicatively, so only each source's count matters; counts run to 40 per source and
/// branches below probability 1e-16 are dropped (the atoms' total mass is 1 to 1e-12,
/// which the test checks).
pub fn enumeration_atoms() -> Vec<(f64, f64)> {
    let mut atoms = atoms_given(&|_, p| -(-p).ln_1p(), 1.0, 1e-16);
    atoms.sort_by(|a, b| a.0.total_cmp(&b.0));
    atoms
}

/// [`ENUMERATION_SCENARIO`] with a systematic factor on three of its kinds: the AVS
/// incident (correlation 0.45), the beacon-chain slashings of both operators (0.2, so
/// they are correlated with each other too) and the exploit (0.5); the operator–AVS
/// slashings and the fault stay independent.
pub fn enumeration_factor_scenario() -> String {
    format!(
        "{ENUMERATION_SCENARIO}[systematic]\navs_incident = 0.45\nbeacon = 0.2\nprotocol_exploit = 0.5\n"
    )
}

/// The exact loss distribution of [`enumeration_factor_scenario`]: given the factor at
/// `z`, the sources are independent with the intensities `-ln(1 - p(z))` of the Vasicek
/// formula ([`crate::reference::vasicek`]), so the law is the enumeration given `z`
/// mixed over `z ~ N(0, 1)`, here by Simpson's rule on [-7.5, 7.5] with 150 intervals
/// (the normal mass beyond is 6e-14). Branches below probability 1e-17 (weight
/// included) are dropped; the atoms' mass is 1 to 1e-9. Sorted by loss, one per loss.
pub fn enumeration_factor_atoms() -> Vec<(f64, f64)> {
    let (a, b, m) = (-7.5f64, 7.5f64, 150usize);
    let h = (b - a) / m as f64;
    let mut atoms = Vec::new();
    for i in 0..=m {
        let z = a + h * i as f64;
        let simpson = if i == 0 || i == m {
            1.0
        } else if i % 2 == 1 {
            4.0
        } else {
            2.0
        };
        let weight = simpson * h / 3.0 * (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let rho = [0.0, 0.0, 0.0, 0.45, 0.0, 0.2, 0.2, 0.5];
        let lambda = |j: usize, p: f64| -(-crate::reference::vasicek(p, rho[j], z)).ln_1p();
        atoms.extend(atoms_given(&lambda, weight, 1e-17));
    }
    atoms.sort_by(|a, b| a.0.total_cmp(&b.0));
    // One atom per loss: the nodes give the same losses (they depend on the counts
    // only), up to rounding.
    let mut merged: Vec<(f64, f64)> = Vec::new();
    for (x, p) in atoms {
        match merged.last_mut() {
            Some(last) if x - last.0 < 1e-12 => last.1 += p,
            _ => merged.push((x, p)),
        }
    }
    merged
}

/// The atoms of [`ENUMERATION_SCENARIO`] when source `j` (in the order below) of annual
/// probability `p` has intensity `lambda(j, p)`, with probabilities times `weight` and
/// branches below `floor` dropped, unsorted.
fn atoms_given(lambda: &dyn Fn(usize, f64) -> f64, weight: f64, floor: f64) -> Vec<(f64, f64)> {
    let sources = [
        Source {
            intensity: lambda(0, 0.02),
            apply: |s| s[0] *= 0.5,
        }, // (A, X)
        Source {
            intensity: lambda(1, 0.03),
            apply: |s| s[1] *= 0.8,
        }, // (A, Y)
        Source {
            intensity: lambda(2, 0.02),
            apply: |s| s[3] *= 0.5,
        }, // (B, X)
        Source {
            intensity: lambda(3, 0.01), // incident X: one severity for A and B
            apply: |s| {
                s[0] *= 0.7;
                s[3] *= 0.7;
            },
        },
        Source {
            intensity: lambda(4, 0.01), // fault A: X and Y each with its own severity
            apply: |s| {
                s[0] *= 0.5;
                s[1] *= 0.8;
            },
        },
        Source {
            intensity: lambda(5, 0.01), // beacon A
            apply: |s| {
                s[0] *= 0.75;
                s[1] *= 0.75;
                s[2] *= 0.75;
            },
        },
        Source {
            intensity: lambda(6, 0.01), // beacon B
            apply: |s| {
                s[3] *= 0.75;
                s[4] *= 0.75;
            },
        },
        Source {
            intensity: lambda(7, 0.005), // exploit
            apply: |s| s.iter_mut().for_each(|x| *x *= 0.6),
        },
    ];
    fn walk(
        sources: &[Source],
        state: [f64; 5],
        prob: f64,
        floor: f64,
        atoms: &mut Vec<(f64, f64)>,
    ) {
        if prob < floor {
            return;
        }
        let Some((first, rest)) = sources.split_first() else {
            atoms.push((1.0 - state.iter().sum::<f64>(), prob));
            return;
        };
        let mut s = state;
        let mut pk = (-first.intensity).exp();
        for k in 0..40 {
            walk(rest, s, prob * pk, floor, atoms);
            (first.apply)(&mut s);
            pk *= first.intensity / f64::from(k + 1);
        }
    }
    // Pools: 0.6 × (0.3, 0.2, 0.5) and 0.4 × (0.5, 0.5).
    let mut atoms = Vec::new();
    walk(
        &sources,
        [0.18, 0.12, 0.30, 0.20, 0.20],
        weight,
        floor,
        &mut atoms,
    );
    atoms
}

/// `Phi_2(a, b; r)`, the bivariate standard normal distribution function with
/// correlation `r` in [0, 1), by Plackett's identity `Phi_2(a, b; r) = Phi(a) Phi(b) +
/// integral_0^r phi_2(a, b; t) dt` (Plackett 1954; `phi_2` the bivariate density), with
/// Simpson's rule on 2,000 intervals: independent of the Vasicek formula.
pub fn bivariate_normal_cdf(a: f64, b: f64, r: f64) -> f64 {
    let n = Normal::standard();
    let density = |t: f64| {
        let q = (a * a - 2.0 * t * a * b + b * b) / (2.0 * (1.0 - t * t));
        (-q).exp() / (2.0 * std::f64::consts::PI * (1.0 - t * t).sqrt())
    };
    let m = 2000;
    let h = r / m as f64;
    let inner: f64 = (1..m)
        .map(|i| density(h * i as f64) * if i % 2 == 1 { 4.0 } else { 2.0 })
        .sum();
    n.cdf(a) * n.cdf(b) + (density(0.0) + density(r) + inner) * h / 3.0
}

/// VaR and ES at level `alpha` of a discrete law given as sorted `(x, probability)`
/// atoms: VaR the smallest `x` with `F(x) >= alpha`, ES `1/(1 - alpha) integral_alpha^1
/// VaR_u du` (`docs/model.md#statistics`). Also returns the distance from `alpha` to the nearest value
/// of the CDF, which must be many standard deviations of the empirical CDF for the
/// sample VaR to land on the exact atom.
///
/// # Panics
/// If no atom reaches `alpha`.
pub fn discrete_var_es(atoms: &[(f64, f64)], alpha: f64) -> (f64, f64, f64) {
    let total: f64 = atoms.iter().map(|a| a.1).sum();
    let mut cdf = 0.0;
    let mut var = None;
    let mut integral = 0.0;
    let mut jump_distance = f64::INFINITY;
    for &(x, p) in atoms {
        let lo = cdf;
        cdf += p / total;
        jump_distance = jump_distance.min((cdf - alpha).abs());
        if var.is_none() && cdf >= alpha {
            var = Some(x);
        }
        integral += x * (cdf.min(1.0) - lo.max(alpha)).max(0.0);
    }
    (
        var.expect("the atoms reach every level"),
        integral / (1.0 - alpha),
        jump_distance,
    )
}

/// A reported estimate: value, standard error and 95% interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reported {
    /// The estimate.
    pub value: f64,
    /// Its standard error.
    pub std_error: f64,
    /// Lower end of the interval.
    pub ci_low: f64,
    /// Upper end of the interval.
    pub ci_high: f64,
}

/// Checks a run of [`ENUMERATION_SCENARIO`] over `paths` paths against the exact law:
/// `prob_loss`, `mean_net_return` (`-E[L]`) and every `es_*` within
/// [`crate::stat::TOLERANCE_SE`] standard errors, and every `var_*` equal to the exact
/// atom and inside its interval. `metric` looks a summary metric up by name. Returns
/// one line per metric, `name engine ± se [ci] exact`, for the record.
///
/// # Panics
/// When a metric is missing or off, or the enumeration lost mass.
pub fn check_enumeration(paths: u64, metric: &dyn Fn(&str) -> Reported) -> Vec<String> {
    check_atoms(&enumeration_atoms(), 1e-12, paths, metric)
}

/// [`check_enumeration`] against the law `atoms` (sorted `(loss, probability)`) whose
/// mass must be 1 to `mass_tolerance`.
///
/// # Panics
/// As [`check_enumeration`].
pub fn check_atoms(
    atoms: &[(f64, f64)],
    mass_tolerance: f64,
    paths: u64,
    metric: &dyn Fn(&str) -> Reported,
) -> Vec<String> {
    let mass: f64 = atoms.iter().map(|a| a.1).sum();
    assert!(
        (mass - 1.0).abs() < mass_tolerance,
        "enumeration lost {}",
        1.0 - mass
    );
    let mut lines = Vec::new();
    let mut record = |name: &str, e: &Reported, exact: f64| {
        lines.push(format!(
            "{name} {} ± {} [{}, {}] exact {exact}",
            e.value, e.std_error, e.ci_low, e.ci_high
        ));
    };

    let prob_loss: f64 = atoms.iter().filter(|a| a.0 > 1e-15).map(|a| a.1).sum();
    let e = metric("prob_loss");
    assert_within("prob_loss", e.value, prob_loss, e.std_error, 0.0);
    record("prob_loss", &e, prob_loss);
    let mean_loss: f64 = atoms.iter().map(|a| a.0 * a.1).sum();
    let e = metric("mean_net_return");
    assert_within("E[L]", -e.value, mean_loss, e.std_error, 0.0);
    record("mean_net_return", &e, -mean_loss);

    for (label, alpha) in [("95", 0.95), ("975", 0.975), ("99", 0.99), ("999", 0.999)] {
        let (var, es, jump) = discrete_var_es(atoms, alpha);
        let cdf_sd = (alpha * (1.0 - alpha) / paths as f64).sqrt();
        assert!(
            jump > 6.0 * cdf_sd,
            "level {alpha} is too close to a jump of the CDF ({jump}) for {paths} paths"
        );
        let v = metric(&format!("var_{label}"));
        assert!(
            (v.value - var).abs() < 1e-12 && v.ci_low <= var + 1e-12 && var <= v.ci_high + 1e-12,
            "var_{label}: {v:?} vs exact {var}"
        );
        record(&format!("var_{label}"), &v, var);
        let s = metric(&format!("es_{label}"));
        assert_within(&format!("es_{label}"), s.value, es, s.std_error, 0.0);
        record(&format!("es_{label}"), &s, es);
    }
    lines
}

/// A scenario whose net return is lognormal: a token incentive alone, no slashing, the
/// base APR fixed (`base.apr_sd = 0`), one year. See [`LognormalReturn`].
pub const LOGNORMAL_SCENARIO: &str = r#"
name = "lognormal"
[position]
principal_eth = 32.0
route = "native"
horizon_days = 365
[base]
apr_mean = 0.03
fee = 0.1
[[token]]
name = "EIGEN"
price_eth = 0.001
drift = 0.2
volatility = 0.8
[[incentive]]
token = "EIGEN"
apr = 0.04
[[operator]]
name = "op"
weight = 1.0
commission = 0.1
"#;

/// The exact law of the net return of [`LOGNORMAL_SCENARIO`]: the stake ends at
/// `P e^{gT}` (`g = r (1 - fee)`), and the tokens, `units = (1 - c) a P (e^{gT} - 1) /
/// (g X0)`, are worth `units X(T)` with `X` a GBM (`docs/model.md#a-path`). So `R = c0 + a0 Y`,
/// `Y = exp(m + s Z)`, `m = (mu - sigma^2/2) T`, `s = sigma sqrt(T)`, `c0 = e^{gT} - 1`,
/// `a0 = units X0 / P`.
#[derive(Debug, Clone, Copy)]
pub struct LognormalReturn {
    c0: f64,
    a0: f64,
    m: f64,
    s: f64,
    mu_t: f64,
}

impl Default for LognormalReturn {
    fn default() -> Self {
        let (t, g, mu, sigma) = (1.0f64, 0.03 * 0.9, 0.2, 0.8);
        Self {
            c0: (g * t).exp_m1(),
            a0: 0.9 * 0.04 * (g * t).exp_m1() / g,
            m: (mu - 0.5 * sigma * sigma) * t,
            s: sigma * t.sqrt(),
            mu_t: mu * t,
        }
    }
}

impl LognormalReturn {
    fn std_normal() -> Normal {
        Normal::new(0.0, 1.0).expect("standard normal")
    }

    /// `P(R <= x)`.
    pub fn cdf(&self, x: f64) -> f64 {
        if x <= self.c0 {
            0.0
        } else {
            Self::std_normal().cdf((((x - self.c0) / self.a0).ln() - self.m) / self.s)
        }
    }

    /// `E[R] = c0 + a0 e^{mu T}`.
    pub fn mean(&self) -> f64 {
        self.c0 + self.a0 * self.mu_t.exp()
    }

    /// The `q`-quantile of `R`, `c0 + a0 e^{m + s z_q}`.
    pub fn quantile(&self, q: f64) -> f64 {
        self.c0 + self.a0 * (self.m + self.s * Self::std_normal().inverse_cdf(q)).exp()
    }

    /// Expected shortfall of the loss `L = -R` at `alpha`: `-c0 - a0 E[Y | Y <=
    /// y_{1-alpha}] = -c0 - a0 e^{m + s^2/2} Phi(z_{1-alpha} - s) / (1 - alpha)`.
    pub fn es(&self, alpha: f64) -> f64 {
        let z = Self::std_normal();
        let zq = z.inverse_cdf(1.0 - alpha);
        -self.c0
            - self.a0 * (self.m + 0.5 * self.s * self.s).exp() * z.cdf(zq - self.s) / (1.0 - alpha)
    }
}
