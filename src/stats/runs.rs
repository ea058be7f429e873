//! The runs table the analysis reads (CSV or Parquet): one row per fine-tuning run with
//! `model, objective, [family], dataset, learning_rate, seed, split, [metric], score, [status]`,
//! and the task metadata (`dataset, family, metric_name, chance_score, max_score,
//! higher_is_better`). A run whose score is empty or NaN, or whose status is not `ok`, is a
//! failed run (its score is NaN here). Errors name the file, line and column.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

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
    /// Fine-tuning seed (the replicate).
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

/// Columns every runs table must have.
pub const REQUIRED_COLUMNS: [&str; 7] = [
    "model",
    "objective",
    "dataset",
    "learning_rate",
    "seed",
    "split",
    "score",
];

fn column_index(headers: &[String], name: &str) -> Option<usize> {
    headers.iter().position(|h| h == name)
}

/// Reads a runs table (`.csv`, or `.parquet` with the `polars` feature).
pub fn read_runs(path: &Path) -> Result<Vec<Run>> {
    let (headers, rows) = read_table(path)?;
    for col in REQUIRED_COLUMNS {
        if column_index(&headers, col).is_none() {
            return Err(Error::data(
                path,
                1,
                format!(
                    "missing required column `{col}` (columns: {}); required: {}",
                    headers.join(", "),
                    REQUIRED_COLUMNS.join(", ")
                ),
            ));
        }
    }
    let idx = |name: &str| column_index(&headers, name);
    let mut runs = Vec::with_capacity(rows.len());
    let mut seen: HashMap<(String, String, String, u64, i64, String), usize> = HashMap::new();
    for (line, row) in rows {
        let get = |name: &str| idx(name).map(|i| row.get(i).map(String::as_str).unwrap_or("").trim());
        let cell = |name: &str| get(name).unwrap_or("");
        let err = |name: &str, reason: String| Error::data(path, line, format!("column `{name}`: {reason}"));
        let text = |name: &str| -> Result<String> {
            let v = cell(name);
            if v.is_empty() {
                return Err(err(name, "is empty".into()));
            }
            Ok(v.to_string())
        };
        let learning_rate: f64 = cell("learning_rate")
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v > 0.0)
            .ok_or_else(|| {
                err(
                    "learning_rate",
                    format!("{:?} is not a positive number", cell("learning_rate")),
                )
            })?;
        let seed: i64 = cell("seed")
            .parse()
            .map_err(|_| err("seed", format!("{:?} is not an integer", cell("seed"))))?;
        let raw = cell("score");
        let parsed = if raw.is_empty() || raw.eq_ignore_ascii_case("nan") {
            f64::NAN
        } else {
            raw.parse::<f64>()
                .map_err(|_| err("score", format!("{raw:?} is not a number")))?
        };
        let ok = get("status").is_none_or(|s| s.is_empty() || s == "ok");
        let optional = |name: &str| get(name).filter(|v| !v.is_empty()).map(str::to_string);
        let run = Run {
            model: text("model")?,
            objective: text("objective")?,
            family: optional("family"),
            dataset: text("dataset")?,
            learning_rate,
            seed,
            split: text("split")?,
            metric: optional("metric"),
            score: if ok { parsed } else { f64::NAN },
            line,
        };
        let key = (
            run.model.clone(),
            run.objective.clone(),
            run.dataset.clone(),
            run.learning_rate.to_bits(),
            run.seed,
            run.split.clone(),
        );
        if let Some(first) = seen.insert(key, line) {
            return Err(Error::data(
                path,
                line,
                format!(
                    "duplicate run: the same (model, objective, dataset, learning_rate, seed, split) as line {first}; keep one row per run"
                ),
            ));
        }
        runs.push(run);
    }
    if runs.is_empty() {
        return Err(Error::data(path, 0, "empty runs table: no row after the header"));
    }
    Ok(runs)
}

type Rows = Vec<(usize, Vec<String>)>;

