//! The runs table: one row per fine-tuning run and split, what every sweep, study and import
//! writes and what the analysis reads. The columns are the fields of [`RunRow`], in order; this
//! file is the one place they are named.

use serde::{Deserialize, Serialize};

use super::cells;
use super::run_record::RunResult;

/// One row of a runs table.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct RunRow {
    /// Pretrained model name.
    #[serde(with = "cells::text")]
    pub model: String,
    /// Pretraining objective (`clm`, `mlm40`, `clm-mlm40`, `random`, …).
    #[serde(with = "cells::text")]
    pub objective: String,
    /// Task family (SC, TC, QA, IR); optional.
    #[serde(with = "cells::opt_text", default)]
    pub family: Option<String>,
    /// Dataset (task) name.
    #[serde(with = "cells::text")]
    pub dataset: String,
    /// Fine-tuning peak learning rate.
    #[serde(with = "cells::float")]
    pub learning_rate: f64,
    /// The backbone's pretraining seed; optional (empty or absent: 0).
    #[serde(with = "cells::opt_int", default)]
    pub pretrain_seed: Option<i64>,
    /// Fine-tuning seed.
    #[serde(with = "cells::int")]
    pub seed: i64,
    /// `validation` (where learning rates are selected) or `test` (the reported score).
    #[serde(with = "cells::text")]
    pub split: String,
    /// The metric's name; optional.
    #[serde(with = "cells::opt_text", default)]
    pub metric: Option<String>,
    /// The score; empty for a run that did not end `ok`.
    #[serde(with = "cells::opt_float", default)]
    pub score: Option<f64>,
    /// `ok`, `diverged` or `failed`; optional (absent: `ok`).
    #[serde(with = "cells::opt_text", default)]
    pub status: Option<String>,
    /// The run's id (its record folder), in a sweep's collected table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Optimizer steps, in a sweep's collected table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
    /// Wall seconds of the run, in a sweep's collected table.
    #[serde(with = "cells::millis", default, skip_serializing_if = "Option::is_none")]
    pub wall_seconds: Option<f64>,
}

impl RunRow {
    /// The columns a runs table must have (the others are optional).
    pub const REQUIRED: [&'static str; 7] = [
        "model",
        "objective",
        "dataset",
        "learning_rate",
        "seed",
        "split",
        "score",
    ];

    /// An empty row, with the sweep's columns (`run_id`, `steps`, `wall_seconds`) when `sweep`:
    /// the header of an empty table, and the base of a row built field by field.
    pub fn template(sweep: bool) -> RunRow {
        RunRow {
            model: String::new(),
            objective: String::new(),
            family: None,
            dataset: String::new(),
            learning_rate: 0.0,
            pretrain_seed: None,
            seed: 0,
            split: String::new(),
            metric: None,
            score: None,
            status: None,
            run_id: sweep.then(String::new),
            steps: sweep.then_some(0),
            wall_seconds: sweep.then_some(0.0),
        }
    }

    /// A run's rows (validation, then test), without the sweep's columns.
    pub fn of_result(r: &RunResult) -> [RunRow; 2] {
        [("validation", r.validation), ("test", r.test)].map(|(split, score)| RunRow {
            model: r.model.clone(),
            objective: r.objective.clone(),
            family: Some(r.family.clone()),
            dataset: r.dataset.clone(),
            learning_rate: r.learning_rate,
            pretrain_seed: Some(r.pretrain_seed),
            seed: r.seed as i64,
            split: split.to_string(),
            metric: Some(r.metric.clone()),
            score,
            status: Some(r.status.name().to_string()),
            run_id: None,
            steps: None,
            wall_seconds: None,
        })
    }

    /// A run's rows with the sweep's columns (`run_id`, `steps`, `wall_seconds`).
    pub fn of_result_in_sweep(r: &RunResult) -> [RunRow; 2] {
        Self::of_result(r).map(|row| RunRow {
            run_id: Some(r.run_id.clone()),
            steps: Some(r.steps),
            wall_seconds: Some(r.wall_seconds),
            ..row
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_required_column_is_a_field_and_the_header_is_the_fields_in_order() -> crate::error::Result<()> {
        let row = RunRow {
            model: "=m".into(),
            objective: "clm".into(),
            dataset: "sst2".into(),
            learning_rate: 1e-5,
            pretrain_seed: Some(0),
            seed: 1,
            split: "test".into(),
            status: Some("failed".into()),
            ..RunRow::template(false)
        };
        let text = crate::artifacts::csv_text(std::slice::from_ref(&row), None)?;
        assert_eq!(
            text,
            "model,objective,family,dataset,learning_rate,pretrain_seed,seed,split,metric,score,status\n'=m,clm,,sst2,0.00001,0,1,test,,,failed\n"
        );
        let header: Vec<&str> = text.lines().next().unwrap_or("").split(',').collect();
        assert!(RunRow::REQUIRED.iter().all(|c| header.contains(c)));
        assert_eq!(
            crate::artifacts::csv_text(&[], Some(&RunRow::template(true)))?,
            "model,objective,family,dataset,learning_rate,pretrain_seed,seed,split,metric,score,status,run_id,steps,wall_seconds\n"
        );
        Ok(())
    }
}
