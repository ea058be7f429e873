//! The runs table the analysis reads (CSV or Parquet): one row per fine-tuning run with
//! `model, objective, [family], dataset, learning_rate, [pretrain_seed], seed, split, [metric],
//! score, [status]`,
//! and the task metadata (`dataset, family, metric_name, chance_score, max_score,
//! higher_is_better`). A run whose score is empty or NaN, or whose status is not `ok`, is a
//! failed run (its score is NaN here). Errors name the file, line and column.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::artifacts::read::deserialize_row;
use crate::artifacts::{RunRow, TaskMetaRow};
use crate::data::registry::Registry;
use crate::error::{Error, Result};

/// One fine-tuning run.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Pretrained model name.
    pub model: String,
    /// Pretraining objective (clm, mlm40, clm10k-mlm40, …).
    pub objective: String,
    /// Task family, when given.
    pub family: Option<String>,
    /// Dataset (task) name.
    pub dataset: String,
    /// Fine-tuning learning rate.
    pub learning_rate: f64,
    /// Pretraining seed of the backbone (0 where the table has no `pretrain_seed` column or the
    /// cell is empty): runs of one system with different pretraining seeds are replicates of
    /// it, like its fine-tuning seeds, never separate systems.
    pub pretrain_seed: i64,
    /// Fine-tuning seed (the replicate within a pretraining seed).
    pub seed: i64,
    /// `validation` or `test` (or any other split name).
    pub split: String,
    /// Metric name, when given.
    pub metric: Option<String>,
    /// The score; NaN for a failed run.
    pub score: f64,
    /// 1-based line of the row in its file (the header is line 1).
    pub line: usize,
}

/// The header as a record for [`deserialize_row`] once every `required` column is in it, else
/// an error naming the first missing one, followed by `detail`.
fn require_columns(path: &Path, headers: &[String], required: &[&str], detail: &str) -> Result<csv::StringRecord> {
    match required.iter().find(|c| !headers.iter().any(|h| h == *c)) {
        Some(col) => Err(Error::data(
            path,
            1,
            format!("missing required column `{col}` {detail}"),
        )),
        None => Ok(csv::StringRecord::from(headers.to_vec())),
    }
}

/// Reads a runs table (`.csv`, or `.parquet` with the `polars` feature).
pub fn read_runs(path: &Path) -> Result<Vec<Run>> {
    let mut runs = Vec::new();
    // (system, dataset, split) interned, so the duplicate check holds no string per row
    let mut names: HashMap<String, u32> = HashMap::new();
    // (model, objective, dataset, split ids, learning-rate bits, pretrain_seed, seed) → line
    type RunKey = (u32, u32, u32, u32, u64, i64, i64);
    let mut seen: HashMap<RunKey, usize> = HashMap::new();
    let check_header = |headers: &[String]| {
        let detail = format!(
            "(columns: {}); required: {}",
            headers.join(", "),
            RunRow::REQUIRED.join(", ")
        );
        require_columns(path, headers, &RunRow::REQUIRED, &detail)
    };
    read_table(path, check_header, |columns, line, row| {
        let run = parse_run(path, columns, line, row)?;
        let mut id = |s: &str| -> u32 {
            let n = names.len() as u32;
            *names.entry(s.to_string()).or_insert(n)
        };
        let key = (
            id(&run.model),
            id(&run.objective),
            id(&run.dataset),
            id(&run.split),
            run.learning_rate.to_bits(),
            run.pretrain_seed,
            run.seed,
        );
        if let Some(first) = seen.insert(key, line) {
            return Err(Error::data(
                    path,
                    line,
                    format!(
                        "duplicate run: the same (model, objective, dataset, learning_rate, pretrain_seed, seed, split) as line {first}; keep one row per run"
                    ),
                ));
        }
        runs.push(run);
        Ok(())
    })?;
    if runs.is_empty() {
        return Err(Error::data(path, 0, "empty runs table: no row after the header"));
    }
    check_splits(&runs, path)?;
    Ok(runs)
}

