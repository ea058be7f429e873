//! Running a study, resumably: data → tokenizer and pack → every pretraining arm → the
//! fine-tuning grid → the runs table → the analysis and `REPORT.md`. Every stage keeps what is
//! done (a completed pretraining run is returned, an interrupted one resumes from its last
//! checkpoint, a fine-tuning run with a record is not redone), so running the same command again
//! after an interruption continues where it stopped.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::arms::{arms, models, Arm, ArmKind, Model};
use super::config::StudyConfig;
use super::configs::{
    finetune_base, pretrain_config, pretrain_header, sweep_config, sweep_header, FINETUNE_BASE_HEADER,
};
pub use super::outcome::{StageSeconds, StudyOutcome};
use crate::artifacts::{csv_text, TaskMetaRow};
use crate::config::save_toml;
use crate::data::fetch::{fetch, FetchOptions};
use crate::data::prepare::{prepare_pretraining_data, PrepareOptions};
use crate::error::{IoContext, Result};
use crate::fsutil::write_atomic;
use crate::stats::runs::builtin_meta;
use crate::sweep::{collect, plan, run_inline, run_local, LocalOptions, SweepConfig};
use crate::train::PretrainConfig;

/// How to run a study.
#[derive(Debug, Clone, Default)]
pub struct StudyOptions {
    /// The `encoderlab` binary: fine-tuning runs go to `finetune.workers` processes of it, and
    /// pretraining runs to `pretrain.workers` of them.
    /// `None`: one after another in this process.
    pub exe: Option<PathBuf>,
    /// Progress bars on stderr.
    pub progress: bool,
}

/// The study's file layout.
pub(crate) fn configs_dir(cfg: &StudyConfig) -> PathBuf {
    cfg.out.join("configs")
}

/// The sweep file of the grid.
pub fn sweep_file(cfg: &StudyConfig) -> PathBuf {
    configs_dir(cfg).join("finetune_sweep.toml")
}

/// Runs (or continues) the study.
pub fn run_study(cfg: &StudyConfig, opts: &StudyOptions) -> Result<StudyOutcome> {
    let started = Instant::now();
    let mut seconds = StageSeconds::default();
    std::fs::create_dir_all(&cfg.out).at(&cfg.out)?;
    let resolved = toml::to_string(cfg).map_err(|e| crate::Error::config("study", e.to_string()))?;
    write_atomic(cfg.out.join("study.toml"), resolved.as_bytes())?;

    // data: the fine-tuning datasets (fetched where missing), tokenizer, pack
    let t = Instant::now();
    prepare_data(cfg)?;
    seconds.data = t.elapsed().as_secs_f64();

    // pretraining: every arm, in order (continued arms after their parents)
    let t = Instant::now();
    let (arms, started_runs, failed) = match &opts.exe {
        Some(exe) if cfg.pretrain.workers > 1 => {
            let runs = write_pretrain_configs(cfg)?;
            let (started, failed) = super::parallel::pretrain_parallel(cfg, &runs, exe, cfg.pretrain.workers)?;
            (runs.into_iter().map(|r| r.arm).collect(), started, failed)
        }
        _ => pretrain_arms(cfg, opts.progress)?,
    };
    seconds.pretrain = t.elapsed().as_secs_f64();

    // fine-tuning: every model whose arm completed × dataset × lr × seed
    let t = Instant::now();
    let all = models(cfg);
    let ready: Vec<Model> = all.into_iter().filter(|m| !failed.contains(&m.arm)).collect();
    let (sweep, specs) = write_sweep(cfg, &ready)?;
    let started_ft = match &opts.exe {
        Some(exe) => {
            let local = LocalOptions {
                sweep_file: sweep_file(cfg),
                exe: exe.clone(),
                workers: cfg.finetune.workers,
                threads_per_worker: (std::thread::available_parallelism().map_or(1, |n| n.get())
                    / cfg.finetune.workers)
                    .max(1),
                retry_failed: false,
                progress: opts.progress,
            };
            run_local(&sweep, &specs, &local)?.started
        }
        None => {
            let pending = plan(&specs, &sweep.runs_dir(), 1).pending;
            run_inline(&specs, &sweep.runs_dir(), false, opts.progress)?;
            pending
        }
    };
    seconds.finetune = t.elapsed().as_secs_f64();

    // analysis
    let t = Instant::now();
    let runs_csv = cfg.out.join("runs.csv");
    let n = collect(&specs, &sweep.runs_dir(), &runs_csv)?;
    write_meta(cfg, &cfg.out.join("meta.csv"))?;
    let done = plan(&specs, &sweep.runs_dir(), 1);
    // the report shows this call's stages so far (its analysis is what is running)
    let mut outcome = StudyOutcome {
        seconds: StageSeconds {
            total: started.elapsed().as_secs_f64(),
            ..seconds.clone()
        },
        pretrain_runs_started: started_runs,
        arms_failed: failed,
        finetune_runs: n,
        finetune_runs_started: started_ft,
        finetune_failed: done.failed,
        finetune_diverged: done.diverged,
        report: cfg.out.join("REPORT.md"),
    };
    super::report::write_study_report(cfg, &arms, &ready, &outcome)?;
    seconds.analysis = t.elapsed().as_secs_f64();
    seconds.total = started.elapsed().as_secs_f64();
    outcome.seconds = seconds;
    append_timing(cfg, &outcome)?;
    Ok(outcome)
}

