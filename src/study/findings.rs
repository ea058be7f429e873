//! The paper's findings F1–F6 (`../shared/PAPER.md`) as comparisons of the study's runs, each
//! with point estimates, 95 % intervals, a test, Holm-corrected p-values and a verdict.
//!
//! Conventions (STATISTICS.md): a model's score on a dataset is its test score at its best
//! learning rate (chosen on validation), one value per seed, failed runs at the task's chance
//! score. Comparisons across datasets use normalised scores, (score − chance) / (max − chance),
//! paired by (dataset, seed) (row 19, `dataset_seed` units); a comparison on one dataset is
//! Welch's test over seeds (row 17). Each finding's primary tests form one family, corrected
//! with Holm over the whole report (row 21).

use std::collections::BTreeMap;

use serde::Serialize;

use super::arms::percent;
use super::config::StudyConfig;
use super::control::Control;
use crate::stats::describe::{mean, std, t_interval};
use crate::stats::multitest::{adjust, Correction};
use crate::stats::report::RunsIndex;
use crate::stats::ttest::{paired, welch};

/// One comparison: `a − b`, where the paper expects the sign `expected`.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The finding it belongs to (`F1` … `F6`, or `baseline`).
    pub finding: String,
    /// What is compared, in words.
    pub label: String,
    /// Model (or measure) a.
    pub a: String,
    /// Model (or measure) b.
    pub b: String,
    /// A dataset, a family, or `all`.
    pub scope: String,
    /// Paired units (or seeds per side).
    pub n: usize,
    /// Mean of a (and its interval).
    pub mean_a: f64,
    /// Lower end.
    pub lo_a: f64,
    /// Upper end.
    pub hi_a: f64,
    /// Mean of b.
    pub mean_b: f64,
    /// Lower end.
    pub lo_b: f64,
    /// Upper end.
    pub hi_b: f64,
    /// a − b.
    pub diff: f64,
    /// Lower end of its interval.
    pub diff_lo: f64,
    /// Upper end.
    pub diff_hi: f64,
    /// The test.
    pub test: String,
    /// Two-sided p-value.
    pub p: f64,
    /// Holm-corrected p-value within its family (the report's primary tests, or the rows of
    /// one table).
    pub p_holm: f64,
    /// The sign the paper's claim predicts for a − b.
    pub expected: f64,
    /// Part of the report's family of primary tests.
    pub primary: bool,
}

/// What the data say about a claim.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Significant (after Holm) in the paper's direction.
    Reproduced,
    /// Significant in the other direction.
    Contradicted,
    /// Neither.
    Inconclusive,
    /// Its models do not beat random init (the positive control): nothing to judge.
    NotTestable,
    /// The study has no runs of its models (an arm the study does not train, or failed).
    NotRun,
}

impl Verdict {
    /// In words.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Reproduced => "reproduced",
            Verdict::Contradicted => "contradicted",
            Verdict::Inconclusive => "inconclusive at this scale",
            Verdict::NotTestable => "not testable at this scale",
            Verdict::NotRun => "not run",
        }
    }
}

/// One finding, evaluated.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Finding {
    /// `F1` … `F6`.
    pub id: String,
    /// The paper's claim.
    pub claim: String,
    /// The comparison that tests it.
    pub design: String,
    /// The models it compares: each must pass the positive control for a verdict.
    pub models: Vec<String>,
    /// Every comparison (primary and supporting).
    pub rows: Vec<Comparison>,
    /// The verdict.
    pub verdict: Verdict,
    /// Why, in words.
    pub why: String,
}

/// A model's normalised best-LR test scores, by (dataset, seed).
pub type Scores = BTreeMap<(String, crate::stats::report::table::Replicate), f64>;

/// The study's runs, organised for the findings.
pub struct Evidence<'a> {
    ix: &'a RunsIndex,
    confidence: f64,
    alpha: f64,
    /// Normalised best-LR test scores by model name.
    pub scores: BTreeMap<String, Scores>,
    /// Raw best-LR test scores by (model, dataset), one per seed.
    raw: BTreeMap<(String, String), Vec<f64>>,
    /// Normalised best-LR test scores by model, averaged over the fine-tuning seeds of each
    /// (dataset, pretraining seed): one value per pretraining run.
    by_run: BTreeMap<String, BTreeMap<(String, i64), f64>>,
    /// Raw best-LR test scores by (model, dataset), one per pretraining run.
    raw_by_run: BTreeMap<(String, String), Vec<f64>>,
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

