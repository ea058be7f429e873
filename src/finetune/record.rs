//! A fine-tuning run's record, written atomically as one folder `{out_dir}/{run_id}/`:
//! `config.json` (resolved), `result.json`, `instances.jsonl` (per-instance scores of both
//! splits, every metric), `metrics.jsonl` (training curve) and `runs.csv` (its rows of the
//! project's runs table: `model,objective,family,dataset,learning_rate,pretrain_seed,seed,split,
//! metric,score,status`).

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::config::FinetuneConfig;
use crate::config::save_json;
use crate::csvcell::field;
use crate::error::{IoContext, Result};
use crate::eval::Scores;
use crate::fsutil::StagingDir;

/// How a run ended.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Trained and evaluated.
    Ok,
    /// A non-finite loss or gradient stopped it.
    Diverged,
    /// Something else stopped it (see `reason`).
    Failed,
}

impl Status {
    /// `ok`, `diverged` or `failed`.
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Diverged => "diverged",
            Status::Failed => "failed",
        }
    }
}

/// `result.json`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct RunResult {
    /// Hash of the resolved configuration.
    pub run_id: String,
    /// The backbone's name.
    pub model: String,
    /// Its pretraining objective.
    pub objective: String,
    /// SC, TC, QA or IR.
    pub family: String,
    /// Registry name.
    pub dataset: String,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// The backbone's pretraining seed (0 in records written before the column existed).
    #[serde(default)]
    pub pretrain_seed: i64,
    /// Fine-tuning seed.
    pub seed: u64,
    /// The reported metric.
    pub metric: String,
    /// Its validation score (NaN unless `ok`; written as null).
    pub validation: Option<f64>,
    /// Its test score.
    pub test: Option<f64>,
    /// Every metric of each split: (split, metric, score).
    pub all_scores: Vec<(String, String, f64)>,
    /// ok | diverged | failed.
    pub status: Status,
    /// Why it did not end `ok`.
    pub reason: Option<String>,
    /// Optimizer steps done.
    pub steps: usize,
    /// Training examples seen.
    pub examples: usize,
    /// Training examples per second.
    pub train_examples_per_s: f64,
    /// Evaluation instances per second (both splits).
    pub eval_examples_per_s: f64,
    /// Wall time of the whole run.
    pub wall_seconds: f64,
}

/// One line of `instances.jsonl`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct InstanceRow {
    /// validation or test.
    pub split: String,
    /// The metric.
    pub metric: String,
    /// The instance's id.
    pub id: String,
    /// Its score.
    pub score: f64,
    /// For F1 metrics: (tp, predicted, gold).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<crate::eval::Counts>,
}

/// The runs-table header.
pub const RUNS_HEADER: &str =
    "model,objective,family,dataset,learning_rate,pretrain_seed,seed,split,metric,score,status";

/// The run's rows of the runs table (validation, then test), without the header.
pub fn runs_rows(r: &RunResult) -> String {
    let mut out = String::new();
    for (split, score) in [("validation", r.validation), ("test", r.test)] {
        let score = score.map_or(String::new(), |s| format!("{s}"));
        let fields = [
            field(&r.model),
            field(&r.objective),
            field(&r.family),
            field(&r.dataset),
            format!("{}", r.learning_rate),
            r.pretrain_seed.to_string(),
            r.seed.to_string(),
            split.to_string(),
            field(&r.metric),
            score,
            r.status.name().to_string(),
        ];
        out.push_str(&fields.join(","));
        out.push('\n');
    }
    out
}

/// Writes the run folder `dir` (replacing an earlier one) in one rename.
pub fn write_record(
    dir: &Path,
    cfg: &FinetuneConfig,
    result: &RunResult,
    scores: &[(String, Vec<Scores>)],
    metrics_jsonl: &str,
) -> Result<()> {
    let stage = StagingDir::create(dir)?;
    let p = stage.path();
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
    std::fs::write(p.join("metrics.jsonl"), metrics_jsonl).at(p.join("metrics.jsonl"))?;
    std::fs::write(p.join("runs.csv"), format!("{RUNS_HEADER}\n{}", runs_rows(result))).at(p.join("runs.csv"))?;
    stage.commit()
}
