//! Per-instance scores of runs (`analysis report --instances PATH`): what each run scored on
//! every test sentence, question or query, so that the analysis can resample the test set
//! itself. Read from a folder of fine-tuning records (each run's `result.json` and
//! `instances.jsonl`) or from a CSV with one row per (run, instance):
//! `model,objective,dataset,learning_rate,[pretrain_seed],seed,split,instance,score[,tp,predicted,gold]`
//! (the layout of `instances_sst2_test.csv` in the paper's released runs). A corpus-level F1
//! is kept as per-instance `(tp, predicted, gold)` counts and recomputed from their sums, never
//! averaged per sentence. Every run of a (dataset, split) must score the same instances in the
//! same order; a run that does not is refused, by name.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::artifacts::{InstanceRow, RunResult, Status};
use crate::error::{Error, Result};
use crate::eval::Counts;

/// A run's per-instance values on its reported metric.
#[derive(Debug, Clone, PartialEq)]
pub enum InstanceValues {
    /// A metric that is the mean of its instances' scores (accuracy, exact match, nDCG, …).
    Mean(Vec<f64>),
    /// A corpus-level F1: the F1 of the summed counts.
    Counts(Vec<Counts>),
}

impl InstanceValues {
    /// The number of instances.
    pub fn len(&self) -> usize {
        match self {
            InstanceValues::Mean(v) => v.len(),
            InstanceValues::Counts(v) => v.len(),
        }
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The run's score on the whole test set.
    pub fn score(&self) -> f64 {
        match self {
            InstanceValues::Mean(v) if v.is_empty() => f64::NAN,
            InstanceValues::Mean(v) => v.iter().sum::<f64>() / v.len() as f64,
            InstanceValues::Counts(v) => v.iter().fold(Counts::default(), |a, &c| a + c).f1(),
        }
    }

    /// The score on a resample of the test set: instance `i` counted `weights[i]` times (whole
    /// numbers, exact in f64).
    pub fn weighted(&self, weights: &[f64]) -> f64 {
        self.weighted_with_total(weights, weights.iter().sum())
    }

    /// [`InstanceValues::weighted`] given the weights' sum (the resample's size, n for a
    /// resample of n instances): a mean no longer adds the weights up again for every run.
    pub fn weighted_with_total(&self, weights: &[f64], total: f64) -> f64 {
        match self {
            InstanceValues::Mean(v) => weighted_sum(v, weights) / total,
            InstanceValues::Counts(v) => {
                let (mut tp, mut den) = (0.0, 0.0);
                for (c, &w) in v.iter().zip(weights) {
                    tp += c.tp as f64 * w;
                    den += (c.predicted + c.gold) as f64 * w;
                }
                if den == 0.0 {
                    0.0
                } else {
                    2.0 * tp / den
                }
            }
        }
    }

    /// The variance of the score over resamples of the test set, to first order: for a mean,
    /// s² / n (ddof = 1); for a corpus F1 = Σaᵢ / Σbᵢ (aᵢ = 2·tpᵢ, bᵢ = predictedᵢ + goldᵢ), the
    /// ratio estimator's n / (n − 1) · Σ(aᵢ − F·bᵢ)² / (Σbᵢ)² (the same formula with bᵢ = 1).
    /// NaN for fewer than two instances.
    pub fn sampling_variance(&self) -> f64 {
        let (a, b): (Vec<f64>, Vec<f64>) = match self {
            InstanceValues::Mean(v) => v.iter().map(|&x| (x, 1.0)).unzip(),
            InstanceValues::Counts(v) => v
                .iter()
                .map(|c| (2.0 * c.tp as f64, (c.predicted + c.gold) as f64))
                .unzip(),
        };
        let n = a.len() as f64;
        let total: f64 = b.iter().sum();
        if a.len() < 2 || total == 0.0 {
            return f64::NAN;
        }
        let f = a.iter().sum::<f64>() / total;
        let ss: f64 = a.iter().zip(&b).map(|(x, y)| (x - f * y).powi(2)).sum();
        n / (n - 1.0) * ss / (total * total)
    }

    /// The per-instance scores (for counts, each instance's own F1).
    pub fn per_instance(&self) -> Vec<f64> {
        match self {
            InstanceValues::Mean(v) => v.clone(),
            InstanceValues::Counts(v) => v.iter().map(|c| c.f1()).collect(),
        }
    }
}

/// Σ aᵢ·bᵢ in eight interleaved partial sums (vectorised; the same order on every machine).
pub(crate) fn weighted_sum(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f64 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f64>() + tail
}

/// A run as the runs table names it: model, objective, dataset, learning-rate bits,
/// pretraining seed, fine-tuning seed, split.
pub type RunKey = (String, String, String, u64, i64, i64, String);

/// One run's instances and where they were read.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInstances {
    /// The file (and line) the run came from, for messages.
    pub source: String,
    /// Its values, in the order of its (dataset, split)'s ids.
    pub values: InstanceValues,
}

