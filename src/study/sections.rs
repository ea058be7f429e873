//! The pieces of the study's report: its CSV files (findings, models) and the Markdown
//! sections (the positive control, learning-rate edges, per-model scores, comparisons, compute
//! and timings) that `report.rs` assembles into `REPORT.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::arms::{Arm, Model, Role};
use super::config::StudyConfig;
use super::control::{Control, LrCell};
use super::findings::{fmt_p, Comparison, Evidence, Finding};
use super::outcome::StudyOutcome;
use crate::artifacts::csv_text;
use crate::error::Result;
use crate::finetune::config::is_probe;

pub(super) fn findings_csv(findings: &[Finding]) -> Result<String> {
    let rows: Vec<&Comparison> = findings.iter().flat_map(|f| &f.rows).collect();
    csv_text(&rows, None)
}

pub(super) fn models_csv(models: &[Model]) -> Result<String> {
    csv_text(models, None)
}

pub(super) fn num(x: f64) -> String {
    if x.is_nan() {
        "n/a".into()
    } else {
        format!("{x:.3}")
    }
}

pub(super) fn ci(lo: f64, hi: f64) -> String {
    if lo.is_nan() {
        "n/a".into()
    } else {
        format!("[{lo:.3}, {hi:.3}]")
    }
}

/// Comparisons as a Markdown table.
pub(crate) fn comparison_table(rows: &[&Comparison]) -> String {
    let mut s = String::from(
        "| comparison | scope | n | a | mean a [95% CI] | b | mean b [95% CI] | a − b [95% CI] | test | p | Holm p |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for c in rows {
        let _ = writeln!(
            s,
            "| {}{} | {} | {} | `{}` | {} {} | `{}` | {} {} | {:+.3} {} | {} | {} | {} |",
            c.label,
            if c.primary { " (primary)" } else { "" },
            c.scope,
            c.n,
            c.a,
            num(c.mean_a),
            ci(c.lo_a, c.hi_a),
            c.b,
            num(c.mean_b),
            ci(c.lo_b, c.hi_b),
            c.diff,
            ci(c.diff_lo, c.diff_hi),
            c.test,
            fmt_p(c.p),
            fmt_p(c.p_holm),
        );
    }
    s
}

/// Per-model summary: mean normalised best-LR test score over datasets × seeds.
pub(super) fn model_table(ev: &Evidence, models: &[Model], confidence: f64) -> String {
    let mut s = String::from("| model | objective | role | pretraining steps | mean normalised score [95% CI] | datasets × seeds |\n|---|---|---|---|---|---|\n");
    let mut seen: Vec<&str> = Vec::new();
    for m in models {
        if seen.contains(&m.name.as_str()) {
            continue;
        }
        seen.push(&m.name);
        let Some(sc) = ev.scores.get(&m.name) else { continue };
        let v: Vec<f64> = sc.values().copied().collect();
        let (lo, hi) = crate::stats::describe::t_interval(&v, confidence);
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} | {} {} | {} |",
            m.name,
            m.objective,
            match m.role {
                Role::Final => "final",
                Role::Intermediate => "intermediate",
                Role::Random => "baseline",
            },
            m.step,
            num(crate::stats::describe::mean(&v)),
            ci(lo, hi),
            v.len()
        );
    }
    s
}

