//! Retrieval (IR): a bi-encoder trained with in-batch negatives on (question, passage) pairs of
//! an extractive-QA dataset's train split (BEIR test sets have no training split), scored on
//! the BEIR dataset by exact dot-product search: nDCG@10 (reported), MRR@10, recall@100.
//! Validation is a held-out share of the pairs, searched among their own passages.

use std::collections::BTreeMap;

use candle_core::{Device, Tensor};

use super::features::text_input;
use super::task::{by_length, hold_out, limit, pad_batch, split_plan, EvalSplit, Task, TaskInputs};
use crate::data::registry::Registry;
use crate::data::TaskFamily;
use crate::error::{Error, Result};
use crate::eval::retrieval::{retrieval_scores, Qrels, Run};
use crate::eval::Scores;
use crate::heads::contrastive::in_batch_loss;
use crate::heads::TaskModel;

/// Documents kept per query when searching (recall@100 needs 100).
const TOP_K: usize = 100;

/// An encoded retrieval set: queries, documents and judgements.
struct Searchable {
    queries: Vec<(String, Vec<u32>)>,
    docs: Vec<(String, Vec<u32>)>,
    qrels: Qrels,
}

/// A loaded retrieval task.
pub struct Retrieval {
    /// (query ids, passage ids, passage key) per training pair.
    train: Vec<(Vec<u32>, Vec<u32>, u64)>,
    validation: Searchable,
    test: Searchable,
    pad: u32,
    temperature: f64,
}

/// A stable key for a passage's text (equal texts, equal keys).
fn text_key(text: &str) -> u64 {
    let digest = crate::fsutil::sha256_bytes(text.as_bytes());
    u64::from_str_radix(&digest[..16], 16).unwrap_or(0)
}

/// The document's text as the retriever reads it: title, then body.
/// The documents ranked at test time: all of them (`max` 0), or at most `max`: every document
/// judged in `qrels`, then the others in corpus order.
fn pool<'a>(
    docs: &'a [crate::data::tasks::RetrievalDoc],
    qrels: &'a Qrels,
    max: usize,
) -> impl Iterator<Item = &'a crate::data::tasks::RetrievalDoc> {
    let judged: std::collections::HashSet<&str> = qrels.values().flat_map(|j| j.keys().map(String::as_str)).collect();
    let others = max.saturating_sub(judged.len());
    let mut taken_others = 0usize;
    docs.iter().filter(move |d| {
        if max == 0 || judged.contains(d.id.as_str()) {
            return true;
        }
        taken_others += 1;
        taken_others <= others
    })
}

fn doc_text(title: &str, text: &str) -> String {
    if title.is_empty() {
        text.to_string()
    } else {
        format!("{title} {text}")
    }
}

/// (id, query, passage) training pairs of `name`: an extractive-QA dataset's training questions
/// and their passages, or a retrieval dataset's `train` queries and each one's best-judged
/// document (as MS MARCO's training pairs in the paper).
fn training_pairs(registry: &Registry, name: &str, dir: &std::path::Path) -> Result<Vec<(String, String, String)>> {
    if registry.get(name)?.family != crate::data::registry::TaskFamily::Retrieval {
        return Ok(registry
            .qa(name, dir, "train")?
            .into_iter()
            .map(|q| (q.id, q.question, q.context))
            .collect());
    }
    let corpus = registry.retrieval(name, dir, "train")?;
    let docs: std::collections::HashMap<&str, &crate::data::tasks::RetrievalDoc> =
        corpus.docs.iter().map(|d| (d.id.as_str(), d)).collect();
    let mut pairs = Vec::with_capacity(corpus.queries.len());
    for q in &corpus.queries {
        // the highest judgement, ties to the smallest id (qrels are a sorted map)
        let best = corpus
            .qrels
            .get(&q.id)
            .and_then(|j| j.iter().max_by_key(|(id, s)| (**s, std::cmp::Reverse(*id))));
        if let Some(d) = best.and_then(|(id, _)| docs.get(id.as_str())) {
            pairs.push((q.id.clone(), q.text.clone(), doc_text(&d.title, &d.text)));
        }
    }
    Ok(pairs)
}

impl Retrieval {
    /// Loads the training pairs and the BEIR test set.
    pub fn load(inputs: &TaskInputs) -> Result<Self> {
        let (registry, cfg, tok, (sep, pad), seed) = inputs.parts();
        let dir = &cfg.data_dir;
        // the BEIR set is the test split; validation is held out of the training pairs
        let (_, test_split) = split_plan(registry.get(&cfg.dataset)?, &cfg.dataset)?;
        let encode = |text: &str| text_input(tok, text, sep, cfg.max_length);
        let pairs = training_pairs(registry, &cfg.train_pairs, cfg.train_pairs_dir.as_ref().unwrap_or(dir))
            .map_err(|e| Error::config("task.train_pairs", format!("`{}`: {e}", cfg.train_pairs)))?;
        let (train_pairs, held) = hold_out(pairs, cfg.validation_fraction, seed);
        let train = limit(train_pairs, cfg.max_train_examples)
            .iter()
            .map(|(_, q, p)| Ok((encode(q)?, encode(p)?, text_key(p))))
            .collect::<Result<Vec<_>>>()?;
        // validation: held-out questions among the held-out passages
        let held = limit(held, cfg.max_eval_examples);
        let mut docs: BTreeMap<u64, String> = BTreeMap::new();
        let mut qrels = Qrels::new();
        let mut queries = Vec::new();
        for (id, q, p) in &held {
            let key = text_key(p);
            docs.insert(key, p.clone());
            qrels.entry(id.clone()).or_default().insert(format!("p{key:016x}"), 1);
            queries.push((id.clone(), encode(q)?));
        }
        let validation = Searchable {
            queries,
            docs: docs
                .iter()
                .map(|(k, p)| Ok((format!("p{k:016x}"), encode(p)?)))
                .collect::<Result<_>>()?,
            qrels,
        };
        let corpus = registry.retrieval(&cfg.dataset, dir, &test_split)?;
        let queries: Vec<_> = limit(corpus.queries, cfg.max_eval_examples);
        let qrels: Qrels = queries
            .iter()
            .filter_map(|q| corpus.qrels.get(&q.id).map(|j| (q.id.clone(), j.clone())))
            .collect();
        let test = Searchable {
            queries: queries
                .iter()
                .map(|q| Ok((q.id.clone(), encode(&q.text)?)))
                .collect::<Result<_>>()?,
            docs: pool(&corpus.docs, &qrels, cfg.max_corpus_docs)
                .map(|d| Ok((d.id.clone(), encode(&doc_text(&d.title, &d.text))?)))
                .collect::<Result<_>>()?,
            qrels,
        };
        Ok(Self {
            train,
            validation,
            test,
            pad,
            temperature: cfg.temperature,
        })
    }

