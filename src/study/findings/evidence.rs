//! The study's runs organised for the findings: each model's best-LR scores by dataset and
//! replicate, and the paired and unpaired comparisons between two models.

use super::*;

/// A model's normalised best-LR test scores, by (dataset, seed).
pub type Scores = BTreeMap<(String, crate::stats::report::table::Replicate), f64>;

/// The study's runs, organised for the findings.
pub struct Evidence<'a> {
    pub(super) ix: &'a RunsIndex,
    pub(super) confidence: f64,
    pub(super) alpha: f64,
    /// Normalised best-LR test scores by model name.
    pub scores: BTreeMap<String, Scores>,
    /// Raw best-LR test scores by (model, dataset), one per seed.
    pub(super) raw: BTreeMap<(String, String), Vec<f64>>,
    /// Normalised best-LR test scores by model, averaged over the fine-tuning seeds of each
    /// (dataset, pretraining seed): one value per pretraining run.
    pub(super) by_run: BTreeMap<String, BTreeMap<(String, i64), f64>>,
    /// Raw best-LR test scores by (model, dataset), one per pretraining run.
    pub(super) raw_by_run: BTreeMap<(String, String), Vec<f64>>,
}

/// The values of `a` and `b` at their common keys whose dataset `keep` admits, key order.
fn common<K: Ord>(
    a: &BTreeMap<(String, K), f64>,
    b: &BTreeMap<(String, K), f64>,
    keep: &dyn Fn(&str) -> bool,
) -> (Vec<f64>, Vec<f64>) {
    a.iter()
        .filter(|(k, _)| keep(&k.0))
        .filter_map(|(k, x)| Some((*x, *b.get(k)?)))
        .unzip()
}

impl<'a> Evidence<'a> {
    /// Collects the best-LR scores of every model of `ix`.
    pub fn new(ix: &'a RunsIndex, confidence: f64, alpha: f64) -> Self {
        let mut scores = BTreeMap::new();
        let mut raw = BTreeMap::new();
        let mut by_run = BTreeMap::new();
        let mut raw_by_run = BTreeMap::new();
        for (s, (model, _)) in ix.systems.iter().enumerate() {
            let mut by_unit = Scores::new();
            let mut runs: BTreeMap<(String, i64), Vec<f64>> = BTreeMap::new();
            for (d, dataset) in ix.datasets.iter().enumerate() {
                let Some(g) = ix.selected(s, d) else { continue };
                let m = ix.meta_of(d);
                let values = ix.imputed(d, g);
                let mut raw_runs: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
                for ((replicate, &score), &v) in g.scores.iter().zip(&values) {
                    by_unit.insert((dataset.clone(), *replicate), m.normalised(v));
                    runs.entry((dataset.clone(), replicate.0))
                        .or_default()
                        .push(m.normalised(v));
                    if let Some(k) = ix.kept(d, score) {
                        raw_runs.entry(replicate.0).or_default().push(k);
                    }
                }
                raw.insert((model.clone(), dataset.clone()), ix.values(d, g));
                raw_by_run.insert(
                    (model.clone(), dataset.clone()),
                    raw_runs.values().map(|v| mean(v)).collect::<Vec<f64>>(),
                );
            }
            scores.insert(model.clone(), by_unit);
            by_run.insert(model.clone(), runs.into_iter().map(|(k, v)| (k, mean(&v))).collect());
        }
        Self {
            ix,
            confidence,
            alpha,
            scores,
            raw,
            by_run,
            raw_by_run,
        }
    }

    /// Whether both models have at least two pretraining runs on every dataset of theirs that
    /// `keep` admits: then the pretraining runs are the units of their comparisons.
    pub(super) fn replicated(&self, a: &str, b: &str, keep: &dyn Fn(&str) -> bool) -> bool {
        let runs = |m: &str| -> BTreeMap<&str, usize> {
            let mut n = BTreeMap::new();
            for (d, _) in self.by_run.get(m).into_iter().flat_map(|r| r.keys()) {
                if keep(d) {
                    *n.entry(d.as_str()).or_insert(0) += 1;
                }
            }
            n
        };
        let (na, nb) = (runs(a), runs(b));
        !na.is_empty() && na.values().chain(nb.values()).all(|&n| n >= 2)
    }

