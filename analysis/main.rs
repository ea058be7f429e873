//! The `analysis` command line: a table of fine-tuning runs in, CSV reports out (confidence
//! intervals, stability measures, significance tests), as `../shared/STATISTICS.md` defines them.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use encoderlab::data::Registry;
use encoderlab::stats::report::{build_tables, write_report, NanPolicy, ReportConfig, RunsIndex};
use encoderlab::stats::runs::{builtin_meta, check_meta, read_meta, read_runs, TaskMeta};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "analysis",
    version,
    about = "Turn a table of fine-tuning runs into confidence intervals, stability metrics and significance tests"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write every CSV report of a runs table into a folder.
    Report(ReportArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum Policy {
    /// Replace a failed run by the task's chance score.
    ImputeChance,
    /// Leave failed runs out.
    Drop,
}

#[derive(Args)]
struct Input {
    /// Runs table (.csv or .parquet): model,objective,[family],dataset,learning_rate,seed,split,[metric],score,[status].
    #[arg(long)]
    runs: PathBuf,
    /// Task metadata CSV: dataset,family,metric_name,chance_score,max_score,higher_is_better
    /// (default: the dataset registry's datasets, 0-1 scale).
    #[arg(long)]
    meta: Option<PathBuf>,
    /// Master seed of every resampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Confidence level of every interval.
    #[arg(long, default_value_t = 0.95)]
    confidence: f64,
    /// What a failed run counts as.
    #[arg(long, value_enum, default_value = "impute-chance")]
    nan_policy: Policy,
}

#[derive(Args)]
struct ReportArgs {
    #[command(flatten)]
    input: Input,
    /// Output folder (replaced only when every file is written).
    #[arg(long)]
    out: PathBuf,
    /// Performance-profile thresholds, comma-separated (default: quantiles of the pooled scores).
    #[arg(long, value_delimiter = ',')]
    taus: Option<Vec<f64>>,
}

fn load(input: &Input) -> Result<(RunsIndex, ReportConfig)> {
    let runs = read_runs(&input.runs)?;
    let (meta, origin): (std::collections::BTreeMap<String, TaskMeta>, PathBuf) = match &input.meta {
        Some(path) => (read_meta(path)?, path.clone()),
        None => (
            builtin_meta(&Registry::builtin()?),
            PathBuf::from("the built-in dataset registry"),
        ),
    };
    check_meta(&runs, &meta, &input.runs, &origin)?;
    let policy = match input.nan_policy {
        Policy::ImputeChance => NanPolicy::ImputeChance,
        Policy::Drop => NanPolicy::Drop,
    };
    let cfg = ReportConfig {
        seed: input.seed,
        confidence: input.confidence,
        nan_policy: Some(policy),
        ..ReportConfig::default()
    };
    cfg.validate()?;
    Ok((RunsIndex::new(&runs, &meta, policy), cfg))
}

fn report(args: &ReportArgs) -> Result<()> {
    let started = Instant::now();
    let (index, mut cfg) = load(&args.input)?;
    cfg.taus = args.taus.clone();
    let tables = build_tables(&index, &cfg);
    write_report(&tables, &args.out).with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!(
        "{} systems, {} datasets, {} groups -> {} ({} files) in {:.2} s",
        index.systems.len(),
        index.datasets.len(),
        index.groups.len(),
        args.out.display(),
        tables.len(),
        started.elapsed().as_secs_f64()
    );
    for t in &tables {
        println!("{:<26} {:>6} rows", t.name, t.rows.len());
    }
    Ok(())
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Report(a) => report(&a),
    }
}
