//! The report's figures: every model's mean normalised score, each finding's differences
//! with their intervals (a forest plot), and F2's score-versus-pretraining-steps curves. PNG
//! and SVG, drawn by the analysis' plotting code (the `plots` feature; without it, none).

use super::arms::Model;
use super::config::StudyConfig;
use super::control::Control;
#[cfg(feature = "plots")]
use super::findings::Comparison;
use super::findings::{Evidence, Finding};
use super::losses::LossPoint;
use crate::error::Result;

#[cfg(feature = "plots")]
use super::findings::Names;
#[cfg(feature = "plots")]
use crate::stats::plots::{render_all, Figure, Mark, Panel, Point, Series};

/// Every figure of the report, as (file name, bytes).
#[cfg(not(feature = "plots"))]
pub fn draw(
    _: &StudyConfig,
    _: &[Model],
    _: &Evidence,
    _: &[Finding],
    _: &Control,
    _: &[LossPoint],
) -> Result<Vec<(String, Vec<u8>)>> {
    Ok(Vec::new())
}

/// Every figure of the report, as (file name, bytes).
#[cfg(feature = "plots")]
pub fn draw(
    cfg: &StudyConfig,
    models: &[Model],
    ev: &Evidence,
    findings: &[Finding],
    control: &Control,
    losses: &[LossPoint],
) -> Result<Vec<(String, Vec<u8>)>> {
    let mut figs = vec![model_scores(models, ev, cfg.analysis.confidence)];
    for f in findings {
        if f.rows.is_empty() {
            continue;
        }
        let rows: Vec<&Comparison> = f.rows.iter().collect();
        figs.push(forest(
            name(&f.id),
            &format!("{}: {}", f.id, title(&f.id)),
            &rows,
            [
                "primary test",
                "supporting",
                "difference (normalised score, or raw score on one dataset)",
            ],
        ));
        if f.id == "F2" {
            let names = Names::of(cfg);
            figs.push(Figure {
                name: "f2_curve",
                title: "F2: downstream score along pretraining".into(),
                legend: vec![names.clm.clone(), names.mlm.clone()],
                panels: vec![curve(cfg, ev)],
                note: "line: mean over (dataset, seed); band: 95% t-interval; the last point is the decayed final checkpoint".into(),
            });
        }
    }
    // the positive control as comparisons: the across-dataset rows are the primary ones
    let rows: Vec<Comparison> = control
        .rows
        .iter()
        .map(|r| Comparison {
            finding: "control".into(),
            label: r.test.clone(),
            a: r.model.clone(),
            b: r.baseline.clone(),
            scope: if r.scope == "all" {
                format!("all, {}", r.test.split(' ').next().unwrap_or_default())
            } else {
                r.scope.clone()
            },
            n: r.n_model,
            mean_a: r.model_score,
            lo_a: f64::NAN,
            hi_a: f64::NAN,
            mean_b: r.random_score,
            lo_b: f64::NAN,
            hi_b: f64::NAN,
            diff: r.diff,
            diff_lo: r.diff_lo,
            diff_hi: r.diff_hi,
            test: r.test.clone(),
            p: r.p,
            p_holm: r.p_holm,
            expected: 1.0,
            primary: r.scope == "all",
        })
        .collect();
    let rows: Vec<&Comparison> = rows.iter().collect();
    if !losses.is_empty() {
        figs.push(loss_curves(cfg, losses));
    }
    figs.push(forest(
        "control",
        "Positive control: pretrained − random init (normalised)",
        &rows,
        ["across datasets", "one dataset", "difference in normalised score"],
    ));
    render_all(&figs)
}

#[cfg(feature = "plots")]
fn name(id: &str) -> &'static str {
    match id {
        "F1" => "f1",
        "F2" => "f2",
        "F3" => "f3",
        "F4" => "f4",
        "F5" => "f5",
        _ => "f6",
    }
}

/// A figure title short enough to fit.
#[cfg(feature = "plots")]
fn title(id: &str) -> &'static str {
    match id {
        "F1" => "MLM vs CLM downstream",
        "F2" => "CLM vs MLM early in pretraining",
        "F3" => "fine-tuning spread over seeds and LRs, CLM vs MLM",
        "F4" => "CLM then MLM vs MLM alone, same budget",
        "F5" => "MLM continued from CLM vs from MLM",
        _ => "masking ratio by model size",
    }
}

/// Dots with whiskers, one row per comparison: the difference a − b and its interval.
#[cfg(feature = "plots")]
fn forest(name: &'static str, title: &str, rows: &[&Comparison], labels: [&str; 3]) -> Figure {
    let n = rows.len();
    let ticks: Vec<(f64, String)> = rows
        .iter()
        .enumerate()
        .map(|(i, c)| ((n - 1 - i) as f64, format!("{} − {} ({})", c.a, c.b, c.scope)))
        .collect();
    let series = rows
        .iter()
        .enumerate()
        .map(|(i, c)| Series {
            system: usize::from(!c.primary),
            mark: Mark::Whisker,
            points: vec![Point {
                lo: c.diff_lo,
                hi: c.diff_hi,
                emphasis: c.primary,
                ..Point::at(c.diff, (n - 1 - i) as f64)
            }],
        })
        .collect();
    Figure {
        name,
        title: title.to_string(),
        legend: vec![labels[0].into(), labels[1].into()],
        panels: vec![Panel {
            title: "difference a − b with its 95% interval".into(),
            x_label: labels[2].into(),
            y_label: String::new(),
            x_ticks: None,
            y_ticks: Some(ticks),
            series,
        }],
        note: "0 = no difference; an interval that excludes 0 is significant before correction".into(),
    }
}

