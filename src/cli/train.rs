//! `encoderlab pretrain` and `encoderlab finetune`: one run from a TOML config.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use encoderlab::runtime::set_threads;

#[derive(Args)]
pub struct PretrainArgs {
    /// The run's configuration (configs/pretrain/*.toml); not needed with --resume.
    #[arg(long, required_unless_present = "resume")]
    pub config: Option<PathBuf>,
    /// Override a config value: --set train.seed=2 --set lr.peak=3e-4 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Continue from a checkpoint folder (runs/pretrain/NAME/checkpoints/step-N), with the
    /// configuration saved in it.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// With --config: continue the run from its last checkpoint if it has one with this
    /// configuration, return it if complete, else start it (what a rerun job wants).
    #[arg(long = "continue", conflicts_with_all = ["resume", "stop_after"])]
    pub continue_run: bool,
    /// Stop after this many steps of the run (with a checkpoint), to resume later.
    #[arg(long)]
    pub stop_after: Option<usize>,
    /// Write no TensorBoard event files (the config key `train.tensorboard = false`).
    #[arg(long)]
    pub no_tensorboard: bool,
    /// CPU threads (default: all cores; under mpirun or srun, the cores the launcher bound
    /// this process to, else the machine's cores shared between its processes).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Write a Slurm batch script that runs this configuration data parallel over
    /// --nodes × --tasks-per-node ranks (`srun --mpi=pmix`), under the run's folder
    /// (`slurm/pretrain.sbatch`), and submit it (not with --dry-run).
    #[arg(long, conflicts_with_all = ["resume", "stop_after", "continue_run"])]
    pub slurm: bool,
    /// With --slurm: write the script without submitting it.
    #[arg(long, requires = "slurm")]
    pub dry_run: bool,
    /// With --slurm: machines.
    #[arg(long, default_value_t = 1, requires = "slurm")]
    pub nodes: usize,
    /// With --slurm: ranks per machine (one per GPU on GPU nodes).
    #[arg(long, default_value_t = 1, requires = "slurm")]
    pub tasks_per_node: usize,
    /// With --slurm: GPUs per rank (none: a CPU job).
    #[arg(long, requires = "slurm")]
    pub gpus_per_task: Option<usize>,
    /// With --slurm: CPU cores per rank (its threads).
    #[arg(long, default_value_t = 1, requires = "slurm")]
    pub cpus_per_task: usize,
    /// With --slurm: the partition.
    #[arg(long, requires = "slurm")]
    pub partition: Option<String>,
    /// With --slurm: the time limit (HH:MM:SS or D-HH).
    #[arg(long, requires = "slurm")]
    pub time: Option<String>,
    /// Under mpirun or srun: seconds a rank waits for the others at a collective before it ends
    /// the job with an error (default 600; the environment variable
    /// ENCODERLAB_COLLECTIVE_TIMEOUT).
    #[arg(long, value_name = "SECONDS")]
    pub collective_timeout: Option<f64>,
}

#[derive(Args)]
pub struct FinetuneArgs {
    /// The run's configuration (configs/finetune/*.toml).
    #[arg(long)]
    pub config: PathBuf,
    /// Override a config value: --set train.learning_rate=1e-4 --set train.seed=3 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Write no TensorBoard event file (the config key `train.tensorboard = false`).
    #[arg(long)]
    pub no_tensorboard: bool,
    /// A dataset registry of your own to find the task's dataset in (the config key
    /// `task.registry`; default: the built-in configs/datasets.toml).
    #[arg(long)]
    pub registry: Option<PathBuf>,
    /// Save the fine-tuned model in the record's `model/` folder, for `export hf` and `eval
    /// logits` (the config key `train.save_model = true`).
    #[arg(long)]
    pub save_model: bool,
    /// CPU threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Runs (or resumes, or continues) a pretraining run.
pub fn pretrain(args: &PretrainArgs) -> Result<()> {
    use encoderlab::train::{checkpoint::load_state, PretrainConfig, RunOptions};
    if let Some(s) = args.collective_timeout {
        std::env::set_var(encoderlab::dist::TIMEOUT_ENV, s.to_string());
    }
    // the threads first (before MPI starts any of its own), then the world
    let launched = encoderlab::dist::launch_from(|k| std::env::var(k).ok())? != encoderlab::dist::Launch::Alone;
    set_threads(
        args.threads
            .or_else(|| launched.then(encoderlab::dist::default_threads)),
    );
    let world = encoderlab::dist::world()?;
    if world.size() > 1 && world.rank() == 0 {
        eprintln!("data parallel: {}", world.describe());
    }
    let mut cfg = match (&args.resume, &args.config) {
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
    cfg.train.tensorboard &= !args.no_tensorboard;
    if args.slurm {
        let shape = encoderlab::dist::slurm::JobShape {
            nodes: args.nodes,
            tasks_per_node: args.tasks_per_node,
            gpus_per_task: args.gpus_per_task,
            cpus_per_task: args.cpus_per_task,
            partition: args.partition.clone(),
            time: args.time.clone(),
        };
        let script = encoderlab::dist::slurm::write_pretrain_job(&cfg, &shape, &std::env::current_exe()?)?;
        println!("wrote {} ({} rank(s))", script.display(), shape.ranks());
        if !args.dry_run {
            let id = encoderlab::sweep::slurm::sbatch(&script)?;
            println!(
                "submitted job {id}; its output goes to {}",
                script
                    .with_file_name(format!("pretrain-{}_{id}.out", cfg.name))
                    .display()
            );
        }
        return Ok(());
    }
    let summary = if args.continue_run {
        encoderlab::train::pretrain_resumable(&cfg, true)?.0
    } else {
        let opts = RunOptions {
            resume: args.resume.clone(),
            stop_after: args.stop_after,
            progress: true,
        };
        encoderlab::train::pretrain(&cfg, &opts)?
    };
    if world.rank() == 0 {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    if summary.status == "diverged" {
        bail!(
            "the run diverged at step {} (non-finite loss or gradient); its last checkpoint is intact",
            summary.diverged_at.unwrap_or(0)
        );
    }
    Ok(())
}

/// Runs one fine-tuning run and prints its result.
pub fn finetune(args: &FinetuneArgs) -> Result<()> {
    use encoderlab::finetune::{FinetuneConfig, FinetuneOptions, Status};
    set_threads(args.threads);
    let mut cfg = FinetuneConfig::load(&args.config, &args.set)?;
    cfg.train.tensorboard &= !args.no_tensorboard;
    cfg.train.save_model |= args.save_model;
    if let Some(registry) = &args.registry {
        cfg.task.registry = Some(registry.clone());
    }
    let result = encoderlab::finetune::finetune(&cfg, &FinetuneOptions { progress: true })?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    println!("record: {}", cfg.run_dir()?.display());
    if cfg.train.save_model && result.status == Status::Ok {
        let model = cfg.run_dir()?.join(encoderlab::finetune::saved::MODEL_DIR);
        println!(
            "model: {} (encoderlab export hf {} OUT)",
            model.display(),
            model.display()
        );
    }
    match result.status {
        Status::Ok => Ok(()),
        Status::Diverged => {
            eprintln!("the run diverged: {}", result.reason.unwrap_or_default());
            Ok(())
        }
        Status::Failed => bail!("the run failed: {}", result.reason.unwrap_or_default()),
    }
}
