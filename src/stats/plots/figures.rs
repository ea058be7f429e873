//! The report's tables → figures. Each builder reads the columns it needs by name, so the plots
//! show exactly the numbers of the CSVs, whether the tables were just computed or read back
//! from a report folder.

use std::collections::HashMap;

use super::{Figure, Mark, Panel, Point, Series};
use crate::error::{Error, Result};
use crate::stats::report::Table;

/// The tables the plots are drawn from.
pub const PLOT_TABLES: [&str; 5] = [
    "group_stats.csv",
    "best_lr.csv",
    "bootstrap_ci.csv",
    "expected_max.csv",
    "performance_profile.csv",
];

/// Tables drawn when present (a report folder written before them lacks them).
pub const OPTIONAL_PLOT_TABLES: [&str; 1] = ["tests_hierarchical.csv"];

/// The most pairs of systems the interval figure shows (the CSV holds them all).
pub const MAX_PAIRS: usize = 30;

/// A borrowed table: its name, header and rows of cells.
#[derive(Debug, Clone)]
pub struct View<'a> {
    name: &'a str,
    header: Vec<&'a str>,
    rows: &'a [Vec<String>],
}

impl<'a> View<'a> {
    /// A view of `rows` under `header`, named `name` in errors.
    pub fn new(name: &'a str, header: Vec<&'a str>, rows: &'a [Vec<String>]) -> Self {
        Self { name, header, rows }
    }

    /// A view of a report table.
    pub fn of(table: &'a Table) -> Self {
        Self::new(table.name, table.header.clone(), &table.rows)
    }

    fn col(&self, column: &str) -> Result<usize> {
        self.header.iter().position(|h| *h == column).ok_or_else(|| {
            Error::data(
                self.name,
                1,
                format!("no column `{column}`; rewrite the report with `analysis report`"),
            )
        })
    }

    fn cell(&self, row: usize, col: usize) -> Result<&'a str> {
        self.rows[row]
            .get(col)
            .map(String::as_str)
            .ok_or_else(|| Error::data(self.name, row + 2, format!("row has no column {}", col + 1)))
    }

    fn num(&self, row: usize, col: usize) -> Result<f64> {
        let cell = self.cell(row, col)?;
        cell.parse::<f64>().map_err(|_| {
            Error::data(
                self.name,
                row + 2,
                format!("`{}` = `{cell}` is not a number", self.header[col]),
            )
        })
    }
}

fn find<'v, 'a>(views: &'v [View<'a>], name: &str) -> Result<&'v View<'a>> {
    views
        .iter()
        .find(|v| v.name == name)
        .ok_or_else(|| Error::data(name, 0, "table missing: the plots need every table of the report"))
}

/// "95" for 0.95.
fn percent(level: f64) -> String {
    format!("{}", (level * 1000.0).round() / 10.0)
}

/// A learning rate as a tick label: `1e-5`, `2e-4`.
fn lr_label(lr: f64) -> String {
    format!("{lr:e}")
}

/// Systems and datasets in order of first appearance in `best_lr.csv`, and the (selection
/// split, report split, best learning rate) of every (system, dataset).
struct Layout {
    systems: Vec<(String, String)>,
    datasets: Vec<String>,
    cells: HashMap<(usize, usize), (String, String, f64)>,
    /// Where each system and dataset is in `systems` and `datasets` (tables of 10⁶ rows are
    /// looked up row by row).
    system_at: HashMap<(String, String), usize>,
    dataset_at: HashMap<String, usize>,
    /// Datasets in the report; only the first [`MAX_PANELS`] get a panel.
    total_datasets: usize,
}

/// The most datasets a figure draws a panel for (16 rows of three): a figure of 667 panels is
/// 85,000 pixels tall, more than image viewers open, and reads as nothing. Beyond it the
/// figures show the first ones (in the report's order) and say so; the CSVs hold them all.
pub const MAX_PANELS: usize = 48;

