//! What the pretraining runs learned, before anything is fine-tuned: every run's held-out CLM
//! and MLM losses at each evaluation (its `metrics.jsonl`), next to the unigram floor of the
//! same held-out blocks (its `summary.json`): a run whose loss on its own objective stays at
//! the floor has learned token frequencies and nothing of context.

use std::fmt::Write as _;

use serde::Serialize;

use super::arms::{arm_dir, Arm, ArmKind};
use super::config::StudyConfig;
use crate::train::{RunSummary, StepMetrics};

/// One evaluation of one pretraining run.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct LossPoint {
    /// The arm.
    pub arm: String,
    /// Its pretraining seed.
    pub seed: u64,
    /// The run's step.
    pub step: usize,
    /// Held-out CLM loss (nats per token).
    pub eval_clm_loss: f64,
    /// Held-out MLM loss at the study's ratio (nats per masked token).
    pub eval_mlm_loss: f64,
    /// The unigram model's CLM loss on the same blocks.
    pub unigram_clm_loss: f64,
    /// Its MLM loss on the same masked positions.
    pub unigram_mlm_loss: f64,
}

/// Every evaluation of every run that has one, in the runs' order.
pub(crate) fn read_losses(cfg: &StudyConfig, arms: &[Arm]) -> Vec<LossPoint> {
    let mut v = Vec::new();
    for arm in arms {
        let dir = arm_dir(cfg, &arm.run);
        // the floor of a run made before it was recorded is unknown (NaN), not an error
        let summary = crate::config::load_json::<RunSummary>(&dir.join("summary.json")).ok();
        let floor = |f: fn(&RunSummary) -> Option<f64>| summary.as_ref().and_then(f).unwrap_or(f64::NAN);
        let (uc, um) = (floor(|s| s.unigram_clm_loss), floor(|s| s.unigram_mlm_loss));
        let Ok(text) = std::fs::read_to_string(dir.join("metrics.jsonl")) else {
            continue;
        };
        for m in text.lines().filter_map(|l| serde_json::from_str::<StepMetrics>(l).ok()) {
            if let (Some(c), Some(m), step) = (m.eval_clm_loss, m.eval_mlm_loss, m.step) {
                v.push(LossPoint {
                    arm: arm.name.clone(),
                    seed: arm.seed,
                    step,
                    eval_clm_loss: c,
                    eval_mlm_loss: m,
                    unigram_clm_loss: uc,
                    unigram_mlm_loss: um,
                });
            }
        }
    }
    v
}

/// The loss an arm is trained on at its end: CLM for the CLM arm, MLM otherwise.
fn own_is_clm(arm: &Arm) -> bool {
    matches!(arm.kind, ArmKind::Clm)
}

fn num(x: f64) -> String {
    if x.is_nan() {
        "n/a".into()
    } else {
        format!("{x:.3}")
    }
}

/// The report's section: each run's last evaluation against the floor, and where the curves
/// are.
pub fn section(arms: &[Arm], points: &[LossPoint]) -> String {
    let mut s = String::from("## Pretraining: did the models learn beyond token frequencies?\n\n");
    if points.is_empty() {
        s.push_str("No held-out losses were recorded.\n\n");
        return s;
    }
    let _ = writeln!(
        s,
        "Each run's last held-out evaluation (nats per scored token, the first 32 validation blocks; MLM at the study's ratio), next to the unigram model of the training blocks scored on the same positions. **Gap** is the floor minus the run's loss on its own final objective: how far it got beyond token frequencies.\n\n| arm | seed | step | CLM loss | unigram CLM | MLM loss | unigram MLM | gap (own objective) |\n|---|---|---|---|---|---|---|---|"
    );
    for arm in arms {
        let Some(p) = points.iter().rfind(|p| p.arm == arm.name && p.seed == arm.seed) else {
            continue;
        };
        let gap = if own_is_clm(arm) {
            p.unigram_clm_loss - p.eval_clm_loss
        } else {
            p.unigram_mlm_loss - p.eval_mlm_loss
        };
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} | {} | {} | {} | {} |",
            arm.name,
            arm.seed,
            p.step,
            num(p.eval_clm_loss),
            num(p.unigram_clm_loss),
            num(p.eval_mlm_loss),
            num(p.unigram_mlm_loss),
            if gap.is_nan() {
                "n/a".into()
            } else {
                format!("{gap:+.3}")
            }
        );
    }
    let _ = writeln!(
        s,
        "\n![held-out losses along pretraining](figures/losses.png)\n\nEvery evaluation of every run: [`pretraining_losses.csv`](pretraining_losses.csv).\n"
    );
    s
}
