//! The dataset registry (`configs/datasets.toml`, embedded in the binary): every dataset's
//! family, files, fields, labels, metric and chance score, so that code names a dataset and
//! nothing more.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{load_toml, parse_toml};
use crate::data::corpus::Corpus;
use crate::data::tasks::{
    read_classification, read_labels, read_qa, read_retrieval, read_tagging, ClassificationExample,
    ClassificationFields, QaExample, RetrievalCorpus, TaggingExample,
};
use crate::error::{Error, Result};

/// The registry shipped with encoderlab.
pub const BUILTIN_REGISTRY: &str = include_str!("../../configs/datasets.toml");

/// What a dataset is for.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum TaskFamily {
    /// Raw text for pretraining.
    Pretraining,
    /// One label per text or text pair.
    SequenceClassification,
    /// One tag per word.
    TokenClassification,
    /// A span of the context answers the question.
    ExtractiveQa,
    /// Rank a corpus for each query.
    Retrieval,
}

impl TaskFamily {
    /// The snake_case name used in configs and reports.
    pub fn name(self) -> &'static str {
        match self {
            TaskFamily::Pretraining => "pretraining",
            TaskFamily::SequenceClassification => "sequence_classification",
            TaskFamily::TokenClassification => "token_classification",
            TaskFamily::ExtractiveQa => "extractive_qa",
            TaskFamily::Retrieval => "retrieval",
        }
    }

    /// The family's code in a runs table (the paper's): SC, TC, QA or IR (`PT` for pretraining
    /// text, which no runs table holds).
    pub fn code(self) -> &'static str {
        match self {
            TaskFamily::Pretraining => "PT",
            TaskFamily::SequenceClassification => "SC",
            TaskFamily::TokenClassification => "TC",
            TaskFamily::ExtractiveQa => "QA",
            TaskFamily::Retrieval => "IR",
        }
    }

    /// The metric a fine-tuning run of the family reports first (its record's `metric` when it
    /// ended before evaluating).
    pub fn headline_metric(self) -> &'static str {
        match self {
            TaskFamily::Pretraining => "loss",
            TaskFamily::SequenceClassification => "accuracy",
            TaskFamily::TokenClassification => "entity_f1",
            TaskFamily::ExtractiveQa => "f1",
            TaskFamily::Retrieval => "ndcg@10",
        }
    }
}

/// Where a dataset comes from.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The project's shared data bundle (`../shared/data`).
    Shared,
    /// Made by `encoderlab data fetch`.
    Fetched,
}

/// How a fine-tuning dataset is scored.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Share of correctly classified examples.
    Accuracy,
    /// Share of correctly tagged words.
    TokenAccuracy,
    /// Entity-level F1 over words (seqeval, IOB2).
    EntityF1,
    /// SQuAD per-question token F1, averaged.
    SquadF1,
    /// nDCG@10 with graded relevance.
    #[serde(rename = "ndcg_at_10")]
    NdcgAt10,
}

/// One registry entry.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    /// What the dataset is for.
    pub family: TaskFamily,
    /// Shared bundle or fetched.
    pub origin: Origin,
    /// File (pretraining) or folder (tasks), relative to the data folder.
    pub path: PathBuf,
    /// Split name → file inside `path` (retrieval: the qrels file).
    #[serde(default)]
    pub splits: BTreeMap<String, String>,
    /// Text column (pretraining, classification).
    pub text_field: Option<String>,
    /// Second text column of a pair (classification).
    pub text_pair_field: Option<String>,
    /// Word-list column (token classification).
    pub tokens_field: Option<String>,
    /// Label column (classification) or tag-list column (token classification).
    pub label_field: Option<String>,
    /// Label names, inside `path`.
    pub labels_file: Option<String>,
    /// Which list of `labels_file` (when it holds several).
    pub labels_key: Option<String>,
    /// The evaluation metric.
    pub metric: Option<Metric>,
    /// Score of a trivial predictor on the test split, 0-1 scale.
    pub chance_score: Option<f64>,
    /// One line for people.
    #[serde(default)]
    pub description: String,
}