pub(super) fn timings(cfg: &StudyConfig, outcome: &StudyOutcome, runs_rows: usize) -> String {
    // earlier calls of this study that ran something, then this one (its analysis stage is the
    // one running); calls that only read finished work back are counted, not listed
    let path = cfg.out.join("timings.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let earlier: Vec<StudyOutcome> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let worked = |c: &StudyOutcome| c.pretrain_runs_started + c.finetune_runs_started > 0;
    let idle = earlier.iter().filter(|c| !worked(c)).count();
    let mut s = String::from("| call | data | pretraining | fine-tuning | analysis | total | pretraining runs started | fine-tuning runs started |\n|---|---|---|---|---|---|---|---|\n");
    let rows = earlier
        .iter()
        .enumerate()
        .filter(|(_, c)| worked(c))
        .map(|(i, c)| (format!("{}", i + 1), c, false))
        .chain(std::iter::once((
            format!("{} (this one)", earlier.len() + 1),
            outcome,
            true,
        )));
    for (label, c, this) in rows {
        let t = &c.seconds;
        let _ = writeln!(
            s,
            "| {label} | {:.0} s | {:.0} s | {:.0} s | {} | {:.0} s{} | {} | {} |",
            t.data,
            t.pretrain,
            t.finetune,
            if this {
                "running".to_string()
            } else {
                format!("{:.0} s", t.analysis)
            },
            t.total,
            if this { " so far" } else { "" },
            c.pretrain_runs_started,
            c.finetune_runs_started
        );
    }
    if idle > 0 {
        let _ = writeln!(
            s,
            "\n{idle} earlier call(s) found everything done and only rewrote the report."
        );
    }
    let _ = writeln!(
        s,
        "\n{} fine-tuning runs ({} rows in `runs.csv`): {} failed, {} diverged.",
        outcome.finetune_runs, runs_rows, outcome.finetune_failed, outcome.finetune_diverged
    );
    s
}

/// The compute the records themselves hold, whichever calls did the work (a killed call writes
/// no `timings.jsonl` line): each arm's `summary.json` seconds, each run's `wall_seconds`.
pub(super) fn recorded_compute(cfg: &StudyConfig, arms: &[Arm]) -> String {
    let per_arm: Vec<(&str, f64)> = arms
        .iter()
        .filter_map(|arm| {
            let path = super::arms::arm_dir(cfg, &arm.run).join("summary.json");
            let text = std::fs::read_to_string(&path).ok()?;
            let v: serde_json::Value = serde_json::from_str(&text).ok()?;
            Some((arm.run.as_str(), v.get("seconds")?.as_f64()?))
        })
        .collect();
    let arm_total: f64 = per_arm.iter().map(|(_, s)| s).sum();
    let mut runs: BTreeMap<String, f64> = BTreeMap::new();
    if let Ok(mut reader) = csv::Reader::from_path(cfg.out.join("runs.csv")) {
        let headers = reader.headers().cloned().unwrap_or_default();
        let col = |name: &str| headers.iter().position(|h| h == name);
        if let (Some(id), Some(wall)) = (col("run_id"), col("wall_seconds")) {
            for row in reader.records().flatten() {
                if let (Some(r), Some(w)) = (row.get(id), row.get(wall).and_then(|w| w.parse::<f64>().ok())) {
                    runs.insert(r.to_string(), w);
                }
            }
        }
    }
    let run_total: f64 = runs.values().sum();
    let workers = cfg.finetune.workers.max(1);
    format!(
        "\nFrom the records, whichever calls did the work: pretraining {:.0} s over {} arms ({}); fine-tuning {:.0} s summed over {} runs' wall times, ≈ {:.0} s of wall time with {workers} workers.\n",
        arm_total,
        per_arm.len(),
        per_arm
            .iter()
            .map(|(name, sec)| format!("`{name}` {sec:.0} s"))
            .collect::<Vec<_>>()
            .join(", "),
        run_total,
        runs.len(),
        run_total / workers as f64
    )
}

/// The positive control's tables: one row per model (its gate), then every test.
pub(super) fn control_section(cfg: &StudyConfig, control: &Control) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## Positive control: does pretraining beat random init?\n\nEvery final pretrained model against the random-init baseline of its size (the same architecture, fresh weights drawn from each run's seed), fine-tuned on the same grid. A model passes when it beats random init significantly (Holm over every model × dataset test, α = {}) on at least half of the datasets; a finding is judged only when all its models pass, else its verdict is \"not testable at this scale\". A dataset where a model is significantly worse than random init is counted and shown, not hidden.\n",
        cfg.analysis.alpha
    );
    if control.gates.is_empty() {
        let _ = writeln!(s, "No random-init runs to compare with: no finding can be judged.\n");
        return s;
    }
    let _ = writeln!(
        s,
        "| model | datasets won | datasets lost | of | passes |\n|---|---|---|---|---|"
    );
    for g in control.gates.values() {
        let _ = writeln!(
            s,
            "| `{}` | {} | {} | {} | {} |",
            g.model,
            g.wins,
            g.losses,
            g.datasets,
            if g.passed { "**yes**" } else { "no" }
        );
    }
    let _ = writeln!(
        s,
        "\n| model | baseline | scope | test | n (model, baseline) | pretraining runs | model | baseline | model − baseline [95% CI] | p | Holm p |\n|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for r in &control.rows {
        let _ = writeln!(
            s,
            "| `{}` | `{}` | {} | {} | {}, {} | {} | {} | {} | {:+.3} {} | {} | {} |",
            r.model,
            r.baseline,
            r.scope,
            r.test,
            r.n_model,
            r.n_random,
            r.pretrain_seeds,
            num(r.model_score),
            num(r.random_score),
            r.diff,
            ci(r.diff_lo, r.diff_hi),
            fmt_p(r.p),
            fmt_p(r.p_holm)
        );
    }
    let _ = writeln!(
        s,
        "\nScores are normalised, (score − chance) / (max − chance), at each model's learning rate selected on validation. Per dataset, the units are pretraining runs where both sides have two or more, else fine-tuning seeds (the row says so: pretraining-seed variance is then not covered). Across datasets, the hierarchical bootstrap keeps the datasets fixed and resamples pretraining then fine-tuning seeds; the paired t treats datasets as the units. All rows: [`control.csv`](control.csv); figure: [`figures/control.png`](figures/control.png).\n"
    );
    s
}

