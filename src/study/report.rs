//! The study's report: the full analysis of its runs table (`analysis/`, as `analysis report`
//! writes it), the findings as CSV (`findings.csv`), their figures (`figures/`), the models
//! (`models.csv`) and `REPORT.md`, which says for each finding what was compared, the numbers
//! with their intervals, the test and its Holm-corrected p-value, and the verdict in words.

use std::fmt::Write as _;
use std::path::Path;

use super::arms::{with_baselines, Arm, Model, Role};
use super::config::StudyConfig;
use super::control::{lr_cells, positive_control, Control, LrCell};
use super::findings::{evaluate, Comparison, Evidence, Finding};
use super::outcome::StudyOutcome;
use super::sections::*;
use crate::artifacts::csv_text;
use crate::error::Result;
use crate::finetune::config::is_probe;
use crate::fsutil::write_atomic;
use crate::stats::report::{build_tables, write_report, ReportConfig, RunsIndex};
use crate::stats::runs::{check_meta, read_meta, read_runs};

/// Writes `analysis/`, `findings.csv`, `models.csv`, `figures/` and `REPORT.md` under the
/// study's folder from its `runs.csv` and `meta.csv`.
pub(crate) fn write_study_report(
    cfg: &StudyConfig,
    arms: &[Arm],
    models: &[Model],
    outcome: &StudyOutcome,
) -> Result<()> {
    let out = &cfg.out;
    let runs_path = out.join("runs.csv");
    let meta_path = out.join("meta.csv");
    let runs = read_runs(&runs_path)?;
    let meta = read_meta(&meta_path)?;
    check_meta(&runs, &meta, &runs_path, &meta_path)?;
    let rc = ReportConfig {
        seed: cfg.seed,
        confidence: cfg.analysis.confidence,
        nan_policy: cfg.analysis.nan_policy,
        bootstrap_resamples: cfg.analysis.bootstrap_resamples,
        aggregate_reps: cfg.analysis.aggregate_reps,
        ..ReportConfig::default()
    };
    // the linear probes have their own learning-rate grid: a system of their own in an index of
    // their own, so that neither grid reads as missing runs of the other
    let (probe_runs, runs): (Vec<_>, Vec<_>) = runs.into_iter().partition(|r| is_probe(&r.model));
    let ix = RunsIndex::new(&runs, &meta, rc.nan_policy);
    let probe_ix = RunsIndex::new(&probe_runs, &meta, rc.nan_policy);
    let tables = build_tables(&ix, &rc)?;
    write_report(&tables, &analysis_plots(&tables, &ix)?, &out.join("analysis"))?;

    let ev = Evidence::new(&ix, cfg.analysis.confidence, cfg.analysis.alpha);
    let finals = with_baselines(cfg, models.iter().filter(|m| m.role == Role::Final));
    let control = positive_control(
        &ix,
        &finals,
        cfg.analysis.confidence,
        cfg.analysis.alpha,
        cfg.analysis.aggregate_reps,
        cfg.seed,
    );
    let all = unique(models.iter().map(|m| &m.name));
    // every system's cells, the linear probes' included
    let probe_names: Vec<String> = probe_ix.systems.iter().map(|(m, _)| m.clone()).collect();
    let mut cells = lr_cells(&ix, &all);
    cells.extend(lr_cells(&probe_ix, &unique(probe_names.iter())));
    let findings = evaluate(cfg, &ev, &control);
    let pretrained = with_baselines(cfg, models.iter().filter(|m| m.role != Role::Random));
    let probes = super::probe::probe_rows(&probe_ix, &ix, &pretrained, cfg.analysis.confidence);
    if !probes.is_empty() {
        write_atomic(out.join("probe.csv"), csv_text(&probes, None)?.as_bytes())?;
    }
    write_atomic(out.join("control.csv"), csv_text(&control.rows, None)?.as_bytes())?;
    write_atomic(out.join("lr_selection.csv"), csv_text(&cells, None)?.as_bytes())?;
    write_atomic(out.join("findings.csv"), findings_csv(&findings)?.as_bytes())?;
    write_atomic(out.join("models.csv"), models_csv(models)?.as_bytes())?;
    let losses = super::losses::read_losses(cfg, arms);
    write_atomic(out.join("pretraining_losses.csv"), csv_text(&losses, None)?.as_bytes())?;
    let figures = super::figures::draw(cfg, models, &ev, &findings, &control, &losses)?;
    write_report(&[], &figures, &out.join("figures"))?;
    let md = markdown(
        cfg,
        arms,
        models,
        &findings,
        (&control, &cells, &losses, &probes),
        &ev,
        outcome,
        &runs.len(),
    );
    write_atomic(out.join("REPORT.md"), md.as_bytes())
}

