//! A study too big for this machine (the `paper` preset): what it would run, what it would
//! cost on a GPU cluster, and the files to run it there — every arm's pretraining config, the
//! fine-tuning sweep, and Slurm scripts (pretraining as job arrays, continued arms after their
//! parents, the sweep through `encoderlab sweep slurm`).
//!
//! The cost is the usual estimate: training a model of N parameters on T tokens takes 6·N·T
//! FLOPs (forward and backward), plus 6·L·s·d per token for the attention scores over a
//! sequence of s tokens; a forward pass alone takes a third of that. Wall time is FLOPs over
//! (peak × MFU), both from the study's `[cluster]` section.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::arms::{arms, f6_names, is_f6, models, Arm, ArmKind};
use super::config::StudyConfig;
use super::run::{sweep_file, write_pretrain_configs, write_sweep_files, ArmConfig};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::write_atomic;
use crate::model::ModelConfig;
use crate::sweep::slurm::shell_quote as quote;

/// The cost of one part of the study.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct CostLine {
    /// What it is.
    pub what: String,
    /// How many runs.
    pub runs: usize,
    /// Tokens processed (training and evaluation), all runs.
    pub tokens: f64,
    /// FLOPs, all runs.
    pub flops: f64,
    /// GPU hours at the assumed throughput.
    pub gpu_hours: f64,
}

/// What a study would run and cost.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Estimate {
    /// Pretraining arms, then the fine-tuning grid.
    pub lines: Vec<CostLine>,
    /// Sum of the GPU hours.
    pub total_gpu_hours: f64,
    /// The assumed accelerator and utilisation, in words.
    pub assumptions: String,
}

/// FLOPs per token of a training step (forward + backward) of `m` over sequences of `seq`.
pub(crate) fn train_flops_per_token(m: &ModelConfig, seq: usize) -> f64 {
    let params = (m.num_parameters() - m.vocab_size * m.hidden_size) as f64; // the input embedding is a lookup
    6.0 * params + 6.0 * (m.num_hidden_layers * seq * m.hidden_size) as f64
}

/// The estimate of `cfg` (needs its `[cluster]` section).
pub fn estimate(cfg: &StudyConfig) -> Result<Estimate> {
    let cluster = cfg.cluster.as_ref().ok_or_else(|| {
        Error::config(
            "cluster",
            "the study has no [cluster] section to estimate GPU hours with",
        )
    })?;
    let throughput = cluster.peak_tflops * 1e12 * cluster.mfu;
    let hours = |flops: f64| flops / throughput / 3600.0;
    let mut lines = Vec::new();
    // (runs, tokens, FLOPs) by what and size, in name order
    let seq = cfg.tokenizer.seq_len;
    let arms = arms(cfg);
    let mut by_size: std::collections::BTreeMap<String, (usize, f64, f64)> = Default::default();
    for arm in &arms {
        let m = ModelConfig::preset(&arm.size)?;
        let tokens = (arm.steps * cfg.pretrain.batch_size * cfg.pretrain.grad_accum * seq) as f64;
        let flops = tokens * train_flops_per_token(&m, seq);
        let e = by_size.entry(format!("pretraining, {} arms", arm.size)).or_default();
        e.0 += 1;
        e.1 += tokens;
        e.2 += flops;
    }
    let f = &cfg.finetune;
    let per_example = cluster.finetune_tokens_per_example;
    let mut ft: std::collections::BTreeMap<String, (usize, f64, f64)> = Default::default();
    for model in models(cfg) {
        let m = ModelConfig::preset(&model.size)?;
        let f6 = is_f6(cfg, &model);
        // every run's training tokens, summed over the grid of one model
        let train_tokens = (f.steps_per_model(f6) * f.batch_size * per_example) as f64;
        // evaluation: a forward pass over validation and test, as many examples as training
        let eval_tokens = train_tokens;
        let per_token = train_flops_per_token(&m, per_example);
        let flops = train_tokens * per_token + eval_tokens * per_token / 3.0;
        let e = ft.entry(format!("fine-tuning, {} models", model.size)).or_default();
        e.0 += f.runs_per_model(f6);
        e.1 += train_tokens + eval_tokens;
        e.2 += flops;
    }
    for (what, (runs, tokens, flops)) in by_size.into_iter().chain(ft) {
        lines.push(CostLine {
            what,
            runs,
            tokens,
            flops,
            gpu_hours: hours(flops),
        });
    }
    Ok(Estimate {
        total_gpu_hours: lines.iter().map(|l| l.gpu_hours).sum(),
        lines,
        assumptions: format!(
            "{} at {} TFLOP/s peak (bf16 dense) × {:.0} % MFU; training = 6·N·T + attention, evaluation = a third of that; fine-tuning examples of {} tokens",
            cluster.gpu,
            cluster.peak_tflops,
            cluster.mfu * 100.0,
            per_example
        ),
    })
}

