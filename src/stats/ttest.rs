//! Parametric two-sample tests: Welch's unpaired t-test and
//! the paired t-test, two-sided, with the confidence interval of the mean difference.

use crate::stats::describe::{mean, std, t_quantile, t_sf};

/// The result of a t-test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TTest {
    /// t statistic.
    pub t: f64,
    /// Degrees of freedom.
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
    /// Mean difference (x − y).
    pub mean_diff: f64,
    /// Lower bound of the interval for the mean difference.
    pub ci_low: f64,
    /// Upper bound.
    pub ci_high: f64,
}

const NAN_TEST: TTest = TTest {
    t: f64::NAN,
    df: f64::NAN,
    p: f64::NAN,
    mean_diff: f64::NAN,
    ci_low: f64::NAN,
    ci_high: f64::NAN,
};

/// The two-sided test and interval of a mean difference with standard error `se` and `df`
/// degrees of freedom.
fn from_se(mean_diff: f64, se: f64, df: f64, confidence: f64) -> TTest {
    let t = mean_diff / se;
    let half = t_quantile((1.0 + confidence) / 2.0, df) * se;
    TTest {
        t,
        df,
        p: (2.0 * t_sf(t.abs(), df)).min(1.0),
        mean_diff,
        ci_low: mean_diff - half,
        ci_high: mean_diff + half,
    }
}

/// Welch's t-test of x against y (unequal variances). Everything but the mean difference is
/// NaN when a sample has fewer than 2 values or the standard error is 0.
pub fn welch(x: &[f64], y: &[f64], confidence: f64) -> TTest {
    let mean_diff = mean(x) - mean(y);
    let (nx, ny) = (x.len() as f64, y.len() as f64);
    if x.len() < 2 || y.len() < 2 {
        return TTest { mean_diff, ..NAN_TEST };
    }
    let (vx, vy) = (std(x).powi(2) / nx, std(y).powi(2) / ny);
    let se = (vx + vy).sqrt();
    if se == 0.0 || se.is_nan() {
        return TTest { mean_diff, ..NAN_TEST };
    }
    let df = (vx + vy).powi(2) / (vx * vx / (nx - 1.0) + vy * vy / (ny - 1.0));
    from_se(mean_diff, se, df, confidence)
}

/// Paired t-test on `x[i] − y[i]`. All differences 0: NaN; all equal and non-zero: t = ±inf,
/// p = 0 and a zero-width interval; fewer than 2 pairs or unequal lengths: NaN.
pub fn paired(x: &[f64], y: &[f64], confidence: f64) -> TTest {
    if x.len() != y.len() || x.len() < 2 {
        return NAN_TEST;
    }
    let d: Vec<f64> = x.iter().zip(y).map(|(a, b)| a - b).collect();
    let n = d.len() as f64;
    let mean_diff = mean(&d);
    let s = std(&d);
    let df = n - 1.0;
    if s == 0.0 {
        if mean_diff == 0.0 {
            return TTest {
                mean_diff,
                df,
                ..NAN_TEST
            };
        }
        let t = if mean_diff > 0.0 {
            f64::INFINITY
        } else {
            f64::NEG_INFINITY
        };
        return TTest {
            t,
            df,
            p: 0.0,
            mean_diff,
            ci_low: mean_diff,
            ci_high: mean_diff,
        };
    }
    let se = s / n.sqrt();
    from_se(mean_diff, se, df, confidence)
}
