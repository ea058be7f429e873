//! A fine-tuning run's record, written atomically as one folder `{out_dir}/{run_id}/`:
//! `config.json` (resolved), `result.json`, `instances.jsonl` (per-instance scores of both
//! splits, every metric), `metrics.jsonl` (training curve), `runs.csv` (its rows of the
//! project's runs table), `tensorboard/` and, with `train.save_model`, `model/` (the fine-tuned
//! model, [`super::saved`]); the types of these files are in [`crate::artifacts`].

use std::io::Write;
use std::path::Path;

use super::config::{FinetuneConfig, Init};
use super::saved::{save_task_model, ModelToSave, MODEL_DIR};
pub use crate::artifacts::run_record::{InstanceRow, RunResult, Status};
use crate::artifacts::{csv_text, FinetuneStepMetrics, RunRow};
use crate::config::save_json;
use crate::data::registry::TaskFamily;
use crate::error::{IoContext, Result};
use crate::eval::Scores;
use crate::fsutil::StagingDir;
use crate::objectives::Objective;
use crate::train::checkpoint::load_state;

/// Writes the run folder `dir` (replacing an earlier one) in one rename, with the fine-tuned
/// model in `model/` when one is given.
pub(crate) fn write_record(
    dir: &Path,
    cfg: &FinetuneConfig,
    result: &RunResult,
    scores: &[(String, Vec<Scores>)],
    curve: &[FinetuneStepMetrics],
    model: Option<&ModelToSave>,
) -> Result<()> {
    let stage = StagingDir::create(dir)?;
    let p = stage.path();
    if let Some(m) = model {
        save_task_model(&p.join(MODEL_DIR), m)?;
    }
    save_json(cfg, &p.join("config.json"))?;
    save_json(result, &p.join("result.json"))?;
    let path = p.join("instances.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).at(&path)?);
    for (split, metrics) in scores {
        for s in metrics {
            for i in &s.instances {
                let row = InstanceRow {
                    split: split.clone(),
                    metric: s.metric.clone(),
                    id: i.id.clone(),
                    score: i.score,
                    counts: i.counts,
                };
                let line =
                    serde_json::to_string(&row).map_err(|e| crate::error::Error::data(&path, 0, e.to_string()))?;
                writeln!(f, "{line}").at(&path)?;
            }
        }
    }
    f.flush().at(&path)?;
    drop(f);
    let metrics = p.join("metrics.jsonl");
    let mut jsonl = String::new();
    for m in curve {
        jsonl += &serde_json::to_string(m).map_err(|e| crate::error::Error::data(&metrics, 0, e.to_string()))?;
        jsonl.push('\n');
    }
    std::fs::write(&metrics, jsonl).at(&metrics)?;
    if cfg.train.tensorboard {
        let board = p.join(crate::tensorboard::TENSORBOARD_DIR);
        std::fs::create_dir_all(&board).at(&board)?;
        let events = crate::tensorboard::finetuning_events(cfg, curve, result)?;
        let file = board.join(crate::tensorboard::event_file_name());
        std::fs::write(&file, events).at(&file)?;
    }
    let rows = RunRow::of_result(result);
    std::fs::write(p.join("runs.csv"), csv_text(&rows, None)?).at(p.join("runs.csv"))?;
    stage.commit()
}

/// The backbone's `model` and `objective` columns: the configured ones, else from the
/// checkpoint's `trainer_state.json` (`{run name}-step{N}`; `clm`, `mlm40`, `clm-mlm40`), else
/// the folder's name and `unknown`; a random init's objective is `random`.
pub(crate) fn backbone_labels(cfg: &FinetuneConfig) -> (String, String) {
    let ckpt = &cfg.model.checkpoint;
    let state = load_state(ckpt).ok();
    let name = cfg.model.name.clone().unwrap_or_else(|| match &state {
        Some(s) => format!("{}-step{}", s.config.name, s.step),
        None => ckpt
            .file_name()
            .map_or("model".into(), |n| n.to_string_lossy().into_owned()),
    });
    // a probe of a backbone is its own system beside the backbone's full fine-tuning
    let name = if cfg.train.freeze_backbone {
        super::config::probe_name(&name)
    } else {
        name
    };
    let objective = cfg.model.objective.clone().unwrap_or_else(|| {
        if cfg.model.init == Init::Random {
            return "random".into();
        }
        match &state {
            Some(s) => s
                .config
                .train
                .phases
                .iter()
                .map(|p| match p.objective {
                    Objective::Clm => "clm".to_string(),
                    Objective::Mlm => format!("mlm{:.0}", p.ratio.unwrap_or(0.0) * 100.0),
                })
                .collect::<Vec<_>>()
                .join("-"),
            None => "unknown".into(),
        }
    });
    (name, objective)
}

/// The backbone's `pretrain_seed` column: the configured one, else the seed of the pretraining
/// run that wrote the checkpoint (its `trainer_state.json`), else 0 (a foreign checkpoint).
pub(crate) fn backbone_pretrain_seed(cfg: &FinetuneConfig) -> i64 {
    cfg.model.pretrain_seed.unwrap_or_else(|| {
        load_state(&cfg.model.checkpoint)
            .ok()
            .and_then(|s| i64::try_from(s.config.train.seed).ok())
            .unwrap_or(0)
    })
}

/// Records `cfg`'s run as `failed` with `reason` and no score: for a run whose process died
/// before it could write its own record (the sweep executor calls this).
pub fn failed_record(cfg: &FinetuneConfig, reason: &str) -> Result<RunResult> {
    let family = cfg
        .task
        .registry()
        .ok()
        .and_then(|r| r.get(&cfg.task.dataset).ok().map(|s| s.family))
        .filter(|f| *f != TaskFamily::Pretraining)
        .unwrap_or(TaskFamily::SequenceClassification);
    let (model, objective) = backbone_labels(cfg);
    let result = RunResult {
        run_id: cfg.run_id()?,
        model,
        objective,
        family: family.code().to_string(),
        dataset: cfg.task.dataset.clone(),
        learning_rate: cfg.train.learning_rate,
        pretrain_seed: backbone_pretrain_seed(cfg),
        seed: cfg.train.seed,
        metric: family.headline_metric().to_string(),
        validation: None,
        test: None,
        all_scores: Vec::new(),
        status: Status::Failed,
        reason: Some(reason.to_string()),
        steps: 0,
        examples: 0,
        train_examples_per_s: 0.0,
        eval_examples_per_s: 0.0,
        wall_seconds: 0.0,
    };
    std::fs::create_dir_all(&cfg.train.out_dir).at(&cfg.train.out_dir)?;
    write_record(&cfg.run_dir()?, cfg, &result, &[], &[], None)?;
    Ok(result)
}