    /// Whether the runs hold `model`.
    pub fn has(&self, model: &str) -> bool {
        self.scores.get(model).is_some_and(|s| !s.is_empty())
    }

    /// The family of a dataset.
    pub(super) fn family(&self, dataset: &str) -> String {
        self.ix.meta.get(dataset).map_or_else(String::new, |m| m.family.clone())
    }

    /// Paired comparison of normalised scores over the units both models have (restricted to
    /// datasets for which `keep` is true): (dataset, pretraining run) when both have two or
    /// more pretraining runs on each dataset, else (dataset, replicate).
    pub fn pooled(
        &self,
        finding: &str,
        label: &str,
        (a, b): (&str, &str),
        scope: &str,
        keep: &dyn Fn(&str) -> bool,
        expected: f64,
    ) -> Option<Comparison> {
        // units: (dataset, pretraining run), each the mean over its fine-tuning seeds, when
        // both sides are replicated; else (dataset, replicate)
        let replicated = self.replicated(a, b, keep);
        let (x, y) = if replicated {
            common(self.by_run.get(a)?, self.by_run.get(b)?, keep)
        } else {
            common(self.scores.get(a)?, self.scores.get(b)?, keep)
        };
        if x.is_empty() {
            return None;
        }
        let mut c = self.comparison(finding, label, (a, b), scope, &x, &y, true, expected);
        if replicated {
            c.test = "paired t (dataset × pretraining run)".into();
        }
        Some(c)
    }