impl Layout {
    fn new(best: &View) -> Result<Self> {
        let c: Vec<usize> = [
            "model",
            "objective",
            "dataset",
            "select_split",
            "report_split",
            "best_lr",
        ]
        .iter()
        .map(|h| best.col(h))
        .collect::<Result<_>>()?;
        let mut out = Self {
            systems: Vec::new(),
            datasets: Vec::new(),
            cells: HashMap::new(),
            system_at: HashMap::new(),
            dataset_at: HashMap::new(),
            total_datasets: 0,
        };
        for r in 0..best.rows.len() {
            let system = (best.cell(r, c[0])?.to_string(), best.cell(r, c[1])?.to_string());
            let s = intern(&mut out.systems, &mut out.system_at, system);
            let d = intern(&mut out.datasets, &mut out.dataset_at, best.cell(r, c[2])?.to_string());
            let split = |i: usize| best.cell(r, c[i]).map(str::to_string);
            out.cells.insert((s, d), (split(3)?, split(4)?, best.num(r, c[5])?));
        }
        out.total_datasets = out.datasets.len();
        if out.datasets.len() > MAX_PANELS {
            out.datasets.truncate(MAX_PANELS);
            out.dataset_at.retain(|_, d| *d < MAX_PANELS);
            out.cells.retain(|&(_, d), _| d < MAX_PANELS);
        }
        Ok(out)
    }

    fn legend(&self) -> Vec<String> {
        self.systems.iter().map(|(m, o)| format!("{m} ({o})")).collect()
    }

    fn system(&self, model: &str, objective: &str) -> Option<usize> {
        self.system_at.get(&(model.to_string(), objective.to_string())).copied()
    }

    fn dataset(&self, name: &str) -> Option<usize> {
        self.dataset_at.get(name).copied()
    }
}

/// The position of `item` in `list`, appended (and indexed in `at`) when new.
fn intern<T: Clone + Eq + std::hash::Hash>(list: &mut Vec<T>, at: &mut HashMap<T, usize>, item: T) -> usize {
    *at.entry(item.clone()).or_insert_with(|| {
        list.push(item);
        list.len() - 1
    })
}

fn index_of<T: PartialEq>(list: &mut Vec<T>, item: T) -> usize {
    match list.iter().position(|x| *x == item) {
        Some(i) => i,
        None => {
            list.push(item);
            list.len() - 1
        }
    }
}

/// Rows of `view` grouped by (system, dataset), in row order; rows of unknown systems or
/// datasets (absent from `best_lr.csv`) are skipped.
fn by_cell(view: &View, layout: &Layout) -> Result<HashMap<(usize, usize), Vec<usize>>> {
    let (cm, co, cd) = (view.col("model")?, view.col("objective")?, view.col("dataset")?);
    let mut out: HashMap<(usize, usize), Vec<usize>> = HashMap::new();
    for r in 0..view.rows.len() {
        let s = layout.system(view.cell(r, cm)?, view.cell(r, co)?);
        let d = layout.dataset(view.cell(r, cd)?);
        if let (Some(s), Some(d)) = (s, d) {
            out.entry((s, d)).or_default().push(r);
        }
    }
    Ok(out)
}

/// Every figure of the report, from its tables (see [`PLOT_TABLES`]).
pub fn figures(views: &[View]) -> Result<Vec<Figure>> {
    let layout = Layout::new(find(views, "best_lr.csv")?)?;
    let level = confidence(find(views, "bootstrap_ci.csv")?)?;
    let groups = find(views, "group_stats.csv")?;
    let mut per_dataset = vec![
        lr_figure(groups, &layout, &level, false)?,
        lr_figure(groups, &layout, &level, true)?,
        best_figure(find(views, "bootstrap_ci.csv")?, &layout, &level)?,
        expected_max_figure(find(views, "expected_max.csv")?, &layout)?,
    ];
    if layout.total_datasets > layout.datasets.len() {
        for f in &mut per_dataset {
            f.title.push_str(&format!(
                " (first {} of {} datasets; all in the CSVs)",
                layout.datasets.len(),
                layout.total_datasets
            ));
        }
    }
    per_dataset.push(profile_figure(
        find(views, "performance_profile.csv")?,
        &layout,
        &level,
    )?);
    if let Some(h) = views.iter().find(|v| v.name == "tests_hierarchical.csv") {
        if !h.rows.is_empty() {
            per_dataset.push(hierarchical_figure(h, &level)?);
        }
    }
    Ok(per_dataset)
}