/// One row of a runs table, read as a [`RunRow`] and checked.
fn parse_run(path: &Path, headers: &csv::StringRecord, line: usize, row: &csv::StringRecord) -> Result<Run> {
    let err = |name: &str, reason: String| Error::data(path, line, format!("column `{name}`: {reason}"));
    let r: RunRow = deserialize_row(path, headers, line, row)?;
    for (name, v) in [
        ("model", &r.model),
        ("objective", &r.objective),
        ("dataset", &r.dataset),
        ("split", &r.split),
    ] {
        if v.is_empty() {
            return Err(err(name, "is empty".into()));
        }
    }
    if !(r.learning_rate.is_finite() && r.learning_rate > 0.0) {
        return Err(err(
            "learning_rate",
            format!("{:?} is not a positive number", r.learning_rate),
        ));
    }
    let score = match r.score {
        None => f64::NAN,
        Some(v) if v.is_nan() || v.is_finite() => v,
        Some(v) => {
            return Err(err(
                "score",
                format!("{v:?} is not a finite number (a failed run has an empty score or status `failed`)"),
            ))
        }
    };
    if !SPLITS.contains(&r.split.as_str()) {
        return Err(err(
                "split",
                format!(
                    "{:?} is not a split the analysis knows: name it `validation` (where learning rates are selected) or `test` (the reported score), in lower case", r.split
                ),
            ));
    }
    let ok = r.status.as_deref().is_none_or(|s| s == "ok");
    Ok(Run {
        model: r.model,
        objective: r.objective,
        family: r.family,
        dataset: r.dataset,
        learning_rate: r.learning_rate,
        pretrain_seed: r.pretrain_seed.unwrap_or(0),
        seed: r.seed,
        split: r.split,
        metric: r.metric,
        score: if ok { score } else { f64::NAN },
        line,
    })
}

/// The split names a runs table may use: `validation` selects, `test` reports.
pub const SPLITS: [&str; 2] = ["validation", "test"];

/// Every system of a dataset must have the same splits, or learning rates would be selected on
/// `validation` for some and on `test` for others.
fn check_splits(runs: &[Run], path: &Path) -> Result<()> {
    // dataset → split → first line; (dataset, system) → splits and a line
    let mut by_dataset: HashMap<&str, BTreeMap<&str, usize>> = HashMap::new();
    type SplitLines<'a> = (BTreeMap<&'a str, usize>, usize);
    let mut by_system: HashMap<(&str, &str, &str), SplitLines> = HashMap::new();
    for r in runs {
        by_dataset
            .entry(&r.dataset)
            .or_default()
            .entry(&r.split)
            .or_insert(r.line);
        let e = by_system
            .entry((&r.dataset, &r.model, &r.objective))
            .or_insert_with(|| (BTreeMap::new(), r.line));
        e.0.entry(&r.split).or_insert(r.line);
    }
    let mut keys: Vec<_> = by_system.keys().copied().collect();
    keys.sort_by_key(|k| by_system[k].1);
    for key in keys {
        let (dataset, model, objective) = key;
        let (mine, line) = &by_system[&key];
        if let Some((split, other_line)) = by_dataset[dataset].iter().find(|(s, _)| !mine.contains_key(*s)) {
            return Err(Error::data(
                path,
                *line,
                format!(
                    "system {model}/{objective} has no `{split}` rows for dataset `{dataset}` while others do (line {other_line}): its learning rate would be chosen on another split than theirs; add its `{split}` runs, or give every system the same splits"
                ),
            ));
        }
    }
    Ok(())
}

/// Writes a runs table given as CSV text to `out`, atomically: as is for `.csv`, typed
/// (`learning_rate`, `score`, `wall_seconds` floats; `pretrain_seed`, `seed`, `steps` integers;
/// the rest text)
/// for `.parquet` with the `polars` feature. Any other extension is an error.
pub fn write_runs_table(out: &Path, csv_text: &str) -> Result<()> {
    match out.extension().and_then(|e| e.to_str()) {
        Some("csv") => crate::fsutil::write_atomic(out, csv_text.as_bytes()),
        Some("parquet") => write_parquet_table(out, csv_text),
        _ => Err(Error::data(
            out,
            0,
            "a runs table is written as .csv or .parquet: name the file with one of these extensions",
        )),
    }
}

#[cfg(feature = "polars")]
fn write_parquet_table(out: &Path, csv_text: &str) -> Result<()> {
    use crate::data::parquet::{write_csv_as_parquet, ColumnKind};
    write_csv_as_parquet(csv_text, out, |name| match name {
        "learning_rate" | "score" | "wall_seconds" => ColumnKind::Float,
        "pretrain_seed" | "seed" | "steps" => ColumnKind::Int,
        _ => ColumnKind::Text,
    })
}

#[cfg(not(feature = "polars"))]
fn write_parquet_table(out: &Path, _csv_text: &str) -> Result<()> {
    Err(Error::data(
        out,
        0,
        "Parquet support is off in this build: rebuild encoderlab with the `polars` feature, or write .csv",
    ))
}

