//! The fine-tuning loop: one backbone, one head, one dataset, one (learning rate, seed) — the
//! unit the sweeps repeat thousands of times. Setup errors (configuration, data, checkpoint)
//! return before anything is written; once training starts, the run always ends with a record:
//! `ok`, `diverged` (a non-finite loss or gradient norm, with the step) or `failed` (reason).

use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use indicatif::ProgressBar;

use super::classify::Classification;
use super::config::{FinetuneConfig, Init};
use super::qa::Qa;
use super::record::{backbone_labels, backbone_pretrain_seed, write_record, RunResult, Status};
use super::retrieve::Retrieval;
use super::reuse::{Reuse, TaskKey};
use super::saved::{ModelToSave, TaskHead};
use super::tag::Tagging;
use super::task::{split_plan, EvalSplit, Task, TaskInputs, ValidationSource};
use crate::artifacts::FinetuneStepMetrics;
use crate::config::ConfigFile;
use crate::data::registry::{Registry, TaskFamily};
use crate::error::{Error, IoContext, Result};
use crate::eval::Scores;
use crate::heads::{init_task_weights, HeadKind, TaskModel};
use crate::model::{sorted_vars, ModelConfig};
use crate::rng::{seeded, shuffle};
use crate::runtime::{device, progress_bar};
use crate::schedule::{lr_at, LrConfig, LrSchedule};
use crate::tokenizer::TextTokenizer;
use crate::train::checkpoint::{fill_vars, load_weights};
use crate::train::{AdamW, Grads};

/// Random streams of a run's seed: a random backbone, the head, the data order (+ epoch).
const BACKBONE_STREAM: u64 = 1;
const HEAD_STREAM: u64 = 2;
const ORDER_STREAM: u64 = 1 << 32;

/// The stream of a random backbone's weights: one per pretraining seed (seed 0 keeps the
/// original stream), so that the random-init baseline replicates at the pretraining level as
/// the pretrained models do. A pretrained backbone overwrites these weights.
fn backbone_stream(cfg: &FinetuneConfig) -> u64 {
    if cfg.model.init != Init::Random {
        return BACKBONE_STREAM;
    }
    match backbone_pretrain_seed(cfg) {
        p if p <= 0 => BACKBONE_STREAM,
        p => BACKBONE_STREAM + ((p as u64) << 16),
    }
}

