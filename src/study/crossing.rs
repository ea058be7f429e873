//! F2's crossing point: the pretraining step at which CLM's lead over MLM (their normalised
//! best-LR test scores, averaged over datasets) first turns into MLM's lead, interpolated in
//! log steps between the two checkpoints around the sign change, with a two-level bootstrap
//! interval (datasets, then each dataset's replicates, paired across checkpoints).

use std::collections::{BTreeMap, BTreeSet};

use crate::stats::describe::mean;
use crate::stats::report::table::Replicate;

use super::findings::Scores;

/// Where a curve of CLM − MLM differences changes sign.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cross {
    /// MLM is already ahead (or level) at the first checkpoint, this step.
    Before(usize),
    /// The differences change sign at this (interpolated) step.
    At(f64),
    /// CLM is ahead at every checkpoint, the last being this step.
    After(usize),
}

impl Cross {
    /// A total order for percentiles: `Before` lowest, `After` highest, `At` by log step.
    fn key(self) -> f64 {
        match self {
            Cross::Before(_) => f64::NEG_INFINITY,
            Cross::At(s) => s.ln(),
            Cross::After(_) => f64::INFINITY,
        }
    }

    /// `at ≈ 1730 steps`, `before 500 steps`, `after 6000 steps`.
    pub fn describe(self) -> String {
        match self {
            Cross::Before(s) => format!("before {s} steps"),
            Cross::At(s) => format!("at ≈ {s:.0} steps"),
            Cross::After(s) => format!("after {s} steps"),
        }
    }

    /// An interval's end: `< 500`, `1730`, `> 6000`.
    fn bound(self) -> String {
        match self {
            Cross::Before(s) => format!("< {s}"),
            Cross::At(s) => format!("{s:.0}"),
            Cross::After(s) => format!("> {s}"),
        }
    }
}

/// The crossing of the mean curve with its bootstrap interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Crossing {
    /// The checkpoints, in steps, ascending.
    pub steps: Vec<usize>,
    /// Mean over datasets of CLM − MLM at each checkpoint.
    pub curve: Vec<f64>,
    /// Where `curve` changes sign.
    pub estimate: Cross,
    /// Percentile interval of the bootstrap crossings.
    pub lo: Cross,
    /// Upper end.
    pub hi: Cross,
    /// Share of the bootstrap curves that change sign inside the checkpoints.
    pub inside: f64,
    /// Datasets (the top-level units).
    pub datasets: usize,
    /// Confidence of the interval.
    pub confidence: f64,
}

impl Crossing {
    /// One sentence for the report.
    pub fn describe(&self) -> String {
        let curve: Vec<String> = self
            .steps
            .iter()
            .zip(&self.curve)
            .map(|(s, d)| format!("{s}: {d:+.3}"))
            .collect();
        format!(
            "CLM − MLM by checkpoint (normalised, mean of {} datasets) — {}; the curves cross {} ({:.0}% interval {} … {} steps; {:.0}% of bootstrap curves cross between the first and last checkpoint)",
            self.datasets,
            curve.join(", "),
            self.estimate.describe(),
            self.confidence * 100.0,
            self.lo.bound(),
            self.hi.bound(),
            self.inside * 100.0
        )
    }
}

/// Where the CLM − MLM `curve` over `steps` first changes sign from CLM's lead to MLM's.
pub fn cross(steps: &[usize], curve: &[f64]) -> Cross {
    let (Some(&first), Some(&last)) = (steps.first(), steps.last()) else {
        return Cross::After(0);
    };
    if curve[0] <= 0.0 {
        return Cross::Before(first);
    }
    for i in 1..curve.len() {
        if curve[i] <= 0.0 {
            let (a, b) = ((steps[i - 1] as f64).ln(), (steps[i] as f64).ln());
            let t = curve[i - 1] / (curve[i - 1] - curve[i]);
            return Cross::At((a + t * (b - a)).exp());
        }
    }
    Cross::After(last)
}

/// Per dataset, the CLM − MLM differences of every checkpoint over the replicates all
/// checkpoints share: `diffs[dataset][checkpoint][replicate]`. `checkpoints` holds the
/// (CLM model, MLM model) names of each checkpoint; a dataset some model lacks is left out.
pub fn differences(scores: &BTreeMap<String, Scores>, checkpoints: &[(String, String)]) -> Vec<Vec<Vec<f64>>> {
    let empty = Scores::new();
    let of = |m: &String| scores.get(m).unwrap_or(&empty);
    let datasets: BTreeSet<&String> = scores.values().flat_map(|s| s.keys().map(|k| &k.0)).collect();
    let mut out = Vec::new();
    for d in datasets {
        let keys = |m: &String| -> BTreeSet<Replicate> { of(m).keys().filter(|k| &k.0 == d).map(|k| k.1).collect() };
        let mut shared: Option<BTreeSet<Replicate>> = None;
        for (a, b) in checkpoints {
            let both: BTreeSet<Replicate> = keys(a).intersection(&keys(b)).copied().collect();
            shared = Some(match shared {
                None => both,
                Some(s) => s.intersection(&both).copied().collect(),
            });
        }
        let shared = shared.unwrap_or_default();
        if shared.is_empty() {
            continue;
        }
        out.push(
            checkpoints
                .iter()
                .map(|(a, b)| {
                    shared
                        .iter()
                        .map(|r| of(a)[&(d.clone(), *r)] - of(b)[&(d.clone(), *r)])
                        .collect()
                })
                .collect(),
        );
    }
    out
}

/// The mean curve of `diffs` (mean over each dataset's replicates, then over datasets).
fn curve(diffs: &[Vec<Vec<f64>>], checkpoints: usize) -> Vec<f64> {
    (0..checkpoints)
        .map(|i| mean(&diffs.iter().map(|d| mean(&d[i])).collect::<Vec<_>>()))
        .collect()
}

