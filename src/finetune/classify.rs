//! Sequence classification (SC): single texts and text pairs, accuracy (or macro-F1).

use candle_core::{Device, Tensor};

use super::features::classification_input;
use super::task::{by_length, cross_entropy, load_splits, pad_batch, EvalSplit, Task, TaskInputs};
use crate::data::TaskFamily;
use crate::error::Result;
use crate::eval::classification::accuracy;
use crate::eval::Scores;
use crate::heads::TaskModel;

/// Encoded examples: (id, ids, label).
type Encoded = Vec<(String, Vec<u32>, usize)>;

/// A loaded classification task.
pub struct Classification {
    labels: usize,
    train: Encoded,
    validation: Encoded,
    test: Encoded,
    pad: u32,
}

impl Classification {
    /// Loads and encodes `cfg.dataset`'s splits.
    pub fn load(inputs: &TaskInputs) -> Result<Self> {
        let (registry, cfg, tok, (sep, pad), seed) = inputs.parts();
        let (dir, name) = (&cfg.data_dir, cfg.dataset.as_str());
        let [train, validation, test] = load_splits(registry, cfg, seed, |split| {
            Ok(registry.classification(name, dir, split)?.examples)
        })?;
        let encode = |examples: Vec<crate::data::tasks::ClassificationExample>| -> Result<Encoded> {
            examples
                .into_iter()
                .map(|ex| {
                    Ok((
                        ex.id.clone(),
                        classification_input(tok, &ex, sep, cfg.max_length)?,
                        ex.label,
                    ))
                })
                .collect()
        };
        Ok(Self {
            labels: registry.get(name)?.labels(name, dir)?.len(),
            train: encode(train)?,
            validation: encode(validation)?,
            test: encode(test)?,
            pad,
        })
    }

    fn logits(
        &self,
        model: &TaskModel,
        rows: &[&(String, Vec<u32>, usize)],
        train: bool,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let seqs: Vec<&[u32]> = rows.iter().map(|r| r.1.as_slice()).collect();
        let (ids, mask) = pad_batch(&seqs, self.pad, device)?;
        model.forward(&ids, &mask, train)
    }
}

impl Task for Classification {
    fn family(&self) -> TaskFamily {
        TaskFamily::SequenceClassification
    }

    fn labels(&self) -> usize {
        self.labels
    }

    fn train_len(&self) -> usize {
        self.train.len()
    }

    fn loss(&self, model: &TaskModel, batch: &[usize], device: &Device) -> candle_core::Result<Tensor> {
        let rows: Vec<_> = batch.iter().map(|&i| &self.train[i]).collect();
        let logits = self.logits(model, &rows, true, device)?;
        let targets: Vec<i64> = rows.iter().map(|r| r.2 as i64).collect();
        cross_entropy(&logits, &targets)
    }

    fn evaluate(&self, model: &TaskModel, split: EvalSplit, batch_size: usize, device: &Device) -> Result<Vec<Scores>> {
        let data = match split {
            EvalSplit::Validation => &self.validation,
            EvalSplit::Test => &self.test,
        };
        let mut predicted = vec![0usize; data.len()];
        let lens: Vec<usize> = data.iter().map(|r| r.1.len()).collect();
        for chunk in by_length(&lens, batch_size) {
            let rows: Vec<_> = chunk.iter().map(|&i| &data[i]).collect();
            let logits = self.logits(model, &rows, false, device)?;
            for (&i, p) in chunk.iter().zip(logits.argmax(1)?.to_vec1::<u32>()?) {
                predicted[i] = p as usize;
            }
        }
        let ids: Vec<String> = data.iter().map(|r| r.0.clone()).collect();
        let gold: Vec<usize> = data.iter().map(|r| r.2).collect();
        Ok(vec![
            accuracy(&ids, &predicted, &gold)?,
            crate::eval::classification::macro_f1(&ids, &predicted, &gold)?,
        ])
    }
}
