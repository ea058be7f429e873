//! `encoderlab study`: the whole study in one command, or a cluster study's scripts.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;

#[derive(Args)]
pub struct StudyArgs {
    /// A built-in study: demo (fetched data, ≈ 20 min on 2 cores), standard (../shared/data, a
    /// few hours), paper (the paper's grid, for a GPU cluster: configs and Slurm scripts only).
    #[arg(long, default_value = "demo", conflicts_with = "config")]
    pub preset: String,
    /// A study file instead of a preset (same fields as configs/study/*.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Data folder (default: the study's).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Output folder (default: the study's).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print what would run (and its GPU hours, for a study with a [cluster] section); write
    /// nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Then copy the report with its tables and figures (no run records or checkpoints) to this
    /// folder, e.g. analysis/study/standard to commit it.
    #[arg(long)]
    pub publish: Option<PathBuf>,
}

/// Runs (or describes, or writes the scripts of) a study.
pub fn study(args: &StudyArgs) -> Result<()> {
    use encoderlab::study::{paper, run_study, StudyConfig, StudyOptions};
    let mut cfg = match &args.config {
        Some(path) => StudyConfig::load(path)?,
        None => StudyConfig::preset(&args.preset)?,
    };
    if let Some(d) = &args.data_dir {
        cfg.data_dir = d.clone();
    }
    if let Some(o) = &args.out {
        cfg.out = o.clone();
    }
    if args.dry_run {
        print!("{}", paper::describe(&cfg)?);
        return Ok(());
    }
    let exe = std::env::current_exe().context("locating the encoderlab binary")?;
    if !cfg.runnable {
        print!("{}", paper::describe(&cfg)?);
        let files = paper::emit(&cfg, &exe)?;
        println!("wrote {} files under {}:", files.len(), cfg.out.display());
        for f in &files {
            println!("  {}", f.display());
        }
        println!(
            "this study is not run here: on the cluster, put the pack in {} and the datasets under {}, then `bash {}`",
            encoderlab::study::arms::pack_dir(&cfg).display(),
            cfg.data_dir.display(),
            cfg.out.join("slurm").join("submit.sh").display()
        );
        return Ok(());
    }
    let started = Instant::now();
    let outcome = run_study(
        &cfg,
        &StudyOptions {
            exe: Some(exe),
            progress: true,
        },
    )?;
    let t = &outcome.seconds;
    println!(
        "study `{}` done in {:.0} s (data {:.0} s, pretraining {:.0} s, fine-tuning {:.0} s, analysis {:.0} s)",
        cfg.name,
        started.elapsed().as_secs_f64(),
        t.data,
        t.pretrain,
        t.finetune,
        t.analysis
    );
    println!(
        "{} pretraining runs done now ({} arms failed), {} fine-tuning runs ({} done now, {} failed, {} diverged)",
        outcome.pretrain_runs_started,
        outcome.arms_failed.len(),
        outcome.finetune_runs,
        outcome.finetune_runs_started,
        outcome.finetune_failed,
        outcome.finetune_diverged
    );
    println!("report: {}", outcome.report.display());
    if let Some(dest) = &args.publish {
        let copied = encoderlab::study::report::publish(&cfg.out, dest)?;
        println!("published {} files to {}", copied.len(), dest.display());
    }
    let report = std::fs::read_to_string(&outcome.report)?;
    if let Some(verdicts) = report.split("## Setup").next() {
        println!("{}", verdicts.trim_end());
    }
    Ok(())
}
