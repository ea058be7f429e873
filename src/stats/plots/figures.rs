//! The report's tables → figures. The figures are drawn from the report's rows
//! ([`PlotTables`]), so the plots show exactly the numbers of the CSVs, whether the tables were
//! just computed or read back from a report folder.

use std::collections::HashMap;
use std::path::Path;

use super::{Figure, Mark, Panel, Point, Series};
use crate::artifacts::read_report;
use crate::artifacts::report::{
    BestLrRow, BootstrapRow, ExpectedMaxRow, GroupStatsRow, HierarchicalTestRow, ProfileRow,
};
use crate::artifacts::ReportRow;
use crate::error::{Error, Result};
use crate::stats::report::{ScoreRanges, Table};

/// The most pairs of systems the interval figure shows (the CSV holds them all).
pub const MAX_PAIRS: usize = 30;

/// The report's tables the figures are drawn from, as rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlotTables {
    /// `group_stats.csv`.
    pub group_stats: Vec<GroupStatsRow>,
    /// `best_lr.csv`: its systems and datasets, in order, are the figures' legend and panels.
    pub best_lr: Vec<BestLrRow>,
    /// `bootstrap_ci.csv`.
    pub bootstrap: Vec<BootstrapRow>,
    /// `expected_max.csv`.
    pub expected_max: Vec<ExpectedMaxRow>,
    /// `performance_profile.csv`.
    pub profile: Vec<ProfileRow>,
    /// `tests_hierarchical.csv` (empty: none, or a report written before it).
    pub hierarchical: Vec<HierarchicalTestRow>,
    /// Each dataset's score range: intervals are drawn within it (a t interval or ±1 sd near a
    /// perfect score would otherwise leave it). A dataset without one is drawn unclipped.
    pub ranges: ScoreRanges,
}

impl PlotTables {
    /// The rows of a report's tables, just built, and the datasets' score `ranges`.
    pub fn of(tables: &[Table], ranges: ScoreRanges) -> Result<Self> {
        fn rows<R: ReportRow>(tables: &[Table], required: bool) -> Result<Vec<R>> {
            match tables.iter().find(|t| t.name == R::FILE) {
                Some(t) => t.rows_of(),
                None if required => Err(Error::data(
                    R::FILE,
                    0,
                    "table missing: the plots need every table of the report",
                )),
                None => Ok(Vec::new()),
            }
        }
        Ok(Self {
            group_stats: rows(tables, true)?,
            best_lr: rows(tables, true)?,
            bootstrap: rows(tables, true)?,
            expected_max: rows(tables, true)?,
            profile: rows(tables, true)?,
            hierarchical: rows(tables, false)?,
            ranges,
        })
    }

    /// The rows of the report folder `dir` (`tests_hierarchical.csv` where it has one), and the
    /// datasets' score `ranges`.
    pub fn read(dir: &Path, ranges: ScoreRanges) -> Result<Self> {
        let hierarchical = match dir.join(HierarchicalTestRow::FILE).exists() {
            true => read_report(dir)?,
            false => Vec::new(),
        };
        Ok(Self {
            group_stats: read_report(dir)?,
            best_lr: read_report(dir)?,
            bootstrap: read_report(dir)?,
            expected_max: read_report(dir)?,
            profile: read_report(dir)?,
            hierarchical,
            ranges,
        })
    }
}