/// The confidence level of the report, as a percentage label.
fn confidence(boot: &View) -> Result<String> {
    let col = boot.col("confidence_level")?;
    Ok(percent(if boot.rows.is_empty() { 0.95 } else { boot.num(0, col)? }))
}

/// Score (or seed std, when `spread`) against learning rate on the selection split.
fn lr_figure(groups: &View, layout: &Layout, level: &str, spread: bool) -> Result<Figure> {
    let rows = by_cell(groups, layout)?;
    let c: Vec<usize> = ["split", "learning_rate", "mean", "t_ci_low", "t_ci_high", "std"]
        .iter()
        .map(|h| groups.col(h))
        .collect::<Result<_>>()?;
    let mut panels = Vec::new();
    for (d, dataset) in layout.datasets.iter().enumerate() {
        let (mut series, mut lrs, mut splits) = (Vec::new(), Vec::<f64>::new(), Vec::<String>::new());
        for s in 0..layout.systems.len() {
            let Some((select, _, best)) = layout.cells.get(&(s, d)) else {
                continue;
            };
            let mut points = Vec::new();
            for &r in rows.get(&(s, d)).map_or(&[][..], Vec::as_slice) {
                if groups.cell(r, c[0])? != select {
                    continue;
                }
                let lr = groups.num(r, c[1])?;
                let mut p = if spread {
                    Point::at(lr.log10(), groups.num(r, c[5])?)
                } else {
                    Point {
                        lo: groups.num(r, c[3])?,
                        hi: groups.num(r, c[4])?,
                        ..Point::at(lr.log10(), groups.num(r, c[2])?)
                    }
                };
                p.emphasis = !spread && lr == *best;
                points.push((lr, p));
                lrs.push(lr);
            }
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            index_of(&mut splits, select.clone());
            series.push(Series {
                system: s,
                mark: Mark::Line,
                points: points.into_iter().map(|(_, p)| p).collect(),
            });
        }
        lrs.sort_by(|a, b| a.total_cmp(b));
        lrs.dedup();
        panels.push(Panel {
            title: format!("{dataset} ({})", splits.join(", ")),
            x_label: "learning rate".into(),
            y_label: if spread {
                "std over seeds"
            } else {
                "mean score over seeds"
            }
            .into(),
            x_ticks: Some(lrs.iter().map(|&lr| (lr.log10(), lr_label(lr))).collect()),
            y_ticks: None,
            series,
        });
    }
    Ok(if spread {
        Figure {
            name: "seed_spread",
            title: "Seed spread at each learning rate".into(),
            legend: layout.legend(),
            panels,
            note: "Standard deviation of the score over seeds (selection split). Lower: more stable fine-tuning."
                .into(),
        }
    } else {
        Figure {
            name: "lr_curves",
            title: "Score against learning rate".into(),
            legend: layout.legend(),
            panels,
            note: format!(
                "Mean over seeds on the selection split; band: {level}% t interval; large dot: the learning rate selected."
            ),
        }
    })
}

