//! The analysis in a notebook: [`Report`] holds every table of `analysis report` for a runs
//! table, shows any of them as HTML and any plot inline; [`results_table`] summarises
//! fine-tuning results over seeds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::display::{emit, html_table, short};
use crate::error::{Error, Result};
use crate::finetune::{RunResult, Status};
use crate::stats::plots::{figures, plot_tables, Figure, PlotTables};
use crate::stats::report::{build_tables, write_report, ReportConfig, RunsIndex, ScoreRanges, Table};
use crate::stats::runs::{check_meta, meta_or_builtin, read_runs};

/// Every table of the analysis of one runs table.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The runs table it was built from.
    pub runs: PathBuf,
    /// The settings (seed, confidence, resamples, NaN policy).
    pub config: ReportConfig,
    /// Systems (`model/objective`), in order of first appearance.
    pub systems: Vec<String>,
    /// Datasets.
    pub datasets: Vec<String>,
    /// The tables, as `analysis report` writes them.
    pub tables: Vec<Table>,
    /// Each dataset's score range (the plots draw intervals within it).
    pub ranges: ScoreRanges,
}

impl Report {
    /// The report of `runs` (CSV or Parquet) with the default settings; task metadata from a
    /// `meta.csv` beside it (as `../shared/data/paper_runs/` has), else the built-in registry.
    pub fn from_runs(runs: impl AsRef<Path>) -> Result<Self> {
        let runs = runs.as_ref();
        let beside = runs.with_file_name("meta.csv");
        let meta = beside.exists().then_some(beside);
        Self::new(runs, meta.as_deref(), ReportConfig::default())
    }

    /// The report of `runs` with task metadata from `meta` (a CSV as `analysis report --meta`
    /// takes; `None`: the built-in registry) and `config`.
    pub fn new(runs: impl AsRef<Path>, meta: Option<&Path>, config: ReportConfig) -> Result<Self> {
        Self::with_instances(runs, meta, None, config)
    }

    /// [`Report::new`] with per-instance scores (`analysis report --instances`: a folder of
    /// fine-tuning records or a CSV), which turn on the test-instance level of the hierarchical
    /// bootstrap, `instance_tests` and `ranking_clusters`.
    pub fn with_instances(
        runs: impl AsRef<Path>,
        meta: Option<&Path>,
        instances: Option<&Path>,
        config: ReportConfig,
    ) -> Result<Self> {
        config.validate()?;
        let path = runs.as_ref();
        let rows = read_runs(path)?;
        let (meta, origin) = meta_or_builtin(meta)?;
        check_meta(&rows, &meta, path, &origin)?;
        let mut index = RunsIndex::new(&rows, &meta, config.nan_policy);
        if let Some(instances) = instances {
            index.attach_instances(crate::stats::instances::read_instances(instances)?)?;
        }
        Ok(Self {
            runs: path.to_path_buf(),
            systems: index.systems.iter().map(|s| format!("{}/{}", s.0, s.1)).collect(),
            datasets: index.datasets.clone(),
            tables: build_tables(&index, &config)?,
            ranges: index.score_ranges(),
            config,
        })
    }

    /// The table `name` (`best_lr` or `best_lr.csv`).
    pub fn table(&self, name: &str) -> Result<Table> {
        let file = if name.ends_with(".csv") {
            name.to_string()
        } else {
            format!("{name}.csv")
        };
        self.tables.iter().find(|t| t.name == file).cloned().ok_or_else(|| {
            Error::config(
                "table",
                format!("no table `{name}`; tables: {}", self.names().join(", ")),
            )
        })
    }

    /// The tables' names.
    pub fn names(&self) -> Vec<&'static str> {
        self.tables.iter().map(|t| t.name.trim_end_matches(".csv")).collect()
    }

    /// Every figure of the report.
    pub fn figures(&self) -> Result<Vec<Figure>> {
        Ok(figures(&PlotTables::of(&self.tables, self.ranges.clone())?))
    }

    /// The figure `name` (the report's display lists them).
    pub fn plot(&self, name: &str) -> Result<Figure> {
        let all = self.figures()?;
        let names: Vec<&str> = all.iter().map(|f| f.name).collect();
        let joined = names.join(", ");
        all.into_iter()
            .find(|f| f.name == name)
            .ok_or_else(|| Error::config("plot", format!("no plot `{name}`; plots: {joined}")))
    }

    /// Writes the CSVs and the plots to `out`, as `analysis report --out` does.
    pub fn save(&self, out: impl AsRef<Path>) -> Result<()> {
        write_report(&self.tables, &plot_tables(&self.tables, &self.ranges)?, out.as_ref())
    }

    /// Shows what the report covers and the names of its tables and plots.
    pub fn evcxr_display(&self) {
        let rows = vec![
            vec!["runs table".into(), self.runs.display().to_string()],
            vec!["systems".into(), self.systems.join(", ")],
            vec!["datasets".into(), self.datasets.join(", ")],
            vec!["tables".into(), self.names().join(", ")],
            vec![
                "plots".into(),
                self.figures()
                    .map(|f| f.iter().map(|f| f.name).collect::<Vec<_>>().join(", "))
                    .unwrap_or_else(|e| e.to_string()),
            ],
        ];
        emit("text/html", &html_table("analysis report", &["", ""], &rows));
    }
}

/// Fine-tuning results summarised over seeds: one row per (model, objective, dataset, learning
/// rate) with the runs, the failed ones, and the mean and standard deviation (n − 1) of the
/// validation and test scores of the runs that did not fail or diverge.
pub fn results_table(results: &[RunResult]) -> Table {
    type Key = (String, String, String, String, u64);
    let mut groups: BTreeMap<Key, Vec<&RunResult>> = BTreeMap::new();
    for r in results {
        let key = (
            r.model.clone(),
            r.objective.clone(),
            r.dataset.clone(),
            r.metric.clone(),
            r.learning_rate.to_bits(),
        );
        groups.entry(key).or_default().push(r);
    }
    let stats = |v: &[f64]| -> (String, String) {
        if v.is_empty() {
            return ("-".into(), "-".into());
        }
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let sd = if v.len() > 1 {
            (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
        } else {
            f64::NAN
        };
        (short(mean), short(sd))
    };
    let rows = groups
        .into_iter()
        .map(|((model, objective, dataset, metric, lr), runs)| {
            let ok: Vec<&&RunResult> = runs.iter().filter(|r| r.status == Status::Ok).collect();
            let val: Vec<f64> = ok.iter().filter_map(|r| r.validation).collect();
            let test: Vec<f64> = ok.iter().filter_map(|r| r.test).collect();
            let (vm, vs) = stats(&val);
            let (tm, ts) = stats(&test);
            vec![
                model,
                objective,
                dataset,
                metric,
                format!("{:e}", f64::from_bits(lr)),
                runs.len().to_string(),
                (runs.len() - ok.len()).to_string(),
                vm,
                vs,
                tm,
                ts,
            ]
        })
        .collect();
    Table {
        name: "results.csv",
        header: vec![
            "model",
            "objective",
            "dataset",
            "metric",
            "learning_rate",
            "runs",
            "failed_or_diverged",
            "validation_mean",
            "validation_sd",
            "test_mean",
            "test_sd",
        ],
        rows,
    }
}
