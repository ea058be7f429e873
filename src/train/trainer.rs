//! The pretraining loop: one function, [`pretrain`], readable top to bottom. Everything it calls
//! is a small piece tested on its own: batches (`objectives`), the learning rate and phases
//! (`schedule`), AdamW (`optim`), checkpoints (`checkpoint`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

pub use crate::artifacts::StepMetrics;
use crate::config::{load_json, save_json};
use crate::data::{BlockSampler, PackedDataset, Split};
use crate::dist::agree::{agree_on_start, check_same_weights};
use crate::dist::{shard, Communicator};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{remove_stale_staging, sha256_file};
use crate::model::init::INIT_STREAM;
use crate::model::{init_weights, sorted_vars, LanguageModel, ModelConfig};
use crate::objectives::{clm_batch, loss, mlm_batch, partial_loss, MaskTokens, Objective, TrainBatch};
use crate::rng::seeded;
use crate::runtime::{device, progress_bar};
use crate::schedule::{lr_at, phase_at, phase_start};
use crate::tokenizer::TextTokenizer;
use crate::train::checkpoint::{
    checkpoint_dir, checkpoint_problem, list_checkpoints, load_state, load_weights, prune_checkpoints, save_checkpoint,
    TrainerState,
};
use crate::train::config::PretrainConfig;
use crate::train::heldout::held_out_losses_on;
use crate::train::AdamW;

/// First stream of the MLM masks (one stream per micro-batch).
const MASK_STREAM: u64 = 1 << 32;

/// How a call to [`pretrain`] runs.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Continue from this checkpoint folder (its configuration must be the one given).
    pub resume: Option<PathBuf>,
    /// Stop (with a checkpoint) after this many steps of the run, as if interrupted.
    pub stop_after: Option<usize>,
    /// Show a progress bar on stderr.
    pub progress: bool,
}

/// How a run ended.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// `completed`, `stopped` (by `stop_after`) or `diverged`.
    pub status: String,
    /// Optimizer steps done.
    pub steps: usize,
    /// The step whose loss or gradient was not finite, if any.
    pub diverged_at: Option<usize>,
    /// Training loss of the last step done.
    pub last_loss: Option<f64>,
    /// The last evaluation.
    pub last_eval_clm_loss: Option<f64>,
    /// The last evaluation.
    pub last_eval_mlm_loss: Option<f64>,
    /// Held-out CLM loss of the unigram model of the training blocks on the evaluation's
    /// blocks: the floor a model must clear to have learned anything of context.
    #[serde(default)]
    pub unigram_clm_loss: Option<f64>,
    /// The same for the MLM evaluation's masked positions.
    #[serde(default)]
    pub unigram_mlm_loss: Option<f64>,
    /// Tokens consumed.
    pub tokens_seen: u64,
    /// The newest checkpoint.
    pub checkpoint: Option<PathBuf>,
    /// Wall time of this call.
    pub seconds: f64,
    /// Processes that trained together (data parallel); 1 for a single process.
    #[serde(default = "one_rank", skip_serializing_if = "is_one_rank")]
    pub ranks: usize,
}

fn one_rank() -> usize {
    1
}
fn is_one_rank(n: &usize) -> bool {
    *n == 1
}

/// The pack's tokenizer (`tokenizer.json` inside the pack, else the path it was packed with),
/// checked against the hash in its `meta.json`.
fn pack_tokenizer(data: &PackedDataset) -> Result<(PathBuf, TextTokenizer)> {
    let inside = data.dir().join("tokenizer.json");
    let path = if inside.exists() {
        inside
    } else {
        data.meta().tokenizer.path.clone()
    };
    if sha256_file(&path)? != data.meta().tokenizer.sha256 {
        return Err(Error::data(
            &path,
            0,
            "not the tokenizer this pack was made with (sha256 differs)",
        ));
    }
    Ok((path.clone(), TextTokenizer::load(&path)?))
}

