//! `encoderlab sweep plan|run|status|collect|run-one|worker|slurm|mark-failed`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use encoderlab::runtime::set_threads;

#[derive(Subcommand)]
pub enum SweepCommand {
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
pub struct SweepSlurmArgs {
    #[command(flatten)]
    pub sweep: SweepArgs,
    /// Slurm partition.
    #[arg(long)]
    pub partition: Option<String>,
    /// Time limit per task (Slurm syntax, e.g. 2:00:00).
    #[arg(long)]
    pub time: Option<String>,
    /// GPUs per task.
    #[arg(long)]
    pub gpus_per_task: Option<usize>,
    /// CPUs per task (also the run's threads).
    #[arg(long, default_value_t = 1)]
    pub cpus_per_task: usize,
    /// At most this many tasks at once.
    #[arg(long)]
    pub max_parallel: Option<usize>,
    /// Also resubmit the runs recorded as failed.
    #[arg(long)]
    pub retry_failed: bool,
    /// Write the batch script and print it, without submitting.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args)]
pub struct SweepMarkFailedArgs {
    #[command(flatten)]
    pub sweep: SweepArgs,
    /// The run's index.
    #[arg(long)]
    pub index: usize,
    /// Why it failed.
    #[arg(long)]
    pub reason: String,
}

#[derive(Args)]
pub struct SweepArgs {
    /// The sweep file (configs/sweep/*.toml).
    #[arg(long)]
    pub config: PathBuf,
    /// A dataset registry of your own that every run finds its dataset in (the sweep file's key
    /// `registry`; passed on to the workers and the Slurm tasks).
    #[arg(long)]
    pub registry: Option<PathBuf>,
}

#[derive(Args)]
pub struct SweepPlanArgs {
    #[command(flatten)]
    pub sweep: SweepArgs,
    /// Parallel runs assumed by the estimate.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
}

#[derive(Args)]
pub struct SweepRunArgs {
    #[command(flatten)]
    pub sweep: SweepArgs,
    /// Runs at once.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// CPU threads per run (default: the cores divided among the workers).
    #[arg(long)]
    pub threads_per_worker: Option<usize>,
    /// Also rerun the runs recorded as failed.
    #[arg(long)]
    pub retry_failed: bool,
}

#[derive(Args)]
pub struct SweepCollectArgs {
    #[command(flatten)]
    pub sweep: SweepArgs,
    /// The table to write (.csv, or .parquet).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args)]
pub struct SweepRunOneArgs {
    #[command(flatten)]
    pub sweep: SweepArgs,
    /// The run's index in the sweep's order.
    #[arg(long)]
    pub index: usize,
    /// CPU threads.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Die when the process that started this one dies (set by `sweep run`).
    #[arg(long)]
    pub die_with_parent: bool,
}

#[derive(Args)]
pub struct SweepWorkerArgs {
    #[command(flatten)]
    pub sweep: SweepArgs,
    /// CPU threads.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Die when the process that started this one dies (set by `sweep run`).
    #[arg(long)]
    pub die_with_parent: bool,
}

/// Runs a `sweep` subcommand.
pub fn sweep(cmd: &SweepCommand) -> Result<()> {
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
    let mut cfg = SweepConfig::load(&args.config)?;
    if let Some(registry) = &args.registry {
        cfg.registry = Some(registry.clone());
    }
    let specs = cfg.expand()?;
    match cmd {
        SweepCommand::Plan(a) => print!("{}", plan(&specs, &cfg.runs_dir(), a.workers).summary(a.workers)),
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
                encoderlab::finetune::record::failed_record(&spec.config, &a.reason)?;
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
pub fn die_with_parent() {
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