    /// Welch comparison of raw scores on one dataset: over pretraining runs when both have two
    /// or more there, else over replicates.
    pub fn on_dataset(
        &self,
        finding: &str,
        label: &str,
        (a, b): (&str, &str),
        dataset: &str,
        expected: f64,
    ) -> Option<Comparison> {
        let key = |m: &str| (m.to_string(), dataset.to_string());
        if self.replicated(a, b, &|d| d == dataset) {
            let (x, y) = (self.raw_by_run.get(&key(a))?, self.raw_by_run.get(&key(b))?);
            let mut c = self.comparison(finding, label, (a, b), dataset, x, y, false, expected);
            c.test = "Welch t (pretraining runs)".into();
            return Some(c);
        }
        let x = self.raw.get(&key(a))?;
        let y = self.raw.get(&key(b))?;
        Some(self.comparison(finding, label, (a, b), dataset, x, y, false, expected))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn comparison(
        &self,
        finding: &str,
        label: &str,
        (a, b): (&str, &str),
        scope: &str,
        x: &[f64],
        y: &[f64],
        is_paired: bool,
        expected: f64,
    ) -> Comparison {
        let (lo_a, hi_a) = t_interval(x, self.confidence);
        let (lo_b, hi_b) = t_interval(y, self.confidence);
        let (t, test) = if is_paired {
            (paired(x, y, self.confidence), "paired t (dataset × seed)")
        } else {
            (welch(x, y, self.confidence), "Welch t (seeds)")
        };
        Comparison {
            finding: finding.into(),
            label: label.into(),
            a: a.into(),
            b: b.into(),
            scope: scope.into(),
            n: x.len(),
            mean_a: mean(x),
            lo_a,
            hi_a,
            mean_b: mean(y),
            lo_b,
            hi_b,
            diff: mean(x) - mean(y),
            diff_lo: t.ci_low,
            diff_hi: t.ci_high,
            test: test.into(),
            p: t.p,
            p_holm: f64::NAN,
            expected,
            primary: false,
        }
    }

    /// A verdict from one corrected comparison.
    pub fn verdict(&self, c: &Comparison) -> Verdict {
        if c.p_holm.is_nan() || c.p_holm >= self.alpha {
            Verdict::Inconclusive
        } else if c.diff * c.expected > 0.0 {
            Verdict::Reproduced
        } else {
            Verdict::Contradicted
        }
    }

    /// The seed spread and learning-rate sensitivity of `model` on every dataset: per
    /// (dataset, learning rate) the normalised seed std, and per dataset the normalised std of
    /// the seed means over learning rates (`stats::stability`), on the report split.
    pub fn spread(&self, model: &str) -> (BTreeMap<(String, u64), f64>, BTreeMap<String, f64>) {
        let mut seed_std = BTreeMap::new();
        let mut lr_std = BTreeMap::new();
        let Some(s) = system_of(self.ix, model) else {
            return (seed_std, lr_std);
        };
        for (d, dataset) in self.ix.datasets.iter().enumerate() {
            let Some((_, report)) = self.ix.protocol(s, d) else {
                continue;
            };
            let m = self.ix.meta_of(d);
            let span = m.max_score - m.chance_score;
            let mut means = Vec::new();
            for lr in self.ix.lrs(s, d, &report) {
                let Some(g) = self.ix.group(s, d, &report, lr) else {
                    continue;
                };
                let v: Vec<f64> = self.ix.imputed(d, g).iter().map(|x| x / span).collect();
                seed_std.insert((dataset.clone(), lr.to_bits()), std(&v));
                means.push(mean(&v));
            }
            lr_std.insert(dataset.clone(), std(&means));
        }
        (seed_std, lr_std)
    }

    /// Paired comparison of two keyed measures over their common keys.
    #[allow(clippy::too_many_arguments)]
    pub fn keyed<K: Ord>(
        &self,
        finding: &str,
        label: &str,
        (a, b): (&str, &str),
        x: &BTreeMap<K, f64>,
        y: &BTreeMap<K, f64>,
        units: &str,
        expected: f64,
    ) -> Option<Comparison> {
        let keys: Vec<&K> = x.keys().filter(|k| y.contains_key(*k)).collect();
        if keys.is_empty() {
            return None;
        }
        let xs: Vec<f64> = keys.iter().map(|k| x[*k]).collect();
        let ys: Vec<f64> = keys.iter().map(|k| y[*k]).collect();
        let mut c = self.comparison(finding, label, (a, b), "all", &xs, &ys, true, expected);
        c.test = format!("paired t ({units})");
        Some(c)
    }
}

/// Model names of the study's arms.
pub struct Names {
    /// 100 % CLM.
    pub clm: String,
    /// 100 % MLM at the main ratio.
    pub mlm: String,
}

impl Names {
    /// The names in `cfg`.
    pub fn of(cfg: &StudyConfig) -> Self {
        Self {
            clm: "clm".into(),
            mlm: format!("mlm{}", percent(cfg.pretrain.mlm_ratio)),
        }
    }
}

impl Evidence<'_> {
    /// Per dataset, `a` − `b`: each model's mean over the units both have there (pretraining
    /// runs when both are replicated, else (pretraining run, seed) replicates).
    pub fn effect_by_dataset(&self, a: &str, b: &str) -> BTreeMap<String, f64> {
        /// Per dataset, the mean of `x` minus the mean of `y` over their common keys.
        fn by_dataset<K: Ord>(x: &BTreeMap<(String, K), f64>, y: &BTreeMap<(String, K), f64>) -> BTreeMap<String, f64> {
            let mut by: BTreeMap<String, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
            for (k, v) in x {
                if let Some(w) = y.get(k) {
                    let e = by.entry(k.0.clone()).or_default();
                    e.0.push(*v);
                    e.1.push(*w);
                }
            }
            by.into_iter().map(|(d, (x, y))| (d, mean(&x) - mean(&y))).collect()
        }
        let empty = BTreeMap::new();
        if self.replicated(a, b, &|_| true) {
            let of = |m: &str| self.by_run.get(m).unwrap_or(&empty);
            return by_dataset(of(a), of(b));
        }
        let empty = Scores::new();
        let of = |m: &str| self.scores.get(m).unwrap_or(&empty);
        by_dataset(of(a), of(b))
    }

    /// Significant after Holm, in either direction.
    pub(super) fn verdict_any(&self, c: &Comparison) -> bool {
        !c.p_holm.is_nan() && c.p_holm < self.alpha
    }
}
