//! What every task family provides to the fine-tuning loop, and the helpers they share:
//! padding a batch, holding out a validation split, limiting example counts.

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::data::{Registry, TaskFamily};
use crate::error::Result;
use crate::eval::Scores;
use crate::heads::TaskModel;
use crate::rng::{choose_indices, seeded};
use crate::tokenizer::TextTokenizer;

/// What loading a task needs: the registry, the task's config, the tokenizer with its separator
/// and padding ids, and the run's seed (it draws held-out validation splits).
#[derive(Clone, Copy)]
pub struct TaskInputs<'a> {
    /// The dataset registry.
    pub registry: &'a Registry,
    /// The task's section of the run's config.
    pub cfg: &'a super::config::TaskConfig,
    /// The backbone's tokenizer.
    pub tok: &'a TextTokenizer,
    /// Its separator id (between a text pair's parts).
    pub sep: u32,
    /// Its padding id.
    pub pad: u32,
    /// The run's seed.
    pub seed: u64,
}

impl<'a> TaskInputs<'a> {
    /// (registry, task config, tokenizer, (separator, padding), seed).
    pub fn parts(
        &self,
    ) -> (
        &'a Registry,
        &'a super::config::TaskConfig,
        &'a TextTokenizer,
        (u32, u32),
        u64,
    ) {
        (self.registry, self.cfg, self.tok, (self.sep, self.pad), self.seed)
    }
}

/// The two evaluated splits.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EvalSplit {
    /// Model selection (a held-out part of train unless the dataset has its own).
    Validation,
    /// The reported score.
    Test,
}

impl EvalSplit {
    /// `validation` or `test`.
    pub fn name(self) -> &'static str {
        match self {
            EvalSplit::Validation => "validation",
            EvalSplit::Test => "test",
        }
    }
}

/// A task family, loaded and encoded.
pub trait Task {
    /// The task's family (never `Pretraining`).
    fn family(&self) -> TaskFamily;
    /// Its classes (labels or tags); 0 for the families without (QA, retrieval). With the
    /// family, it gives the head ([`crate::heads::HeadKind::of`]).
    fn labels(&self) -> usize {
        0
    }
    /// Training examples (the unit of a batch).
    fn train_len(&self) -> usize;
    /// Mean loss of the training examples `batch`.
    fn loss(&self, model: &TaskModel, batch: &[usize], device: &Device) -> candle_core::Result<Tensor>;
    /// The metrics of `split`, the reported one first, with per-instance scores.
    fn evaluate(&self, model: &TaskModel, split: EvalSplit, batch_size: usize, device: &Device) -> Result<Vec<Scores>>;
}

/// Right-padded ids (B, T) u32 and the padding mask (B, T) f32 (1 = token).
pub(crate) fn pad_batch(seqs: &[&[u32]], pad: u32, device: &Device) -> candle_core::Result<(Tensor, Tensor)> {
    let t = seqs.iter().map(|s| s.len()).max().unwrap_or(0).max(1);
    let mut ids = Vec::with_capacity(seqs.len() * t);
    let mut mask = Vec::with_capacity(seqs.len() * t);
    for s in seqs {
        ids.extend_from_slice(s);
        ids.extend(std::iter::repeat_n(pad, t - s.len()));
        mask.extend(std::iter::repeat_n(1f32, s.len()));
        mask.extend(std::iter::repeat_n(0f32, t - s.len()));
    }
    Ok((
        Tensor::from_vec(ids, (seqs.len(), t), device)?,
        Tensor::from_vec(mask, (seqs.len(), t), device)?,
    ))
}

/// Stream of the validation hold-out draw.
const HOLDOUT_STREAM: u64 = 7;

/// Splits `items` into (train, held out): a seeded `fraction` (at least one item when there
/// are two or more) held out, the rest kept, both in their original order.
pub(crate) fn hold_out<T>(items: Vec<T>, fraction: f64, seed: u64) -> (Vec<T>, Vec<T>) {
    let n = items.len();
    let k = if n < 2 {
        0
    } else {
        ((n as f64 * fraction).round() as usize).clamp(1, n - 1)
    };
    let chosen = choose_indices(&mut seeded(seed, HOLDOUT_STREAM), n, k);
    let mut held = Vec::with_capacity(k);
    let mut kept = Vec::with_capacity(n - k);
    let mut next = chosen.iter().peekable();
    for (i, item) in items.into_iter().enumerate() {
        if next.peek() == Some(&&i) {
            next.next();
            held.push(item);
        } else {
            kept.push(item);
        }
    }
    (kept, held)
}

