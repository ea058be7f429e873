//! The `analysis` command line: a table of fine-tuning runs in, CSV reports out (confidence
//! intervals, stability measures, significance tests: the tables of `encoderlab::stats::report`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use encoderlab::artifacts::report::{BestLrRow, PairedTestRow, PoiRow, UnpairedTestRow};
use encoderlab::stats::report::{build_tables_with, write_report, NanPolicy, ReportConfig, RunsIndex};
use encoderlab::stats::runs::{check_meta, meta_or_builtin, read_runs};

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
    /// Write every CSV report of a runs table, and its plots, into a folder.
    Report(ReportArgs),
    /// Draw (again) the PNG and SVG plots of a report folder from its CSVs.
    #[cfg(feature = "plots")]
    Plot(PlotArgs),
    /// Print, per system and dataset, the best-LR score with its CI, seed std and failure rate.
    Summary(Input),
    /// Print the pairwise tests of two systems (each given as MODEL/OBJECTIVE).
    Compare(CompareArgs),
    /// Power of the dataset-level comparison of every pair: the smallest effect the design
    /// detects at 80 % power, and the datasets, pretraining seeds or fine-tuning seeds that
    /// would detect the observed (or a given) effect (`power.csv`).
    Power(PowerArgs),
    /// The study's findings F1 (MLM beats CLM) and F3 (CLM fine-tunes more stably) between two
    /// models of any runs table, e.g. the paper's released runs: `findings.csv` and
    /// `FINDINGS.md` in a folder.
    Findings(FindingsArgs),
}

