//! The exact sign test of paired samples (scipy `binomtest(k, n, 0.5)`, two-sided): `k` of the
//! `n` non-zero differences `x − y` positive. The unit of a dataset-level comparison, where a
//! handful of datasets leaves the t-test's normality unchecked and Wilcoxon's ranks of
//! differences on unlike scales questionable.

use statrs::function::gamma::ln_gamma;

/// A sign test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignTest {
    /// Differences above zero.
    pub positive: usize,
    /// Differences below zero (zeros are dropped, as ties carry no sign).
    pub negative: usize,
    /// Two-sided exact p-value; NaN without a non-zero difference.
    pub p: f64,
}

/// The exact two-sided sign test of `x − y` (pairs with a NaN and zero differences dropped).
/// Under H₀ the positives are Binomial(n, ½), which is symmetric, so scipy's two-sided p (the
/// outcomes no more likely than the observed one) is `min(1, 2·P(X ≤ min(k, n − k)))`.
pub fn sign_test(x: &[f64], y: &[f64]) -> SignTest {
    let (mut positive, mut negative) = (0, 0);
    for (a, b) in x.iter().zip(y) {
        let d = a - b;
        if d > 0.0 {
            positive += 1;
        } else if d < 0.0 {
            negative += 1;
        }
    }
    let n = positive + negative;
    let p = if n == 0 {
        f64::NAN
    } else {
        (2.0 * binomial_half_cdf(positive.min(negative), n)).min(1.0)
    };
    SignTest { positive, negative, p }
}

/// P(X ≤ k) for X ~ Binomial(n, ½), summed from the pmf in log space (exact to rounding for
/// any n; 2⁻ⁿ alone underflows past n = 1074).
fn binomial_half_cdf(k: usize, n: usize) -> f64 {
    let ln_n = ln_gamma(n as f64 + 1.0) - n as f64 * std::f64::consts::LN_2;
    (0..=k)
        .map(|i| (ln_n - ln_gamma(i as f64 + 1.0) - ln_gamma((n - i) as f64 + 1.0)).exp())
        .sum()
}
