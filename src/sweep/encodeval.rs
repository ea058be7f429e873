//! Import of the paper's released fine-tuning results (the authors' EncodEval tree:
//! `results/<model>/<family>/<dataset>/<config>/results.json`, configs named `lr1e-04_sd0` or
//! `<training set>_lr1e-04_sd0`, files `{"validation": {"score", "scores_i"}, "test": {…}}`) into
//! the runs table, so the paper's runs go through the same analysis as ours.
//!
//! Conventions: the objective comes from the model name (`610m-clm-42k` → `clm`,
//! `610m-mlm40-42k` → `mlm40`, `610m-clm-10k-mlm40-42k` → `clm10k-mlm40`: after the size, each
//! objective with the step count that follows it, the last one's count dropped; otherwise the
//! name without its size); family folders map to SC, TC, QA, IR (`sequence_classification`,
//! `token_classification`, `question_answering`, `retrieval` and the codes themselves; others are
//! kept); a training-set prefix joins the dataset (`msmarco/msmarco_pairs`) so that two training
//! sets never collide; a split without a finite score is a `failed` row; scores are copied as
//! they are.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::artifacts::{csv_text, RunRow};
use crate::error::{Error, IoContext, Result};
use crate::stats::runs::write_runs_table;

/// One imported (run, split).
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedRow {
    /// Model folder name.
    pub model: String,
    /// Objective derived from the model name.
    pub objective: String,
    /// SC, TC, QA, IR (or the folder's name).
    pub family: String,
    /// Dataset (with the training-set prefix when the config has one).
    pub dataset: String,
    /// Learning rate.
    pub learning_rate: f64,
    /// Seed.
    pub seed: i64,
    /// validation or test.
    pub split: String,
    /// The score (NaN when absent).
    pub score: f64,
}

/// The objective of an EncodEval model name.
pub fn objective_of(model: &str) -> String {
    let parts: Vec<&str> = model.split('-').collect();
    let rest = if parts.len() > 1 { &parts[1..] } else { &parts[..] };
    let is_steps = |s: &str| s.ends_with('k') && s[..s.len() - 1].chars().all(|c| c.is_ascii_digit()) && s.len() > 1;
    let mut pairs: Vec<(String, Option<String>)> = Vec::new();
    for p in rest {
        if is_steps(p) {
            match pairs.last_mut() {
                Some((_, steps @ None)) => *steps = Some(p.to_string()),
                _ => return rest.join("-"),
            }
        } else {
            pairs.push((p.to_string(), None));
        }
    }
    let n = pairs.len();
    pairs
        .into_iter()
        .enumerate()
        .map(|(i, (o, s))| {
            if i + 1 < n {
                format!("{o}{}", s.unwrap_or_default())
            } else {
                o
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// The family code of an EncodEval family folder.
pub(crate) fn family_of(folder: &str) -> String {
    match folder.to_ascii_lowercase().as_str() {
        "sc" | "sequence_classification" | "classification" => "SC",
        "tc" | "token_classification" | "ner" => "TC",
        "qa" | "question_answering" | "extractive_qa" => "QA",
        "ir" | "retrieval" | "information_retrieval" => "IR",
        _ => return folder.to_string(),
    }
    .to_string()
}

/// (training-set prefix, learning rate, seed) of a config folder name.
pub fn parse_config(name: &str) -> Option<(Option<String>, f64, i64)> {
    let (head, seed) = name.rsplit_once("_sd")?;
    let seed: i64 = seed.parse().ok()?;
    let (prefix, lr) = match head.rsplit_once("_lr") {
        Some((p, lr)) => (Some(p.to_string()), lr),
        None => (None, head.strip_prefix("lr")?),
    };
    let lr: f64 = lr.parse().ok().filter(|v: &f64| v.is_finite() && *v > 0.0)?;
    Some((prefix, lr, seed))
}

fn dirs(path: &Path) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(path)
        .at(path)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    out.sort();
    Ok(out)
}

fn name(p: &Path) -> String {
    p.file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned())
}

/// Every (run, split) under `root` (the `results` folder, or a folder holding it).
pub fn read_encodeval(root: &Path) -> Result<Vec<ImportedRow>> {
    let root = if root.join("results").is_dir() {
        root.join("results")
    } else {
        root.to_path_buf()
    };
    let mut rows = Vec::new();
    for model in dirs(&root)? {
        for family in dirs(&model)? {
            for dataset in dirs(&family)? {
                for config in dirs(&dataset)? {
                    let file = config.join("results.json");
                    if !file.exists() {
                        continue;
                    }
                    let (prefix, learning_rate, seed) = parse_config(&name(&config)).ok_or_else(|| {
                        Error::data(
                            &config,
                            0,
                            "a config folder is named lr<LR>_sd<SEED> or <training set>_lr<LR>_sd<SEED>",
                        )
                    })?;
                    let text = std::fs::read_to_string(&file).at(&file)?;
                    let json: Value = serde_json::from_str(&text)
                        .map_err(|e| Error::data(&file, e.line(), format!("malformed JSON: {e}")))?;
                    let dataset = match &prefix {
                        Some(p) => format!("{}/{p}", name(&dataset)),
                        None => name(&dataset),
                    };
                    for split in ["validation", "test"] {
                        let Some(entry) = json.get(split) else { continue };
                        let score = entry.get("score").and_then(Value::as_f64).unwrap_or(f64::NAN);
                        rows.push(ImportedRow {
                            model: name(&model),
                            objective: objective_of(&name(&model)),
                            family: family_of(&name(&family)),
                            dataset: dataset.clone(),
                            learning_rate,
                            seed,
                            split: split.to_string(),
                            score,
                        });
                    }
                }
            }
        }
    }
    if rows.is_empty() {
        return Err(Error::data(
            &root,
            0,
            "no <model>/<family>/<dataset>/<config>/results.json below: not an EncodEval results tree",
        ));
    }
    Ok(rows)
}

/// Writes `rows` as a runs table to `out` (`.csv`, or `.parquet` with the `polars` feature),
/// atomically.
pub fn write_runs(rows: &[ImportedRow], out: &Path) -> Result<()> {
    let rows: Vec<RunRow> = rows
        .iter()
        .map(|r| RunRow {
            model: r.model.clone(),
            objective: r.objective.clone(),
            family: Some(r.family.clone()),
            dataset: r.dataset.clone(),
            learning_rate: r.learning_rate,
            pretrain_seed: Some(0),
            seed: r.seed,
            split: r.split.clone(),
            score: r.score.is_finite().then_some(r.score),
            status: Some(if r.score.is_finite() { "ok" } else { "failed" }.to_string()),
            ..RunRow::template(false)
        })
        .collect();
    let text = csv_text(&rows, Some(&RunRow::template(false)))?;
    write_runs_table(out, &text)
}