    fn embed(&self, model: &TaskModel, seqs: &[&[u32]], train: bool, device: &Device) -> candle_core::Result<Tensor> {
        let (ids, mask) = pad_batch(seqs, self.pad, device)?;
        model.forward(&ids, &mask, train)
    }

    /// Unit embeddings of `items` (N, H), in batches.
    fn embed_all(
        &self,
        model: &TaskModel,
        items: &[(String, Vec<u32>)],
        batch: usize,
        device: &Device,
    ) -> Result<Tensor> {
        // shortest first (less padding), then back to the items' order
        let lens: Vec<usize> = items.iter().map(|it| it.1.len()).collect();
        let batches = by_length(&lens, batch);
        let mut parts = Vec::new();
        let mut at = vec![0u32; items.len()];
        let mut row = 0u32;
        for chunk in &batches {
            let seqs: Vec<&[u32]> = chunk.iter().map(|&i| items[i].1.as_slice()).collect();
            parts.push(self.embed(model, &seqs, false, device)?.detach());
            for &i in chunk {
                at[i] = row;
                row += 1;
            }
        }
        let sorted = Tensor::cat(&parts, 0)?;
        Ok(sorted.index_select(&Tensor::from_vec(at, items.len(), device)?, 0)?)
    }
}

impl Task for Retrieval {
    fn family(&self) -> TaskFamily {
        TaskFamily::Retrieval
    }

    fn train_len(&self) -> usize {
        self.train.len()
    }

    fn loss(&self, model: &TaskModel, batch: &[usize], device: &Device) -> candle_core::Result<Tensor> {
        let rows: Vec<_> = batch.iter().map(|&i| &self.train[i]).collect();
        let q: Vec<&[u32]> = rows.iter().map(|r| r.0.as_slice()).collect();
        let d: Vec<&[u32]> = rows.iter().map(|r| r.1.as_slice()).collect();
        let keys: Vec<u64> = rows.iter().map(|r| r.2).collect();
        in_batch_loss(
            &self.embed(model, &q, true, device)?,
            &self.embed(model, &d, true, device)?,
            &keys,
            self.temperature,
        )
    }

    fn evaluate(&self, model: &TaskModel, split: EvalSplit, batch_size: usize, device: &Device) -> Result<Vec<Scores>> {
        let data = match split {
            EvalSplit::Validation => &self.validation,
            EvalSplit::Test => &self.test,
        };
        if data.queries.is_empty() || data.docs.is_empty() {
            return Err(Error::config(
                "task.dataset",
                format!("the {} split has no query or no document", split.name()),
            ));
        }
        let docs = self.embed_all(model, &data.docs, batch_size, device)?;
        let queries = self.embed_all(model, &data.queries, batch_size, device)?;
        let scores = queries
            .matmul(&docs.t()?)?
            .to_dtype(candle_core::DType::F32)?
            .to_vec2::<f32>()?;
        let mut run = Run::new();
        for ((qid, _), row) in data.queries.iter().zip(scores) {
            let mut order: Vec<usize> = (0..row.len()).collect();
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
            order.truncate(TOP_K);
            run.insert(
                qid.clone(),
                order
                    .into_iter()
                    .map(|i| (data.docs[i].0.clone(), f64::from(row[i])))
                    .collect(),
            );
        }
        retrieval_scores(&run, &data.qrels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::tasks::RetrievalDoc;

    #[test]
    fn the_pool_keeps_every_judged_document_then_fills_in_corpus_order() {
        let docs: Vec<RetrievalDoc> = (0..8)
            .map(|i| RetrievalDoc {
                id: format!("d{i}"),
                title: String::new(),
                text: format!("text {i}"),
            })
            .collect();
        let mut qrels = Qrels::new();
        qrels.entry("q1".into()).or_default().insert("d6".into(), 1);
        qrels.entry("q2".into()).or_default().insert("d3".into(), 2);
        let ids = |max| pool(&docs, &qrels, max).map(|d| d.id.as_str()).collect::<Vec<_>>();
        assert_eq!(ids(0).len(), 8);
        assert_eq!(ids(4), ["d0", "d1", "d3", "d6"]);
        // fewer than the judged ones: the judged ones all the same
        assert_eq!(ids(1), ["d3", "d6"]);
    }
}