/// Fetches the default datasets where missing (when the study says so), then the pack.
fn prepare_data(cfg: &StudyConfig) -> Result<()> {
    let registry = cfg.registry()?;
    if cfg.fetch {
        let missing = cfg
            .finetune
            .datasets
            .iter()
            .map(|d| d.dataset.as_str())
            .chain(cfg.tokenizer.datasets.iter().map(String::as_str))
            .any(|n| registry.get(n).map(|s| !s.is_present(&cfg.data_dir)).unwrap_or(false));
        if missing {
            let mut f = FetchOptions::new(&cfg.data_dir);
            f.seed = cfg.seed;
            fetch(&f)?;
        }
    }
    for d in &cfg.finetune.datasets {
        let spec = registry.get(&d.dataset)?;
        if !spec.is_present(&cfg.data_dir) {
            return Err(crate::Error::config(
                "finetune.datasets",
                format!(
                    "`{}` is not in {}: run `encoderlab data fetch`, or point data_dir at ../shared/data",
                    d.dataset,
                    cfg.data_dir.display()
                ),
            ));
        }
    }
    let opts = PrepareOptions {
        vocab_size: cfg.tokenizer.vocab_size,
        seq_len: cfg.tokenizer.seq_len,
        seed: cfg.seed,
        datasets: cfg.tokenizer.datasets.clone(),
        registry: cfg.registry.clone(),
        ..PrepareOptions::new(&cfg.data_dir, &cfg.out)
    };
    prepare_pretraining_data(&opts)?;
    Ok(())
}

/// An arm with its pretraining config and the file the config was saved to.
#[derive(Debug, Clone)]
pub struct ArmConfig {
    /// The arm.
    pub arm: Arm,
    /// Its config file (what a `pretrain --config` process reads).
    pub path: PathBuf,
    /// The config.
    pub config: PretrainConfig,
}

/// Writes every arm's config under `<out>/configs/pretrain/`.
pub fn write_pretrain_configs(cfg: &StudyConfig) -> Result<Vec<ArmConfig>> {
    let dir = configs_dir(cfg).join("pretrain");
    arms(cfg)
        .into_iter()
        .map(|arm| {
            let path = dir.join(format!("{}.toml", arm.run));
            let config = pretrain_config(cfg, &arm);
            save_toml(&config, &path, &pretrain_header(cfg, &arm))?;
            Ok(ArmConfig { arm, path, config })
        })
        .collect()
}

fn pretrain_arms(cfg: &StudyConfig, progress: bool) -> Result<(Vec<Arm>, usize, Vec<String>)> {
    let mut failed: Vec<String> = Vec::new();
    let mut started = 0;
    let mut arms = Vec::new();
    for ArmConfig { arm, config: pc, .. } in write_pretrain_configs(cfg)? {
        if let ArmKind::Continued { from } = &arm.kind {
            let parent = super::arms::run_name(cfg, from, arm.seed);
            if failed.contains(&parent) {
                eprintln!("arm {}: left out, its parent {parent} did not complete", arm.run);
                failed.push(arm.run.clone());
                arms.push(arm);
                continue;
            }
        }
        eprintln!(
            "pretraining arm {} (seed {}, {} steps, {})",
            arm.name, arm.seed, arm.steps, arm.size
        );
        let (summary, ran) = crate::train::pretrain_resumable(&pc, progress)?;
        started += usize::from(ran);
        if summary.status != "completed" {
            eprintln!("arm {}: {} at step {:?}", arm.run, summary.status, summary.diverged_at);
            failed.push(arm.run.clone());
        }
        arms.push(arm);
    }
    Ok((arms, started, failed))
}

/// Writes the base fine-tuning config (of `first`) and the sweep file of the grid of `models`;
/// returns the sweep (its `base` is the base config's path).
pub(crate) fn write_sweep_files(cfg: &StudyConfig, first: &Model, models: &[Model]) -> Result<SweepConfig> {
    let base = configs_dir(cfg).join("finetune_base.toml");
    save_toml(&finetune_base(cfg, first), &base, FINETUNE_BASE_HEADER)?;
    let sweep = sweep_config(cfg, models, &base, &cfg.out.join("sweeps"));
    save_toml(&sweep, &sweep_file(cfg), &sweep_header(cfg))?;
    Ok(sweep)
}

fn write_sweep(cfg: &StudyConfig, models: &[Model]) -> Result<(SweepConfig, Vec<crate::sweep::RunSpec>)> {
    let first = models
        .first()
        .ok_or_else(|| crate::Error::config("pretrain", "no arm completed: nothing to fine-tune"))?;
    let sweep = write_sweep_files(cfg, first, models)?;
    let specs = sweep.expand()?;
    Ok((sweep, specs))
}

/// The task metadata of the grid's datasets (from the registry), as `analysis report --meta`
/// reads it.
fn write_meta(cfg: &StudyConfig, path: &Path) -> Result<()> {
    let meta = builtin_meta(&cfg.registry()?);
    let rows: Vec<TaskMetaRow> = cfg
        .finetune
        .datasets
        .iter()
        .filter_map(|d| meta.get(&d.dataset).map(|m| m.row(&d.dataset)))
        .collect();
    let text = csv_text(&rows, Some(&TaskMetaRow::template()))?;
    write_atomic(path, text.as_bytes())
}

/// Appends this call's outcome to `<out>/timings.jsonl` (one line per call).
fn append_timing(cfg: &StudyConfig, outcome: &StudyOutcome) -> Result<()> {
    use std::io::Write;
    let path = cfg.out.join("timings.jsonl");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .at(&path)?;
    let line = serde_json::to_string(outcome).map_err(|e| crate::Error::config("timings", e.to_string()))?;
    writeln!(f, "{line}").at(&path)?;
    Ok(())
}