fn need<'a>(name: &str, field: &str, value: &'a Option<String>) -> Result<&'a str> {
    value
        .as_deref()
        .ok_or_else(|| Error::config(format!("{name}.{field}"), "required for this dataset family"))
}

impl DatasetSpec {
    fn validate(&self, name: &str) -> Result<()> {
        match self.family {
            TaskFamily::Pretraining => {
                need(name, "text_field", &self.text_field)?;
            }
            TaskFamily::SequenceClassification => {
                need(name, "text_field", &self.text_field)?;
                need(name, "label_field", &self.label_field)?;
                need(name, "labels_file", &self.labels_file)?;
            }
            TaskFamily::TokenClassification => {
                need(name, "tokens_field", &self.tokens_field)?;
                need(name, "label_field", &self.label_field)?;
                need(name, "labels_file", &self.labels_file)?;
            }
            TaskFamily::ExtractiveQa | TaskFamily::Retrieval => {}
        }
        if self.family != TaskFamily::Pretraining {
            if self.splits.is_empty() {
                return Err(Error::config(
                    format!("{name}.splits"),
                    "a task dataset needs at least one split",
                ));
            }
            if self.metric.is_none() {
                return Err(Error::config(format!("{name}.metric"), "required for a task dataset"));
            }
            match self.chance_score {
                Some(c) if (0.0..=1.0).contains(&c) => {}
                Some(c) => {
                    return Err(Error::config(
                        format!("{name}.chance_score"),
                        format!("{c} is not on the 0-1 scale"),
                    ))
                }
                None => {
                    return Err(Error::config(
                        format!("{name}.chance_score"),
                        "required for a task dataset",
                    ))
                }
            }
        }
        Ok(())
    }

    /// The dataset's root (file or folder) under `data_dir`.
    pub fn root(&self, data_dir: &Path) -> PathBuf {
        data_dir.join(&self.path)
    }

    /// The file of `split` under `data_dir`.
    pub fn split_path(&self, name: &str, data_dir: &Path, split: &str) -> Result<PathBuf> {
        let file = self.splits.get(split).ok_or_else(|| {
            let known: Vec<&str> = self.splits.keys().map(String::as_str).collect();
            Error::config(
                "split",
                format!("dataset `{name}` has no split `{split}` (splits: {})", known.join(", ")),
            )
        })?;
        Ok(self.root(data_dir).join(file))
    }

    /// Whether the dataset's files are present under `data_dir`.
    pub fn is_present(&self, data_dir: &Path) -> bool {
        let root = self.root(data_dir);
        root.exists() && self.splits.values().all(|f| root.join(f).exists())
    }

    /// The label names (classification and token classification).
    pub fn labels(&self, name: &str, data_dir: &Path) -> Result<Vec<String>> {
        let file = need(name, "labels_file", &self.labels_file)?;
        read_labels(&self.root(data_dir).join(file), self.labels_key.as_deref())
    }
}

/// Every dataset by name.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(transparent)]
pub struct Registry {
    /// Name → entry.
    pub datasets: BTreeMap<String, DatasetSpec>,
}

/// A classification split with its label names.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassificationSplit {
    /// Label names (index = id).
    pub labels: Vec<String>,
    /// The examples.
    pub examples: Vec<ClassificationExample>,
}

/// A token-classification split with its tag names.
#[derive(Debug, Clone, PartialEq)]
pub struct TaggingSplit {
    /// Tag names (index = id).
    pub labels: Vec<String>,
    /// The sentences.
    pub examples: Vec<TaggingExample>,
}

impl Registry {
    /// The registry shipped with encoderlab (`configs/datasets.toml`).
    pub fn builtin() -> Result<Self> {
        Self::parse(BUILTIN_REGISTRY, Path::new("configs/datasets.toml"))
    }

    /// Reads a registry file.
    pub fn load(path: &Path) -> Result<Self> {
        let reg: Self = load_toml(path)?;
        reg.validate()?;
        Ok(reg)
    }