/// The plan and estimate in words (what `--dry-run` prints).
pub fn describe(cfg: &StudyConfig) -> Result<String> {
    let mut s = String::new();
    let arms = arms(cfg);
    let models = models(cfg);
    let f = &cfg.finetune;
    let _ = writeln!(s, "study `{}`: {}", cfg.name, cfg.description);
    let _ = writeln!(
        s,
        "data {} · tokenizer {} ids · blocks of {} tokens · output {}",
        cfg.data_dir.display(),
        cfg.tokenizer.vocab_size,
        cfg.tokenizer.seq_len,
        cfg.out.display()
    );
    let _ = writeln!(s, "{} pretraining arms:", arms.len());
    for a in &arms {
        let _ = writeln!(
            s,
            "  {:<22} {:<6} {:>7} steps  seed {:<3} {}",
            a.run,
            a.size,
            a.steps,
            a.seed,
            kind(a)
        );
    }
    let runs: usize = models.iter().map(|m| f.runs_per_model(is_f6(cfg, m))).sum();
    let _ = writeln!(
        s,
        "fine-tuning: {} models × up to {} (dataset, learning rate) cells × {} seeds: {runs} runs",
        models.len(),
        f.datasets.iter().map(|d| d.lrs(f).len()).sum::<usize>(),
        f.seeds.len(),
    );
    for d in &f.datasets {
        let _ = writeln!(s, "  {}", d.describe(f));
    }
    let f6 = f6_names(cfg, &models);
    if !f.ratio_datasets.is_empty() && !f6.is_empty() {
        let _ = writeln!(
            s,
            "  F6's models ({}) on {} only",
            f6.join(", "),
            f.ratio_datasets.join(", ")
        );
    }
    if let Some(p) = &f.probe {
        let _ = writeln!(
            s,
            "  and a linear probe (frozen backbone) of every model on the sequence- and token-classification datasets: LR {{{}}}",
            p.learning_rates
                .iter()
                .map(|x| format!("{x:e}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if cfg.cluster.is_some() {
        let e = estimate(cfg)?;
        let _ = writeln!(s, "estimated cost ({}):", e.assumptions);
        for l in &e.lines {
            let _ = writeln!(
                s,
                "  {:<28} {:>6} runs {:>10.3e} tokens {:>10.3e} FLOPs {:>10.0} GPU-hours",
                l.what, l.runs, l.tokens, l.flops, l.gpu_hours
            );
        }
        let _ = writeln!(s, "  total {:.0} GPU-hours", e.total_gpu_hours);
        if let Some(c) = &cfg.cluster {
            let job = &c.pretrain_job;
            let gpus = job.ranks() * job.gpus_per_task.unwrap_or(1);
            let arm_count = arms.len().max(1) as f64;
            let pretrain_hours: f64 = e
                .lines
                .iter()
                .filter(|l| l.what.starts_with("pretraining"))
                .map(|l| l.gpu_hours)
                .sum();
            let _ = writeln!(
                s,
                "  each pretraining arm on {} node(s) x {} rank(s) = {gpus} GPU(s): about {:.1} days of wall time per arm at linear scaling",
                job.nodes,
                job.tasks_per_node,
                pretrain_hours / arm_count / gpus.max(1) as f64 / 24.0
            );
        }
    }
    Ok(s)
}

fn kind(a: &Arm) -> String {
    match &a.kind {
        ArmKind::Clm => "100% CLM".into(),
        ArmKind::Mlm { ratio } => format!("100% MLM at {ratio}"),
        ArmKind::Biphasic { share } => format!("CLM for {:.0} steps, then MLM", share * a.steps as f64),
        ArmKind::Continued { from } => format!("MLM continued from {from}'s final checkpoint"),
    }
}

/// Writes every config and the Slurm scripts of `cfg` under `<out>/configs` and
/// `<out>/slurm`; returns the files written.
pub fn emit(cfg: &StudyConfig, exe: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    std::fs::create_dir_all(&cfg.out).at(&cfg.out)?;
    let resolved = toml::to_string(cfg).map_err(|e| Error::config("study", e.to_string()))?;
    write_atomic(cfg.out.join("study.toml"), resolved.as_bytes())?;
    files.push(cfg.out.join("study.toml"));
    let written = write_pretrain_configs(cfg)?;
    files.extend(written.iter().map(|w| w.path.clone()));
    let models = models(cfg);
    let sweep = write_sweep_files(cfg, &models[0], &models)?;
    files.push(sweep.base.clone());
    files.push(sweep_file(cfg));
    // the sweep must expand (every generated config parses)
    sweep.expand()?;
    let slurm = cfg.out.join("slurm");
    let (first, then): (Vec<&ArmConfig>, Vec<&ArmConfig>) = written
        .iter()
        .partition(|w| !matches!(w.arm.kind, ArmKind::Continued { .. }));
    // one array task per arm, each a data-parallel job of the cluster's shape
    let mut shape = cfg.cluster.as_ref().map(|c| c.pretrain_job.clone()).unwrap_or_default();
    if shape.gpus_per_task.is_none() && shape == crate::dist::slurm::JobShape::default() {
        shape.gpus_per_task = Some(1);
        shape.cpus_per_task = 8;
    }
    if shape.partition.is_none() {
        shape.partition = cfg.cluster.as_ref().and_then(|c| c.partition.clone());
    }
    shape.validate()?;
    let cwd = std::env::current_dir().unwrap_or_default();
    let array = |name: &str, set: &[&ArmConfig]| -> String {
        let configs: Vec<PathBuf> = set.iter().map(|w| w.path.clone()).collect();
        crate::dist::slurm::pretrain_script(&format!("{}-{name}", cfg.name), &configs, &shape, exe, &cwd, &slurm)
    };
    write_atomic(slurm.join("pretrain.sbatch"), array("pretrain", &first).as_bytes())?;
    files.push(slurm.join("pretrain.sbatch"));
    let mut submit = format!(
        "#!/bin/bash\n# Submits the study `{}`: the pretraining arms, the continued arms once their parents are done,\n# then the fine-tuning sweep once every arm is done. Written by `encoderlab study`.\nset -eu\ncd {}\np=$(sbatch --parsable {})\n",
        cfg.name,
        quote(&std::env::current_dir().unwrap_or_default()),
        quote(&slurm.join("pretrain.sbatch"))
    );
    let mut last = "$p".to_string();
    if !then.is_empty() {
        write_atomic(slurm.join("continued.sbatch"), array("continued", &then).as_bytes())?;
        files.push(slurm.join("continued.sbatch"));
        let _ = writeln!(
            submit,
            "c=$(sbatch --parsable --dependency=afterok:$p {})",
            quote(&slurm.join("continued.sbatch"))
        );
        last = "$p:$c".into();
    }
    let _ = writeln!(
        submit,
        "# the fine-tuning grid: one array task per run, on one GPU each\nsbatch --dependency=afterok:{last} --wrap \"{} sweep slurm --config {} --gpus-per-task 1 --cpus-per-task 8{}\"",
        quote(exe),
        quote(&sweep_file(cfg)),
        cfg.cluster
            .as_ref()
            .and_then(|c| c.partition.clone())
            .map_or(String::new(), |p| format!(" --partition {p}"))
    );
    write_atomic(slurm.join("submit.sh"), submit.as_bytes())?;
    files.push(slurm.join("submit.sh"));
    Ok(files)
}
