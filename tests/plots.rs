//! The report's plots: they show the CSVs' numbers, render to well-formed PNG and SVG, give the
//! same bytes every time, and `analysis plot` redraws them from a report folder.
#![cfg(feature = "plots")]

mod common;

use std::path::Path;
use std::process::Command;

use common::{shared_data, write};
use encoderlab::artifacts::report::{BestLrRow, BootstrapRow, GroupStatsRow, HierarchicalTestRow};
use encoderlab::artifacts::ReportRow;
use encoderlab::stats::plots::{figures, render_png, render_svg, Figure, Mark, PlotTables};
use encoderlab::stats::report::{build_tables, NanPolicy, ReportConfig, RunsIndex, Table};
use encoderlab::stats::runs::{read_meta, read_runs};
use encoderlab::stats::synth::{meta_csv, runs_csv, synthetic_runs, PAPER_LRS};

const PLOTS: [&str; 6] = [
    "lr_curves",
    "seed_spread",
    "best_lr_scores",
    "expected_max_curves",
    "performance_profile",
    "hierarchical_intervals",
];

/// The report tables of a small synthetic table (fewer resamples: the plots are under test).
fn synthetic_tables(dir: &Path, systems: usize, datasets: usize) -> Vec<Table> {
    let (runs, meta) = synthetic_runs(systems, datasets, &PAPER_LRS, 5, 2);
    let runs = read_runs(&write(dir, "runs.csv", &runs_csv(&runs).unwrap())).unwrap();
    let meta = read_meta(&write(dir, "meta.csv", &meta_csv(&meta).unwrap())).unwrap();
    let cfg = ReportConfig {
        bootstrap_resamples: 499,
        aggregate_reps: 200,
        poi_reps: 200,
        ..ReportConfig::default()
    };
    build_tables(&RunsIndex::new(&runs, &meta, NanPolicy::ImputeChance), &cfg).unwrap()
}

fn figures_of(tables: &[Table]) -> Vec<Figure> {
    figures(&PlotTables::of(tables, Default::default()).unwrap())
}

fn table<'a>(tables: &'a [Table], name: &str) -> &'a Table {
    tables.iter().find(|t| t.name == name).unwrap()
}

#[test]
fn figures_show_the_numbers_of_the_paper_report() -> anyhow::Result<()> {
    let Some(data) = shared_data() else { return Ok(()) };
    let runs = read_runs(&data.join("paper_runs/runs.csv"))?;
    let meta = read_meta(&data.join("paper_runs/meta.csv"))?;
    let tables = build_tables(
        &RunsIndex::new(&runs, &meta, NanPolicy::ImputeChance),
        &ReportConfig::default(),
    )?;
    let figs = figures_of(&tables);
    assert_eq!(figs.iter().map(|f| f.name).collect::<Vec<_>>(), PLOTS);
    // the pairs' intervals: naive, within datasets, with datasets, from tests_hierarchical.csv;
    // resampling the two datasets too widens clm − mlm40's far beyond the naive one
    let h = &figs[5];
    assert_eq!(h.panels[0].series.len(), 3 * 3);
    let hier: Vec<HierarchicalTestRow> = table(&tables, HierarchicalTestRow::FILE).rows_of()?;
    let naive = h.panels[0].series[0].points[0];
    assert_eq!((naive.lo, naive.hi), (hier[0].naive_low, hier[0].naive_high));
    let across = h.panels[0].series[2].points[0];
    assert!(
        across.hi - across.lo > 2.0 * (naive.hi - naive.lo),
        "{across:?} {naive:?}"
    );
    for f in &figs[..5] {
        assert_eq!(
            f.legend,
            [
                "610m-clm-42k (clm)",
                "610m-mlm40-42k (mlm40)",
                "610m-clm-10k-mlm40-42k (clm10k-mlm40)"
            ]
        );
    }
    // score vs learning rate: sst2 has the three systems, conll2003_en two; six LRs each, on
    // the validation split, x = log10(lr), y = the mean of group_stats.csv
    let lr = &figs[0];
    assert_eq!(lr.panels.len(), 2);
    assert_eq!(lr.panels[0].title, "sst2 (validation)");
    assert_eq!(lr.panels[0].series.len(), 3);
    assert_eq!(lr.panels[1].series.len(), 2);
    let ticks: Vec<&str> = lr.panels[0]
        .x_ticks
        .as_ref()
        .unwrap()
        .iter()
        .map(|t| t.1.as_str())
        .collect();
    assert_eq!(ticks, ["1e-5", "2e-5", "5e-5", "1e-4", "2e-4", "5e-4"]);
    let groups: Vec<GroupStatsRow> = table(&tables, GroupStatsRow::FILE).rows_of()?;
    let row = groups
        .iter()
        .find(|r| r.objective == "mlm40" && r.dataset == "sst2" && r.split == "validation" && r.learning_rate == 1e-5)
        .unwrap();
    let p = lr.panels[0].series[1].points[0];
    assert_eq!((p.x, p.y, p.lo), (1e-5f64.log10(), row.mean, row.t_ci_low));
    // the selected learning rate is emphasised, once per series
    for s in &lr.panels[0].series {
        assert_eq!(s.points.iter().filter(|p| p.emphasis).count(), 1);
    }
    // clm's selected LR on sst2 is 5e-5
    let clm = &lr.panels[0].series[0];
    assert_eq!(clm.points.iter().position(|p| p.emphasis), Some(2));
    // seed spread: y = std
    let spread = &figs[1].panels[1].series[0];
    let std_row = groups
        .iter()
        .find(|r| r.objective == "clm" && r.dataset == "conll2003_en" && r.learning_rate == 1e-5)
        .unwrap();
    assert_eq!(spread.points[0].y, std_row.std);
    // best-LR scores: the BCa interval of bootstrap_ci.csv, first system on top, reported split
    let best = &figs[2];
    assert_eq!(best.panels[0].title, "sst2 (test)");
    let boot: Vec<BootstrapRow> = table(&tables, BootstrapRow::FILE).rows_of()?;
    let bca = boot
        .iter()
        .find(|r| r.objective == "clm" && r.dataset == "sst2" && r.method == "BCa")
        .unwrap();
    let s = &best.panels[0].series[0];
    assert_eq!(s.mark, Mark::Whisker);
    assert_eq!(
        (s.points[0].x, s.points[0].lo, s.points[0].hi, s.points[0].y),
        (bca.estimate, bca.ci_low, bca.ci_high, 2.0)
    );
    // expected max: 30 runs in the grid, n = 1..30, increasing
    let em = &figs[3].panels[0].series[0].points;
    assert_eq!(em.len(), 30);
    assert!(em.windows(2).all(|w| w[0].x < w[1].x && w[0].y <= w[1].y + 1e-12));
    // performance profile: one panel, one series per system, one point per tau
    let prof = &figs[4];
    assert_eq!(prof.panels.len(), 1);
    assert_eq!(prof.panels[0].series.len(), 3);
    let taus = table(&tables, "performance_profile.csv").rows.len() / 3;
    assert!(prof.panels[0].series.iter().all(|s| s.points.len() == taus));
    Ok(())
}