fn mask_tokens(tok: &TextTokenizer, vocab_size: usize) -> Result<MaskTokens> {
    let s = tok.special();
    let mask_id = s.mask.ok_or_else(|| Error::Tokenizer {
        path: tok.path().to_path_buf(),
        reason: "has no mask token (<|mask|>, <mask> or [MASK]): MLM needs one".into(),
    })?;
    Ok(MaskTokens {
        mask_id,
        special: [s.bos, s.eos, s.pad, s.mask].into_iter().flatten().collect(),
        vocab_size: vocab_size.min(tok.vocab_size()) as u32,
    })
}

/// Mean held-out CLM and MLM losses over the first `n` validation blocks, the blocks shared
/// between the ranks of `world`.
fn evaluate(
    model: &LanguageModel,
    data: &PackedDataset,
    cfg: &PretrainConfig,
    tokens: &MaskTokens,
    dev: &Device,
    world: &dyn Communicator,
) -> Result<(f64, f64)> {
    held_out_losses_on(
        data,
        cfg.data.eval_blocks,
        cfg.data.batch_size,
        &cfg.masking,
        tokens,
        world,
        |batch| scalar(&loss(model, batch, dev, false)?),
    )
}

/// The loss of this rank's rows of `batch` (all of them in a world of one), divided by the
/// whole batch's scored positions and by `accum`, so that the ranks' parts add up to the
/// batch's mean; `None` when this rank has no rows of it.
fn rank_loss(
    model: &LanguageModel,
    batch: &TrainBatch,
    accum: usize,
    dev: &Device,
    world: &dyn Communicator,
) -> Result<Option<candle_core::Tensor>> {
    let l = if world.size() == 1 {
        loss(model, batch, dev, true)?
    } else {
        let part = shard::rows(batch, shard::share(batch.shape.0, world.rank(), world.size()));
        if part.shape.0 == 0 {
            return Ok(None);
        }
        partial_loss(model, &part, dev, true, batch.scored())?
    };
    Ok(Some((l / accum as f64)?))
}

fn scalar(t: &candle_core::Tensor) -> Result<f64> {
    Ok(f64::from(t.to_dtype(DType::F32)?.to_scalar::<f32>()?))
}

/// Refuses a pack holding a token id outside the model's vocabulary (a pack made with another
/// tokenizer, an edited `meta.json`), naming the file and position, before the run folder is
/// touched: otherwise the embedding lookup fails mid-run with no file named.
fn check_token_ids(data: &PackedDataset, vocab_size: usize) -> Result<()> {
    let meta = data.meta();
    for split in [Split::Train, Split::Validation] {
        let limit = u32::try_from(vocab_size).unwrap_or(u32::MAX);
        if let Some((at, id)) = data.file(split).first_id_at_least(limit) {
            let file = match split {
                Split::Train => &meta.train.file,
                Split::Validation => &meta.validation.file,
            };
            return Err(Error::data(
                data.dir().join(file),
                0,
                format!(
                    "token {at} has id {id}, outside the model's vocabulary of {vocab_size} ids (meta.json says the tokenizer has {}): the pack was made with another tokenizer or its meta.json was edited; pack the corpus again with this tokenizer (`encoderlab data pack`)",
                    meta.tokenizer.vocab_size
                ),
            ));
        }
    }
    Ok(())
}

/// What to tell the user of a run folder holding checkpoints: resume the latest one that reads
/// whole, naming any later one that does not.
fn resume_advice(run_dir: &Path) -> Result<String> {
    let mut damaged = Vec::new();
    for step in list_checkpoints(run_dir)?.into_iter().rev() {
        let dir = checkpoint_dir(run_dir, step);
        match checkpoint_problem(&dir) {
            None if damaged.is_empty() => return Ok(format!("resume with --resume {}", dir.display())),
            None => {
                return Ok(format!(
                    "{}; resume the last intact one with --resume {} (the damaged ones are written again as training passes their steps)",
                    damaged.join("; "),
                    dir.display()
                ))
            }
            Some(problem) => damaged.push(problem),
        }
    }
    Ok(format!(
        "{}; no checkpoint reads whole: remove the folder to start again",
        damaged.join("; ")
    ))
}

