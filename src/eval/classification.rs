//! Sequence classification: accuracy, and macro-F1 as scikit-learn's
//! `f1_score(average="macro")` computes it (the labels are those present in the references or
//! the predictions, each label's F1 = 2·tp / (2·tp + fp + fn), averaged unweighted).

use std::collections::BTreeMap;

use super::{mismatch, Counts, Instance, Scores};
use crate::error::Result;

/// Accuracy; each instance scores 1 when its prediction is right.
pub fn accuracy(ids: &[String], predicted: &[usize], gold: &[usize]) -> Result<Scores> {
    check("accuracy", ids, predicted, gold)?;
    let instances = ids
        .iter()
        .zip(predicted.iter().zip(gold))
        .map(|(id, (p, g))| Instance {
            id: id.clone(),
            score: f64::from(u8::from(p == g)),
            counts: None,
        })
        .collect();
    Ok(Scores::mean("accuracy", instances))
}

/// Macro-F1 over the labels seen in `gold` or `predicted`; the instances carry their
/// correctness (1 or 0) as score, which a bootstrap pairs with the labels to recompute it.
pub fn macro_f1(ids: &[String], predicted: &[usize], gold: &[usize]) -> Result<Scores> {
    check("macro_f1", ids, predicted, gold)?;
    let score = macro_f1_score(predicted, gold);
    let instances = accuracy(ids, predicted, gold)?.instances;
    Ok(Scores {
        metric: "macro_f1".to_string(),
        score,
        instances,
    })
}

/// The macro-F1 value alone.
pub fn macro_f1_score(predicted: &[usize], gold: &[usize]) -> f64 {
    let mut per_label: BTreeMap<usize, Counts> = BTreeMap::new();
    for (p, g) in predicted.iter().zip(gold) {
        per_label.entry(*p).or_default().predicted += 1;
        let entry = per_label.entry(*g).or_default();
        entry.gold += 1;
        if p == g {
            entry.tp += 1;
        }
    }
    if per_label.is_empty() {
        return 0.0;
    }
    per_label.values().map(|c| c.f1()).sum::<f64>() / per_label.len() as f64
}

fn check(metric: &str, ids: &[String], predicted: &[usize], gold: &[usize]) -> Result<()> {
    if predicted.len() != gold.len() {
        return Err(mismatch(metric, "references", predicted.len(), gold.len()));
    }
    if ids.len() != gold.len() {
        return Err(mismatch(metric, "ids", gold.len(), ids.len()));
    }
    Ok(())
}