#[test]
fn rendering_is_well_formed_and_deterministic() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let tables = synthetic_tables(dir.path(), 3, 4);
    for fig in figures_of(&tables) {
        let png_bytes = render_png(&fig)?;
        assert_eq!(png_bytes, render_png(&fig)?, "{}: same figure, same PNG", fig.name);
        let decoder = png::Decoder::new(std::io::Cursor::new(&png_bytes));
        let mut reader = decoder.read_info()?;
        let mut pixels = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut pixels)?;
        assert!(info.width >= 640 && info.height >= 300, "{}: {info:?}", fig.name);
        // drawn: many pixels are neither white nor grey (the systems' colours)
        let coloured = pixels[..info.buffer_size()]
            .chunks(3)
            .filter(|p| p[0].abs_diff(p[1]) > 40 || p[1].abs_diff(p[2]) > 40)
            .count();
        assert!(coloured > 500, "{}: only {coloured} coloured pixels", fig.name);
        let svg = render_svg(&fig)?;
        assert_eq!(svg, render_svg(&fig)?);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains(&fig.title), "{}: title in the SVG", fig.name);
        assert!(svg.contains(&fig.legend[0]), "{}: legend in the SVG", fig.name);
    }
    Ok(())
}

#[test]
fn plot_command_redraws_a_report_and_rejects_bad_tables() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (runs, meta) = synthetic_runs(3, 2, &PAPER_LRS, 5, 4);
    let runs_path = write(dir.path(), "runs.csv", &runs_csv(&runs)?);
    let meta_path = write(dir.path(), "meta.csv", &meta_csv(&meta)?);
    let report = dir.path().join("report");
    let bin = env!("CARGO_BIN_EXE_analysis");
    let o = Command::new(bin)
        .args(["report", "--runs", runs_path.to_str().unwrap()])
        .args(["--meta", meta_path.to_str().unwrap(), "--out", report.to_str().unwrap()])
        .output()?;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // `analysis plot --report REPORT --meta META --out OUT` (the metadata gives the score ranges
    // the intervals are drawn within, as the report had them)
    let plot = |out: &Path| {
        Command::new(bin)
            .args(["plot", "--report", report.to_str().unwrap()])
            .args(["--meta", meta_path.to_str().unwrap()])
            .args(["--out", out.to_str().unwrap()])
            .output()
    };
    let again = dir.path().join("again");
    let o = plot(&again)?;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for name in PLOTS {
        for ext in ["png", "svg"] {
            let file = format!("{name}.{ext}");
            assert_eq!(
                std::fs::read(report.join(&file))?,
                std::fs::read(again.join(&file))?,
                "{file}: drawn from the CSVs = drawn by the report"
            );
        }
    }
    // --no-plots: the CSVs only
    let bare = dir.path().join("bare");
    let o = Command::new(bin)
        .args(["report", "--runs", runs_path.to_str().unwrap(), "--no-plots"])
        .args(["--meta", meta_path.to_str().unwrap(), "--out", bare.to_str().unwrap()])
        .output()?;
    assert!(o.status.success());
    assert!(std::fs::read_dir(&bare)?.all(|e| {
        let path = e.unwrap().path();
        // beside the CSVs, only the marker that says the folder is a report's
        path.extension().unwrap() == "csv" || path.ends_with(encoderlab::fsutil::OWNED_MARKER)
    }));
    // a non-numeric cell: the file and line are named, nothing is drawn
    let text = std::fs::read_to_string(report.join("expected_max.csv"))?;
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut cells: Vec<&str> = lines[3].split(',').collect();
    assert_eq!(cells[4], "all_runs");
    cells[7] = "abc";
    lines[3] = cells.join(",");
    std::fs::write(report.join("expected_max.csv"), lines.join("\n") + "\n")?;
    let broken = dir.path().join("broken");
    let o = plot(&broken)?;
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        stderr.contains("expected_max.csv:4") && stderr.contains("column `expected_max`"),
        "{stderr}"
    );
    assert!(!broken.exists() || std::fs::read_dir(&broken)?.next().is_none());
    // a missing table is named
    std::fs::remove_file(report.join("best_lr.csv"))?;
    let o = Command::new(bin)
        .args(["plot", "--report", report.to_str().unwrap()])
        .output()?;
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && stderr.contains("best_lr.csv"), "{stderr}");
    Ok(())
}