/// `(lo, hi)` within `range` where there is one (a NaN bound stays NaN: no interval).
fn clip((lo, hi): (f64, f64), range: Option<&(f64, f64)>) -> (f64, f64) {
    match range {
        Some(&(low, high)) => (
            if lo.is_nan() { lo } else { lo.clamp(low, high) },
            if hi.is_nan() { hi } else { hi.clamp(low, high) },
        ),
        None => (lo, hi),
    }
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
    fn new(best: &[BestLrRow]) -> Self {
        let mut out = Self {
            systems: Vec::new(),
            datasets: Vec::new(),
            cells: HashMap::new(),
            system_at: HashMap::new(),
            dataset_at: HashMap::new(),
            total_datasets: 0,
        };
        for r in best {
            let system = (r.model.clone(), r.objective.clone());
            let s = intern(&mut out.systems, &mut out.system_at, system);
            let d = intern(&mut out.datasets, &mut out.dataset_at, r.dataset.clone());
            let cell = (r.select_split.clone(), r.report_split.clone(), r.best_lr);
            out.cells.insert((s, d), cell);
        }
        out.total_datasets = out.datasets.len();
        if out.datasets.len() > MAX_PANELS {
            out.datasets.truncate(MAX_PANELS);
            out.dataset_at.retain(|_, d| *d < MAX_PANELS);
            out.cells.retain(|&(_, d), _| d < MAX_PANELS);
        }
        out
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

/// A row of a per-(system, dataset) table.
trait Cell {
    /// Its model, objective and dataset.
    fn key(&self) -> (&str, &str, &str);
}

macro_rules! cell_rows {
    ($($row:ty),*) => {$(
        impl Cell for $row {
            fn key(&self) -> (&str, &str, &str) {
                (&self.model, &self.objective, &self.dataset)
            }
        }
    )*};
}
cell_rows!(GroupStatsRow, BootstrapRow, ExpectedMaxRow);

/// `rows` grouped by (system, dataset), in row order; rows of unknown systems or datasets
/// (absent from `best_lr.csv`) are skipped.
fn by_cell<'r, R: Cell>(rows: &'r [R], layout: &Layout) -> HashMap<(usize, usize), Vec<&'r R>> {
    let mut out: HashMap<(usize, usize), Vec<&R>> = HashMap::new();
    for r in rows {
        let (model, objective, dataset) = r.key();
        if let (Some(s), Some(d)) = (layout.system(model, objective), layout.dataset(dataset)) {
            out.entry((s, d)).or_default().push(r);
        }
    }
    out
}

/// The rows of (system, dataset) `key`.
fn rows_at<'a, 'r, R>(rows: &'a HashMap<(usize, usize), Vec<&'r R>>, key: (usize, usize)) -> &'a [&'r R] {
    rows.get(&key).map_or(&[], Vec::as_slice)
}