/// The crossing of `diffs` over `steps` and its interval: `resamples` two-level bootstrap
/// curves drawn from `rng` (datasets with replacement, then within each drawn dataset its
/// replicates with replacement, the same draw for every checkpoint). `None` without data.
pub(crate) fn crossing(
    steps: &[usize],
    diffs: &[Vec<Vec<f64>>],
    resamples: usize,
    confidence: f64,
    rng: &mut impl rand::RngCore,
) -> Option<Crossing> {
    if diffs.is_empty() || steps.len() < 2 {
        return None;
    }
    let k = steps.len();
    let mean_curve = curve(diffs, k);
    let mut star: Vec<Cross> = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        let drawn: Vec<Vec<Vec<f64>>> = (0..diffs.len())
            .map(|_| {
                let d = &diffs[crate::rng::below(rng, diffs.len() as u64) as usize];
                let n = d[0].len();
                let picks: Vec<usize> = (0..n).map(|_| crate::rng::below(rng, n as u64) as usize).collect();
                d.iter().map(|c| picks.iter().map(|&j| c[j]).collect()).collect()
            })
            .collect();
        star.push(cross(steps, &curve(&drawn, k)));
    }
    star.sort_by(|a, b| a.key().total_cmp(&b.key()));
    let at = |p: f64| star[((p * (star.len() - 1) as f64).round() as usize).min(star.len() - 1)];
    let tail = (1.0 - confidence) / 2.0;
    let inside = star.iter().filter(|c| matches!(c, Cross::At(_))).count() as f64 / star.len().max(1) as f64;
    Some(Crossing {
        steps: steps.to_vec(),
        estimate: cross(steps, &mean_curve),
        curve: mean_curve,
        lo: at(tail),
        hi: at(1.0 - tail),
        inside,
        datasets: diffs.len(),
        confidence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sign_change_is_interpolated_in_log_steps() {
        // +0.1 at 100, −0.1 at 10,000: halfway in log steps is 1,000
        match cross(&[100, 10_000], &[0.1, -0.1]) {
            Cross::At(s) => assert!((s - 1000.0).abs() < 1e-6, "{s}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(cross(&[100, 1000], &[-0.1, 0.2]), Cross::Before(100));
        assert_eq!(cross(&[100, 1000], &[0.1, 0.2]), Cross::After(1000));
        // the first change counts
        match cross(&[100, 1000, 10_000], &[0.3, -0.1, 0.2]) {
            Cross::At(s) => assert!(s > 100.0 && s < 1000.0, "{s}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_clear_crossing_has_a_tight_interval_and_noise_a_wide_one() {
        let steps = [100, 1000, 10_000];
        // ten datasets, each with CLM ahead at 100 and behind at 10,000, crossing near 1,000
        let clear: Vec<Vec<Vec<f64>>> = (0..10)
            .map(|d| {
                let e = d as f64 * 0.001;
                vec![
                    vec![0.2 + e, 0.21 + e],
                    vec![0.0 + e, -0.01 + e],
                    vec![-0.2 + e, -0.19 + e],
                ]
            })
            .collect();
        let mut rng = crate::rng::seeded(0, 1);
        let c = crossing(&steps, &clear, 500, 0.95, &mut rng).expect("data");
        assert_eq!(c.datasets, 10);
        assert!(c.inside > 0.99);
        let (Cross::At(lo), Cross::At(hi)) = (c.lo, c.hi) else {
            panic!("{c:?}")
        };
        assert!(lo > 500.0 && hi < 2000.0 && lo <= hi, "{lo} {hi}");
        // differences of either sign at every checkpoint: the interval reaches both ends
        let noise: Vec<Vec<Vec<f64>>> = (0..10)
            .map(|d| {
                let s = if d % 2 == 0 { 1.0 } else { -1.0 };
                vec![vec![0.1 * s], vec![0.1 * s], vec![0.1 * s]]
            })
            .collect();
        let c = crossing(&steps, &noise, 500, 0.95, &mut rng).expect("data");
        assert_eq!((c.lo, c.hi), (Cross::Before(100), Cross::After(10_000)));
    }

    #[test]
    fn differences_pair_the_replicates_every_checkpoint_shares() {
        let mut scores: BTreeMap<String, Scores> = BTreeMap::new();
        let put = |scores: &mut BTreeMap<String, Scores>, m: &str, r: Replicate, v: f64| {
            scores.entry(m.into()).or_default().insert(("sst2".into(), r), v);
        };
        for (r, v) in [((0, 0), 0.5), ((0, 1), 0.6), ((1, 0), 0.9)] {
            put(&mut scores, "clm", r, v);
            put(&mut scores, "mlm40", r, v - 0.1);
        }
        put(&mut scores, "clm@500", (0, 0), 0.3);
        put(&mut scores, "clm@500", (0, 1), 0.2);
        put(&mut scores, "mlm40@500", (0, 0), 0.1);
        put(&mut scores, "mlm40@500", (0, 1), 0.1);
        let cps = [
            ("clm@500".to_string(), "mlm40@500".to_string()),
            ("clm".into(), "mlm40".into()),
        ];
        let d = differences(&scores, &cps);
        assert_eq!(d.len(), 1);
        // the second pretraining seed (1, 0) of the finals is not shared by the checkpoints
        assert_eq!(d[0][0].len(), 2);
        assert!((d[0][0][0] - 0.2).abs() < 1e-12 && (d[0][0][1] - 0.1).abs() < 1e-12);
        assert!(d[0][1].iter().all(|x| (x - 0.1).abs() < 1e-12));
    }
}