/// Every model's mean normalised best-LR test score over datasets × seeds, in the grid's order.
#[cfg(feature = "plots")]
fn model_scores(models: &[Model], ev: &Evidence, confidence: f64) -> Figure {
    use crate::stats::describe::{mean, t_interval};
    let names: Vec<&String> = models.iter().map(|m| &m.name).filter(|n| ev.has(n)).collect();
    let n = names.len();
    let mut ticks = Vec::new();
    let mut series = Vec::new();
    for (i, m) in names.iter().enumerate() {
        let v: Vec<f64> = ev.scores[*m].values().copied().collect();
        let (lo, hi) = t_interval(&v, confidence);
        let y = (n - 1 - i) as f64;
        ticks.push((y, m.to_string()));
        series.push(Series {
            system: 0,
            mark: Mark::Whisker,
            points: vec![Point {
                lo,
                hi,
                ..Point::at(mean(&v), y)
            }],
        });
    }
    Figure {
        name: "models",
        title: "Mean normalised test score at the best learning rate".into(),
        legend: vec!["model".into()],
        panels: vec![Panel {
            title: "all datasets × seeds".into(),
            x_label: "(score − chance) / (max − chance)".into(),
            y_label: String::new(),
            x_ticks: None,
            y_ticks: Some(ticks),
            series,
        }],
        note: "dot: mean; whisker: 95% t-interval over (dataset, seed) units".into(),
    }
}

/// F2: mean normalised score of the CLM and MLM checkpoints against pretraining steps.
#[cfg(feature = "plots")]
fn curve(cfg: &StudyConfig, ev: &Evidence) -> Panel {
    use crate::stats::describe::{mean, t_interval};
    let names = Names::of(cfg);
    let checkpoints = super::findings::f2_checkpoints(cfg, &names);
    let series = (0..2)
        .map(|i| Series {
            system: i,
            mark: Mark::Line,
            points: checkpoints
                .iter()
                .filter_map(|(s, pair)| {
                    let model = if i == 0 { &pair.0 } else { &pair.1 };
                    // the final checkpoint at the seeds that kept the intermediate ones, so
                    // that every point of a line comes from the same pretraining runs
                    let kept = &cfg.pretrain.intermediate_seeds;
                    let v: Vec<f64> = ev
                        .scores
                        .get(model)?
                        .iter()
                        .filter(|(k, _)| kept.is_empty() || kept.contains(&(k.1 .0 as u64)))
                        .map(|(_, v)| *v)
                        .collect();
                    let (lo, hi) = t_interval(&v, cfg.analysis.confidence);
                    Some(Point {
                        lo,
                        hi,
                        ..Point::at(*s as f64, mean(&v))
                    })
                })
                .collect(),
        })
        .collect();
    Panel {
        title: format!("{} and {} checkpoints", names.clm, names.mlm),
        x_label: "pretraining steps".into(),
        y_label: "mean normalised score".into(),
        x_ticks: None,
        y_ticks: None,
        series,
    }
}

/// Held-out CLM and MLM losses against steps, one line per arm (its first pretraining seed),
/// and the unigram floor of each.
#[cfg(feature = "plots")]
fn loss_curves(cfg: &StudyConfig, points: &[LossPoint]) -> Figure {
    let first = cfg.pretrain_seeds().first().copied().unwrap_or(cfg.seed);
    let mut legend: Vec<String> = Vec::new();
    for p in points.iter().filter(|p| p.seed == first) {
        if !legend.contains(&p.arm) {
            legend.push(p.arm.clone());
        }
    }
    let floor_ix = legend.len();
    legend.push("unigram floor".into());
    let arms: Vec<String> = legend[..floor_ix].to_vec();
    let panel = |clm: bool| {
        let value = |p: &LossPoint| if clm { p.eval_clm_loss } else { p.eval_mlm_loss };
        let mut series: Vec<Series> = arms
            .iter()
            .enumerate()
            .map(|(i, arm)| Series {
                system: i,
                mark: Mark::Line,
                points: points
                    .iter()
                    .filter(|p| p.seed == first && p.arm == *arm)
                    .map(|p| Point::at(p.step as f64, value(p)))
                    .collect(),
            })
            .collect();
        let last = points.iter().map(|p| p.step).max().unwrap_or(0) as f64;
        let floor = points
            .iter()
            .map(|p| if clm { p.unigram_clm_loss } else { p.unigram_mlm_loss })
            .find(|v| !v.is_nan());
        if let Some(f) = floor {
            series.push(Series {
                system: floor_ix,
                mark: Mark::Line,
                points: vec![Point::at(0.0, f), Point::at(last, f)],
            });
        }
        Panel {
            title: if clm { "held-out CLM loss" } else { "held-out MLM loss" }.into(),
            x_label: "pretraining steps (of each run)".into(),
            y_label: "nats per scored token".into(),
            x_ticks: None,
            y_ticks: None,
            series,
        }
    };
    Figure {
        name: "losses",
        title: "What pretraining learned: held-out losses against the unigram floor".into(),
        legend,
        panels: vec![panel(true), panel(false)],
        note: "first pretraining seed of each arm; continued arms count their own steps".into(),
    }
}