/// Rewrites `metrics.jsonl` keeping the records of steps ≤ `step` (a resume from an earlier
/// checkpoint drops what was logged after it).
fn truncate_metrics(path: &Path, step: usize) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let text = std::fs::read_to_string(path).at(path)?;
    let kept: String = text
        .lines()
        .filter(|l| serde_json::from_str::<StepMetrics>(l).is_ok_and(|m| m.step <= step))
        .map(|l| format!("{l}\n"))
        .collect();
    crate::fsutil::write_atomic(path, kept.as_bytes())
}

/// Weights to start from: a checkpoint to resume, `init_from`, or a fresh seeded draw.
fn starting_weights(
    cfg: &PretrainConfig,
    model_cfg: &ModelConfig,
    resume: Option<&Path>,
    dev: &Device,
) -> Result<VarMap> {
    let map = init_weights(model_cfg, &mut seeded(cfg.train.seed, INIT_STREAM), dev)?;
    if let Some(dir) = resume.or(cfg.train.init_from.as_deref()) {
        let theirs = ModelConfig::from_hf_json(&dir.join("config.json"))?;
        let mut ours = model_cfg.clone();
        ours.attention = theirs.attention;
        if theirs != ours {
            let (a, b) = (ours.to_hf_json(), theirs.to_hf_json());
            let differing: Vec<String> = a
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, v)| b.get(k.as_str()) != Some(v))
                .map(|(k, v)| {
                    format!(
                        "{k}: {v} here, {} there",
                        b.get(k.as_str()).unwrap_or(&serde_json::Value::Null)
                    )
                })
                .collect();
            return Err(Error::config(
                "train.init_from",
                format!(
                    "{}: its architecture differs from the configured model ({}); set [model] to match",
                    dir.display(),
                    differing.join("; ")
                ),
            ));
        }
        load_weights(dir, &map, dev)?;
    }
    Ok(map)
}