/// The selected learning rates against their grids.
pub(super) fn lr_section(cells: &[LrCell]) -> String {
    let mut s = String::from("## Fine-tuning: did the learning-rate grid reach the optimum?\n\n");
    if cells.is_empty() {
        return s;
    }
    let edge: Vec<&LrCell> = cells.iter().filter(|c| !c.edge.is_empty()).collect();
    let share = edge.len() as f64 / cells.len() as f64;
    let _ = writeln!(
        s,
        "{} of {} (model, dataset) cells ({:.0} %) selected a learning rate at an edge of their grid ({} at the lowest, {} at the highest): there the optimum may lie outside the grid, and the cell's score is a lower bound.{}\n",
        edge.len(),
        cells.len(),
        100.0 * share,
        edge.iter().filter(|c| c.edge == "low").count(),
        edge.iter().filter(|c| c.edge == "high").count(),
        if share >= 0.2 {
            " **That is 20 % or more: widen the grids (`finetune.datasets[].learning_rates`) before trusting the comparisons.**"
        } else {
            ""
        }
    );
    // one row per dataset and kind of run (full fine-tuning, or the linear probe's own grid)
    let kind = |c: &LrCell| {
        if is_probe(&c.model) {
            format!("{} (linear probe)", c.dataset)
        } else {
            c.dataset.clone()
        }
    };
    let mut by_dataset: BTreeMap<String, (usize, usize, usize, String)> = BTreeMap::new();
    for c in cells {
        let e = by_dataset.entry(kind(c)).or_default();
        e.0 += 1;
        e.1 += usize::from(c.edge == "low");
        e.2 += usize::from(c.edge == "high");
        e.3 = format!("{:e} … {:e} ({} rates)", c.grid_low, c.grid_high, c.grid_size);
    }
    let _ = writeln!(
        s,
        "| dataset | grid | cells | at lowest | at highest |\n|---|---|---|---|---|"
    );
    for (d, (n, lo, hi, grid)) in &by_dataset {
        let _ = writeln!(s, "| {d} | {grid} | {n} | {lo} | {hi} |");
    }
    let _ = writeln!(
        s,
        "\nEvery cell's selected rate: [`lr_selection.csv`](lr_selection.csv).\n"
    );
    s
}
