//! The Slurm backend: the sweep's pending runs as one job array whose task ids are the runs'
//! indices (`--array=3,5,8-11%K`), each task running `encoderlab sweep run-one --index
//! $SLURM_ARRAY_TASK_ID`; per-task logs under `{out_dir}/{name}/slurm/logs/`. A task that ends
//! without a record (cancelled, killed, out of time) is recorded `failed` by its own batch script
//! (`sweep mark-failed`), so a resubmission with `--retry-failed` reruns it. Runs still queued or
//! running under the sweep's job name are never submitted twice.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::config::{RunSpec, SweepConfig};
use super::state::{state, RunState};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::write_atomic;

/// Slurm's default `MaxArraySize` (task ids 0..=1000).
pub const MAX_ARRAY_INDEX: usize = 1000;

/// Resources and behaviour of a submission.
#[derive(Debug, Clone, Default)]
pub struct SlurmOptions {
    /// The sweep file.
    pub sweep_file: PathBuf,
    /// The `encoderlab` binary the tasks run.
    pub exe: PathBuf,
    /// `--partition`.
    pub partition: Option<String>,
    /// `--time`.
    pub time: Option<String>,
    /// `--gpus-per-task`.
    pub gpus_per_task: Option<usize>,
    /// `--cpus-per-task` (also the run's threads).
    pub cpus_per_task: usize,
    /// At most this many tasks at once (`%K`).
    pub max_parallel: Option<usize>,
    /// Also resubmit the runs recorded `failed`.
    pub retry_failed: bool,
}

/// What a submission did (or would do).
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    /// The run indices in the array.
    pub indices: Vec<usize>,
    /// The batch script's path.
    pub script: PathBuf,
    /// The job id (`None` for a dry run or nothing to submit).
    pub job_id: Option<String>,
}

/// The job name of a sweep's arrays.
pub(crate) fn job_name(cfg: &SweepConfig) -> String {
    format!("encoderlab-{}", cfg.name)
}

/// `3,5,8-11`: indices (sorted, distinct) as Slurm ranges.
pub(crate) fn array_ranges(indices: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < indices.len() {
        let mut j = i;
        while j + 1 < indices.len() && indices[j + 1] == indices[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            indices[i].to_string()
        } else {
            format!("{}-{}", indices[i], indices[j])
        });
        i = j + 1;
    }
    out.join(",")
}

/// `p` as one single-quoted shell word.
pub(crate) fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.to_string_lossy().replace('\'', "'\\''"))
}