/// Reads a table (CSV, or Parquet with the `polars` feature) row by row: `on_header` gets the
/// column names, then `on_row` each non-blank row with its 1-based line. Nothing is kept here,
/// so a table of millions of rows costs only what the caller keeps.
pub(crate) fn read_table<H>(
    path: &Path,
    on_header: impl FnOnce(&[String]) -> Result<H>,
    mut on_row: impl FnMut(&H, usize, &csv::StringRecord) -> Result<()>,
) -> Result<()> {
    if !path.exists() {
        return Err(Error::data(path, 0, "file not found"));
    }
    if path.extension().is_some_and(|e| e == "parquet") {
        return read_parquet_table(path, on_header, on_row);
    }
    let file = std::fs::File::open(path).map_err(|e| Error::data(path, 0, e.to_string()))?;
    let bar = read_progress(path, file.metadata().map_or(0, |m| m.len()));
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .buffer_capacity(1 << 20)
        .from_reader(bar.wrap_read(file));
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| Error::data(path, 1, e.to_string()))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if headers.iter().all(String::is_empty) {
        return Err(Error::data(path, 0, "empty file: expected a header line"));
    }
    let header = on_header(&headers)?;
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                return Err(Error::data(
                    path,
                    e.position().map_or(0, |p| p.line() as usize),
                    e.to_string(),
                ))
            }
        }
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        on_row(&header, record.position().map_or(0, |p| p.line() as usize), &record)?;
    }
    bar.finish_and_clear();
    Ok(())
}

/// A progress bar over the bytes of a table being read, on stderr where it is a terminal; only
/// for files large enough to take a noticeable time (64 MiB and up).
fn read_progress(path: &Path, bytes: u64) -> indicatif::ProgressBar {
    if bytes < 64 << 20 {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(bytes);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg} {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)")
    {
        bar.set_style(style);
    }
    bar.set_message(format!("reading {}", path.display()));
    bar
}

#[cfg(feature = "polars")]
fn read_parquet_table<H>(
    path: &Path,
    on_header: impl FnOnce(&[String]) -> Result<H>,
    mut on_row: impl FnMut(&H, usize, &csv::StringRecord) -> Result<()>,
) -> Result<()> {
    let records = crate::data::records::read_records(path)?;
    let headers: Vec<String> = records
        .first()
        .map(|r| r.fields.keys().cloned().collect())
        .unwrap_or_default();
    let header = on_header(&headers)?;
    for r in &records {
        let cells: csv::StringRecord = headers
            .iter()
            .map(|h| match r.fields.get(h) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Null) | None => String::new(),
                Some(v) => v.to_string(),
            })
            .collect();
        on_row(&header, r.line + 1, &cells)?;
    }
    Ok(())
}

#[cfg(not(feature = "polars"))]
fn read_parquet_table<H>(
    path: &Path,
    _: impl FnOnce(&[String]) -> Result<H>,
    _: impl FnMut(&H, usize, &csv::StringRecord) -> Result<()>,
) -> Result<()> {
    Err(Error::data(
        path,
        0,
        "Parquet support is off in this build: rebuild encoderlab with the `polars` feature",
    ))
}

/// What the analysis needs to know about a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskMeta {
    /// Family (free text: SC, TC, sequence_classification, …).
    pub family: String,
    /// Metric name.
    pub metric_name: String,
    /// Score of a trivial or collapsed predictor, on the runs' scale.
    pub chance_score: f64,
    /// Best possible score, on the runs' scale (1 or 100).
    pub max_score: f64,
    /// Whether a larger score is better.
    pub higher_is_better: bool,
    /// The worst score the metric can take (the bound on the chance side); `None`: 0 (or the
    /// chance score, if below 0) for a higher-is-better metric, unbounded for a lower-is-better one.
    pub worst_score: Option<f64>,
}

impl TaskMeta {
    /// `v` on the normalised scale: (v − chance) / (max − chance), 0 at chance and 1 at the
    /// best possible score.
    pub fn normalised(&self, v: f64) -> f64 {
        (v - self.chance_score) / (self.max_score - self.chance_score)
    }
}

impl TaskMeta {
    /// Its row of a metadata table (a table mixing rows with and without `worst_score` cannot
    /// be written: give every row one, or none).
    pub fn row(&self, dataset: &str) -> TaskMetaRow {
        TaskMetaRow {
            dataset: dataset.to_string(),
            family: self.family.clone(),
            metric_name: self.metric_name.clone(),
            chance_score: self.chance_score,
            max_score: self.max_score,
            higher_is_better: self.higher_is_better,
            worst_score: self.worst_score,
        }
    }

    /// The closed range a score of this metric lies in, (low, high).
    pub fn score_range(&self) -> (f64, f64) {
        if self.higher_is_better {
            (self.worst_score.unwrap_or(self.chance_score.min(0.0)), self.max_score)
        } else {
            (self.max_score, self.worst_score.unwrap_or(f64::INFINITY))
        }
    }
}