/// Mean score at the best learning rate, with its BCa interval, one row per system.
fn best_figure(boot: &View, layout: &Layout, level: &str) -> Result<Figure> {
    let rows = by_cell(boot, layout)?;
    let c: Vec<usize> = ["method", "estimate", "ci_low", "ci_high"]
        .iter()
        .map(|h| boot.col(h))
        .collect::<Result<_>>()?;
    let legend = layout.legend();
    let mut panels = Vec::new();
    for (d, dataset) in layout.datasets.iter().enumerate() {
        let present: Vec<usize> = (0..layout.systems.len())
            .filter(|s| layout.cells.contains_key(&(*s, d)))
            .collect();
        let (mut series, mut ticks, mut splits) = (Vec::new(), Vec::new(), Vec::<String>::new());
        for (i, &s) in present.iter().enumerate() {
            let y = (present.len() - 1 - i) as f64;
            ticks.push((y, legend[s].clone()));
            index_of(&mut splits, layout.cells[&(s, d)].1.clone());
            for &r in rows.get(&(s, d)).map_or(&[][..], Vec::as_slice) {
                if boot.cell(r, c[0])? == "BCa" {
                    series.push(Series {
                        system: s,
                        mark: Mark::Whisker,
                        points: vec![Point {
                            lo: boot.num(r, c[2])?,
                            hi: boot.num(r, c[3])?,
                            ..Point::at(boot.num(r, c[1])?, y)
                        }],
                    });
                }
            }
        }
        panels.push(Panel {
            title: format!("{dataset} ({})", splits.join(", ")),
            x_label: "mean score at the best learning rate".into(),
            y_label: String::new(),
            x_ticks: None,
            y_ticks: Some(ticks),
            series,
        });
    }
    Ok(Figure {
        name: "best_lr_scores",
        title: "Score at the best learning rate".into(),
        legend,
        panels,
        note: format!(
            "Learning rate chosen on the selection split, score on the report split (in brackets); whisker: {level}% BCa bootstrap interval."
        ),
    })
}

/// Expected best score against the number of runs tried (budget `all_runs`), ±1 sd.
fn expected_max_figure(em: &View, layout: &Layout) -> Result<Figure> {
    let rows = by_cell(em, layout)?;
    let c: Vec<usize> = ["split", "budget", "n", "expected_max", "sd"]
        .iter()
        .map(|h| em.col(h))
        .collect::<Result<_>>()?;
    let mut panels = Vec::new();
    for (d, dataset) in layout.datasets.iter().enumerate() {
        let (mut series, mut splits) = (Vec::new(), Vec::<String>::new());
        for s in 0..layout.systems.len() {
            let Some((select, _, _)) = layout.cells.get(&(s, d)) else {
                continue;
            };
            let mut points = Vec::new();
            for &r in rows.get(&(s, d)).map_or(&[][..], Vec::as_slice) {
                if em.cell(r, c[0])? == select && em.cell(r, c[1])? == "all_runs" {
                    let (y, sd) = (em.num(r, c[3])?, em.num(r, c[4])?);
                    points.push(Point {
                        lo: y - sd,
                        hi: y + sd,
                        ..Point::at(em.num(r, c[2])?, y)
                    });
                }
            }
            points.sort_by(|a, b| a.x.total_cmp(&b.x));
            index_of(&mut splits, select.clone());
            series.push(Series {
                system: s,
                mark: Mark::Line,
                points,
            });
        }
        panels.push(Panel {
            title: format!("{dataset} ({})", splits.join(", ")),
            x_label: "fine-tuning runs tried (learning rates × seeds)".into(),
            y_label: "expected best score".into(),
            x_ticks: None,
            y_ticks: None,
            series,
        });
    }
    Ok(Figure {
        name: "expected_max_curves",
        title: "Expected best score against tuning budget".into(),
        legend: layout.legend(),
        panels,
        note:
            "Expected maximum of n runs drawn without replacement from the whole grid (Dodge et al. 2019); band: ±1 sd."
                .into(),
    })
}

/// Fraction of normalised scores above each threshold, with its bootstrap band.
fn profile_figure(prof: &View, layout: &Layout, level: &str) -> Result<Figure> {
    let c: Vec<usize> = ["model", "objective", "tau", "fraction_above", "ci_low", "ci_high"]
        .iter()
        .map(|h| prof.col(h))
        .collect::<Result<_>>()?;
    let mut series: Vec<Series> = Vec::new();
    for r in 0..prof.rows.len() {
        let Some(s) = layout.system(prof.cell(r, c[0])?, prof.cell(r, c[1])?) else {
            continue;
        };
        let p = Point {
            lo: prof.num(r, c[4])?,
            hi: prof.num(r, c[5])?,
            ..Point::at(prof.num(r, c[2])?, prof.num(r, c[3])?)
        };
        match series.iter_mut().find(|x| x.system == s) {
            Some(x) => x.points.push(p),
            None => series.push(Series {
                system: s,
                mark: Mark::Line,
                points: vec![p],
            }),
        }
    }
    for x in &mut series {
        x.points.sort_by(|a, b| a.x.total_cmp(&b.x));
    }
    Ok(Figure {
        name: "performance_profile",
        title: "Performance profile".into(),
        legend: layout.legend(),
        panels: vec![Panel {
            title: "all datasets".into(),
            x_label: "normalised score threshold τ".into(),
            y_label: "fraction of runs with score > τ".into(),
            x_ticks: None,
            y_ticks: None,
            series,
        }],
        note: format!(
            "Scores normalised per dataset ((score − chance) / (max − chance)), failed runs at chance; band: {level}% stratified bootstrap interval."
        ),
    })
}