/// The batch script of an array over `indices`.
pub(crate) fn batch_script(
    cfg: &SweepConfig,
    indices: &[usize],
    opts: &SlurmOptions,
    logs: &Path,
    cwd: &Path,
) -> String {
    let mut s = String::from("#!/bin/bash\n");
    s.push_str(&format!("#SBATCH --job-name={}\n", job_name(cfg)));
    let limit = opts.max_parallel.map_or(String::new(), |k| format!("%{k}"));
    s.push_str(&format!("#SBATCH --array={}{limit}\n", array_ranges(indices)));
    s.push_str(&format!("#SBATCH --output={}/%A_%a.out\n", logs.display()));
    s.push_str(&format!("#SBATCH --cpus-per-task={}\n", opts.cpus_per_task.max(1)));
    if let Some(p) = &opts.partition {
        s.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    if let Some(t) = &opts.time {
        s.push_str(&format!("#SBATCH --time={t}\n"));
    }
    if let Some(g) = opts.gpus_per_task {
        s.push_str(&format!("#SBATCH --gpus-per-task={g}\n"));
    }
    let (exe, mut sweep) = (shell_quote(&opts.exe), shell_quote(&opts.sweep_file));
    // the registry as resolved here (a `--registry` given to this command included)
    if let Some(registry) = &cfg.registry {
        sweep = format!("{sweep} --registry {}", shell_quote(registry));
    }
    s.push_str(&format!(
        r#"# written by `encoderlab sweep slurm`; one task = one run of the sweep
set -u
cd {cwd}
export RUST_BACKTRACE=0 RUST_LIB_BACKTRACE=0
i=$SLURM_ARRAY_TASK_ID
{exe} sweep run-one --config {sweep} --index "$i" --threads {threads} &
pid=$!
# scancel (or the time limit) sends TERM: pass it on, then record the run as failed
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT
wait "$pid"; rc=$?
while kill -0 "$pid" 2>/dev/null; do wait "$pid"; rc=$?; done
if [ "$rc" -ne 0 ]; then
  {exe} sweep mark-failed --config {sweep} --index "$i" --reason "Slurm task ${{SLURM_ARRAY_JOB_ID}}_$i ended with status $rc"
fi
exit "$rc"
"#,
        cwd = shell_quote(cwd),
        threads = opts.cpus_per_task.max(1),
    ));
    s
}

/// Array task ids of the sweep's jobs still queued or running.
pub fn active_indices(cfg: &SweepConfig) -> Result<BTreeSet<usize>> {
    let out = Command::new("squeue")
        .args(["-h", "-r", "--name", &job_name(cfg), "-o", "%K"])
        .output()
        .map_err(|e| Error::Tool {
            tool: "squeue".into(),
            reason: format!("could not run ({e}): is Slurm installed and running? (scripts/slurm.sh start)"),
        })?;
    if !out.status.success() {
        return Err(Error::Tool {
            tool: "squeue".into(),
            reason: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect())
}

/// Writes the batch script of the sweep's pending runs and (unless `dry_run`) submits it.
pub fn submit(cfg: &SweepConfig, specs: &[RunSpec], opts: &SlurmOptions, dry_run: bool) -> Result<Submission> {
    let _lock = if dry_run {
        None
    } else {
        Some(super::lock::SweepLock::acquire(&cfg.dir(), "sweep slurm")?)
    };
    let runs_dir = cfg.runs_dir();
    let active = if dry_run { BTreeSet::new() } else { active_indices(cfg)? };
    let indices: Vec<usize> = specs
        .iter()
        .filter(|s| match state(s, &runs_dir) {
            RunState::Pending => true,
            RunState::Failed | RunState::Corrupt => opts.retry_failed,
            RunState::Done(_) => false,
        })
        .map(|s| s.index)
        .filter(|i| !active.contains(i))
        .collect();
    if let Some(i) = indices.iter().find(|i| **i > MAX_ARRAY_INDEX) {
        return Err(Error::config(
            "axes",
            format!("run index {i} exceeds Slurm's default MaxArraySize ({MAX_ARRAY_INDEX}): split the sweep"),
        ));
    }
    let dir = cfg.dir().join("slurm");
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).at(&logs)?;
    std::fs::create_dir_all(&runs_dir).at(&runs_dir)?;
    let cwd = std::env::current_dir().at(".")?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let script = dir.join(format!("array-{stamp}.sbatch"));
    if indices.is_empty() {
        return Ok(Submission {
            indices,
            script,
            job_id: None,
        });
    }
    write_atomic(&script, batch_script(cfg, &indices, opts, &logs, &cwd).as_bytes())?;
    if dry_run {
        return Ok(Submission {
            indices,
            script,
            job_id: None,
        });
    }
    let id = sbatch(&script)?;
    Ok(Submission {
        indices,
        script,
        job_id: Some(id),
    })
}

/// Submits the batch script `script` (`sbatch --parsable`) and returns the job's id.
pub fn sbatch(script: &Path) -> Result<String> {
    let out = Command::new("sbatch")
        .arg("--parsable")
        .arg(script)
        .output()
        .map_err(|e| Error::Tool {
            tool: "sbatch".into(),
            reason: format!("could not run ({e}): is Slurm installed? (scripts/slurm.sh start)"),
        })?;
    if !out.status.success() {
        return Err(Error::Tool {
            tool: "sbatch".into(),
            reason: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .trim()
        .split(';')
        .next()
        .unwrap_or("")
        .to_string())
}
