//! Rank-based tests with scipy's method choices: average ranks,
//! Mann-Whitney U (own exact null distribution: statrs' exact p-values are wrong when
//! n₁ ≤ n₂), Wilcoxon signed-rank (exact, sign-flip enumeration or normal approximation) and
//! the Friedman test with tie correction.

use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};

/// Ranks 1..n with ties given their average rank (scipy `rankdata(method='average')`); ties are
/// exact f64 equality.
pub fn rank_average(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut ranks = vec![0.0; x.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && x[order[j + 1]] == x[order[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = avg;
        }
        i = j + 1;
    }
    ranks
}

/// Sizes of the groups of tied values.
fn tie_sizes(x: &[f64]) -> Vec<f64> {
    let mut s: Vec<f64> = x.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let mut j = i;
        while j + 1 < s.len() && s[j + 1] == s[i] {
            j += 1;
        }
        out.push((j - i + 1) as f64);
        i = j + 1;
    }
    out
}

fn normal_sf(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    Normal::new(0.0, 1.0).map(|n| n.sf(z)).unwrap_or(f64::NAN)
}

/// How a p-value was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PMethod {
    /// The exact null distribution.
    Exact,
    /// Enumeration of every sign pattern (Wilcoxon with ties or zeros, n ≤ 13).
    Permutation,
    /// The normal approximation.
    Asymptotic,
}

impl PMethod {
    /// Lowercase name for reports.
    pub fn name(self) -> &'static str {
        match self {
            PMethod::Exact => "exact",
            PMethod::Permutation => "permutation",
            PMethod::Asymptotic => "asymptotic",
        }
    }
}

/// A Mann-Whitney U test of x against y.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// U statistic of x (number of pairs with x > y, ties counting ½).
    pub u1: f64,
    /// Two-sided p-value.
    pub p: f64,
    /// How p was computed.
    pub method: PMethod,
}

/// Counts of the null distribution of U for sizes (n1, n2): coefficient u of the Gaussian
/// binomial `prod_{i=1..n1} (1 − q^{n2+i}) / (1 − q^i)`.
fn u_null_counts(n1: usize, n2: usize) -> Vec<f64> {
    let max = n1 * n2;
    let mut c = vec![0.0; max + 1];
    c[0] = 1.0;
    for i in 1..=n1 {
        // multiply by (1 - q^(n2+i))
        for k in (n2 + i..=max).rev() {
            c[k] -= c[k - n2 - i];
        }
        // divide by (1 - q^i): c[k] += c[k - i], in increasing k
        for k in i..=max {
            c[k] += c[k - i];
        }
    }
    c
}

/// Two-sided Mann-Whitney U test with continuity correction; exact unless both samples have
/// more than 8 values or there are ties (scipy `mannwhitneyu(method='auto')`).
pub fn mann_whitney(x: &[f64], y: &[f64]) -> MannWhitney {
    let (n1, n2) = (x.len(), y.len());
    if n1 == 0 || n2 == 0 {
        return MannWhitney {
            u1: f64::NAN,
            p: f64::NAN,
            method: PMethod::Asymptotic,
        };
    }
    let all: Vec<f64> = x.iter().chain(y).copied().collect();
    let ranks = rank_average(&all);
    let r1: f64 = ranks[..n1].iter().sum();
    let u1 = r1 - (n1 * (n1 + 1)) as f64 / 2.0;
    let u2 = (n1 * n2) as f64 - u1;
    let u = u1.max(u2);
    let ties = tie_sizes(&all);
    let has_ties = ties.iter().any(|&t| t > 1.0);
    let exact = n1 <= 8 || n2 <= 8;
    if exact && !has_ties {
        let counts = u_null_counts(n1, n2);
        let total: f64 = counts.iter().sum();
        let from = u.round() as usize;
        let upper: f64 = counts[from.min(counts.len())..].iter().sum();
        return MannWhitney {
            u1,
            p: (2.0 * upper / total).min(1.0),
            method: PMethod::Exact,
        };
    }
    let n = (n1 + n2) as f64;
    let tie_term: f64 = ties.iter().map(|t| t * t * t - t).sum::<f64>() / (n * (n - 1.0));
    let sigma = ((n1 * n2) as f64 / 12.0 * ((n + 1.0) - tie_term)).sqrt();
    let z = (u - (n1 * n2) as f64 / 2.0 - 0.5) / sigma;
    MannWhitney {
        u1,
        p: (2.0 * normal_sf(z)).min(1.0),
        method: PMethod::Asymptotic,
    }
}

/// A Wilcoxon signed-rank test of paired samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wilcoxon {
    /// min(R₊, R₋), scipy's two-sided statistic.
    pub statistic: f64,
    /// Sum of the ranks of positive differences.
    pub r_plus: f64,
    /// Sum of the ranks of negative differences.
    pub r_minus: f64,
    /// Two-sided p-value.
    pub p: f64,
    /// How p was computed.
    pub method: PMethod,
}

