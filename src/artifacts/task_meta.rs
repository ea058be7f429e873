//! The task metadata table (`meta.csv`): per dataset, what the analysis needs to normalise and
//! compare its scores. The study writes it from the registry; the analysis reads it (and the
//! paper's released runs ship one). The columns are the fields of [`TaskMetaRow`].

use serde::{Deserialize, Serialize};

use super::cells;

/// One dataset's row.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct TaskMetaRow {
    /// The dataset's name, as in the runs table.
    #[serde(with = "cells::text")]
    pub dataset: String,
    /// Its family (free text: SC, sequence_classification, …).
    #[serde(with = "cells::text")]
    pub family: String,
    /// The metric of its scores.
    #[serde(with = "cells::text")]
    pub metric_name: String,
    /// The score of a trivial or collapsed predictor, on the runs' scale.
    #[serde(with = "cells::debug_float")]
    pub chance_score: f64,
    /// The best possible score (1 or 100).
    #[serde(with = "cells::debug_float")]
    pub max_score: f64,
    /// Whether a larger score is better.
    #[serde(with = "cells::flag")]
    pub higher_is_better: bool,
    /// The worst score the metric can take; optional.
    #[serde(with = "cells::opt_debug_float", default, skip_serializing_if = "Option::is_none")]
    pub worst_score: Option<f64>,
}

impl TaskMetaRow {
    /// The columns a metadata table must have (`worst_score` is optional).
    pub const REQUIRED: [&'static str; 6] = [
        "dataset",
        "family",
        "metric_name",
        "chance_score",
        "max_score",
        "higher_is_better",
    ];

    /// A row with the required columns only (the header of an empty table).
    pub fn template() -> TaskMetaRow {
        TaskMetaRow {
            dataset: String::new(),
            family: String::new(),
            metric_name: String::new(),
            chance_score: 0.0,
            max_score: 1.0,
            higher_is_better: true,
            worst_score: None,
        }
    }
}