/// A report of more datasets than a figure can show draws panels for the first `MAX_PANELS`
/// (in `best_lr.csv`'s order), says so in each per-dataset figure's title, and leaves the
/// pooled profile alone.
#[test]
fn figures_of_many_datasets_show_the_first_ones_and_say_so() {
    use encoderlab::stats::plots::MAX_PANELS;
    let dir = tempfile::tempdir().unwrap();
    let datasets = MAX_PANELS + 5;
    let tables = synthetic_tables(dir.path(), 2, datasets);
    let figs = figures_of(&tables);
    let best: Vec<BestLrRow> = table(&tables, BestLrRow::FILE).rows_of().unwrap();
    let mut order: Vec<&str> = Vec::new();
    for row in &best {
        if !order.contains(&row.dataset.as_str()) {
            order.push(&row.dataset);
        }
    }
    for f in &figs[..4] {
        assert_eq!(f.panels.len(), MAX_PANELS, "{}", f.name);
        assert!(
            f.title.contains(&format!("first {MAX_PANELS} of {datasets} datasets")),
            "{}: {}",
            f.name,
            f.title
        );
        for (p, d) in f.panels.iter().zip(&order) {
            assert!(p.title.starts_with(&format!("{d} (")), "{}: {} vs {d}", f.name, p.title);
        }
    }
    assert_eq!(figs[4].name, "performance_profile");
    assert!(!figs[4].title.contains("first"));
    // a report within the limit is drawn whole, titles untouched
    let few = figures_of(&synthetic_tables(dir.path(), 2, 3));
    assert!(few[..4]
        .iter()
        .all(|f| f.panels.len() == 3 && !f.title.contains("first")));
}

/// Interval bands and whiskers stay within each dataset's score range (a t interval near a
/// perfect score would leave it: the paper's CoNLL panel went above 1.0), and only they move.
#[test]
fn intervals_are_drawn_within_the_score_range() -> anyhow::Result<()> {
    let Some(data) = shared_data() else { return Ok(()) };
    let runs = read_runs(&data.join("paper_runs/runs.csv"))?;
    let meta = read_meta(&data.join("paper_runs/meta.csv"))?;
    let ix = RunsIndex::new(&runs, &meta, NanPolicy::ImputeChance);
    let tables = build_tables(&ix, &ReportConfig::default())?;
    let ranges = ix.score_ranges();
    let raw = figures(&PlotTables::of(&tables, Default::default())?);
    let clipped = figures(&PlotTables::of(&tables, ranges.clone())?);
    // bounds outside the range, over the per-dataset figures (a panel is titled "DATASET (split)")
    let outside = |figs: &[Figure]| -> usize {
        figs[..4]
            .iter()
            .flat_map(|f| &f.panels)
            .map(|p| {
                let (lo, hi) = ranges[p.title.split(" (").next().unwrap()];
                p.series
                    .iter()
                    .flat_map(|s| &s.points)
                    .filter(|q| q.lo < lo || q.hi > hi)
                    .count()
            })
            .sum()
    };
    assert!(outside(&raw) > 0, "the paper's runs have bands past a perfect score");
    assert_eq!(outside(&clipped), 0);
    for (a, b) in raw.iter().zip(&clipped) {
        for (p, q) in a.panels.iter().zip(&b.panels) {
            for (s, t) in p.series.iter().zip(&q.series) {
                let at = |s: &encoderlab::stats::plots::Series| s.points.iter().map(|p| (p.x, p.y)).collect::<Vec<_>>();
                assert_eq!(at(s), at(t), "{}: the points stay where they are", a.name);
            }
        }
    }
    Ok(())
}