/// Names in order of first appearance, each once (a model has one entry per pretraining seed).
fn unique<'a>(names: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for n in names {
        if !v.contains(n) {
            v.push(n.clone());
        }
    }
    v
}

#[cfg(feature = "plots")]
fn analysis_plots(tables: &[crate::stats::report::Table], ix: &RunsIndex) -> Result<Vec<(String, Vec<u8>)>> {
    crate::stats::plots::plot_tables(tables, &ix.score_ranges())
}

#[cfg(not(feature = "plots"))]
fn analysis_plots(_: &[crate::stats::report::Table], _: &RunsIndex) -> Result<Vec<(String, Vec<u8>)>> {
    Ok(Vec::new())
}

#[allow(clippy::too_many_arguments)]
fn markdown(
    cfg: &StudyConfig,
    arms: &[Arm],
    models: &[Model],
    findings: &[Finding],
    (control, cells, losses, probes): (
        &Control,
        &[LrCell],
        &[super::losses::LossPoint],
        &[super::probe::ProbeRow],
    ),
    ev: &Evidence,
    outcome: &StudyOutcome,
    runs_rows: &usize,
) -> String {
    let f = &cfg.finetune;
    let p = &cfg.pretrain;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Study `{}`: should we still pretrain encoders with MLM?\n",
        cfg.name
    );
    let _ = writeln!(s, "{}\n", cfg.description);
    let _ = writeln!(
        s,
        "Generated by `encoderlab study` from `runs.csv` (one row per fine-tuning run and split, each naming its run record `sweeps/finetune/runs/<run_id>/`) and `meta.csv`; the resolved study is `study.toml`, every generated config is under `configs/`. Nothing here is typed by hand.\n"
    );
    s.push_str(&control_section(cfg, control));
    s.push_str(&super::losses::section(arms, losses));
    s.push_str(&lr_section(cells));
    s.push_str(&super::probe::section(probes));
    let _ = writeln!(s, "## Verdicts\n\n| finding | claim | verdict |\n|---|---|---|");
    for fi in findings {
        let _ = writeln!(
            s,
            "| [{}](#{}) | {} | **{}** |",
            fi.id,
            fi.id.to_lowercase(),
            fi.claim,
            fi.verdict.word()
        );
    }
    let _ = writeln!(s);

    let _ = writeln!(s, "## Setup\n");
    let _ = writeln!(
        s,
        "- Pretraining: `{}` models, {} steps × {} blocks of {} tokens ({} tokens per arm), peak LR {}{}, warmup {} steps, WSD decay over the last {} steps, AdamW β=(0.9, 0.95), ε=1e-5, wd 0.1, clip 1.0; tokenizer: {}-id byte-level BPE on {}.",
        p.size,
        p.steps,
        p.batch_size * p.grad_accum,
        cfg.tokenizer.seq_len,
        p.steps * p.batch_size * p.grad_accum * cfg.tokenizer.seq_len,
        p.peak_lr,
        p.size_peak_lr
            .iter()
            .map(|(size, lr)| format!(" (`{size}`: {lr})"))
            .collect::<String>(),
        p.warmup_steps,
        p.decay_steps,
        cfg.tokenizer.vocab_size,
        cfg.tokenizer.datasets.join(", ")
    );
    let _ = writeln!(
        s,
        "- Arms: {}; pretraining seeds {{{}}} (each arm trained once per seed; the random baseline draws its weights from each).",
        unique(arms.iter().map(|a| &a.name))
            .iter()
            .map(|a| format!("`{a}`"))
            .collect::<Vec<_>>()
            .join(", "),
        cfg.pretrain_seeds()
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        s,
        "- Fine-tuning: {} models × seeds {{{}}}, {} examples per step, {} attention, {} pooling; per dataset, its learning rates, steps and examples:",
        models.len(),
        f.seeds.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", "),
        f.batch_size,
        super::arms::variant_name(&f.attention),
        super::arms::variant_name(&f.pooling),
    );
    for d in &f.datasets {
        let _ = writeln!(s, "  - {}.", d.describe(f));
    }
    let f6 = super::arms::f6_names(cfg, models);
    if !f.ratio_datasets.is_empty() && !f6.is_empty() {
        let _ = writeln!(
            s,
            "  - F6's models ({}) on {} only.",
            f6.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", "),
            f.ratio_datasets.join(", ")
        );
    }
    let _ = writeln!(s, "  The best LR is chosen on validation and its test scores reported.");
    let _ = writeln!(
        s,
        "- Statistics: scores normalised as (score − chance) / (max − chance) to compare across datasets; failed runs: {}; intervals at {} %; paired t-tests over (dataset, seed) units, Welch over seeds on one dataset (over (dataset, pretraining run) units and pretraining runs where both models have several); Holm over the {} primary tests of the report (supporting rows: Holm within their finding). The full analysis (every table of `analysis report`, with its plots) is in [`analysis/`](analysis/).\n",
        match cfg.analysis.nan_policy {
            crate::stats::report::NanPolicy::ImputeChance => "counted at the task's chance score",
            crate::stats::report::NanPolicy::Drop => "left out",
        },
        cfg.analysis.confidence * 100.0,
        findings.iter().flat_map(|f| &f.rows).filter(|c| c.primary).count()
    );

    let _ = writeln!(s, "## Compute\n");
    s.push_str(&timings(cfg, outcome, *runs_rows));
    s.push_str(&recorded_compute(cfg, arms));
    let arms_failed = &outcome.arms_failed;
    if !arms_failed.is_empty() {
        let _ = writeln!(
            s,
            "\nArms that did not complete (left out): {}.",
            arms_failed.join(", ")
        );
    }

    let _ = writeln!(s, "\n## Models\n");
    s.push_str(&model_table(ev, models, cfg.analysis.confidence));
    let _ = writeln!(s, "\n![scores of every model](figures/models.png)\n");

    for fi in findings {
        let _ = writeln!(s, "## {}\n", fi.id);
        let _ = writeln!(s, "**Claim.** {}\n", fi.claim);
        let _ = writeln!(s, "**Comparison.** {}.\n", fi.design);
        let rows: Vec<&Comparison> = fi.rows.iter().collect();
        if rows.is_empty() {
            let _ = writeln!(s, "No runs for this comparison.\n");
        } else {
            s.push_str(&comparison_table(&rows));
            let _ = writeln!(s, "\n![{}](figures/{}.png)\n", fi.id, fi.id.to_lowercase());
            if fi.id == "F2" {
                let _ = writeln!(s, "![F2 curve](figures/f2_curve.png)\n");
            }
        }
        let _ = writeln!(s, "**Verdict: {}.** {}\n", fi.verdict.word(), fi.why);
    }
    s
}

