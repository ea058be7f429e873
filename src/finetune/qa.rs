//! Extractive QA: questions over contexts split into overlapping windows; the loss is the mean
//! of the start and end cross entropies over each window's positions (target 0 when the window
//! does not hold the answer); answers are the best n-best span over a question's windows,
//! scored by SQuAD v1.1 F1 (exact match alongside).

use candle_core::{Device, Tensor, D};

use super::features::{qa_windows, QaWindow};
use super::task::{chunks, cross_entropy, load_splits, pad_batch, EvalSplit, Task, TaskInputs};
use crate::data::tasks::QaExample;
use crate::data::TaskFamily;
use crate::error::Result;
use crate::eval::squad::squad_scores;
use crate::eval::Scores;
use crate::heads::span::{best_span, WindowLogits};
use crate::heads::TaskModel;

/// A window's start logits, end logits and index.
type WindowScores = (Vec<f32>, Vec<f32>, usize);

/// Questions and their windows.
struct Encoded {
    questions: Vec<QaExample>,
    windows: Vec<QaWindow>,
}

/// A loaded QA task.
pub struct Qa {
    train: Encoded,
    validation: Encoded,
    test: Encoded,
    pad: u32,
    n_best: usize,
    max_answer_tokens: usize,
}

impl Qa {
    /// Loads and windows `cfg.dataset`'s splits.
    pub fn load(inputs: &TaskInputs) -> Result<Self> {
        let (registry, cfg, tok, (sep, pad), seed) = inputs.parts();
        let (dir, name) = (&cfg.data_dir, cfg.dataset.as_str());
        let [train, validation, test] = load_splits(registry, cfg, seed, |split| registry.qa(name, dir, split))?;
        let encode = |questions: Vec<QaExample>| -> Result<Encoded> {
            let mut windows = Vec::new();
            for (i, q) in questions.iter().enumerate() {
                windows.extend(qa_windows(
                    tok,
                    q,
                    i,
                    sep,
                    (cfg.max_length, cfg.doc_stride, cfg.max_question_tokens),
                )?);
            }
            Ok(Encoded { questions, windows })
        };
        Ok(Self {
            train: encode(train)?,
            validation: encode(validation)?,
            test: encode(test)?,
            pad,
            n_best: cfg.n_best,
            max_answer_tokens: cfg.max_answer_tokens,
        })
    }

    /// Start and end logits (B, T) each, padding positions at −1e9.
    fn logits(
        &self,
        model: &TaskModel,
        rows: &[&QaWindow],
        train: bool,
        device: &Device,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let seqs: Vec<&[u32]> = rows.iter().map(|r| r.ids.as_slice()).collect();
        let (ids, mask) = pad_batch(&seqs, self.pad, device)?;
        let logits = model.forward(&ids, &mask, train)?.to_dtype(candle_core::DType::F32)?;
        let pad_bias = ((mask - 1.0)? * 1e9)?;
        let start = (logits.narrow(D::Minus1, 0, 1)?.squeeze(D::Minus1)? + &pad_bias)?;
        let end = (logits.narrow(D::Minus1, 1, 1)?.squeeze(D::Minus1)? + &pad_bias)?;
        Ok((start, end))
    }
}

impl Task for Qa {
    fn family(&self) -> TaskFamily {
        TaskFamily::ExtractiveQa
    }

    /// Training examples are windows.
    fn train_len(&self) -> usize {
        self.train.windows.len()
    }

    fn loss(&self, model: &TaskModel, batch: &[usize], device: &Device) -> candle_core::Result<Tensor> {
        let rows: Vec<_> = batch.iter().map(|&i| &self.train.windows[i]).collect();
        let (start, end) = self.logits(model, &rows, true, device)?;
        let starts: Vec<i64> = rows.iter().map(|r| r.target.0 as i64).collect();
        let ends: Vec<i64> = rows.iter().map(|r| r.target.1 as i64).collect();
        let (ls, le) = (cross_entropy(&start, &starts)?, cross_entropy(&end, &ends)?);
        (ls + le)? / 2.0
    }

    fn evaluate(&self, model: &TaskModel, split: EvalSplit, batch_size: usize, device: &Device) -> Result<Vec<Scores>> {
        let data = match split {
            EvalSplit::Validation => &self.validation,
            EvalSplit::Test => &self.test,
        };
        // logits of every window, kept per question
        let mut per_question: Vec<Vec<WindowScores>> = vec![Vec::new(); data.questions.len()];
        for chunk in chunks(data.windows.len(), batch_size) {
            let rows: Vec<_> = chunk.iter().map(|&i| &data.windows[i]).collect();
            let (start, end) = self.logits(model, &rows, false, device)?;
            let (start, end) = (start.to_vec2::<f32>()?, end.to_vec2::<f32>()?);
            for ((s, e), &w) in start.into_iter().zip(end).zip(&chunk) {
                per_question[data.windows[w].example].push((s, e, w));
            }
        }
        let mut predictions = Vec::with_capacity(data.questions.len());
        for (q, windows) in data.questions.iter().zip(&per_question) {
            let logits: Vec<WindowLogits> = windows
                .iter()
                .map(|(s, e, w)| WindowLogits {
                    start: s,
                    end: e,
                    offsets: &data.windows[*w].offsets,
                })
                .collect();
            let answer = best_span(&logits, self.n_best, self.max_answer_tokens)
                .and_then(|c| q.context.get(c.start..c.end))
                .unwrap_or("");
            predictions.push(answer.trim().to_string());
        }
        let ids: Vec<String> = data.questions.iter().map(|q| q.id.clone()).collect();
        let references: Vec<Vec<String>> = data
            .questions
            .iter()
            .map(|q| q.answers.iter().map(|a| a.text.clone()).collect())
            .collect();
        let (em, f1) = squad_scores(&ids, &predictions, &references)?;
        Ok(vec![f1, em])
    }
}