/// How the caller wants the run shown.
#[derive(Debug, Clone, Copy, Default)]
pub struct FinetuneOptions {
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

/// The backbone's variables of `map` (`model.*`), sharing their storage: the head and the
/// checkpoint's LM head are left out.
fn backbone_vars(map: &VarMap) -> Result<VarMap> {
    let backbone = VarMap::new();
    {
        let mut data = backbone
            .data()
            .lock()
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        for (name, var) in sorted_vars(map)?.into_iter().filter(|(n, _)| n.starts_with("model.")) {
            data.insert(name, var);
        }
    }
    Ok(backbone)
}

/// Fills the backbone's variables of `map` (`model.*`) from the checkpoint; the head keeps its
/// fresh weights and the checkpoint's LM head is ignored.
pub fn load_backbone(dir: &Path, map: &VarMap, dev: &Device) -> Result<()> {
    load_weights(dir, &backbone_vars(map)?, dev)
}

/// The task of `cfg.task.dataset`, loaded and encoded.
fn load_task(
    registry: &Registry,
    cfg: &FinetuneConfig,
    tok: &TextTokenizer,
    tokens: (u32, u32),
) -> Result<Box<dyn Task>> {
    let task = &cfg.task;
    let inputs = TaskInputs {
        registry,
        cfg: task,
        tok,
        sep: tokens.0,
        pad: tokens.1,
        seed: cfg.train.seed,
    };
    Ok(match registry.get(&task.dataset)?.family {
        TaskFamily::SequenceClassification => Box::new(Classification::load(&inputs)?),
        TaskFamily::TokenClassification => Box::new(Tagging::load(&inputs)?),
        TaskFamily::ExtractiveQa => Box::new(Qa::load(&inputs)?),
        TaskFamily::Retrieval => Box::new(Retrieval::load(&inputs)?),
        TaskFamily::Pretraining => {
            return Err(Error::config(
                "task.dataset",
                format!("`{}` is a pretraining corpus, not a task", task.dataset),
            ))
        }
    })
}

/// The run's seed where the task's splits depend on it: a validation split held out of train
/// (and retrieval's training pairs, always); `None` where the dataset has its own splits.
fn split_seed(registry: &Registry, cfg: &FinetuneConfig) -> Result<Option<u64>> {
    let spec = registry.get(&cfg.task.dataset)?;
    let held_out = match spec.family {
        TaskFamily::Retrieval => true,
        // not a task: `load_task` says so
        TaskFamily::Pretraining => false,
        _ => split_plan(spec, &cfg.task.dataset)?.0 == ValidationSource::HeldOut,
    };
    Ok(held_out.then_some(cfg.train.seed))
}

/// The label names of a classification dataset, by index; none for QA and retrieval.
fn label_names(registry: &Registry, cfg: &FinetuneConfig) -> Result<Vec<String>> {
    let spec = registry.get(&cfg.task.dataset)?;
    match spec.family {
        TaskFamily::SequenceClassification | TaskFamily::TokenClassification => {
            spec.labels(&cfg.task.dataset, &cfg.task.data_dir)
        }
        _ => Ok(Vec::new()),
    }
}

/// What training and evaluation produced.
struct Outcome {
    status: Status,
    reason: Option<String>,
    steps: usize,
    examples: usize,
    train_seconds: f64,
    eval_instances: usize,
    eval_seconds: f64,
    scores: Vec<(String, Vec<Scores>)>,
}

impl Outcome {
    /// Nothing done yet (or nothing to show), with this status.
    fn ended(status: Status, reason: Option<String>) -> Self {
        Self {
            status,
            reason,
            steps: 0,
            examples: 0,
            train_seconds: 0.0,
            eval_instances: 0,
            eval_seconds: 0.0,
            scores: Vec::new(),
        }
    }
}

/// Trains `model` on `task` and evaluates it (both splits) unless it diverged.
fn train_and_evaluate(
    cfg: &FinetuneConfig,
    task: &dyn Task,
    model: &TaskModel,
    opt: &mut AdamW,
    dev: &Device,
    log: &mut Vec<FinetuneStepMetrics>,
    bar: &ProgressBar,
) -> Result<Outcome> {
    let t = &cfg.train;
    let n = task.train_len();
    let total = match t.epochs {
        Some(e) => e * n.div_ceil(t.batch_size),
        None => t.max_steps,
    };
    let lr = LrConfig {
        peak: t.learning_rate,
        warmup_steps: (t.warmup_ratio * total as f64).round() as usize,
        schedule: LrSchedule::Linear,
    };
    bar.set_length(total as u64);
    let started = Instant::now();
    let (mut order, mut cursor, mut epoch) = (Vec::new(), n, 0u64);
    let mut out = Outcome::ended(Status::Ok, None);
    for step in 0..total {
        // the next batch_size examples of this epoch's seeded order
        let mut batch = Vec::with_capacity(t.batch_size);
        while batch.len() < t.batch_size {
            if cursor == n {
                order = (0..n).collect();
                shuffle(&mut seeded(t.seed, ORDER_STREAM + epoch), &mut order);
                (cursor, epoch) = (0, epoch + 1);
            }
            let take = (t.batch_size - batch.len()).min(n - cursor);
            batch.extend_from_slice(&order[cursor..cursor + take]);
            cursor += take;
        }
        let mut grads: Option<Grads> = None;
        let mut loss_sum = 0.0;
        for micro in batch.chunks(t.batch_size / t.grad_accum) {
            let loss = task.loss(model, micro, dev)?;
            loss_sum += f64::from(loss.to_dtype(DType::F32)?.to_scalar::<f32>()?) / t.grad_accum as f64;
            let scaled = (loss / t.grad_accum as f64)?;
            grads = Some(AdamW::accumulate(grads, opt.grads(&scaled.backward()?)?)?);
        }
        let grads = grads.ok_or_else(|| Error::config("train.batch_size", "an empty batch"))?;
        let norm = AdamW::grad_norm(&grads)?;
        if !loss_sum.is_finite() || !norm.is_finite() {
            out.status = Status::Diverged;
            out.reason = Some(format!(
                "non-finite loss {loss_sum} or gradient norm {norm} at step {}",
                step + 1
            ));
            break;
        }
        let rate = lr_at(&lr, step, total);
        opt.step(&grads, norm, rate)?;
        out.steps = step + 1;
        out.examples += batch.len();
        if out.steps.is_multiple_of(t.log_every) || out.steps == total {
            let per_s = out.examples as f64 / started.elapsed().as_secs_f64().max(1e-9);
            log.push(FinetuneStepMetrics {
                step: out.steps,
                loss: loss_sum,
                lr: rate,
                grad_norm: norm,
                examples_per_s: (per_s * 100.0).round() / 100.0,
            });
            bar.set_message(format!("loss {loss_sum:.4}"));
        }
        bar.set_position(out.steps as u64);
    }
    out.train_seconds = started.elapsed().as_secs_f64();
    if out.status != Status::Ok {
        return Ok(out);
    }
    let started = Instant::now();
    for split in [EvalSplit::Validation, EvalSplit::Test] {
        let scores = task.evaluate(model, split, t.eval_batch_size, dev)?;
        if scores.first().is_none_or(|s| s.instances.is_empty()) {
            return Err(Error::config(
                "task",
                format!(
                    "the {} split of `{}` has no example to evaluate: a score from 0 examples means nothing; check the split's file",
                    split.name(),
                    cfg.task.dataset
                ),
            ));
        }
        out.eval_instances += scores.first().map_or(0, |s| s.instances.len());
        out.scores.push((split.name().to_string(), scores));
    }
    out.eval_seconds = started.elapsed().as_secs_f64();
    Ok(out)
}

/// Runs one fine-tuning configuration and writes its record to `{out_dir}/{run_id}/`.
pub fn finetune(cfg: &FinetuneConfig, opts: &FinetuneOptions) -> Result<RunResult> {
    finetune_reusing(cfg, opts, &mut Reuse::none())
}

/// [`finetune`], taking the tokenizer, the encoded task and the checkpoint's weights from
/// `reuse` where an earlier run of this process loaded them: the record is the same bit for bit
/// as the run's alone (a sweep worker's runs, one after another).
pub(crate) fn finetune_reusing(cfg: &FinetuneConfig, opts: &FinetuneOptions, reuse: &mut Reuse) -> Result<RunResult> {
    let started = Instant::now();
    cfg.validate()?;
    let dev = device(&cfg.train.device)?;
    let ckpt = &cfg.model.checkpoint;
    let model_cfg = ModelConfig::from_hf_json(&ckpt.join("config.json"))?;
    let tok_path = ckpt.join("tokenizer.json");
    let (tok, tok_key) = reuse.tokenizer(&tok_path)?;
    if tok.vocab_size() > model_cfg.vocab_size {
        return Err(Error::data(
            &tok_path,
            0,
            format!(
                "the tokenizer has {} ids but the model's vocabulary {} (config.json): not this model's tokenizer",
                tok.vocab_size(),
                model_cfg.vocab_size
            ),
        ));
    }
    let sep = tok.eos_id()?;
    let pad = tok.special().pad.unwrap_or(sep);
    let registry = cfg.task.registry()?;
    let key = TaskKey::new(&cfg.task, tok_key, (sep, pad), split_seed(&registry, cfg)?)?;
    let task = reuse.task(key, || load_task(&registry, cfg, &tok, (sep, pad)))?;
    if task.train_len() == 0 {
        return Err(Error::config(
            "task.dataset",
            format!("`{}` has no training example", cfg.task.dataset),
        ));
    }
    let head = HeadKind::of(task.family(), task.labels()).ok_or_else(|| {
        Error::config(
            "task.dataset",
            format!("`{}` is a pretraining corpus: no head", cfg.task.dataset),
        )
    })?;
    if cfg.train.freeze_backbone && !matches!(head, HeadKind::Sequence { .. } | HeadKind::Token { .. }) {
        return Err(Error::config(
            "train.freeze_backbone",
            format!(
                "`{}` is not sequence or token classification: a linear probe trains a classifier on frozen features, which its head does not have",
                cfg.task.dataset
            ),
        ));
    }
    let seed = cfg.train.seed;
    let map = init_task_weights(
        &model_cfg,
        head,
        &mut seeded(seed, backbone_stream(cfg)),
        &mut seeded(seed, HEAD_STREAM),
        &dev,
    )?;
    if cfg.model.init == Init::Pretrained {
        let weights = reuse.weights(ckpt, &dev)?;
        fill_vars(&ckpt.join("model.safetensors"), &weights, &backbone_vars(&map)?)?;
    }
    let vb = VarBuilder::from_varmap(&map, DType::F32, &dev);
    let model = TaskModel::new(&model_cfg, head, cfg.model.pooling, cfg.model.attention, vb)?;
    let (model, trained) = if cfg.train.freeze_backbone {
        // a linear probe: the head's variables alone are optimised
        let head: Vec<_> = sorted_vars(&map)?
            .into_iter()
            .filter(|(n, _)| !n.starts_with("model."))
            .collect();
        (model.frozen(), head)
    } else {
        (model, sorted_vars(&map)?)
    };
    let mut opt = AdamW::new(trained, &cfg.optim)?;
    let run_id = cfg.run_id()?;
    let dir = cfg.run_dir()?;
    std::fs::create_dir_all(&cfg.train.out_dir).at(&cfg.train.out_dir)?;

    let bar = progress_bar(opts.progress, 0, 0, "steps");
    let mut log = Vec::new();
    let outcome = train_and_evaluate(cfg, task.as_ref(), &model, &mut opt, &dev, &mut log, &bar);
    bar.finish_and_clear();
    let outcome = outcome.unwrap_or_else(|e| Outcome::ended(Status::Failed, Some(e.to_string())));
    let (model_name, objective) = backbone_labels(cfg);
    let main = |split: &str| -> Option<f64> {
        outcome
            .scores
            .iter()
            .find(|(s, _)| s == split)
            .and_then(|(_, m)| m.first())
            .map(|m| m.score)
    };
    let metric = outcome
        .scores
        .first()
        .and_then(|(_, m)| m.first())
        .map_or_else(|| task.family().headline_metric().to_string(), |m| m.metric.clone());
    let result = RunResult {
        run_id,
        model: model_name,
        objective,
        family: task.family().code().to_string(),
        dataset: cfg.task.dataset.clone(),
        learning_rate: cfg.train.learning_rate,
        pretrain_seed: backbone_pretrain_seed(cfg),
        seed,
        metric,
        validation: main("validation"),
        test: main("test"),
        all_scores: outcome
            .scores
            .iter()
            .flat_map(|(split, ms)| ms.iter().map(move |m| (split.clone(), m.metric.clone(), m.score)))
            .collect(),
        status: outcome.status,
        reason: outcome.reason.clone(),
        steps: outcome.steps,
        examples: outcome.examples,
        train_examples_per_s: outcome.examples as f64 / outcome.train_seconds.max(1e-9),
        eval_examples_per_s: outcome.eval_instances as f64 / outcome.eval_seconds.max(1e-9),
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    let saved = if cfg.train.save_model && result.status == Status::Ok {
        let head = TaskHead {
            head,
            pooling: cfg.model.pooling,
            attention: cfg.model.attention,
            max_length: cfg.task.max_length,
            sep_token_id: sep,
            pad_token_id: pad,
            labels: label_names(&registry, cfg)?,
            dataset: cfg.task.dataset.clone(),
            run_id: result.run_id.clone(),
        };
        Some(ModelToSave {
            config: &model_cfg,
            head,
            map: &map,
            tokenizer: &tok_path,
        })
    } else {
        None
    };
    write_record(&dir, cfg, &result, &outcome.scores, &log, saved.as_ref())?;
    Ok(result)
}