#[derive(Args)]
struct FindingsArgs {
    #[command(flatten)]
    input: Input,
    /// The CLM model (the runs table's `model`).
    #[arg(long)]
    clm: String,
    /// The MLM model.
    #[arg(long)]
    mlm: String,
    /// Significance level of the verdicts (after Holm).
    #[arg(long, default_value_t = 0.05)]
    alpha: f64,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct PowerArgs {
    #[command(flatten)]
    input: Input,
    /// The effect to detect, in normalised score (default: each pair's observed difference).
    #[arg(long)]
    effect: Option<f64>,
    /// Write the table to this CSV file as well.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct CompareArgs {
    #[command(flatten)]
    input: Input,
    /// First system, MODEL/OBJECTIVE.
    #[arg(long)]
    x: String,
    /// Second system, MODEL/OBJECTIVE.
    #[arg(long)]
    y: String,
}

#[cfg(feature = "plots")]
#[derive(Args)]
struct PlotArgs {
    /// Report folder written by `analysis report`.
    #[arg(long)]
    report: PathBuf,
    /// Where to write the plots (default: the report folder).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Task metadata CSV, as `report --meta` took (default: the built-in registry): each
    /// dataset's score range, which intervals are drawn within.
    #[arg(long)]
    meta: Option<PathBuf>,
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
    /// Runs table (.csv or .parquet): model,objective,[family],dataset,learning_rate,[pretrain_seed],seed,split,[metric],score,[status].
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
    /// Per-instance scores: a folder of fine-tuning records (their `instances.jsonl`) or a CSV
    /// `model,objective,dataset,learning_rate,[pretrain_seed],seed,split,instance,score`.
    /// Turns on the instance level of the hierarchical bootstrap, `instance_tests.csv` and
    /// `ranking_clusters.csv`.
    #[arg(long)]
    instances: Option<PathBuf>,
}

#[derive(Args)]
struct ReportArgs {
    #[command(flatten)]
    input: Input,
    /// Output folder: new, empty, or one an earlier report wrote (its files are replaced once
    /// every file is written; files it did not write are left alone).
    #[arg(long)]
    out: PathBuf,
    /// Performance-profile thresholds, comma-separated (default: quantiles of the pooled scores).
    #[arg(long, value_delimiter = ',')]
    taus: Option<Vec<f64>>,
    /// Write the CSVs only, without the PNG and SVG plots.
    #[arg(long)]
    no_plots: bool,
    /// Resamples of the per-(system, dataset) bootstrap intervals (`bootstrap_ci.csv`).
    #[arg(long, default_value_t = 9999)]
    bootstrap_resamples: usize,
    /// Resamples of the stratified bootstrap of the aggregates (`aggregate.csv`; rliable's 50,000).
    #[arg(long, default_value_t = 50_000)]
    aggregate_reps: usize,
    /// Resamples of probability of improvement and performance profiles (rliable's 2,000),
    /// and of the hierarchical bootstrap (`tests_hierarchical.csv`).
    #[arg(long, default_value_t = 2000)]
    poi_reps: usize,
    /// The effect (normalised score) `power.csv` asks the seeds and datasets needed for
    /// (default: each pair's observed difference).
    #[arg(long)]
    power_effect: Option<f64>,
    /// An interaction to test, X1,Y1,X2,Y2 (each MODEL/OBJECTIVE): the difference of
    /// differences (X1 − Y1) − (X2 − Y2), e.g. MLM-40 − MLM-20 at one size minus at another
    /// (`tests_interactions.csv`). Repeatable.
    #[arg(long = "interaction")]
    interactions: Vec<String>,
}

fn load(input: &Input) -> Result<(RunsIndex, ReportConfig)> {
    load_filtered(input, None)
}

/// Loads the runs (only the two systems of `pair`, x first, when given).
fn load_filtered(input: &Input, pair: Option<(&str, &str)>) -> Result<(RunsIndex, ReportConfig)> {
    let mut runs = read_runs(&input.runs)?;
    if let Some((x, y)) = pair {
        let name = |r: &encoderlab::stats::runs::Run| format!("{}/{}", r.model, r.objective);
        for want in [x, y] {
            if !runs.iter().any(|r| name(r) == want) {
                let mut known: Vec<String> = Vec::new();
                for r in &runs {
                    if !known.contains(&name(r)) {
                        known.push(name(r));
                    }
                }
                anyhow::bail!(
                    "no system {want} in {} (systems: {})",
                    input.runs.display(),
                    known.join(", ")
                );
            }
        }
        runs.retain(|r| name(r) == x || name(r) == y);
        runs.sort_by_key(|r| name(r) != x);
    }
    let (meta, origin) = meta_or_builtin(input.meta.as_deref())?;
    check_meta(&runs, &meta, &input.runs, &origin)?;
    let policy = match input.nan_policy {
        Policy::ImputeChance => NanPolicy::ImputeChance,
        Policy::Drop => NanPolicy::Drop,
    };
    let cfg = ReportConfig {
        seed: input.seed,
        confidence: input.confidence,
        nan_policy: policy,
        ..ReportConfig::default()
    };
    cfg.validate()?;
    let mut index = RunsIndex::new(&runs, &meta, policy);
    if let Some(path) = &input.instances {
        let found = index.attach_instances(encoderlab::stats::instances::read_instances(path)?)?;
        eprintln!(
            "instances: {} runs of {} matched ({} not in the runs table or failed there, left out)",
            found.attached,
            path.display(),
            found.unused
        );
        let missing: Vec<encoderlab::artifacts::report::InstanceMissingRow> =
            encoderlab::stats::report::instances_missing(&index, &cfg)?.rows_of()?;
        if let Some(m) = missing.first() {
            eprintln!(
                "instances: {} selected runs have none, so their datasets are resampled at run level (listed in instances_missing.csv), e.g. {}/{} on {} ({}) at learning rate {}, pretraining seed {}, seed {}",
                missing.len(),
                m.model,
                m.objective,
                m.dataset,
                m.split,
                m.learning_rate,
                m.pretrain_seed,
                m.seed
            );
        }
    }
    Ok((index, cfg))
}

fn report(args: &ReportArgs) -> Result<()> {
    let started = Instant::now();
    // refused before any work: a file, or a folder holding what no report wrote
    encoderlab::fsutil::check_owned(&args.out, encoderlab::stats::report::REPORT_WRITER)?;
    let (index, mut cfg) = load(&args.input)?;
    cfg.taus = args.taus.clone();
    cfg.bootstrap_resamples = args.bootstrap_resamples;
    cfg.aggregate_reps = args.aggregate_reps;
    cfg.poi_reps = args.poi_reps;
    cfg.power_effect = args.power_effect;
    for spec in &args.interactions {
        let names: Vec<String> = spec.split(',').map(|s| s.trim().to_string()).collect();
        let Ok(four) = <[String; 4]>::try_from(names) else {
            anyhow::bail!("--interaction {spec:?}: give four systems X1,Y1,X2,Y2, each MODEL/OBJECTIVE");
        };
        for name in &four {
            if index.system_named(name).is_none() {
                let known: Vec<String> = index.systems.iter().map(|(m, o)| format!("{m}/{o}")).collect();
                anyhow::bail!(
                    "--interaction {spec:?}: no system {name} (systems: {})",
                    known.join(", ")
                );
            }
        }
        cfg.interactions.push(four);
    }
    cfg.validate()?;
    let bar = indicatif::ProgressBar::new(encoderlab::stats::report::TABLES.len() as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} tables, {elapsed}: {msg}") {
        bar.set_style(style);
    }
    let mut done = 0;
    let tables = build_tables_with(&index, &cfg, |name| {
        bar.set_position(done);
        bar.set_message(name.to_string());
        done += 1;
    })?;
    bar.finish_and_clear();
    let plots = if args.no_plots {
        Vec::new()
    } else {
        plot_files(&tables, &index.score_ranges())?
    };
    write_report(&tables, &plots, &args.out).with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!(
        "{} systems, {} datasets, {} groups -> {} ({} files) in {:.2} s",
        index.systems.len(),
        index.datasets.len(),
        index.groups.len(),
        args.out.display(),
        tables.len() + plots.len(),
        started.elapsed().as_secs_f64()
    );
    for t in &tables {
        println!("{:<26} {:>6} rows", t.name, t.rows.len());
    }
    Ok(())
}