/// Writes a runs table given as CSV text to `out`, atomically: as is for `.csv`, typed
/// (`learning_rate`, `score`, `wall_seconds` floats; `seed`, `steps` integers; the rest text)
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
        "seed" | "steps" => ColumnKind::Int,
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

fn read_table(path: &Path) -> Result<(Vec<String>, Rows)> {
    if !path.exists() {
        return Err(Error::data(path, 0, "file not found"));
    }
    if path.extension().is_some_and(|e| e == "parquet") {
        return read_parquet_table(path);
    }
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| Error::data(path, 0, e.to_string()))?;
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| Error::data(path, 1, e.to_string()))?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    if headers.iter().all(String::is_empty) {
        return Err(Error::data(path, 0, "empty file: expected a header line"));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record =
            record.map_err(|e| Error::data(path, e.position().map_or(0, |p| p.line() as usize), e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        rows.push((line, record.iter().map(str::to_string).collect()));
    }
    Ok((headers, rows))
}

#[cfg(feature = "polars")]
fn read_parquet_table(path: &Path) -> Result<(Vec<String>, Rows)> {
    let records = crate::data::records::read_records(path)?;
    let headers: Vec<String> = records
        .first()
        .map(|r| r.fields.keys().cloned().collect())
        .unwrap_or_default();
    let rows = records
        .iter()
        .map(|r| {
            let cells = headers
                .iter()
                .map(|h| match r.fields.get(h) {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(serde_json::Value::Null) | None => String::new(),
                    Some(v) => v.to_string(),
                })
                .collect();
            (r.line + 1, cells)
        })
        .collect();
    Ok((headers, rows))
}

#[cfg(not(feature = "polars"))]
fn read_parquet_table(path: &Path) -> Result<(Vec<String>, Rows)> {
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
}

/// Reads a task-metadata CSV.
pub fn read_meta(path: &Path) -> Result<BTreeMap<String, TaskMeta>> {
    let (headers, rows) = read_table(path)?;
    let cols = [
        "dataset",
        "family",
        "metric_name",
        "chance_score",
        "max_score",
        "higher_is_better",
    ];
    for col in cols {
        if column_index(&headers, col).is_none() {
            return Err(Error::data(
                path,
                1,
                format!("missing required column `{col}` (required: {})", cols.join(", ")),
            ));
        }
    }
    let mut out = BTreeMap::new();
    for (line, row) in rows {
        let cell = |name: &str| {
            column_index(&headers, name)
                .and_then(|i| row.get(i))
                .map_or("", |s| s.trim())
        };
        let number =
            |name: &str| -> Result<f64> {
                cell(name).parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| {
                    Error::data(path, line, format!("column `{name}`: {:?} is not a number", cell(name)))
                })
            };
        let higher = match cell("higher_is_better").to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            other => {
                return Err(Error::data(
                    path,
                    line,
                    format!("column `higher_is_better`: {other:?} is not true/false"),
                ))
            }
        };
        let meta = TaskMeta {
            family: cell("family").to_string(),
            metric_name: cell("metric_name").to_string(),
            chance_score: number("chance_score")?,
            max_score: number("max_score")?,
            higher_is_better: higher,
        };
        if meta.max_score == meta.chance_score {
            return Err(Error::data(
                path,
                line,
                "max_score equals chance_score: scores cannot be normalised",
            ));
        }
        out.insert(cell("dataset").to_string(), meta);
    }
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
                },
            ))
        })
        .collect()
}

/// Checks that every dataset of `runs` has metadata and that its scores fit the metadata's
/// scale (a score above max_score means the table is on another scale).
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
        let top = m.max_score.max(m.chance_score);
        if run.score.is_finite() && run.score > top * (1.0 + 1e-9) + 1e-12 {
            return Err(Error::data(
                runs_path,
                run.line,
                format!(
                    "score {} of `{}` is above its max_score {}: is the table on a 0-100 scale? give a --meta CSV with max_score 100",
                    run.score, run.dataset, m.max_score
                ),
            ));
        }
    }
    Ok(())
}