/// Every figure of the report, from its tables.
pub fn figures(t: &PlotTables) -> Vec<Figure> {
    let layout = Layout::new(&t.best_lr);
    let level = percent(t.bootstrap.first().map_or(0.95, |r| r.confidence_level));
    let mut per_dataset = vec![
        lr_figure(&t.group_stats, &layout, &level, false, &t.ranges),
        lr_figure(&t.group_stats, &layout, &level, true, &t.ranges),
        best_figure(&t.bootstrap, &layout, &level, &t.ranges),
        expected_max_figure(&t.expected_max, &layout, &t.ranges),
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
    per_dataset.push(profile_figure(&t.profile, &layout, &level));
    if !t.hierarchical.is_empty() {
        per_dataset.push(hierarchical_figure(&t.hierarchical, &level));
    }
    per_dataset
}

/// Score (or seed std, when `spread`) against learning rate on the selection split.
fn lr_figure(groups: &[GroupStatsRow], layout: &Layout, level: &str, spread: bool, ranges: &ScoreRanges) -> Figure {
    let rows = by_cell(groups, layout);
    let mut panels = Vec::new();
    for (d, dataset) in layout.datasets.iter().enumerate() {
        let (mut series, mut lrs, mut splits) = (Vec::new(), Vec::<f64>::new(), Vec::<String>::new());
        for s in 0..layout.systems.len() {
            let Some((select, _, best)) = layout.cells.get(&(s, d)) else {
                continue;
            };
            let mut points = Vec::new();
            for r in rows_at(&rows, (s, d)) {
                if r.split != *select {
                    continue;
                }
                let lr = r.learning_rate;
                let mut p = if spread {
                    Point::at(lr.log10(), r.std)
                } else {
                    let (lo, hi) = clip((r.t_ci_low, r.t_ci_high), ranges.get(dataset));
                    Point {
                        lo,
                        hi,
                        ..Point::at(lr.log10(), r.mean)
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
    if spread {
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
                "Mean over seeds on the selection split; band: {level}% t interval (within the score's range); large dot: the learning rate selected."
            ),
        }
    }
}

/// Mean score at the best learning rate, with its BCa interval, one row per system.
fn best_figure(boot: &[BootstrapRow], layout: &Layout, level: &str, ranges: &ScoreRanges) -> Figure {
    let rows = by_cell(boot, layout);
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
            for r in rows_at(&rows, (s, d)) {
                if r.method == "BCa" {
                    let (lo, hi) = clip((r.ci_low, r.ci_high), ranges.get(dataset));
                    series.push(Series {
                        system: s,
                        mark: Mark::Whisker,
                        points: vec![Point {
                            lo,
                            hi,
                            ..Point::at(r.estimate, y)
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
    Figure {
        name: "best_lr_scores",
        title: "Score at the best learning rate".into(),
        legend,
        panels,
        note: format!(
            "Learning rate chosen on the selection split, score on the report split (in brackets); whisker: {level}% BCa bootstrap interval (within the score's range)."
        ),
    }
}

/// Expected best score against the number of runs tried (budget `all_runs`), ±1 sd.
fn expected_max_figure(em: &[ExpectedMaxRow], layout: &Layout, ranges: &ScoreRanges) -> Figure {
    let rows = by_cell(em, layout);
    let mut panels = Vec::new();
    for (d, dataset) in layout.datasets.iter().enumerate() {
        let (mut series, mut splits) = (Vec::new(), Vec::<String>::new());
        for s in 0..layout.systems.len() {
            let Some((select, _, _)) = layout.cells.get(&(s, d)) else {
                continue;
            };
            let mut points = Vec::new();
            for r in rows_at(&rows, (s, d)) {
                if r.split == *select && r.budget == "all_runs" {
                    let y = r.expected_max;
                    let (lo, hi) = clip((y - r.sd, y + r.sd), ranges.get(dataset));
                    points.push(Point {
                        lo,
                        hi,
                        ..Point::at(r.n as f64, y)
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
    Figure {
        name: "expected_max_curves",
        title: "Expected best score against tuning budget".into(),
        legend: layout.legend(),
        panels,
        note:
            "Expected maximum of n runs drawn without replacement from the whole grid (Dodge et al. 2019); band: ±1 sd (within the score's range)."
                .into(),
    }
}

/// Fraction of normalised scores above each threshold, with its bootstrap band.
fn profile_figure(prof: &[ProfileRow], layout: &Layout, level: &str) -> Figure {
    let mut series: Vec<Series> = Vec::new();
    for r in prof {
        let Some(s) = layout.system(&r.model, &r.objective) else {
            continue;
        };
        let p = Point {
            lo: r.ci_low,
            hi: r.ci_high,
            ..Point::at(r.tau, r.fraction_above)
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
    Figure {
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
    }
}

/// A pair's label, estimate and intervals (naive, within datasets, with datasets).
type PairIntervals = (String, f64, [(f64, f64); 3]);

/// Each pair's difference with three intervals: the naive one (every run an independent draw),
/// the hierarchical one within datasets (seeds and, where given, test instances) and the one
/// that resamples datasets too. The first [`MAX_PAIRS`] pairs.
fn hierarchical_figure(h: &[HierarchicalTestRow], level: &str) -> Figure {
    let mut pairs: Vec<PairIntervals> = Vec::new();
    for r in h {
        let label = format!("{}/{} − {}/{}", r.model_x, r.objective_x, r.model_y, r.objective_y);
        let k = match pairs.iter().position(|p| p.0 == label) {
            Some(k) => k,
            None => {
                pairs.push((label, r.mean_diff, [(f64::NAN, f64::NAN); 3]));
                pairs.len() - 1
            }
        };
        pairs[k].2[0] = (r.naive_low, r.naive_high);
        pairs[k].2[if r.dataset_bootstrap == "True" { 2 } else { 1 }] = (r.percentile_low, r.percentile_high);
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
    Figure {
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
    }
}
