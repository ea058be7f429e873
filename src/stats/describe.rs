//! Descriptive statistics of one group of runs: mean, sample std and
//! sem (ddof = 1), Hyndman-Fan type-7 quantiles, the interquartile mean and the t-interval.
//! A constant sample has mean exactly its value and std exactly 0 (so that "undefined" stays
//! NaN downstream instead of becoming a finite interval built on rounding noise).

use statrs::distribution::{ContinuousCDF, StudentsT};

fn is_constant(x: &[f64]) -> bool {
    x.first().is_some_and(|&first| x.iter().all(|&v| v == first))
}

/// Arithmetic mean; NaN for an empty sample.
pub fn mean(x: &[f64]) -> f64 {
    mean_of(x.iter().copied())
}

/// [`mean`] of the values of an iterator, in one pass and without collecting them: the same
/// sum in the same order, and exactly the value when all are equal.
pub fn mean_of(values: impl IntoIterator<Item = f64>) -> f64 {
    let (mut n, mut sum, mut first, mut constant) = (0usize, -0.0, f64::NAN, true);
    for v in values {
        if n == 0 {
            first = v;
        } else if v != first {
            constant = false;
        }
        sum += v;
        n += 1;
    }
    match (n, constant) {
        (0, _) => f64::NAN,
        (_, true) => first,
        _ => sum / n as f64,
    }
}

/// Sample standard deviation (ddof = 1); NaN for n < 2, exactly 0 for a constant sample.
pub fn std(x: &[f64]) -> f64 {
    if x.len() < 2 {
        return f64::NAN;
    }
    if is_constant(x) {
        return 0.0;
    }
    let m = mean(x);
    let ss: f64 = x.iter().map(|v| (v - m) * (v - m)).sum();
    (ss / (x.len() - 1) as f64).sqrt()
}

/// Standard error of the mean, `std / sqrt(n)`.
pub fn sem(x: &[f64]) -> f64 {
    std(x) / (x.len() as f64).sqrt()
}

/// Type-7 quantile of an already sorted sample (numpy's default `linear` method); NaN if empty.
pub fn quantile_sorted(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    if n == 0 || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    let h = (n - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    let frac = h - lo as f64;
    if frac == 0.0 {
        return sorted[lo];
    }
    sorted[lo] + frac * (sorted[hi] - sorted[lo])
}

/// The sample sorted ascending (NaN-free input assumed; NaNs sort last).
pub fn sorted(x: &[f64]) -> Vec<f64> {
    let mut v = x.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

/// Type-7 quantile of an unsorted sample.
pub fn quantile(x: &[f64], p: f64) -> f64 {
    quantile_sorted(&sorted(x), p)
}

/// Interquartile mean: the mean of the sorted values `k..n-k` with `k = floor(0.25 n)`
/// (scipy's `trim_mean(x, 0.25)`); the plain mean when n < 4.
pub fn iqm(x: &[f64]) -> f64 {
    let n = x.len();
    if n < 4 {
        return mean(x);
    }
    let s = sorted(x);
    let k = n / 4;
    mean(&s[k..n - k])
}

/// Two-sided t-interval for the mean at `confidence`; NaN bounds when n < 2 or std = 0.
pub fn t_interval(x: &[f64], confidence: f64) -> (f64, f64) {
    let n = x.len();
    let s = std(x);
    if n < 2 || s.is_nan() || s == 0.0 {
        return (f64::NAN, f64::NAN);
    }
    let half = t_quantile((1.0 + confidence) / 2.0, (n - 1) as f64) * s / (n as f64).sqrt();
    let m = mean(x);
    (m - half, m + half)
}

/// The `p` quantile of Student's t with `df` degrees of freedom (NaN if `df` is not positive).
pub fn t_quantile(p: f64, df: f64) -> f64 {
    // statrs panics (beta's XOutOfRange) on some non-finite inputs: they never reach it
    if !(p > 0.0 && p < 1.0) || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    match StudentsT::new(0.0, 1.0, df) {
        Ok(t) => t.inverse_cdf(p),
        Err(_) => f64::NAN,
    }
}

/// Survival function `P(T > t)` of Student's t with `df` degrees of freedom.
/// Never panics: NaN in, NaN out; `t = ±∞` gives 0 or 1.
pub fn t_sf(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if t.is_infinite() {
        return if t > 0.0 { 0.0 } else { 1.0 };
    }
    match StudentsT::new(0.0, 1.0, df) {
        Ok(d) => d.sf(t),
        Err(_) => f64::NAN,
    }
}
