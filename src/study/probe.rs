//! The linear probe beside full fine-tuning (`finetune.probe`): each model's frozen features
//! with a trained head (`{model}:probe` in the runs table) against the same probe on random
//! features of the same size (`random:probe`), and next to the model's full fine-tuning. A probe
//! separates what the pretrained representation holds from what fine-tuning makes of it.

use std::fmt::Write as _;

use serde::Serialize;

use super::control::{nested, welch_one_dataset};
use super::findings::system_of;
use crate::finetune::config::probe_name;
use crate::stats::hierarchical::nested_mean;
use crate::stats::multitest::{adjust, Correction};
use crate::stats::report::RunsIndex;

/// One (model, dataset): its probe against the random-feature probe, and its full
/// fine-tuning; normalised scores at each system's selected learning rate.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct ProbeRow {
    /// The model.
    pub model: String,
    /// The dataset.
    pub dataset: String,
    /// The probe's score.
    pub probe: f64,
    /// The probe on random features.
    pub random_probe: f64,
    /// The model's full fine-tuning.
    pub full: f64,
    /// probe − random probe.
    pub diff: f64,
    /// Lower end of its interval (Welch).
    pub diff_lo: f64,
    /// Upper end.
    pub diff_hi: f64,
    /// Two-sided p-value.
    pub p: f64,
    /// Holm over every row.
    pub p_holm: f64,
}

/// The rows of `models` (those with probe runs), each as (model, its random-init baseline):
/// the probes from `probes` (an index of the probe runs alone, their grid apart), full
/// fine-tuning from `full`.
pub(crate) fn probe_rows(
    probes: &RunsIndex,
    full: &RunsIndex,
    models: &[(String, String)],
    confidence: f64,
) -> Vec<ProbeRow> {
    let mut rows = Vec::new();
    for (m, baseline) in models {
        let (Some(p), Some(r)) = (
            system_of(probes, &probe_name(m)),
            system_of(probes, &probe_name(baseline)),
        ) else {
            continue;
        };
        let f = system_of(full, m);
        for (d, dataset) in probes.datasets.iter().enumerate() {
            let (Some(x), Some(y)) = (nested(probes, p, d), nested(probes, r, d)) else {
                continue;
            };
            let full_score = f
                .zip(full.datasets.iter().position(|n| n == dataset))
                .and_then(|(f, fd)| nested(full, f, fd))
                .map_or(f64::NAN, |n| nested_mean(&n));
            let t = welch_one_dataset(&x, &y, confidence).t;
            rows.push(ProbeRow {
                model: m.clone(),
                dataset: dataset.clone(),
                probe: nested_mean(&x),
                random_probe: nested_mean(&y),
                full: full_score,
                diff: nested_mean(&x) - nested_mean(&y),
                diff_lo: t.ci_low,
                diff_hi: t.ci_high,
                p: t.p,
                p_holm: f64::NAN,
            });
        }
    }
    let p: Vec<f64> = rows.iter().map(|r| r.p).collect();
    for (row, q) in rows.iter_mut().zip(adjust(&p, Correction::Holm)) {
        row.p_holm = q;
    }
    rows
}

/// The report's section (empty without probe runs).
pub fn section(rows: &[ProbeRow]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "## Linear probe: what the frozen features hold\n\nEach model's backbone frozen and a head trained on its features, against the same probe on random features of the same size and beside the model's full fine-tuning (normalised scores at each system's selected learning rate; Welch over the probe's replicates, Holm over the rows). The probes have their own learning-rate grid and are analysed apart: `analysis/` covers full fine-tuning. All rows: [`probe.csv`](probe.csv).\n\n| model | dataset | probe | random-feature probe | probe − random [95% CI] | Holm p | full fine-tuning |\n|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let _ = writeln!(
            s,
            "| `{}` | {} | {:.3} | {:.3} | {:+.3} [{:.3}, {:.3}] | {} | {:.3} |",
            r.model,
            r.dataset,
            r.probe,
            r.random_probe,
            r.diff,
            r.diff_lo,
            r.diff_hi,
            super::findings::fmt_p(r.p_holm),
            r.full
        );
    }
    s.push('\n');
    s
}