/// Every run's per-instance values, with the instance ids of each (dataset, split).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Instances {
    /// (dataset, split) → the instance ids every run of it scored, in order.
    pub ids: BTreeMap<(String, String), Vec<String>>,
    /// The source of the first run of each (dataset, split), which set its ids.
    pub first: BTreeMap<(String, String), String>,
    /// Run → its instances.
    pub runs: HashMap<RunKey, RunInstances>,
}

impl Instances {
    /// Adds a run, checking its ids against those of the first run of its (dataset, split).
    pub fn insert(&mut self, key: RunKey, ids: Vec<String>, run: RunInstances) -> Result<()> {
        let slot = (key.2.clone(), key.6.clone());
        match self.ids.get(&slot) {
            None => {
                self.ids.insert(slot.clone(), ids);
                self.first.insert(slot, run.source.clone());
            }
            Some(known) if *known == ids => {}
            Some(known) => {
                let at = known
                    .iter()
                    .zip(&ids)
                    .position(|(a, b)| a != b)
                    .unwrap_or(known.len().min(ids.len()));
                let show = |v: &[String]| v.get(at).map_or("(none)".to_string(), |s| format!("{s:?}"));
                return Err(Error::data(
                    &run.source,
                    0,
                    format!(
                        "run {} has {} instances of {} {} whose ids differ from those of {} ({}): at position {at} it has {} where that run has {}; every run of a dataset must score the same instances in the same order",
                        describe(&key),
                        ids.len(),
                        key.2,
                        key.6,
                        self.first[&slot],
                        known.len(),
                        show(&ids),
                        show(known)
                    ),
                ));
            }
        }
        if let Some(old) = self.runs.insert(key.clone(), run) {
            return Err(Error::data(
                &old.source,
                0,
                format!("run {} has instances in two places; keep one", describe(&key)),
            ));
        }
        Ok(())
    }
}

/// `model/objective dataset lr=… pretrain_seed=… seed=… split`, for messages.
pub fn describe(key: &RunKey) -> String {
    format!(
        "{}/{} {} lr={} pretrain_seed={} seed={} {}",
        key.0,
        key.1,
        key.2,
        f64::from_bits(key.3),
        key.4,
        key.5,
        key.6
    )
}

/// Reads per-instance scores from a folder of run records (searched recursively for folders
/// holding `result.json` and `instances.jsonl`) or from a CSV file. Runs that did not end `ok`
/// are skipped (their scores are failed runs in the runs table).
pub fn read_instances(path: &Path) -> Result<Instances> {
    if path.is_dir() {
        let mut dirs = Vec::new();
        find_records(path, &mut dirs)?;
        if dirs.is_empty() {
            return Err(Error::data(
                path,
                0,
                "no run record (a folder with result.json and instances.jsonl) below this folder",
            ));
        }
        let mut out = Instances::default();
        for dir in dirs {
            read_record(&dir, &mut out)?;
        }
        Ok(out)
    } else {
        read_csv(path)
    }
}

fn find_records(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let err = |e: std::io::Error| Error::data(dir, 0, e.to_string());
    if dir.join("result.json").is_file() && dir.join("instances.jsonl").is_file() {
        out.push(dir.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(err)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    entries.sort();
    for e in entries {
        find_records(&e, out)?;
    }
    Ok(())
}

/// One split's rows of an `instances.jsonl`: ids, scores, counts.
type SplitRows = (Vec<String>, Vec<f64>, Vec<Option<Counts>>);

/// One record folder: its `ok` runs' instances on the run's reported metric, per split.
fn read_record(dir: &Path, out: &mut Instances) -> Result<()> {
    let result: RunResult = crate::config::load_json(&dir.join("result.json"))?;
    if result.status != Status::Ok {
        return Ok(());
    }
    let path = dir.join("instances.jsonl");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::data(&path, 0, e.to_string()))?;
    // split → (ids, scores, counts)
    let mut by_split: BTreeMap<String, SplitRows> = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row: InstanceRow = serde_json::from_str(line).map_err(|e| Error::data(&path, i + 1, e.to_string()))?;
        if row.metric != result.metric {
            continue;
        }
        let entry = by_split.entry(row.split).or_default();
        entry.0.push(row.id);
        entry.1.push(row.score);
        entry.2.push(row.counts);
    }
    for (split, (ids, scores, counts)) in by_split {
        let values = match counts.into_iter().collect::<Option<Vec<Counts>>>() {
            Some(c) if !c.is_empty() => InstanceValues::Counts(c),
            _ => InstanceValues::Mean(scores),
        };
        let key = (
            result.model.clone(),
            result.objective.clone(),
            result.dataset.clone(),
            result.learning_rate.to_bits(),
            result.pretrain_seed,
            result.seed as i64,
            split,
        );
        let source = path.display().to_string();
        out.insert(key, ids, RunInstances { source, values })?;
    }
    Ok(())
}