/// Reads a task-metadata CSV ([`TaskMetaRow`]s; `worst_score` is optional); each dataset once.
pub fn read_meta(path: &Path) -> Result<BTreeMap<String, TaskMeta>> {
    let mut out = BTreeMap::new();
    let mut lines: HashMap<String, usize> = HashMap::new();
    let check_header = |headers: &[String]| {
        let detail = format!(
            "(required: {}; optional: worst_score)",
            TaskMetaRow::REQUIRED.join(", ")
        );
        require_columns(path, headers, &TaskMetaRow::REQUIRED, &detail)
    };
    read_table(path, check_header, |headers, line, row| {
        let r: TaskMetaRow = deserialize_row(path, headers, line, row)?;
        let number = |name: &str, v: f64| -> Result<f64> {
            match v.is_finite() {
                true => Ok(v),
                false => Err(Error::data(
                    path,
                    line,
                    format!("column `{name}`: {v:?} is not a finite number"),
                )),
            }
        };
        if r.dataset.is_empty() {
            return Err(Error::data(path, line, "column `dataset`: is empty"));
        }
        if let Some(first) = lines.insert(r.dataset.clone(), line) {
            return Err(Error::data(
                path,
                line,
                format!(
                    "dataset `{}` is listed again (first at line {first}): keep one row per dataset",
                    r.dataset
                ),
            ));
        }
        let higher = r.higher_is_better;
        let meta = TaskMeta {
            family: r.family,
            metric_name: r.metric_name,
            chance_score: number("chance_score", r.chance_score)?,
            max_score: number("max_score", r.max_score)?,
            higher_is_better: higher,
            worst_score: r.worst_score.map(|w| number("worst_score", w)).transpose()?,
        };
        if meta.max_score == meta.chance_score {
            return Err(Error::data(
                path,
                line,
                "max_score equals chance_score: scores cannot be normalised",
            ));
        }
        let (lo, hi) = meta.score_range();
        if !(lo <= meta.chance_score && meta.chance_score <= hi)
            || (meta.higher_is_better != (meta.max_score > meta.chance_score))
        {
            return Err(Error::data(
                path,
                line,
                format!(
                    "chance_score {} must lie between worst_score and max_score, on the worse side of max_score {} (higher_is_better = {higher}; scores range over [{lo}, {hi}])",
                    meta.chance_score, meta.max_score
                ),
            ));
        }
        out.insert(r.dataset, meta);
        Ok(())
    })?;
    Ok(out)
}

/// Task metadata from the CSV `meta`, or (`None`) from the built-in dataset registry; with the
/// name of where it came from, for error messages.
pub fn meta_or_builtin(meta: Option<&Path>) -> Result<(BTreeMap<String, TaskMeta>, std::path::PathBuf)> {
    Ok(match meta {
        Some(m) => (read_meta(m)?, m.to_path_buf()),
        None => (
            builtin_meta(&Registry::builtin()?),
            std::path::PathBuf::from("the built-in dataset registry"),
        ),
    })
}

/// Metadata of every task dataset of the registry (0-1 scale, higher is better).
pub fn builtin_meta(registry: &Registry) -> BTreeMap<String, TaskMeta> {
    registry
        .datasets
        .iter()
        .filter_map(|(name, spec)| {
            let chance = spec.chance_score?;
            let metric = spec.metric?;
            Some((
                name.clone(),
                TaskMeta {
                    family: spec.family.name().to_string(),
                    metric_name: format!("{metric:?}").to_lowercase(),
                    chance_score: chance,
                    max_score: 1.0,
                    higher_is_better: true,
                    worst_score: None,
                },
            ))
        })
        .collect()
}

/// Checks that every dataset of `runs` has metadata and that its scores lie in the range the
/// metadata allows ([`TaskMeta::score_range`]): a score above max_score means the table is on
/// another scale; one below the worst possible score is not a score of that metric.
pub fn check_meta(runs: &[Run], meta: &BTreeMap<String, TaskMeta>, runs_path: &Path, meta_origin: &Path) -> Result<()> {
    for run in runs {
        let Some(m) = meta.get(&run.dataset) else {
            return Err(Error::data(
                runs_path,
                run.line,
                format!(
                    "dataset `{}` has no metadata in {} (known: {}); add a row to a --meta CSV",
                    run.dataset,
                    meta_origin.display(),
                    meta.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        };
        let (lo, hi) = m.score_range();
        let tol = |b: f64| 1e-9 * b.abs() + 1e-12;
        if run.score.is_finite() && (run.score < lo - tol(lo) || run.score > hi + tol(hi)) {
            let hint = if run.score > hi {
                " is the table on a 0-100 scale? give a --meta CSV with max_score 100"
            } else {
                " a metric that can go lower (a correlation, say) needs a worst_score column in a --meta CSV"
            };
            return Err(Error::data(
                runs_path,
                run.line,
                format!(
                    "column `score`: {} of `{}` is outside [{lo}, {hi}], the range its metadata in {} allows;{hint}",
                    run.score,
                    run.dataset,
                    meta_origin.display()
                ),
            ));
        }
    }
    Ok(())
}