/// The system of the runs table named `model` (whatever its objective).
pub fn system_of(ix: &RunsIndex, model: &str) -> Option<usize> {
    ix.systems.iter().position(|(m, _)| m == model)
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
    fn replicated(&self, a: &str, b: &str, keep: &dyn Fn(&str) -> bool) -> bool {
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
    fn family(&self, dataset: &str) -> String {
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
    fn comparison(
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
    /// the seed means over learning rates (STATISTICS.md rows 14, 15), on the report split.
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

/// Evaluates every finding on `ev`, correcting the primary tests together; a finding whose
/// models do not all pass `control` gets no verdict but "not testable at this scale".
pub fn evaluate(cfg: &StudyConfig, ev: &Evidence, control: &Control) -> Vec<Finding> {
    let names = Names::of(cfg);
    let datasets: Vec<String> = ev.ix.datasets.clone();
    let mut findings = vec![
        f1(ev, &names, &datasets),
        f2(cfg, ev, &names),
        f3(ev, &names),
        f4(cfg, ev, &names),
        f5(cfg, ev, &names),
        f6(cfg, ev),
    ];
    correct_all(&mut findings);
    for f in &mut findings {
        decide(f, ev);
        if f.id == "F2" {
            if let Some(c) = f2_crossing(cfg, ev, &names) {
                f.why = format!("{} {}.", f.why, c.describe());
            }
        }
        gate(f, control);
    }
    findings
}

/// F2's checkpoints in steps (the intermediate ones, then the end) with the (CLM, MLM) model
/// names of each.
pub fn f2_checkpoints(cfg: &StudyConfig, n: &Names) -> Vec<(usize, (String, String))> {
    let mut steps = cfg.pretrain.intermediate.clone();
    steps.sort_unstable();
    steps.push(cfg.pretrain.steps);
    steps
        .into_iter()
        .map(|s| {
            let pair = if s == cfg.pretrain.steps {
                (n.clm.clone(), n.mlm.clone())
            } else {
                (format!("{}@{s}", n.clm), format!("{}@{s}", n.mlm))
            };
            (s, pair)
        })
        .collect()
}

/// Where F2's CLM and MLM curves cross, over the replicates every checkpoint shares, with the
/// study's bootstrap resamples; `None` with fewer than two checkpoints or no shared runs.
pub fn f2_crossing(cfg: &StudyConfig, ev: &Evidence, n: &Names) -> Option<super::crossing::Crossing> {
    let cps = f2_checkpoints(cfg, n);
    let steps: Vec<usize> = cps.iter().map(|c| c.0).collect();
    let pairs: Vec<(String, String)> = cps.into_iter().map(|c| c.1).collect();
    let diffs = super::crossing::differences(&ev.scores, &pairs);
    let mut rng = crate::rng::seeded(cfg.seed, 0x6632_6372_6f73_7300);
    super::crossing::crossing(
        &steps,
        &diffs,
        cfg.analysis.bootstrap_resamples,
        cfg.analysis.confidence,
        &mut rng,
    )
}

/// Holm over every primary comparison of `findings` together (one family), and over each
/// finding's supporting rows apart.
fn correct_all(findings: &mut [Finding]) {
    let mut primary: Vec<&mut Comparison> = findings
        .iter_mut()
        .flat_map(|f| f.rows.iter_mut())
        .filter(|c| c.primary)
        .collect();
    let p: Vec<f64> = primary.iter().map(|c| c.p).collect();
    for (c, q) in primary.iter_mut().zip(adjust(&p, Correction::Holm)) {
        c.p_holm = q;
    }
    for f in findings {
        let mut support: Vec<&mut Comparison> = f.rows.iter_mut().filter(|c| !c.primary).collect();
        let p: Vec<f64> = support.iter().map(|c| c.p).collect();
        for (c, q) in support.iter_mut().zip(adjust(&p, Correction::Holm)) {
            c.p_holm = q;
        }
    }
}

/// F1 and F3 on any runs table that holds the two models `names` (the paper's released runs,
/// say): F1 with `extra` supporting rows (e.g. a paired bootstrap over test instances), both
/// corrected as the study's report corrects them. No positive control gates them: the caller
/// says why none is needed (the paper's models are full-scale) or runs one itself.
pub fn f1_f3(ev: &Evidence, names: &Names, extra: Vec<Comparison>) -> Vec<Finding> {
    let datasets = ev.ix.datasets.clone();
    let mut first = f1(ev, names, &datasets);
    first.rows.extend(extra);
    let mut findings = vec![first, f3(ev, names)];
    correct_all(&mut findings);
    for f in &mut findings {
        decide(f, ev);
    }
    findings
}

/// "Not testable at this scale" where a model of `f` fails the positive control, with the
/// numbers that say why; the comparison's own result stays in `why`, for the record.
fn gate(f: &mut Finding, control: &Control) {
    if f.rows.is_empty() {
        return;
    }
    let failing: Vec<&String> = f.models.iter().filter(|m| !control.passed(m)).collect();
    if failing.is_empty() {
        return;
    }
    let was = f.verdict.word();
    f.verdict = Verdict::NotTestable;
    f.why = format!(
        "the positive control fails: {}. A model must beat random init significantly on at least half of the datasets before a difference between objectives means anything. For the record, the comparison alone would read \"{was}\": {}",
        failing.iter().map(|m| control.describe(m)).collect::<Vec<_>>().join("; "),
        f.why
    );
}

fn primary(mut c: Comparison) -> Comparison {
    c.primary = true;
    c
}

fn f1(ev: &Evidence, n: &Names, datasets: &[String]) -> Finding {
    let pair = (n.mlm.as_str(), n.clm.as_str());
    let mut rows = Vec::new();
    if let Some(c) = ev.pooled("F1", "MLM − CLM, all datasets", pair, "all", &|_| true, 1.0) {
        rows.push(primary(c));
    }
    let mut families: Vec<String> = datasets.iter().map(|d| ev.family(d)).collect();
    families.dedup();
    families.sort();
    families.dedup();
    for fam in &families {
        let keep = |d: &str| ev.family(d) == *fam;
        if let Some(c) = ev.pooled("F1", "MLM − CLM, one family", pair, fam, &keep, 1.0) {
            rows.push(c);
        }
    }
    for d in datasets {
        if let Some(c) = ev.on_dataset("F1", "MLM − CLM, one dataset", pair, d, 1.0) {
            rows.push(c);
        }
    }
    Finding {
        id: "F1".into(),
        models: vec![n.clm.clone(), n.mlm.clone()],
        claim: "MLM beats CLM downstream at equal size and data, most on sequence classification and QA; CLM is already strong on token classification.".into(),
        design: format!("`{}` vs `{}` (final checkpoints, same steps and data): best-LR test scores", n.mlm, n.clm),
        rows,
        verdict: Verdict::Inconclusive,
        why: String::new(),
    }
}

fn f2(cfg: &StudyConfig, ev: &Evidence, n: &Names) -> Finding {
    let mut rows = Vec::new();
    let mut steps = cfg.pretrain.intermediate.clone();
    steps.sort_unstable();
    for (i, (s, (a, b))) in f2_checkpoints(cfg, n).into_iter().enumerate() {
        if let Some(c) = ev.pooled(
            "F2",
            &format!("CLM − MLM after {s} steps"),
            (&a, &b),
            "all",
            &|_| true,
            1.0,
        ) {
            rows.push(if i == 0 && s != cfg.pretrain.steps {
                primary(c)
            } else {
                c
            });
        }
    }
    Finding {
        id: "F2".into(),
        models: vec![n.clm.clone(), n.mlm.clone()],
        claim: "CLM is more data-efficient: better downstream scores early in pretraining.".into(),
        design: if steps.is_empty() {
            format!(
                "CLM vs MLM at the end of their {} steps only: this study keeps no intermediate checkpoints (`pretrain.intermediate` is empty), so the early-training comparison this finding needs is not run",
                cfg.pretrain.steps
            )
        } else {
            format!(
                "CLM vs MLM checkpoints of the same runs after {} of {} steps (undecayed) and at the end{}; the primary test is the earliest checkpoint. Where the curves cross is interpolated in log steps between the checkpoints around the first sign change of the mean difference, over the fine-tuning runs every checkpoint shares, with a percentile interval from a bootstrap over datasets and, within each, those runs",
                steps.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", "),
                cfg.pretrain.steps,
                if cfg.pretrain.intermediate_seeds.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (checkpoints kept at pretraining seed {})",
                        cfg.pretrain.intermediate_seeds.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")
                    )
                }
            )
        },
        rows,
        verdict: Verdict::Inconclusive,
        why: String::new(),
    }
}

fn f3(ev: &Evidence, n: &Names) -> Finding {
    let (seed_clm, lr_clm) = ev.spread(&n.clm);
    let (seed_mlm, lr_mlm) = ev.spread(&n.mlm);
    let mut rows = Vec::new();
    let pair = (n.clm.as_str(), n.mlm.as_str());
    if let Some(c) = ev.keyed(
        "F3",
        "seed std, CLM − MLM",
        pair,
        &seed_clm,
        &seed_mlm,
        "dataset × LR",
        -1.0,
    ) {
        rows.push(primary(c));
    }
    if let Some(c) = ev.keyed(
        "F3",
        "LR sensitivity (std over LRs), CLM − MLM",
        pair,
        &lr_clm,
        &lr_mlm,
        "dataset",
        -1.0,
    ) {
        rows.push(primary(c));
    }
    Finding {
        id: "F3".into(),
        models: vec![n.clm.clone(), n.mlm.clone()],
        claim: "CLM-pretrained models fine-tune more stably: less sensitive to learning rate and seed.".into(),
        design: format!(
            "`{}` vs `{}`: the normalised std over seeds of every (dataset, LR) cell, and the normalised std of the seed means over the LRs of every dataset (test split)",
            n.clm, n.mlm
        ),
        rows,
        verdict: Verdict::Inconclusive,
        why: String::new(),
    }
}

fn f4(cfg: &StudyConfig, ev: &Evidence, n: &Names) -> Finding {
    let mut rows = Vec::new();
    for s in &cfg.pretrain.clm_shares {
        let arm = format!("clm{}-{}", percent(*s), n.mlm);
        if let Some(c) = ev.pooled("F4", "CLM→MLM − MLM", (&arm, &n.mlm), "all", &|_| true, 1.0) {
            rows.push(primary(c));
        }
    }
    Finding {
        id: "F4".into(),
        models: rows
            .iter()
            .flat_map(|c| [c.a.clone(), c.b.clone()])
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect(),
        claim: "At a fixed budget, CLM for part of the steps then MLM beats 100% MLM.".into(),
        design: format!(
            "biphasic arms ({} % of the {} steps CLM, then MLM {} %) vs `{}` at the same steps",
            cfg.pretrain
                .clm_shares
                .iter()
                .map(|s| percent(*s))
                .collect::<Vec<_>>()
                .join(" / "),
            cfg.pretrain.steps,
            percent(cfg.pretrain.mlm_ratio),
            n.mlm
        ),
        rows,
        verdict: Verdict::Inconclusive,
        why: String::new(),
    }
}

fn f5(cfg: &StudyConfig, ev: &Evidence, n: &Names) -> Finding {
    let mut rows = Vec::new();
    let (a, b) = (format!("{}+{}", n.clm, n.mlm), format!("{}+{}", n.mlm, n.mlm));
    if let Some(c) = ev.pooled("F5", "continued from CLM − from MLM", (&a, &b), "all", &|_| true, 1.0) {
        rows.push(primary(c));
    }
    for d in ev.ix.datasets.clone() {
        if let Some(c) = ev.on_dataset("F5", "continued from CLM − from MLM, one dataset", (&a, &b), &d, 1.0) {
            rows.push(c);
        }
    }
    Finding {
        id: "F5".into(),
        models: vec![a.clone(), b.clone()],
        claim: "Continued pretraining: MLM on a CLM checkpoint beats MLM continued on an MLM checkpoint.".into(),
        design: format!(
            "`{a}` vs `{b}`: {} more steps of MLM {} % from each decayed final checkpoint",
            cfg.pretrain.continued_steps,
            percent(cfg.pretrain.mlm_ratio)
        ),
        rows,
        verdict: Verdict::Inconclusive,
        why: String::new(),
    }
}

fn f6(cfg: &StudyConfig, ev: &Evidence) -> Finding {
    let ratios = cfg.ratios();
    let sizes = cfg.sizes();
    let name = |size: &str, r: f64| {
        if size == cfg.pretrain.size {
            format!("mlm{}", percent(r))
        } else {
            format!("{size}-mlm{}", percent(r))
        }
    };
    let mut rows = Vec::new();
    if ratios.len() >= 2 {
        for size in &sizes {
            for r in &ratios[1..] {
                let (a, b) = (name(size, ratios[0]), name(size, *r));
                if let Some(c) = ev.pooled(
                    "F6",
                    &format!("ratio {} − {} at size {size}", percent(ratios[0]), percent(*r)),
                    (&a, &b),
                    size,
                    &|_| true,
                    0.0,
                ) {
                    rows.push(c);
                }
            }
        }
    }
    let models: Vec<String> = rows
        .iter()
        .flat_map(|c| [c.a.clone(), c.b.clone()])
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    // the interaction: the ratio effect at the first size minus the same at each other size,
    // paired over the datasets all four models have
    if ratios.len() >= 2 {
        for other in sizes.iter().skip(1) {
            for r in &ratios[1..] {
                let effect = |size: &str| ev.effect_by_dataset(&name(size, ratios[0]), &name(size, *r));
                let (x, y) = (effect(&sizes[0]), effect(other));
                let label = |size: &str| format!("{size}: {} − {}", name(size, ratios[0]), name(size, *r));
                if let Some(mut c) = ev.keyed(
                    "F6",
                    &format!(
                        "interaction: ratio {} − {} at {} minus at {other}",
                        percent(ratios[0]),
                        percent(*r),
                        sizes[0]
                    ),
                    (&label(&sizes[0]), &label(other)),
                    &x,
                    &y,
                    "dataset",
                    0.0,
                ) {
                    c.scope = format!("{} vs {other}", sizes[0]);
                    rows.push(primary(c));
                }
            }
        }
    }
    Finding {
        id: "F6".into(),
        models,
        claim: "The best masking ratio depends on model size.".into(),
        design: format!(
            "100 % MLM arms at ratios {} for model size(s) {}; the test is the interaction — the ratio effect at the first size minus the same effect at another — paired over datasets (each model's mean over its runs there)",
            ratios
                .iter()
                .map(|r| format!("{} %", percent(*r)))
                .collect::<Vec<_>>()
                .join(", "),
            sizes.join(", ")
        ),
        rows,
        verdict: Verdict::Inconclusive,
        why: String::new(),
    }
}

fn interval(c: &Comparison) -> String {
    format!("{:+.3} [{:+.3}, {:+.3}]", c.diff, c.diff_lo, c.diff_hi)
}

/// Sets the verdict and its reason.
fn decide(f: &mut Finding, ev: &Evidence) {
    let primaries: Vec<&Comparison> = f.rows.iter().filter(|c| c.primary).collect();
    if f.id == "F6" {
        return decide_f6(f, ev);
    }
    if primaries.is_empty() {
        f.verdict = Verdict::NotRun;
        f.why = "the study has no runs for this comparison (an arm it does not train, or one that failed).".into();
        return;
    }
    let verdicts: Vec<Verdict> = primaries.iter().map(|c| ev.verdict(c)).collect();
    let any = |v: Verdict| verdicts.contains(&v);
    f.verdict = if any(Verdict::Reproduced) && !any(Verdict::Contradicted) {
        Verdict::Reproduced
    } else if any(Verdict::Contradicted) && !any(Verdict::Reproduced) {
        Verdict::Contradicted
    } else {
        Verdict::Inconclusive
    };
    let parts: Vec<String> = primaries
        .iter()
        .zip(&verdicts)
        .map(|(c, v)| {
            format!(
                "{} ({} vs {}): difference {} (normalised), Holm p = {} — {}",
                c.label,
                c.a,
                c.b,
                interval(c),
                fmt_p(c.p_holm),
                match v {
                    Verdict::Reproduced => "significant, in the paper's direction",
                    Verdict::Contradicted => "significant, against the paper",
                    Verdict::Inconclusive | Verdict::NotTestable | Verdict::NotRun => "not significant",
                }
            )
        })
        .collect();
    let mixed = any(Verdict::Reproduced) && any(Verdict::Contradicted);
    // F1 also names the families (the paper: largest on SC and QA, CLM strong on TC)
    let families: Vec<String> = f
        .rows
        .iter()
        .filter(|c| f.id == "F1" && c.label.ends_with("one family"))
        .map(|c| format!("{} {} (Holm p {})", c.scope, interval(c), fmt_p(c.p_holm)))
        .collect();
    let by_family = if families.is_empty() {
        String::new()
    } else {
        format!(" By family (MLM − CLM): {}.", families.join("; "))
    };
    f.why = format!(
        "{}.{}{}",
        parts.join("; "),
        if mixed { " The primary tests disagree." } else { "" },
        by_family,
    );
}

/// F6's verdict.
fn decide_f6(f: &mut Finding, ev: &Evidence) {
    if f.rows.is_empty() {
        f.verdict = Verdict::NotRun;
        f.why = "the study trains one masking ratio (set `pretrain.other_ratios`, and `pretrain.ratio_sizes` for a second size), or those arms have no runs.".into();
        return;
    }
    // the best ratio at each size: the sign of (main − other) per size
    let sizes: Vec<String> = {
        let mut s: Vec<String> = f.rows.iter().filter(|c| !c.primary).map(|c| c.scope.clone()).collect();
        s.dedup();
        s
    };
    let best: Vec<String> = sizes
        .iter()
        .map(|size| {
            let rows: Vec<&Comparison> = f.rows.iter().filter(|c| !c.primary && c.scope == *size).collect();
            let main_best = rows.iter().all(|c| c.diff >= 0.0);
            let best = if main_best {
                rows.first().map(|c| c.a.clone()).unwrap_or_default()
            } else {
                rows.iter()
                    .min_by(|a, b| a.diff.total_cmp(&b.diff))
                    .map(|c| c.b.clone())
                    .unwrap_or_default()
            };
            format!("{size}: {best}")
        })
        .collect();
    let differences: Vec<String> = f
        .rows
        .iter()
        .filter(|c| !c.primary)
        .map(|c| format!("{} {}", c.label, interval(c)))
        .collect();
    if sizes.len() < 2 {
        f.verdict = Verdict::Inconclusive;
        f.why = format!(
            "one model size only, so a dependence on size cannot be tested; best ratio by mean — {}; {}.",
            best.join(", "),
            differences.join("; ")
        );
        return;
    }
    let interactions: Vec<&Comparison> = f.rows.iter().filter(|c| c.primary).collect();
    let significant: Vec<&&Comparison> = interactions.iter().filter(|c| ev.verdict_any(c)).collect();
    // the claim is that the effect differs between sizes, in either direction: a significant
    // interaction reproduces it; none cannot contradict it (absence of evidence)
    f.verdict = if significant.is_empty() {
        Verdict::Inconclusive
    } else {
        Verdict::Reproduced
    };
    f.why = format!(
        "best ratio by mean — {}; ratio effects (normalised, main ratio − other): {}; interaction{}: {}; {} of {} interaction tests significant after Holm{}.",
        best.join(", "),
        differences.join("; "),
        if interactions.len() == 1 { "" } else { "s" },
        interactions
            .iter()
            .map(|c| format!("{} {} (Holm p {})", c.label, interval(c), fmt_p(c.p_holm)))
            .collect::<Vec<_>>()
            .join("; "),
        significant.len(),
        interactions.len(),
        if interactions.is_empty() { " (no dataset has all four models)" } else { "" },
    );
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
    fn verdict_any(&self, c: &Comparison) -> bool {
        !c.p_holm.is_nan() && c.p_holm < self.alpha
    }
}

/// A p-value for a report: 3 significant digits, or `< 1e-4`.
pub fn fmt_p(p: f64) -> String {
    if p.is_nan() {
        "n/a".into()
    } else if p < 1e-4 {
        "< 1e-4".into()
    } else {
        format!("{p:.4}")
    }
}