/// The first `limit` items (all when `limit` is 0).
pub fn limit<T>(mut items: Vec<T>, limit: usize) -> Vec<T> {
    if limit > 0 {
        items.truncate(limit);
    }
    items
}

/// Indices of the items whose lengths are `lens`, shortest first (ties in order), in chunks of
/// `size`: evaluation batches padded to little more than their own length. A row's scores do
/// not depend on its batch (padded keys get weight 0, every sum over a row or a width is the
/// same), so the order changes the time, not the results.
pub(crate) fn by_length(lens: &[usize], size: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lens.len()).collect();
    order.sort_by_key(|&i| (lens[i], i));
    order.chunks(size.max(1)).map(<[usize]>::to_vec).collect()
}

/// Indices of `0..n` in chunks of `size`.
pub fn chunks(n: usize, size: usize) -> impl Iterator<Item = Vec<usize>> {
    (0..n)
        .step_by(size.max(1))
        .map(move |s| (s..(s + size.max(1)).min(n)).collect())
}

/// Mean cross entropy of `logits` (N, C) against `targets` over the rows where `targets` ≥ 0
/// (the others ignored): `objectives::loss::masked_cross_entropy`, the pretraining loss (fused
/// on the CPU; 0 when no row is scored).
pub fn cross_entropy(logits: &Tensor, targets: &[i64]) -> candle_core::Result<Tensor> {
    let dev = logits.device();
    let ids: Vec<u32> = targets.iter().map(|&t| t.max(0) as u32).collect();
    let weights: Vec<f32> = targets.iter().map(|&t| f32::from(u8::from(t >= 0))).collect();
    crate::objectives::loss::masked_cross_entropy(
        &logits.to_dtype(candle_core::DType::F32)?.contiguous()?,
        &Tensor::from_vec(ids, targets.len(), dev)?,
        &Tensor::from_vec(weights, targets.len(), dev)?,
    )
}

/// Where the validation examples come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValidationSource {
    /// The dataset's own `validation` split (when it also has a `test` split).
    Split,
    /// A seeded share of train.
    HeldOut,
}

/// The evaluation plan of a dataset's splits: its own validation split when it has both
/// validation and test; else a held-out part of train, with `test` (or, without one, the
/// public `validation` split, as the paper does with dev sets) as the test split.
pub(crate) fn split_plan(
    spec: &crate::data::registry::DatasetSpec,
    dataset: &str,
) -> Result<(ValidationSource, String)> {
    let has = |s: &str| spec.splits.contains_key(s);
    match (has("validation"), has("test")) {
        (true, true) => Ok((ValidationSource::Split, "test".into())),
        (false, true) => Ok((ValidationSource::HeldOut, "test".into())),
        (true, false) => Ok((ValidationSource::HeldOut, "validation".into())),
        (false, false) => Err(crate::error::Error::config(
            "task.dataset",
            format!("`{dataset}` has neither a validation nor a test split to score"),
        )),
    }
}

/// Train, validation and test examples of `cfg.dataset`, each split read by `read(split)`:
/// validation is the dataset's own split or a seeded hold-out of train ([`split_plan`]); train
/// is limited to `max_train_examples`, the others to `max_eval_examples`.
pub(crate) fn load_splits<T>(
    registry: &crate::data::registry::Registry,
    cfg: &super::config::TaskConfig,
    seed: u64,
    read: impl Fn(&str) -> Result<Vec<T>>,
) -> Result<[Vec<T>; 3]> {
    let (source, test_split) = split_plan(registry.get(&cfg.dataset)?, &cfg.dataset)?;
    let train = read("train")?;
    let (train, validation) = match source {
        ValidationSource::Split => (train, read("validation")?),
        ValidationSource::HeldOut => hold_out(train, cfg.validation_fraction, seed),
    };
    let test = read(&test_split)?;
    Ok([
        limit(train, cfg.max_train_examples),
        limit(validation, cfg.max_eval_examples),
        limit(test, cfg.max_eval_examples),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_by_length_cover_every_index_once_shortest_first() {
        let lens = [5, 1, 3, 1, 9, 3, 2];
        let batches = by_length(&lens, 3);
        assert_eq!(batches, vec![vec![1, 3, 6], vec![2, 5, 0], vec![4]]);
        assert!(by_length(&[], 4).is_empty());
        // a zero size is one item a batch, not a hang
        assert_eq!(by_length(&[2, 1], 0), vec![vec![1], vec![0]]);
    }
}
