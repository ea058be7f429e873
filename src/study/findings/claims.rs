//! F1–F6: each finding's comparisons, from the evidence, gated by the positive control.

use super::verdict::decide;
use super::*;

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
pub(crate) fn f2_checkpoints(cfg: &StudyConfig, n: &Names) -> Vec<(usize, (String, String))> {
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
pub(crate) fn f2_crossing(cfg: &StudyConfig, ev: &Evidence, n: &Names) -> Option<crate::study::crossing::Crossing> {
    let cps = f2_checkpoints(cfg, n);
    let steps: Vec<usize> = cps.iter().map(|c| c.0).collect();
    let pairs: Vec<(String, String)> = cps.into_iter().map(|c| c.1).collect();
    let diffs = crate::study::crossing::differences(&ev.scores, &pairs);
    let mut rng = crate::rng::seeded(cfg.seed, 0x6632_6372_6f73_7300);
    crate::study::crossing::crossing(
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
pub(crate) fn f1_f3(ev: &Evidence, names: &Names, extra: Vec<Comparison>) -> Vec<Finding> {
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