    /// The registry of a config's `registry` key: that file, else the built-in one.
    pub fn of_key(registry: Option<&Path>) -> Result<Self> {
        match registry {
            Some(path) => Self::load(path),
            None => Self::builtin(),
        }
    }

    /// Checks, when a config is read, that its `registry` key (named `field` in the error)
    /// names a file.
    pub fn check_key(field: &str, registry: Option<&Path>) -> Result<()> {
        match registry.filter(|p| !p.is_file()) {
            Some(path) => Err(Error::config(
                field,
                format!(
                    "{}: no such file (a dataset registry in the format of configs/datasets.toml)",
                    path.display()
                ),
            )),
            None => Ok(()),
        }
    }

    /// Parses registry text (`origin` names it in errors).
    pub fn parse(text: &str, origin: &Path) -> Result<Self> {
        let reg: Self = parse_toml(text, origin)?;
        reg.validate()?;
        Ok(reg)
    }

    fn validate(&self) -> Result<()> {
        self.datasets.iter().try_for_each(|(name, spec)| spec.validate(name))
    }

    /// Every dataset name, sorted.
    pub fn names(&self) -> Vec<String> {
        self.datasets.keys().cloned().collect()
    }

    /// The entry of `name`, or an error listing every known name.
    pub fn get(&self, name: &str) -> Result<&DatasetSpec> {
        self.datasets.get(name).ok_or_else(|| Error::UnknownDataset {
            name: name.to_string(),
            known: self.names(),
        })
    }

    fn get_family(&self, name: &str, family: TaskFamily) -> Result<&DatasetSpec> {
        let spec = self.get(name)?;
        if spec.family != family {
            return Err(Error::config(
                "dataset",
                format!("`{name}` is a {} dataset, not {}", spec.family.name(), family.name()),
            ));
        }
        Ok(spec)
    }

    /// The pretraining corpus `name`.
    pub fn corpus(&self, name: &str, data_dir: &Path) -> Result<Corpus> {
        let spec = self.get_family(name, TaskFamily::Pretraining)?;
        Corpus::open(&[spec.root(data_dir)], need(name, "text_field", &spec.text_field)?)
    }

    /// One split of a sequence-classification dataset.
    pub fn classification(&self, name: &str, data_dir: &Path, split: &str) -> Result<ClassificationSplit> {
        let spec = self.get_family(name, TaskFamily::SequenceClassification)?;
        let labels = spec.labels(name, data_dir)?;
        let fields = ClassificationFields {
            text: need(name, "text_field", &spec.text_field)?,
            text_pair: spec.text_pair_field.as_deref(),
            label: need(name, "label_field", &spec.label_field)?,
        };
        let examples = read_classification(&spec.split_path(name, data_dir, split)?, &fields, &labels)?;
        Ok(ClassificationSplit { labels, examples })
    }

    /// One split of a token-classification dataset.
    pub fn tagging(&self, name: &str, data_dir: &Path, split: &str) -> Result<TaggingSplit> {
        let spec = self.get_family(name, TaskFamily::TokenClassification)?;
        let labels = spec.labels(name, data_dir)?;
        let examples = read_tagging(
            &spec.split_path(name, data_dir, split)?,
            need(name, "tokens_field", &spec.tokens_field)?,
            need(name, "label_field", &spec.label_field)?,
            &labels,
        )?;
        Ok(TaggingSplit { labels, examples })
    }

    /// One split of an extractive-QA dataset.
    pub fn qa(&self, name: &str, data_dir: &Path, split: &str) -> Result<Vec<QaExample>> {
        let spec = self.get_family(name, TaskFamily::ExtractiveQa)?;
        read_qa(&spec.split_path(name, data_dir, split)?)
    }

    /// One split of a retrieval dataset.
    pub fn retrieval(&self, name: &str, data_dir: &Path, split: &str) -> Result<RetrievalCorpus> {
        let spec = self.get_family(name, TaskFamily::Retrieval)?;
        read_retrieval(&spec.root(data_dir), &spec.split_path(name, data_dir, split)?)
    }
}