/// Copies the report and everything it links to (`REPORT.md`, the tables, the figures, the
/// analysis, the resolved study and its timings; not the run records or checkpoints) from the
/// study's folder to `dest`, for committing: a new folder, an empty one, or one an earlier
/// publish wrote (see [`crate::fsutil::OwnedDir`]), updated only when all is copied.
pub fn publish(out: &Path, dest: &Path) -> Result<Vec<String>> {
    use crate::error::IoContext;
    let stage = crate::fsutil::OwnedDir::create(dest, "study --publish")?;
    let mut copied = Vec::new();
    let files = [
        "REPORT.md",
        "control.csv",
        "lr_selection.csv",
        "pretraining_losses.csv",
        "runs.csv",
        "meta.csv",
        "findings.csv",
        "models.csv",
        "study.toml",
        "timings.jsonl",
    ];
    for name in files {
        let from = out.join(name);
        std::fs::copy(&from, stage.path().join(name)).at(&from)?;
        copied.push(name.to_string());
    }
    // written only when the study has a linear probe
    let probe = out.join("probe.csv");
    if probe.exists() {
        std::fs::copy(&probe, stage.path().join("probe.csv")).at(&probe)?;
        copied.push("probe.csv".to_string());
    }
    for sub in ["figures", "analysis"] {
        let from = out.join(sub);
        let to = stage.path().join(sub);
        std::fs::create_dir_all(&to).at(&to)?;
        let mut names: Vec<String> = std::fs::read_dir(&from)
            .at(&from)?
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().to_string()))
            .filter(|n| n.ends_with(".csv") || n.ends_with(".png"))
            .collect();
        names.sort();
        for n in names {
            std::fs::copy(from.join(&n), to.join(&n)).at(from.join(&n))?;
            copied.push(format!("{sub}/{n}"));
        }
    }
    stage.commit()?;
    Ok(copied)
}
