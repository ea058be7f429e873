//! `encoderlab data stats`: per-dataset counts for every registry dataset present in a data
//! folder, and the majority-class share that a chance score is checked against.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::data::registry::{DatasetSpec, Registry, TaskFamily};
use crate::error::Result;

/// Counts of one split.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct SplitStats {
    /// Split name (`all` for pretraining files).
    pub split: String,
    /// Main count: documents, examples, sentences, questions or queries.
    pub count: u64,
    /// Secondary counts (words, tokens, labels, judgements, …).
    pub details: BTreeMap<String, f64>,
}

/// Counts of one dataset.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct DatasetStats {
    /// Registry name.
    pub name: String,
    /// Family.
    pub family: TaskFamily,
    /// What `count` counts.
    pub unit: &'static str,
    /// Per split.
    pub splits: Vec<SplitStats>,
}

/// Share of the most frequent value (the accuracy of always predicting it); NaN when empty.
pub fn majority_share(values: impl IntoIterator<Item = usize>) -> f64 {
    let mut counts: BTreeMap<usize, u64> = BTreeMap::new();
    let mut n = 0u64;
    for v in values {
        *counts.entry(v).or_default() += 1;
        n += 1;
    }
    match counts.values().max() {
        Some(&m) => m as f64 / n as f64,
        None => f64::NAN,
    }
}

fn split_stats(split: &str, count: usize, details: &[(&str, f64)]) -> SplitStats {
    SplitStats {
        split: split.to_string(),
        count: count as u64,
        details: details.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
    }
}

/// Counts one dataset (its files must be present).
pub fn dataset_stats(registry: &Registry, name: &str, data_dir: &Path) -> Result<DatasetStats> {
    let spec: &DatasetSpec = registry.get(name)?;
    let mut splits = Vec::new();
    let unit = match spec.family {
        TaskFamily::Pretraining => {
            let (mut docs, mut words, mut chars) = (0usize, 0usize, 0usize);
            for doc in registry.corpus(name, data_dir)?.documents() {
                let doc = doc?;
                docs += 1;
                words += doc.text.split_whitespace().count();
                chars += doc.text.chars().count();
            }
            splits.push(split_stats(
                "all",
                docs,
                &[("words", words as f64), ("chars", chars as f64)],
            ));
            "documents"
        }
        TaskFamily::SequenceClassification => {
            for split in spec.splits.keys() {
                let s = registry.classification(name, data_dir, split)?;
                let pairs = s.examples.iter().filter(|e| e.text_pair.is_some()).count();
                splits.push(split_stats(
                    split,
                    s.examples.len(),
                    &[
                        ("labels", s.labels.len() as f64),
                        ("majority_share", majority_share(s.examples.iter().map(|e| e.label))),
                        ("pairs", pairs as f64),
                    ],
                ));
            }
            "examples"
        }
        TaskFamily::TokenClassification => {
            for split in spec.splits.keys() {
                let s = registry.tagging(name, data_dir, split)?;
                let tokens: usize = s.examples.iter().map(|e| e.tokens.len()).sum();
                splits.push(split_stats(
                    split,
                    s.examples.len(),
                    &[
                        ("tokens", tokens as f64),
                        ("tags", s.labels.len() as f64),
                        (
                            "majority_share",
                            majority_share(s.examples.iter().flat_map(|e| e.tags.iter().copied())),
                        ),
                    ],
                ));
            }
            "sentences"
        }
        TaskFamily::ExtractiveQa => {
            for split in spec.splits.keys() {
                let qa = registry.qa(name, data_dir, split)?;
                let answers: usize = qa.iter().map(|q| q.answers.len()).sum();
                let contexts: std::collections::HashSet<&str> = qa.iter().map(|q| q.context.as_str()).collect();
                splits.push(split_stats(
                    split,
                    qa.len(),
                    &[("answers", answers as f64), ("contexts", contexts.len() as f64)],
                ));
            }
            "questions"
        }
        TaskFamily::Retrieval => {
            for split in spec.splits.keys() {
                let r = registry.retrieval(name, data_dir, split)?;
                let judgements: usize = r.qrels.values().map(|d| d.len()).sum();
                splits.push(split_stats(
                    split,
                    r.queries.len(),
                    &[("documents", r.docs.len() as f64), ("judgements", judgements as f64)],
                ));
            }
            "queries"
        }
    };
    let rank = |s: &SplitStats| {
        ["all", "train", "validation", "test"]
            .iter()
            .position(|x| *x == s.split)
            .unwrap_or(9)
    };
    splits.sort_by_key(|s| rank(s));
    Ok(DatasetStats {
        name: name.to_string(),
        family: spec.family,
        unit,
        splits,
    })
}

/// Counts every registry dataset present under `data_dir` (or only `names`); returns them and
/// the names of the absent ones.
pub fn all_stats(registry: &Registry, data_dir: &Path, names: &[String]) -> Result<(Vec<DatasetStats>, Vec<String>)> {
    let names: Vec<String> = if names.is_empty() {
        registry.names()
    } else {
        names.to_vec()
    };
    let mut present = Vec::new();
    let mut absent = Vec::new();
    for name in names {
        if registry.get(&name)?.is_present(data_dir) {
            present.push(dataset_stats(registry, &name, data_dir)?);
        } else {
            absent.push(name);
        }
    }
    present.sort_by(|a, b| (a.family, &a.name).cmp(&(b.family, &b.name)));
    Ok((present, absent))
}

fn thousands(n: f64) -> String {
    if n.fract() != 0.0 || !n.is_finite() {
        return format!("{n:.4}");
    }
    let digits = format!("{}", n as u64);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for DatasetStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.splits.iter().enumerate() {
            let (name, family) = if i == 0 {
                (self.name.as_str(), self.family.name())
            } else {
                ("", "")
            };
            let details: Vec<String> = s
                .details
                .iter()
                .map(|(k, v)| format!("{k}={}", thousands(*v)))
                .collect();
            writeln!(
                f,
                "{name:<20} {family:<24} {:<11} {:>10} {:<10} {}",
                s.split,
                thousands(s.count as f64),
                self.unit,
                details.join(" ")
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority() {
        assert_eq!(majority_share([0, 1, 1, 2]), 0.5);
        assert!(majority_share(std::iter::empty()).is_nan());
        assert_eq!(thousands(1234567.0), "1,234,567");
        assert_eq!(thousands(0.5), "0.5000");
    }
}
