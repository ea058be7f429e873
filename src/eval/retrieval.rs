//! Retrieval: nDCG@k and recall@k as pytrec_eval (trec_eval) computes them, MRR@k as BEIR's
//! `EvaluateRetrieval.evaluate_custom` does, from BEIR qrels (query → document → relevance).
//!
//! Conventions reproduced: trec_eval ranks a query's documents by score, ties by document id
//! in *descending* string order; a document is relevant when its judgement is ≥ 1; the gain of
//! nDCG is the judgement itself (not 2^rel − 1), the ideal ranking is the judgements sorted;
//! recall's denominator counts every relevant judgement, retrieved or not. BEIR's MRR ranks by
//! score with ties in the run's order (a stable sort). Every judged query is scored: one
//! without a relevant judgement, or absent from the run, scores 0 (BEIR averages MRR over all
//! the qrels' queries; our runs always rank every query, so pytrec_eval's average over the
//! queries of the run is the same).

use std::collections::{BTreeMap, HashMap};

use super::{Instance, Scores};
use crate::error::{Error, Result};

/// Relevance judgements: query id → (document id → relevance).
pub type Qrels = BTreeMap<String, BTreeMap<String, i64>>;

/// A run: query id → the scored documents (document id, score), in the order the system
/// returned them (it matters for MRR's ties only).
pub type Run = HashMap<String, Vec<(String, f64)>>;

/// A per-query metric: (ranked documents, judgements, cutoff) → score.
type PerQuery = fn(&[(String, f64)], &BTreeMap<String, i64>, usize) -> f64;

/// trec_eval's order: score descending, then document id descending.
fn trec_order(docs: &[(String, f64)]) -> Vec<&(String, f64)> {
    let mut ranked: Vec<&(String, f64)> = docs.iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    ranked
}

/// nDCG@k of one query.
fn ndcg(docs: &[(String, f64)], judged: &BTreeMap<String, i64>, k: usize) -> f64 {
    let discount = |rank: usize| 1.0 / ((rank + 2) as f64).log2();
    let dcg: f64 = trec_order(docs)
        .iter()
        .take(k)
        .enumerate()
        .map(|(r, (d, _))| judged.get(d).copied().filter(|g| *g > 0).unwrap_or(0) as f64 * discount(r))
        .sum();
    let mut gains: Vec<i64> = judged.values().copied().filter(|g| *g > 0).collect();
    gains.sort_unstable_by(|a, b| b.cmp(a));
    let ideal: f64 = gains
        .iter()
        .take(k)
        .enumerate()
        .map(|(r, g)| *g as f64 * discount(r))
        .sum();
    if ideal == 0.0 {
        0.0
    } else {
        dcg / ideal
    }
}

/// recall@k of one query.
fn recall(docs: &[(String, f64)], judged: &BTreeMap<String, i64>, k: usize) -> f64 {
    let relevant = judged.values().filter(|g| **g >= 1).count();
    let found = trec_order(docs)
        .iter()
        .take(k)
        .filter(|(d, _)| judged.get(d).is_some_and(|g| *g >= 1))
        .count();
    if relevant == 0 {
        0.0
    } else {
        found as f64 / relevant as f64
    }
}

/// MRR@k of one query (BEIR: stable sort by score, first document judged > 0).
fn mrr(docs: &[(String, f64)], judged: &BTreeMap<String, i64>, k: usize) -> f64 {
    let mut ranked: Vec<&(String, f64)> = docs.iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    ranked
        .iter()
        .take(k)
        .position(|(d, _)| judged.get(d).is_some_and(|g| *g > 0))
        .map_or(0.0, |r| 1.0 / (r + 1) as f64)
}

/// One of the metrics by name: `ndcg@K`, `recall@K` or `mrr@K`, per judged query in the
/// qrels' (sorted) order, averaged.
pub fn retrieval_metric(name: &str, run: &Run, qrels: &Qrels) -> Result<Scores> {
    let bad = || Error::Metric {
        metric: name.to_string(),
        reason: "expected ndcg@K, recall@K or mrr@K with K ≥ 1".to_string(),
    };
    let (kind, k) = name.split_once('@').ok_or_else(bad)?;
    let k: usize = k.parse().ok().filter(|k| *k > 0).ok_or_else(bad)?;
    let per_query: PerQuery = match kind {
        "ndcg" => ndcg,
        "recall" => recall,
        "mrr" => mrr,
        _ => return Err(bad()),
    };
    let instances = qrels
        .iter()
        .map(|(q, judged)| Instance {
            id: q.clone(),
            score: run.get(q).map_or(0.0, |docs| per_query(docs, judged, k)),
            counts: None,
        })
        .collect();
    Ok(Scores::mean(name, instances))
}

/// The three metrics the study reports: nDCG@10 (the paper's), MRR@10 and recall@100.
pub fn retrieval_scores(run: &Run, qrels: &Qrels) -> Result<Vec<Scores>> {
    ["ndcg@10", "mrr@10", "recall@100"]
        .iter()
        .map(|m| retrieval_metric(m, run, qrels))
        .collect()
}