#[cfg(feature = "plots")]
fn plot_files(
    tables: &[encoderlab::stats::report::Table],
    ranges: &encoderlab::stats::report::ScoreRanges,
) -> Result<Vec<(String, Vec<u8>)>> {
    Ok(encoderlab::stats::plots::plot_tables(tables, ranges)?)
}

#[cfg(not(feature = "plots"))]
fn plot_files(
    _: &[encoderlab::stats::report::Table],
    _: &encoderlab::stats::report::ScoreRanges,
) -> Result<Vec<(String, Vec<u8>)>> {
    eprintln!("built without the `plots` feature: CSVs only");
    Ok(Vec::new())
}

#[cfg(feature = "plots")]
fn plot(args: &PlotArgs) -> Result<()> {
    use encoderlab::stats::plots::{figures, render_all, PlotTables};
    let (meta, _) = encoderlab::stats::runs::meta_or_builtin(args.meta.as_deref())?;
    let ranges = meta.iter().map(|(name, m)| (name.clone(), m.score_range())).collect();
    let files = render_all(&figures(&PlotTables::read(&args.report, ranges)?))?;
    let out = args.out.as_ref().unwrap_or(&args.report);
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for (name, bytes) in &files {
        encoderlab::fsutil::write_atomic(out.join(name), bytes)?;
        println!("{}", out.join(name).display());
    }
    Ok(())
}

fn fmt(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.4}")
    } else {
        x.to_string()
    }
}

fn power(args: &PowerArgs) -> Result<()> {
    let (index, mut cfg) = load(&args.input)?;
    cfg.power_effect = args.effect;
    let table = encoderlab::stats::report::power_table(&index, &cfg)?;
    let text = table.to_csv()?;
    if let Some(out) = &args.out {
        encoderlab::fsutil::write_atomic(out, text.as_bytes())?;
    }
    print!("{text}");
    Ok(())
}

