//! Bootstrap confidence intervals of one sample: percentile, basic
//! and BCa, as scipy's `bootstrap`. The interval is a pure function of the bootstrap
//! distribution (`ci_from_bootstrap_distribution`), so it is tested on a fixed resample set;
//! resampling draws from our own seeded generator.

use rand::RngCore;
use statrs::distribution::{ContinuousCDF, Normal};

use crate::rng::below;
#[cfg(doc)]
use crate::stats::describe::quantile_sorted;

/// How the interval is read off the bootstrap distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootstrapMethod {
    /// Quantiles α/2 and 1 − α/2 of θ*.
    Percentile,
    /// The percentile interval reflected around θ̂.
    Basic,
    /// Bias-corrected and accelerated (Efron), with the jackknife acceleration.
    BCa,
}

impl BootstrapMethod {
    /// The name used in reports (`percentile`, `basic`, `BCa`).
    pub fn name(self) -> &'static str {
        match self {
            BootstrapMethod::Percentile => "percentile",
            BootstrapMethod::Basic => "basic",
            BootstrapMethod::BCa => "BCa",
        }
    }
}

fn std_normal() -> Option<Normal> {
    Normal::new(0.0, 1.0).ok()
}

/// The interval at `confidence` from `theta_hat` (the statistic on the data), `theta_star`
/// (the statistic on each resample) and, for BCa, `jackknife` (the statistic leaving each
/// observation out). NaN bounds when undefined (BCa on degenerate data, an empty
/// distribution).
pub fn ci_from_bootstrap_distribution(
    theta_hat: f64,
    theta_star: &[f64],
    jackknife: &[f64],
    method: BootstrapMethod,
    confidence: f64,
) -> (f64, f64) {
    if theta_star.is_empty() || theta_star.iter().any(|v| v.is_nan()) {
        return (f64::NAN, f64::NAN);
    }
    // two order statistics by selection: the same values as sorting, in linear time
    let mut s = theta_star.to_vec();
    let alpha = (1.0 - confidence) / 2.0;
    match method {
        BootstrapMethod::Percentile => (quantile_select(&mut s, alpha), quantile_select(&mut s, 1.0 - alpha)),
        BootstrapMethod::Basic => (
            2.0 * theta_hat - quantile_select(&mut s, 1.0 - alpha),
            2.0 * theta_hat - quantile_select(&mut s, alpha),
        ),
        BootstrapMethod::BCa => match bca_levels(theta_hat, &s, jackknife, alpha) {
            Some((a1, a2)) => (quantile_select(&mut s, a1), quantile_select(&mut s, a2)),
            None => (f64::NAN, f64::NAN),
        },
    }
}

/// The intervals of the three methods (percentile, basic, BCa, in that order) from one
/// bootstrap distribution: the values of three calls of [`ci_from_bootstrap_distribution`],
/// from one copy of `theta_star` and four selections instead of three copies and six.
pub fn ci_all_methods(theta_hat: f64, theta_star: &[f64], jackknife: &[f64], confidence: f64) -> [(f64, f64); 3] {
    let nan = (f64::NAN, f64::NAN);
    if theta_star.is_empty() || theta_star.iter().any(|v| v.is_nan()) {
        return [nan; 3];
    }
    let mut s = theta_star.to_vec();
    let alpha = (1.0 - confidence) / 2.0;
    let (lo, hi) = (quantile_select(&mut s, alpha), quantile_select(&mut s, 1.0 - alpha));
    let bca = match bca_levels(theta_hat, &s, jackknife, alpha) {
        Some((a1, a2)) => (quantile_select(&mut s, a1), quantile_select(&mut s, a2)),
        None => nan,
    };
    [(lo, hi), (2.0 * theta_hat - hi, 2.0 * theta_hat - lo), bca]
}

/// BCa's two quantile levels (Efron: bias correction z₀ from the share of θ* below θ̂,
/// acceleration from the jackknife), or `None` when undefined.
fn bca_levels(theta_hat: f64, s: &[f64], jackknife: &[f64], alpha: f64) -> Option<(f64, f64)> {
    let normal = std_normal()?;
    let b = s.len() as f64;
    let less = s.iter().filter(|&&v| v < theta_hat).count() as f64;
    let less_eq = s.iter().filter(|&&v| v <= theta_hat).count() as f64;
    let z0 = normal.inverse_cdf((less + less_eq) / (2.0 * b));
    if jackknife.len() < 2 {
        return None;
    }
    let dot = jackknife.iter().sum::<f64>() / jackknife.len() as f64;
    let d: Vec<f64> = jackknife.iter().map(|t| dot - t).collect();
    let ss: f64 = d.iter().map(|v| v * v).sum();
    let a = d.iter().map(|v| v * v * v).sum::<f64>() / (6.0 * ss.powf(1.5));
    let bound = |z: f64| {
        let num = z0 + z;
        normal.cdf(z0 + num / (1.0 - a * num))
    };
    let z_alpha = normal.inverse_cdf(alpha);
    let (a1, a2) = (bound(z_alpha), bound(-z_alpha));
    if !a1.is_finite() || !a2.is_finite() || !z0.is_finite() {
        return None;
    }
    Some((a1, a2))
}

/// [`quantile_sorted`] of `x` sorted, found by selection (reorders `x`; NaN-free input).
pub fn quantile_select(x: &mut [f64], p: f64) -> f64 {
    let n = x.len();
    if n == 0 || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    let h = (n - 1) as f64 * p;
    let lo = h.floor() as usize;
    let frac = h - lo as f64;
    let (_, at, right) = x.select_nth_unstable_by(lo, |a, b| a.total_cmp(b));
    let a = *at;
    if frac == 0.0 {
        return a;
    }
    // the next order statistic is the smallest value above position lo
    let b = right.iter().copied().min_by(|u, v| u.total_cmp(v)).unwrap_or(a);
    a + frac * (b - a)
}

/// The statistic leaving out each observation in turn.
pub fn jackknife(x: &[f64], statistic: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let mut buf = Vec::with_capacity(x.len().saturating_sub(1));
    (0..x.len())
        .map(|i| {
            buf.clear();
            buf.extend(x.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, v)| *v));
            statistic(&buf)
        })
        .collect()
}

/// A bootstrap interval of `statistic` over `x`: `n_resamples` resamples drawn from `rng`.
/// NaN bounds when `x` has fewer than 2 values.
pub fn bootstrap_ci(
    x: &[f64],
    statistic: impl Fn(&[f64]) -> f64,
    method: BootstrapMethod,
    confidence: f64,
    n_resamples: usize,
    rng: &mut impl RngCore,
) -> (f64, f64) {
    if x.len() < 2 || n_resamples == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mut buf = vec![0.0; x.len()];
    let theta_star: Vec<f64> = (0..n_resamples)
        .map(|_| {
            for slot in buf.iter_mut() {
                *slot = x[below(rng, x.len() as u64) as usize];
            }
            statistic(&buf)
        })
        .collect();
    let jack = if method == BootstrapMethod::BCa {
        jackknife(x, &statistic)
    } else {
        Vec::new()
    };
    ci_from_bootstrap_distribution(statistic(x), &theta_star, &jack, method, confidence)
}