/// Two-sided Wilcoxon signed-rank test of `x − y` (zero differences dropped, no continuity
/// correction; scipy `wilcoxon(x, y)` with `method='auto'`).
pub fn wilcoxon(x: &[f64], y: &[f64]) -> Wilcoxon {
    let nan = Wilcoxon {
        statistic: f64::NAN,
        r_plus: f64::NAN,
        r_minus: f64::NAN,
        p: f64::NAN,
        method: PMethod::Asymptotic,
    };
    if x.len() != y.len() || x.is_empty() {
        return nan;
    }
    let n_all = x.len();
    let d: Vec<f64> = x.iter().zip(y).map(|(a, b)| a - b).filter(|v| *v != 0.0).collect();
    let has_zeros = d.len() < n_all;
    if d.is_empty() {
        return nan;
    }
    let abs: Vec<f64> = d.iter().map(|v| v.abs()).collect();
    let ranks = rank_average(&abs);
    // `+ 0.0`: an empty f64 sum is -0.0
    let r_plus: f64 = d
        .iter()
        .zip(&ranks)
        .filter(|(v, _)| **v > 0.0)
        .map(|(_, r)| r)
        .sum::<f64>()
        + 0.0;
    let r_minus: f64 = d
        .iter()
        .zip(&ranks)
        .filter(|(v, _)| **v < 0.0)
        .map(|(_, r)| r)
        .sum::<f64>()
        + 0.0;
    let statistic = r_plus.min(r_minus);
    let ties = tie_sizes(&abs);
    let has_ties = ties.iter().any(|&t| t > 1.0);
    let n = d.len();
    let two_sided = |le: f64, ge: f64| (2.0 * le.min(ge)).min(1.0);
    if n_all <= 50 && !has_ties && !has_zeros {
        // exact null of R+: subset sums of 1..n
        let max = n * (n + 1) / 2;
        let mut c = vec![0.0f64; max + 1];
        c[0] = 1.0;
        for k in 1..=n {
            for s in (k..=max).rev() {
                c[s] += c[s - k];
            }
        }
        let total: f64 = c.iter().sum();
        let r = r_plus.round() as usize;
        let le: f64 = c[..=r].iter().sum::<f64>() / total;
        let ge: f64 = c[r..].iter().sum::<f64>() / total;
        return Wilcoxon {
            statistic,
            r_plus,
            r_minus,
            p: two_sided(le, ge),
            method: PMethod::Exact,
        };
    }
    if n_all <= 13 {
        // every sign pattern of the actual (tied) ranks
        let (mut le, mut ge) = (0u64, 0u64);
        let patterns = 1u64 << n;
        for mask in 0..patterns {
            let s: f64 = (0..n).filter(|i| mask & (1 << i) != 0).map(|i| ranks[i]).sum();
            le += u64::from(s <= r_plus);
            ge += u64::from(s >= r_plus);
        }
        let total = patterns as f64;
        return Wilcoxon {
            statistic,
            r_plus,
            r_minus,
            p: two_sided(le as f64 / total, ge as f64 / total),
            method: PMethod::Permutation,
        };
    }
    let nf = n as f64;
    let var = nf * (nf + 1.0) * (2.0 * nf + 1.0) / 24.0 - ties.iter().map(|t| t * t * t - t).sum::<f64>() / 48.0;
    let z = (r_plus - nf * (nf + 1.0) / 4.0) / var.sqrt();
    Wilcoxon {
        statistic,
        r_plus,
        r_minus,
        p: (2.0 * normal_sf(z.abs())).min(1.0),
        method: PMethod::Asymptotic,
    }
}

/// Friedman test over `blocks` (rows: tasks; columns: the k systems); NaN for k < 3 or fewer
/// than 2 blocks. Returns (χ², p).
pub fn friedman(blocks: &[Vec<f64>]) -> (f64, f64) {
    let k = blocks.first().map_or(0, Vec::len);
    let n = blocks.len();
    if k < 3 || n < 2 || blocks.iter().any(|b| b.len() != k || b.iter().any(|v| v.is_nan())) {
        return (f64::NAN, f64::NAN);
    }
    let mut sums = vec![0.0; k];
    let mut ties = 0.0;
    for b in blocks {
        for (s, r) in sums.iter_mut().zip(rank_average(b)) {
            *s += r;
        }
        ties += tie_sizes(b).iter().map(|t| t * t * t - t).sum::<f64>();
    }
    let (nf, kf) = (n as f64, k as f64);
    let ssbn: f64 = sums.iter().map(|s| s * s).sum();
    let c = 1.0 - ties / (nf * kf * (kf * kf - 1.0));
    let chi2 = (12.0 / (nf * kf * (kf + 1.0)) * ssbn - 3.0 * nf * (kf + 1.0)) / c;
    let p = if chi2.is_finite() {
        ChiSquared::new(kf - 1.0).map(|d| d.sf(chi2)).unwrap_or(f64::NAN)
    } else {
        f64::NAN
    };
    (chi2, p)
}
