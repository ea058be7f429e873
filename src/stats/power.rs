//! Power of the paired t-test (statsmodels `TTestPower`, two-sided): the power to detect a
//! standardised effect d with n paired units, the smallest effect detectable at a given power,
//! and the units needed for a given effect. The noncentral t distribution they rest on is
//! Lenth's algorithm AS 243 (Applied Statistics 38, 1989), the one R's `pt(ncp=)` started from.

use statrs::distribution::{ContinuousCDF, Normal};
use statrs::function::beta::{beta_reg, ln_beta};

use crate::stats::describe::t_quantile;

/// `P(T ≤ t)` for the noncentral t with `df` degrees of freedom and noncentrality `nc`
/// (scipy `nct.cdf`), to about 1e-12 for |nc| up to ~30. NaN for bad arguments.
pub fn nct_cdf(t: f64, df: f64, nc: f64) -> f64 {
    if t.is_nan() || nc.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if t.is_infinite() {
        return if t > 0.0 { 1.0 } else { 0.0 };
    }
    let (tt, del, negative) = if t < 0.0 { (-t, -nc, true) } else { (t, nc, false) };
    let normal = Normal::standard();
    let mut total = 0.0;
    let x = tt * tt / (tt * tt + df);
    if x > 0.0 {
        let lambda = del * del;
        let mut p = 0.5 * (-0.5 * lambda).exp();
        let mut q = (2.0 / std::f64::consts::PI).sqrt() * p * del;
        let mut s = 0.5 - p;
        let mut a = 0.5;
        let b = 0.5 * df;
        let rxb = (1.0 - x).powf(b);
        let albeta = ln_beta(a, b);
        let mut xodd = beta_reg(a, b, x);
        let mut godd = 2.0 * rxb * (a * x.ln() - albeta).exp();
        let mut xeven = 1.0 - rxb;
        let mut geven = b * x * rxb;
        total = p * xodd + q * xeven;
        let mut en = 1.0;
        loop {
            a += 1.0;
            xodd -= godd;
            xeven -= geven;
            godd *= x * (a + b - 1.0) / a;
            geven *= x * (a + b - 0.5) / (a + 0.5);
            p *= lambda / (2.0 * en);
            q *= lambda / (2.0 * en + 1.0);
            s -= p;
            en += 1.0;
            total += p * xodd + q * xeven;
            let bound = 2.0 * s * (xodd - godd);
            if bound.abs() <= 1e-14 || en > 2000.0 {
                break;
            }
        }
    }
    total += normal.cdf(-del);
    let total = total.clamp(0.0, 1.0);
    if negative {
        1.0 - total
    } else {
        total
    }
}

/// The two-sided power of the one-sample (paired) t-test at level `alpha` for a standardised
/// effect `d` (mean difference / sd of the differences) with `n` units (`n` may be
/// fractional, as statsmodels allows): `P(T > c) + P(T < −c)`, T noncentral t with n − 1
/// degrees of freedom and noncentrality d·√n, c = t₁₋α/₂,ₙ₋₁.
pub fn ttest_power(d: f64, n: f64, alpha: f64) -> f64 {
    if n.is_nan() || n <= 1.0 || d.is_nan() {
        return f64::NAN;
    }
    let df = n - 1.0;
    let c = t_quantile(1.0 - alpha / 2.0, df);
    let nc = d * n.sqrt();
    (1.0 - nct_cdf(c, df, nc)) + nct_cdf(-c, df, nc)
}

/// The root of the increasing `f` in `(lo, hi)` where `f(lo) < 0 < f(hi)`, by bisection to
/// `tol`.
fn bisect(f: impl Fn(f64) -> f64, mut lo: f64, mut hi: f64, tol: f64) -> f64 {
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if f(mid) < 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < tol {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// The smallest standardised effect detected with probability `power` by the two-sided paired
/// t-test with `n` units at level `alpha` (statsmodels `TTestPower().solve_power(nobs=n,
/// power=…)`); NaN for n < 2.
pub fn minimum_detectable_effect(n: f64, power: f64, alpha: f64) -> f64 {
    if n.is_nan() || n < 2.0 {
        return f64::NAN;
    }
    bisect(|d| ttest_power(d, n, alpha) - power, 0.0, 100.0, 1e-12)
}

/// The (fractional) number of units at which the two-sided paired t-test detects effect `d`
/// with probability `power` (statsmodels `solve_power(effect_size=d, power=…)`); infinite for
/// d = 0.
pub fn units_needed(d: f64, power: f64, alpha: f64) -> f64 {
    let d = d.abs();
    if d.is_nan() {
        return f64::NAN;
    }
    if d == 0.0 {
        return f64::INFINITY;
    }
    let mut hi = 4.0;
    while ttest_power(d, hi, alpha) < power {
        hi *= 2.0;
        if hi > 1e9 {
            return f64::INFINITY;
        }
    }
    bisect(|n| ttest_power(d, n, alpha) - power, 1.0 + 1e-9, hi, 1e-10)
}