/// A pair's label, estimate and intervals (naive, within datasets, with datasets).
type PairIntervals = (String, f64, [(f64, f64); 3]);

/// Each pair's difference with three intervals: the naive one (every run an independent draw),
/// the hierarchical one within datasets (seeds and, where given, test instances) and the one
/// that resamples datasets too. The first [`MAX_PAIRS`] pairs.
fn hierarchical_figure(h: &View, level: &str) -> Result<Figure> {
    let c: Vec<usize> = [
        "model_x",
        "objective_x",
        "model_y",
        "objective_y",
        "dataset_bootstrap",
        "mean_diff",
        "percentile_low",
        "percentile_high",
        "naive_low",
        "naive_high",
    ]
    .iter()
    .map(|name| h.col(name))
    .collect::<Result<_>>()?;
    let mut pairs: Vec<PairIntervals> = Vec::new();
    let total_rows = h.rows.len();
    for r in 0..total_rows {
        let label = format!(
            "{}/{} − {}/{}",
            h.cell(r, c[0])?,
            h.cell(r, c[1])?,
            h.cell(r, c[2])?,
            h.cell(r, c[3])?
        );
        let k = match pairs.iter().position(|p| p.0 == label) {
            Some(k) => k,
            None => {
                pairs.push((label, h.num(r, c[5])?, [(f64::NAN, f64::NAN); 3]));
                pairs.len() - 1
            }
        };
        let interval = (h.num(r, c[6])?, h.num(r, c[7])?);
        pairs[k].2[0] = (h.num(r, c[8])?, h.num(r, c[9])?);
        pairs[k].2[if h.cell(r, c[4])? == "True" { 2 } else { 1 }] = interval;
    }
    let total = pairs.len();
    pairs.truncate(MAX_PAIRS);
    let mut series = Vec::new();
    let mut ticks = Vec::new();
    for (p, (label, estimate, intervals)) in pairs.iter().enumerate() {
        let y = (pairs.len() - 1 - p) as f64;
        ticks.push((y, label.clone()));
        for (kind, (lo, hi)) in intervals.iter().enumerate() {
            series.push(Series {
                system: kind,
                mark: Mark::Whisker,
                points: vec![Point {
                    lo: *lo,
                    hi: *hi,
                    ..Point::at(*estimate, y + 0.25 - 0.25 * kind as f64)
                }],
            });
        }
    }
    let mut title = "Difference between systems: naive and hierarchical intervals".to_string();
    if total > pairs.len() {
        title.push_str(&format!(" (first {} of {total} pairs; all in the CSV)", pairs.len()));
    }
    Ok(Figure {
        name: "hierarchical_intervals",
        title,
        legend: vec![
            "naive: every run independent".into(),
            "hierarchical: seeds (and test set)".into(),
            "hierarchical: datasets too".into(),
        ],
        panels: vec![Panel {
            title: "normalised score, x − y".into(),
            x_label: "difference of normalised scores".into(),
            y_label: String::new(),
            x_ticks: None,
            y_ticks: Some(ticks),
            series,
        }],
        note: format!(
            "{level}% percentile bootstrap intervals of the difference (tests_hierarchical.csv): naive pools every run as an independent draw; hierarchical resamples pretraining seeds, then fine-tuning seeds, and test instances where given; the third resamples datasets first."
        ),
    })
}