fn summary(input: &Input) -> Result<()> {
    let (index, cfg) = load(input)?;
    let best = encoderlab::stats::report::best_lr_table(&index, &cfg)?;
    println!(
        "{:<28} {:<14} {:<14} {:>9} {:>8} {:>21} {:>9} {:>9}",
        "model", "objective", "dataset", "best_lr", "score", "95% t-CI", "seed_std", "failed"
    );
    for r in best.rows_of::<BestLrRow>()? {
        println!(
            "{:<28} {:<14} {:<14} {:>9} {:>8} {:>21} {:>9} {:>9}",
            r.model,
            r.objective,
            r.dataset,
            r.best_lr,
            fmt(r.best_mean),
            format!("[{}, {}]", fmt(r.best_t_ci_low), fmt(r.best_t_ci_high)),
            fmt(r.best_std),
            fmt(r.failed_rate_all_lr)
        );
    }
    println!("score = mean over seeds on the report split at the learning rate chosen on the selection split");
    Ok(())
}

fn compare(args: &CompareArgs) -> Result<()> {
    let (index, cfg) = load_filtered(&args.input, Some((&args.x, &args.y)))?;
    let unpaired = encoderlab::stats::report::tests_unpaired(&index, &cfg)?;
    println!("x = {}, y = {}", args.x, args.y);
    println!(
        "{:<14} {:>4} {:>4} {:>10} {:>21} {:>9} {:>9} {:>9}",
        "dataset", "n_x", "n_y", "mean_diff", "95% Welch CI", "welch_p", "mwu_p", "P(x>y)"
    );
    for r in unpaired.rows_of::<UnpairedTestRow>()? {
        println!(
            "{:<14} {:>4} {:>4} {:>10} {:>21} {:>9} {:>9} {:>9}",
            r.dataset,
            r.n_x,
            r.n_y,
            fmt(r.mean_diff),
            format!("[{}, {}]", fmt(r.welch_ci_low), fmt(r.welch_ci_high)),
            fmt(r.welch_p),
            fmt(r.mwu_p),
            fmt(r.poi_x_gt_y)
        );
    }
    let paired = encoderlab::stats::report::tests_paired(&index, &cfg)?;
    for r in paired.rows_of::<PairedTestRow>()? {
        println!(
            "paired over {:<12} n={:<3} mean_diff={} t-test p={} Wilcoxon p={} ({})",
            r.level,
            r.n_pairs,
            fmt(r.mean_diff),
            fmt(r.ttest_rel_p),
            fmt(r.wilcoxon_p),
            r.wilcoxon_method
        );
    }
    let poi = encoderlab::stats::report::poi_table(&index, &cfg)?;
    for r in poi.rows_of::<PoiRow>()? {
        println!(
            "probability of improvement P(x > y) = {} [{}, {}]",
            fmt(r.poi),
            fmt(r.ci_low),
            fmt(r.ci_high)
        );
    }
    Ok(())
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Report(a) => report(&a),
        Command::Power(a) => power(&a),
        #[cfg(feature = "plots")]
        Command::Plot(a) => plot(&a),
        Command::Summary(a) => summary(&a),
        Command::Compare(a) => compare(&a),
        Command::Findings(a) => findings(&a),
    }
}

fn findings(a: &FindingsArgs) -> Result<()> {
    let (ix, cfg) = load(&a.input)?;
    for m in [&a.clm, &a.mlm] {
        if !ix.systems.iter().any(|(model, _)| model == m) {
            anyhow::bail!("no model `{m}` in {}", a.input.runs.display());
        }
    }
    if !(a.alpha > 0.0 && a.alpha < 1.0) {
        anyhow::bail!("--alpha {} must be in (0, 1)", a.alpha);
    }
    let names = encoderlab::study::findings::Names {
        clm: a.clm.clone(),
        mlm: a.mlm.clone(),
    };
    // the folder and file only, so that the text does not depend on where the data lies
    let parts: Vec<String> = a.input.runs.iter().map(|c| c.to_string_lossy().into_owned()).collect();
    let source = format!("`{}`", parts[parts.len().saturating_sub(2)..].join("/"));
    let found = encoderlab::study::released::write_findings(&ix, &cfg, &names, a.alpha, &a.out, &source)?;
    for f in &found {
        println!("{}: {} — {}", f.id, f.verdict.word(), f.why);
    }
    println!("wrote {}", a.out.join("FINDINGS.md").display());
    Ok(())
}
