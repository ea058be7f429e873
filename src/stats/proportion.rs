//! Failed runs: a run failed when it is NaN or scores at most the
//! task's chance score (Mosbach et al. 2021, after Dodge et al. 2020); the failure rate comes
//! with a Wilson score interval.

use statrs::distribution::{ContinuousCDF, Normal};

/// The standard normal quantile at `p`.
pub fn normal_quantile(p: f64) -> f64 {
    match Normal::new(0.0, 1.0) {
        Ok(n) => n.inverse_cdf(p),
        Err(_) => f64::NAN,
    }
}

/// Whether a run failed: NaN, or a score at or below chance (`≤`, not `<`).
pub fn is_failed(score: f64, chance: f64) -> bool {
    score.is_nan() || score <= chance
}

/// Wilson score interval for `k` successes out of `n` at `confidence`; NaN when n = 0.
pub fn wilson_interval(k: u64, n: u64, confidence: f64) -> (f64, f64) {
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let z = normal_quantile((1.0 + confidence) / 2.0);
    let (k, n) = (k as f64, n as f64);
    let z2 = z * z;
    let centre = (k + z2 / 2.0) / (n + z2);
    let half = z / (n + z2) * (k * (n - k) / n + z2 / 4.0).sqrt();
    // at k = 0 and k = n the bound is exactly 0 or 1 (statsmodels' value), not rounding noise
    let low = if k == 0.0 { 0.0 } else { (centre - half).max(0.0) };
    let high = if k == n { 1.0 } else { (centre + half).min(1.0) };
    (low, high)
}