/// Columns of the CSV form; `pretrain_seed` and the counts are optional. The first seven name
/// a run ([`RunKey`]'s fields, in order).
pub const CSV_COLUMNS: [&str; 12] = [
    "model",
    "objective",
    "dataset",
    "learning_rate",
    "pretrain_seed",
    "seed",
    "split",
    "instance",
    "score",
    "tp",
    "predicted",
    "gold",
];

/// A run being read from the CSV: its first line, ids, scores and counts.
type Pending = (usize, Vec<String>, Vec<f64>, Vec<Counts>);

fn read_csv(path: &Path) -> Result<Instances> {
    let mut pending: Vec<(RunKey, Pending)> = Vec::new();
    let mut position: HashMap<RunKey, usize> = HashMap::new();
    let mut last: Option<usize> = None;
    crate::stats::runs::read_table(
        path,
        |headers| {
            let columns: Vec<Option<usize>> = CSV_COLUMNS
                .iter()
                .map(|c| headers.iter().position(|h| h == c))
                .collect();
            for (k, c) in CSV_COLUMNS.iter().enumerate() {
                let optional = matches!(*c, "pretrain_seed" | "score" | "tp" | "predicted" | "gold");
                if columns[k].is_none() && !optional {
                    return Err(Error::data(
                        path,
                        1,
                        format!("missing column `{c}`; an instances table has {}", CSV_COLUMNS.join(",")),
                    ));
                }
            }
            let counts = columns[9..].iter().filter(|c| c.is_some()).count();
            if counts != 0 && counts != 3 {
                return Err(Error::data(path, 1, "give all three of tp, predicted, gold, or none"));
            }
            if columns[8].is_none() && counts == 0 {
                return Err(Error::data(path, 1, "missing column `score` (or tp, predicted, gold)"));
            }
            Ok(columns)
        },
        |columns, line, row| {
            let cell = |k: usize| columns[k].map_or("", |i| row.get(i).unwrap_or("").trim());
            let err = |col: &str, what: String| Error::data(path, line, format!("column `{col}`: {what}"));
            let int = |k: usize, default: Option<i64>| -> Result<i64> {
                match (cell(k), default) {
                    ("", Some(d)) => Ok(d),
                    (v, _) => v
                        .parse()
                        .map_err(|_| err(CSV_COLUMNS[k], format!("{v:?} is not an integer"))),
                }
            };
            // rows of one run usually follow each other: the previous run's slot, unless a
            // field of the key differs (no key built, no hash, per row)
            let same = last.and_then(|k: usize| {
                let key = &pending[k].0;
                let lr_same = cell(3).parse::<f64>().is_ok_and(|lr| lr.to_bits() == key.3);
                let seed_same = |k2: usize, v: i64, default: Option<i64>| match (cell(k2), default) {
                    ("", Some(d)) => d == v,
                    (c, _) => c.parse::<i64>().is_ok_and(|x| x == v),
                };
                (cell(0) == key.0
                    && cell(1) == key.1
                    && cell(2) == key.2
                    && lr_same
                    && seed_same(4, key.4, Some(0))
                    && seed_same(5, key.5, None)
                    && cell(6) == key.6)
                    .then_some(k)
            });
            let k = match same {
                Some(k) => k,
                None => {
                    let lr: f64 = cell(3)
                        .parse()
                        .map_err(|_| err("learning_rate", format!("{:?} is not a number", cell(3))))?;
                    let key: RunKey = (
                        cell(0).to_string(),
                        cell(1).to_string(),
                        cell(2).to_string(),
                        lr.to_bits(),
                        int(4, Some(0))?,
                        int(5, None)?,
                        cell(6).to_string(),
                    );
                    *position.entry(key.clone()).or_insert_with(|| {
                        pending.push((key, (line, Vec::new(), Vec::new(), Vec::new())));
                        pending.len() - 1
                    })
                }
            };
            last = Some(k);
            let run = &mut pending[k].1;
            run.1.push(cell(7).to_string());
            if columns[9].is_some() {
                let count = |k: usize| -> Result<u64> {
                    cell(k)
                        .parse()
                        .map_err(|_| err(CSV_COLUMNS[k], format!("{:?} is not a count", cell(k))))
                };
                run.3.push(Counts {
                    tp: count(9)?,
                    predicted: count(10)?,
                    gold: count(11)?,
                });
            } else {
                let v: f64 = cell(8)
                    .parse()
                    .ok()
                    .filter(|v: &f64| v.is_finite())
                    .ok_or_else(|| err("score", format!("{:?} is not a finite number", cell(8))))?;
                run.2.push(v);
            }
            Ok(())
        },
    )?;
    let mut out = Instances::default();
    for (key, (line, ids, scores, counts)) in pending {
        let values = if counts.is_empty() {
            InstanceValues::Mean(scores)
        } else {
            InstanceValues::Counts(counts)
        };
        let source = format!("{}:{line}", path.display());
        out.insert(key, ids, RunInstances { source, values })?;
    }
    if out.runs.is_empty() {
        return Err(Error::data(path, 0, "no instance after the header"));
    }
    Ok(out)
}