/// Runs (or resumes) the pretraining of `cfg`. Writes into the run folder
/// (`{train.out_dir}/{name}`): `config.json` (resolved), `metrics.jsonl`, `checkpoints/step-N/`
/// and `summary.json`. A run whose folder already holds its completed run (same configuration,
/// last checkpoint at the final step) is not redone: that run's summary is returned.
pub fn pretrain(cfg: &PretrainConfig, opts: &RunOptions) -> Result<RunSummary> {
    let started = Instant::now();
    let world = crate::dist::world()?;
    // rank 0 writes the run folder (metrics, checkpoints, logs); the others only compute
    let writer = world.rank() == 0;
    let dev = device(&crate::dist::this_rank_device(&cfg.train.device, world.size()))?;
    // GPU ranks: gradients summed on the device where the build has NCCL
    let device_world = crate::dist::device_world(world, &dev)?;
    let world: &dyn Communicator = device_world.as_deref().unwrap_or(world);
    let data = PackedDataset::open(&cfg.data.pack)?;
    let (tok_path, tokenizer) = pack_tokenizer(&data)?;
    let mut model_cfg = cfg.resolve_model(data.meta().tokenizer.vocab_size)?;
    let tokens = mask_tokens(&tokenizer, model_cfg.vocab_size)?;
    check_token_ids(&data, model_cfg.vocab_size)?;
    let run_id = cfg.run_id()?;
    let run_dir = cfg.run_dir();
    let metrics_path = run_dir.join("metrics.jsonl");

    // where to start: step 0, or a checkpoint's state
    let resumed = match &opts.resume {
        Some(dir) => {
            let state = load_state(dir)?;
            if !state.config.same_run(cfg) {
                return Err(Error::config(
                    "resume",
                    format!("{}: saved by a run with another configuration", dir.display()),
                ));
            }
            Some(state)
        }
        None => {
            let existing = list_checkpoints(&run_dir)?;
            if let Some(last) = existing.last() {
                // the same run, already completed: not done twice, its summary is the result
                let last_state = load_state(&checkpoint_dir(&run_dir, *last)).ok();
                let same = last_state.is_some_and(|s| s.config.same_run(cfg) && s.step == cfg.total_steps());
                let summary: Option<RunSummary> = load_json(&run_dir.join("summary.json")).ok();
                if let Some(summary) = summary.filter(|s| same && s.status == "completed") {
                    return Ok(summary);
                }
                return Err(Error::config(
                    "name",
                    format!(
                        "{} already holds checkpoints (the last at step {last}): {}, or choose another name",
                        run_dir.display(),
                        resume_advice(&run_dir)?
                    ),
                ));
            }
            None
        }
    };
    // every file the start needs is read before anything of the run folder changes: a refused
    // call leaves the folder (its metrics.jsonl included) as it was
    let map = starting_weights(cfg, &model_cfg, opts.resume.as_deref(), &dev)?;
    let model = LanguageModel::new(&model_cfg, VarBuilder::from_varmap(&map, DType::F32, &dev))?
        .with_compute_dtype(cfg.train.dtype.dtype())
        .with_activation_checkpointing(cfg.train.activation_checkpointing);
    let mut opt = AdamW::new(sorted_vars(&map)?, &cfg.optim)?;
    let train_blocks = data.blocks(Split::Train);
    let (mut step, mut tokens_seen, mut sampler) = match (&resumed, &opts.resume) {
        (Some(s), Some(dir)) => {
            opt.load_state(&dir.join("optimizer.safetensors"), s.optimizer_step, &dev)?;
            (
                s.step,
                s.tokens_seen,
                BlockSampler::resume(train_blocks, cfg.train.seed, s.cursor)?,
            )
        }
        _ => (0, 0, BlockSampler::new(train_blocks, cfg.train.seed)?),
    };
    // every rank has read what it starts from; they must be the same before rank 0 writes
    agree_on_start(world, cfg, &data, opts.resume.as_deref(), step)?;
    let mut metrics_file = None;
    let mut board = None;
    if writer {
        std::fs::create_dir_all(&run_dir).at(&run_dir)?;
        // checkpoints a kill interrupted while they were written (`.step-N.tmp-*`) are ours to remove
        for stale in remove_stale_staging(&run_dir.join("checkpoints"), "step-")? {
            tracing::info!(
                "removed {}, a checkpoint interrupted while it was written",
                stale.display()
            );
        }
        truncate_metrics(&metrics_path, step)?;
        save_json(cfg, &run_dir.join("config.json"))?;
        if cfg.train.tensorboard {
            board = Some(crate::tensorboard::start_pretraining(&run_dir, cfg, step as u64)?);
        }
        metrics_file = Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&metrics_path)
                .at(&metrics_path)?,
        );
    }

    let total = cfg.total_steps();
    let end = opts.stop_after.map_or(total, |s| s.min(total));
    let phases = &cfg.train.phases;
    let per_step = (cfg.data.batch_size * cfg.data.grad_accum * data.seq_len()) as u64;
    let bar = progress_bar(opts.progress && writer, total, step, "steps");
    let unigram =
        super::unigram::unigram_losses(&data, cfg.data.eval_blocks, cfg.data.batch_size, &cfg.masking, &tokens)?;
    let mut summary = RunSummary {
        status: "completed".into(),
        steps: step,
        diverged_at: None,
        last_loss: None,
        last_eval_clm_loss: None,
        last_eval_mlm_loss: None,
        unigram_clm_loss: Some(unigram.0),
        unigram_mlm_loss: Some(unigram.1),
        tokens_seen,
        checkpoint: opts.resume.clone(),
        seconds: 0.0,
        ranks: world.size(),
    };

    while step < end {
        let t0 = Instant::now();
        let phase_index = phase_at(phases, step);
        let phase = &phases[phase_index];
        if phase_index > 0 && step == phase_start(phases, phase_index) && cfg.train.reset_optimizer_at_switch {
            opt.reset()?;
        }
        model_cfg.attention = phase.objective.attention();
        let lr = lr_at(&cfg.lr, step, total);

        // forward and backward over the micro-batches (this rank's rows of each), gradients
        // summed, then summed over the ranks
        let (mut grads, mut step_loss) = (None, 0.0);
        for micro in 0..cfg.data.grad_accum {
            let blocks = sampler
                .next_blocks(cfg.data.batch_size)
                .into_iter()
                .map(|i| data.block(Split::Train, i))
                .collect::<Result<Vec<_>>>()?;
            let batch: TrainBatch = match phase.objective {
                Objective::Clm => clm_batch(&blocks),
                Objective::Mlm => {
                    let stream = MASK_STREAM + (step * cfg.data.grad_accum + micro) as u64;
                    let ratio = phase.ratio.unwrap_or(0.0);
                    mlm_batch(
                        &blocks,
                        ratio,
                        &cfg.masking,
                        &tokens,
                        &mut seeded(cfg.train.seed, stream),
                    )
                }
            };
            let Some(l) = rank_loss(&model, &batch, cfg.data.grad_accum, &dev, world)? else {
                continue;
            };
            step_loss += scalar(&l)?;
            grads = Some(AdamW::accumulate(grads, opt.grads(&l.backward()?)?)?);
        }
        let grads = match grads {
            Some(g) => g,
            None => opt.zero_grads()?,
        };
        let grads = world.sum_grads(&grads)?;
        let mut summed = [step_loss];
        world.sum_f64("the step loss's all-reduce", &mut summed)?;
        let step_loss = summed[0];
        let norm = AdamW::grad_norm(&grads)?;

        // a non-finite loss or gradient stops the run; the last checkpoint stays as it was
        if !step_loss.is_finite() || !norm.is_finite() {
            summary.status = "diverged".into();
            summary.diverged_at = Some(step + 1);
            break;
        }
        opt.step(&grads, norm, lr)?;
        step += 1;
        tokens_seen += per_step;
        let tokens_per_s = per_step as f64 / t0.elapsed().as_secs_f64();

        let evaluate_now = step % cfg.train.eval_every_steps == 0 || step == total;
        let (eval_clm, eval_mlm) = if evaluate_now {
            let (c, m) = evaluate(&model, &data, cfg, &tokens, &dev, world)?;
            (Some(c), Some(m))
        } else {
            (None, None)
        };
        let record = StepMetrics {
            step,
            phase: phase_index,
            objective: phase.objective,
            loss: step_loss,
            eval_clm_loss: eval_clm,
            eval_mlm_loss: eval_mlm,
            lr,
            grad_norm: norm,
            tokens_seen,
            tokens_per_s,
        };
        if let Some(file) = &mut metrics_file {
            let line = serde_json::to_string(&record).map_err(|e| Error::data(&metrics_path, 0, e.to_string()))?;
            writeln!(file, "{line}").at(&metrics_path)?;
        }
        if let Some(board) = &mut board {
            board.events().pretraining_step(&record);
            board.flush()?;
        }
        summary.last_loss = Some(step_loss);
        if evaluate_now {
            summary.last_eval_clm_loss = eval_clm;
            summary.last_eval_mlm_loss = eval_mlm;
        }
        bar.set_message(format!("{:?} loss {step_loss:.3}", phase.objective));
        bar.set_position(step as u64);

        let checkpoint_now =
            step % cfg.train.checkpoint_every_steps == 0 || step == end || cfg.train.milestones.contains(&step);
        if checkpoint_now {
            check_same_weights(world, &map, step)?;
        }
        if checkpoint_now && writer {
            let dir = checkpoint_dir(&run_dir, step);
            let state = TrainerState {
                step,
                phase: phase_at(phases, step),
                cursor: sampler.cursor(),
                optimizer_step: opt.step,
                tokens_seen,
                rng: format!(
                    "weights: ({}, {INIT_STREAM}); masks: ({}, {MASK_STREAM} + step·grad_accum + micro)",
                    cfg.train.seed, cfg.train.seed
                ),
                run_id: run_id.clone(),
                config: cfg.clone(),
            };
            save_checkpoint(&dir, &map, &model_cfg, &tok_path, &opt, &state)?;
            prune_checkpoints(&run_dir, cfg.train.keep_last, &cfg.train.milestones)?;
            summary.checkpoint = Some(dir);
        } else if checkpoint_now {
            summary.checkpoint = Some(checkpoint_dir(&run_dir, step));
        }
    }
    bar.finish_and_clear();
    if summary.status != "diverged" && step < total {
        summary.status = "stopped".into();
    }
    summary.steps = step;
    summary.tokens_seen = tokens_seen;
    summary.seconds = started.elapsed().as_secs_f64();
    if writer {
        save_json(&summary, &run_dir.join("summary.json"))?;
    }
    Ok(summary)
}
