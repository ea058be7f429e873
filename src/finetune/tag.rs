//! Token classification (TC): one tag per word, learnt and predicted on each word's first
//! token; entity F1 (IOB2) or token accuracy (POS), per the registry's metric.

use candle_core::{Device, Tensor};

use super::features::{tagging_input, TaggingInput};
use super::task::{by_length, cross_entropy, load_splits, pad_batch, EvalSplit, Task, TaskInputs};
use crate::data::registry::Metric;
use crate::data::TaskFamily;
use crate::error::Result;
use crate::eval::tagging::{entity_f1, token_accuracy};
use crate::eval::Scores;
use crate::heads::TaskModel;

/// One encoded sentence: id, input, gold tags per word.
type Encoded = (String, TaggingInput, Vec<usize>);

/// A loaded tagging task.
pub struct Tagging {
    labels: Vec<String>,
    metric: Metric,
    train: Vec<Encoded>,
    validation: Vec<Encoded>,
    test: Vec<Encoded>,
    pad: u32,
    /// The tag predicted for words that truncation cut off (`O` when there is one).
    fallback: usize,
}

impl Tagging {
    /// Loads and encodes `cfg.dataset`'s splits.
    pub fn load(inputs: &TaskInputs) -> Result<Self> {
        let (registry, cfg, tok, (sep, pad), seed) = inputs.parts();
        let (dir, name) = (&cfg.data_dir, cfg.dataset.as_str());
        let [train, validation, test] = load_splits(registry, cfg, seed, |split| {
            Ok(registry.tagging(name, dir, split)?.examples)
        })?;
        let spec = registry.get(name)?;
        let labels = spec.labels(name, dir)?;
        let encode = |examples: Vec<crate::data::tasks::TaggingExample>| -> Result<Vec<Encoded>> {
            examples
                .into_iter()
                .map(|ex| Ok((ex.id.clone(), tagging_input(tok, &ex, sep, cfg.max_length)?, ex.tags)))
                .collect()
        };
        Ok(Self {
            metric: spec.metric.unwrap_or(Metric::TokenAccuracy),
            fallback: labels.iter().position(|l| l == "O").unwrap_or(0),
            train: encode(train)?,
            validation: encode(validation)?,
            test: encode(test)?,
            labels,
            pad,
        })
    }

    /// Logits (B·T, tags) of `rows`, and T.
    fn logits(
        &self,
        model: &TaskModel,
        rows: &[&Encoded],
        train: bool,
        device: &Device,
    ) -> candle_core::Result<(Tensor, usize)> {
        let seqs: Vec<&[u32]> = rows.iter().map(|r| r.1.ids.as_slice()).collect();
        let (ids, mask) = pad_batch(&seqs, self.pad, device)?;
        let logits = model.forward(&ids, &mask, train)?;
        let (b, t, c) = logits.dims3()?;
        Ok((logits.reshape((b * t, c))?, t))
    }
}

impl Task for Tagging {
    fn family(&self) -> TaskFamily {
        TaskFamily::TokenClassification
    }

    fn labels(&self) -> usize {
        self.labels.len()
    }

    fn train_len(&self) -> usize {
        self.train.len()
    }

    fn loss(&self, model: &TaskModel, batch: &[usize], device: &Device) -> candle_core::Result<Tensor> {
        let rows: Vec<_> = batch.iter().map(|&i| &self.train[i]).collect();
        let (logits, t) = self.logits(model, &rows, true, device)?;
        let mut targets = vec![-1i64; rows.len() * t];
        for (b, r) in rows.iter().enumerate() {
            targets[b * t..b * t + r.1.labels.len()].copy_from_slice(&r.1.labels);
        }
        cross_entropy(&logits, &targets)
    }

    fn evaluate(&self, model: &TaskModel, split: EvalSplit, batch_size: usize, device: &Device) -> Result<Vec<Scores>> {
        let data = match split {
            EvalSplit::Validation => &self.validation,
            EvalSplit::Test => &self.test,
        };
        let mut predicted: Vec<Vec<String>> = vec![Vec::new(); data.len()];
        let lens: Vec<usize> = data.iter().map(|r| r.1.ids.len()).collect();
        for chunk in by_length(&lens, batch_size) {
            let rows: Vec<_> = chunk.iter().map(|&i| &data[i]).collect();
            let (logits, t) = self.logits(model, &rows, false, device)?;
            let best = logits.argmax(1)?.to_vec1::<u32>()?;
            for (b, (&i, r)) in chunk.iter().zip(&rows).enumerate() {
                let tags = r.1.word_starts.iter().map(|p| match p {
                    Some(p) => best[b * t + p] as usize,
                    None => self.fallback,
                });
                predicted[i] = tags.map(|i| self.labels[i].clone()).collect();
            }
        }
        let gold: Vec<Vec<String>> = data
            .iter()
            .map(|r| r.2.iter().map(|&i| self.labels[i].clone()).collect())
            .collect();
        let ids: Vec<String> = data.iter().map(|r| r.0.clone()).collect();
        let accuracy = token_accuracy(&ids, &predicted, &gold)?;
        Ok(match self.metric {
            Metric::EntityF1 => vec![entity_f1(&ids, &predicted, &gold)?, accuracy],
            _ => vec![accuracy],
        })
    }
}

/// The tag names (for reports).
impl Tagging {
    /// The tag set.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }
}
