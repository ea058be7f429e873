//! Fine-tuning stability: the spread over seeds (Mosbach et al.
//! 2021's definition), its summaries over the learning-rate grid, the choice of the best
//! learning rate, and our learning-rate sensitivity measures.

use crate::stats::describe::{mean, std};

/// The best learning rate: the highest selection-split seed mean; ties go to the smallest
/// learning rate; NaN means are never chosen. `means` pairs each learning rate with its mean.
pub fn best_lr(means: &[(f64, f64)]) -> Option<(f64, f64)> {
    let mut best: Option<(f64, f64)> = None;
    for &(lr, m) in means {
        if m.is_nan() {
            continue;
        }
        best = match best {
            Some((blr, bm)) if bm > m || (bm == m && blr <= lr) => Some((blr, bm)),
            _ => Some((lr, m)),
        };
    }
    best
}

/// Seed-std summaries of one (system, task) over its learning rates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeedSpread {
    /// Mean over learning rates of the seed std.
    pub mean: f64,
    /// sqrt(mean over learning rates of the seed variance).
    pub pooled: f64,
}

/// Summarises per-learning-rate seed samples (each a group's scores, failed runs included).
pub fn seed_spread(groups: &[&[f64]]) -> SeedSpread {
    let stds: Vec<f64> = groups.iter().map(|g| std(g)).filter(|s| !s.is_nan()).collect();
    if stds.is_empty() {
        return SeedSpread {
            mean: f64::NAN,
            pooled: f64::NAN,
        };
    }
    let var: Vec<f64> = stds.iter().map(|s| s * s).collect();
    SeedSpread {
        mean: mean(&stds),
        pooled: mean(&var).sqrt(),
    }
}

/// How much the score depends on the learning rate, from the seed means m(lr).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrSensitivity {
    /// max m − min m.
    pub range: f64,
    /// Sample std of the m(lr).
    pub std: f64,
    /// m(lr*) − mean of m: the expected loss of a learning rate drawn at random from the grid.
    pub regret: f64,
    /// regret / (m(lr*) − chance).
    pub regret_norm: f64,
}

/// LR sensitivity from the seed means (`best` is m at the selected learning rate).
pub fn lr_sensitivity(seed_means: &[f64], best: f64, chance: f64) -> LrSensitivity {
    let m: Vec<f64> = seed_means.iter().copied().filter(|v| !v.is_nan()).collect();
    if m.is_empty() {
        return LrSensitivity {
            range: f64::NAN,
            std: f64::NAN,
            regret: f64::NAN,
            regret_norm: f64::NAN,
        };
    }
    let max = m.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min = m.iter().copied().fold(f64::INFINITY, f64::min);
    let regret = best - mean(&m);
    LrSensitivity {
        range: max - min,
        std: std(&m),
        regret,
        regret_norm: regret / (best - chance),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_lr_ties_go_to_the_smallest() {
        assert_eq!(best_lr(&[(5e-5, 0.9), (1e-5, 0.9), (1e-4, 0.8)]), Some((1e-5, 0.9)));
        assert_eq!(best_lr(&[(1e-4, f64::NAN), (2e-5, 0.7)]), Some((2e-5, 0.7)));
        assert_eq!(best_lr(&[(1e-4, f64::NAN)]), None);
    }

    // import numpy as np
    // m = np.array([0.85, 0.88, 0.91, 0.90, 0.62, 0.50])
    // m.max() - m.min(), np.std(m, ddof=1), m.max() - m.mean(), (m.max() - m.mean()) / (m.max() - 0.5092)
    // # 0.41000000000000003 0.17328204369370379 0.1333333333333333 0.33266799733865593
    #[test]
    fn lr_sensitivity_matches_numpy() {
        let m = [0.85, 0.88, 0.91, 0.90, 0.62, 0.50];
        let s = lr_sensitivity(&m, 0.91, 0.5092);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(s.range, 0.41000000000000003), "{s:?}");
        assert!(close(s.std, 0.17328204369370379), "{s:?}");
        assert!(close(s.regret, 0.1333333333333333), "{s:?}");
        assert!(close(s.regret_norm, 0.33266799733865593), "{s:?}");
    }

    // s = [np.std(g, ddof=1) for g in ([0.9, 0.92, 0.91], [0.8, 0.6, 0.7], [0.5])]  # the last is NaN, left out
    // np.mean(s[:2]), np.sqrt(np.mean(np.square(s[:2])))   # 0.05500000000000002 0.0710633520177595
    #[test]
    fn seed_spread_matches_numpy() {
        let s = seed_spread(&[&[0.9, 0.92, 0.91], &[0.8, 0.6, 0.7], &[0.5]]);
        assert!((s.mean - 0.05500000000000002).abs() < 1e-12, "{s:?}");
        assert!((s.pooled - 0.0710633520177595).abs() < 1e-12, "{s:?}");
    }
}
