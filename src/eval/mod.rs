//! Fine-tuning metrics, as pure functions that reproduce their reference implementations:
//! accuracy and macro-F1 (scikit-learn), entity-level micro F1 over IOB2 tags (seqeval) and
//! token accuracy, SQuAD v1.1 exact match and F1 (the official script), nDCG@10, MRR@10 and
//! recall@100 (pytrec_eval / BEIR). Every metric returns its score and the per-instance values
//! the analysis needs (paired tests, bootstrap of F1); scores are on a 0–1 scale.

pub mod classification;
pub mod retrieval;
pub mod squad;
pub mod tagging;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Counts behind an F1: true positives, predicted and gold items (entities, tokens).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Items both predicted and gold.
    pub tp: u64,
    /// Items predicted.
    pub predicted: u64,
    /// Items in the reference.
    pub gold: u64,
}

impl std::ops::Add for Counts {
    type Output = Counts;

    /// Element-wise sum.
    fn add(self, other: Counts) -> Counts {
        Counts {
            tp: self.tp + other.tp,
            predicted: self.predicted + other.predicted,
            gold: self.gold + other.gold,
        }
    }
}

impl Counts {
    /// F1 = 2·tp / (predicted + gold), 0 when nothing was predicted or is gold (scikit-learn's
    /// and seqeval's `zero_division` default).
    pub fn f1(self) -> f64 {
        let denominator = self.predicted + self.gold;
        if denominator == 0 {
            0.0
        } else {
            2.0 * self.tp as f64 / denominator as f64
        }
    }
}

/// One evaluated instance (a sentence, a question, a query): its id, its own score, and for F1
/// metrics the counts whose sum over instances gives the corpus score (so a bootstrap over
/// instances can recompute it exactly).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Instance {
    /// The instance's id in its dataset.
    pub id: String,
    /// The instance's score on the metric's scale (0–1).
    pub score: f64,
    /// For corpus-level F1 metrics: this instance's counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<Counts>,
}

/// A metric over a dataset: its name, the corpus score, and the per-instance values. For
/// averaged metrics (accuracy, exact match, SQuAD F1, nDCG, MRR, recall) the score is the mean
/// of the instance scores; for corpus F1 metrics it is the F1 of the summed counts.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Scores {
    /// The metric's name (`accuracy`, `macro_f1`, `entity_f1`, `token_accuracy`,
    /// `exact_match`, `f1`, `ndcg@10`, `mrr@10`, `recall@100`).
    pub metric: String,
    /// The dataset-level score, 0–1.
    pub score: f64,
    /// One entry per instance, in the dataset's order.
    pub instances: Vec<Instance>,
}

impl Scores {
    /// A metric whose score is the mean of its instances' (0 for no instance).
    pub fn mean(metric: &str, instances: Vec<Instance>) -> Self {
        let score = if instances.is_empty() {
            0.0
        } else {
            instances.iter().map(|i| i.score).sum::<f64>() / instances.len() as f64
        };
        Self {
            metric: metric.to_string(),
            score,
            instances,
        }
    }
}

/// The error of predictions and references of different lengths.
fn mismatch(metric: &str, what: &str, predictions: usize, references: usize) -> Error {
    Error::Metric {
        metric: metric.to_string(),
        reason: format!("{predictions} predictions for {references} {what}"),
    }
}
