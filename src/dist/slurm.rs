//! Pretraining jobs for Slurm: a batch script that starts the ranks of one run (or of an array
//! of runs, one array task each) with `srun --mpi=pmix` over `nodes × tasks_per_node`
//! processes, one GPU per task where asked. Rerunning the script resumes from the last
//! checkpoint (`pretrain --continue`), on the same or another number of nodes.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::sweep::slurm::shell_quote;

/// The processes of one pretraining run under Slurm.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JobShape {
    /// Machines.
    #[serde(default = "one")]
    pub nodes: usize,
    /// Ranks per machine (one per GPU on a GPU node).
    #[serde(default = "one")]
    pub tasks_per_node: usize,
    /// GPUs per rank (`None`: a CPU job).
    #[serde(default)]
    pub gpus_per_task: Option<usize>,
    /// CPU cores per rank (its threads).
    #[serde(default = "one")]
    pub cpus_per_task: usize,
    /// The partition.
    #[serde(default)]
    pub partition: Option<String>,
    /// The time limit (`HH:MM:SS`, `D-HH`).
    #[serde(default)]
    pub time: Option<String>,
}

fn one() -> usize {
    1
}

impl Default for JobShape {
    /// One rank of one core on one machine.
    fn default() -> Self {
        Self {
            nodes: 1,
            tasks_per_node: 1,
            gpus_per_task: None,
            cpus_per_task: 1,
            partition: None,
            time: None,
        }
    }
}

impl JobShape {
    /// Checks the counts.
    pub fn validate(&self) -> Result<()> {
        for (field, v) in [
            ("nodes", self.nodes),
            ("tasks_per_node", self.tasks_per_node),
            ("cpus_per_task", self.cpus_per_task),
        ] {
            if v == 0 {
                return Err(Error::config(field, "must be at least 1"));
            }
        }
        Ok(())
    }

    /// Ranks of the job.
    pub fn ranks(&self) -> usize {
        self.nodes * self.tasks_per_node
    }
}

/// The batch script of the pretraining runs `configs` (one run: a plain job; several: an array,
/// one task per run), named `name`, its output in `logs`, run from `cwd` with the binary `exe`.
pub fn pretrain_script(
    name: &str,
    configs: &[PathBuf],
    shape: &JobShape,
    exe: &Path,
    cwd: &Path,
    logs: &Path,
) -> String {
    let mut s = String::from("#!/bin/bash\n");
    s.push_str(&format!("#SBATCH --job-name={name}\n"));
    if configs.len() > 1 {
        s.push_str(&format!("#SBATCH --array=0-{}\n", configs.len() - 1));
        s.push_str(&format!("#SBATCH --output={}/%x_%A_%a.out\n", logs.display()));
    } else {
        s.push_str(&format!("#SBATCH --output={}/%x_%j.out\n", logs.display()));
    }
    s.push_str(&format!("#SBATCH --nodes={}\n", shape.nodes));
    s.push_str(&format!("#SBATCH --ntasks-per-node={}\n", shape.tasks_per_node));
    s.push_str(&format!("#SBATCH --cpus-per-task={}\n", shape.cpus_per_task));
    if let Some(g) = shape.gpus_per_task {
        s.push_str(&format!("#SBATCH --gpus-per-task={g}\n"));
    }
    if let Some(p) = &shape.partition {
        s.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    if let Some(t) = &shape.time {
        s.push_str(&format!("#SBATCH --time={t}\n"));
    }
    let config = match configs {
        [one] => shell_quote(one),
        many => {
            let list: Vec<String> = many.iter().map(|c| shell_quote(c)).collect();
            s.push_str(&format!("configs=({})\n", list.join(" ")));
            "\"${configs[$SLURM_ARRAY_TASK_ID]}\"".to_string()
        }
    };
    s.push_str(&format!(
        r#"# written by encoderlab: {nodes} node(s) x {tasks} rank(s), data parallel; rerunning resumes
# from the last checkpoint. A rank that fails ends the step (--kill-on-bad-exit); one that hangs
# ends it after ENCODERLAB_COLLECTIVE_TIMEOUT seconds.
set -eu
cd {cwd}
export RUST_BACKTRACE=0 ENCODERLAB_COLLECTIVE_TIMEOUT=${{ENCODERLAB_COLLECTIVE_TIMEOUT:-600}}
srun --mpi=pmix --kill-on-bad-exit=1 {exe} pretrain --continue --config {config} --threads {threads}
"#,
        nodes = shape.nodes,
        tasks = shape.tasks_per_node,
        cwd = shell_quote(cwd),
        exe = shell_quote(exe),
        threads = shape.cpus_per_task,
    ));
    s
}

/// Writes `cfg` resolved and its batch script under `{run folder}/slurm/` (the script reads
/// that copy, so later edits of the original do not change the submitted run) and returns the
/// script's path.
pub fn write_pretrain_job(cfg: &crate::train::PretrainConfig, shape: &JobShape, exe: &Path) -> Result<PathBuf> {
    shape.validate()?;
    let dir = cfg.run_dir().join("slurm");
    std::fs::create_dir_all(&dir).at(&dir)?;
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let config = abs(&dir.join("config.toml"));
    let text = toml::to_string(cfg).map_err(|e| Error::config("pretrain", e.to_string()))?;
    crate::fsutil::write_atomic(&config, text.as_bytes())?;
    let cwd = std::env::current_dir().at(".")?;
    let script = dir.join("pretrain.sbatch");
    let body = pretrain_script(
        &format!("pretrain-{}", cfg.name),
        &[config],
        shape,
        &abs(exe),
        &cwd,
        &abs(&dir),
    );
    crate::fsutil::write_atomic(&script, body.as_bytes())?;
    Ok(script)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multi_node_gpu_job_starts_one_rank_per_gpu_through_pmix() {
        let shape = JobShape {
            nodes: 4,
            tasks_per_node: 8,
            gpus_per_task: Some(1),
            cpus_per_task: 12,
            partition: Some("gpu".into()),
            time: Some("2-00".into()),
        };
        assert_eq!(shape.ranks(), 32);
        let s = pretrain_script(
            "pretrain-mlm",
            &[PathBuf::from("/c/a.toml")],
            &shape,
            Path::new("/bin/encoderlab"),
            Path::new("/w"),
            Path::new("/logs"),
        );
        for line in [
            "#SBATCH --nodes=4\n",
            "#SBATCH --ntasks-per-node=8\n",
            "#SBATCH --gpus-per-task=1\n",
            "#SBATCH --cpus-per-task=12\n",
            "#SBATCH --partition=gpu\n",
            "#SBATCH --time=2-00\n",
            "#SBATCH --output=/logs/%x_%j.out\n",
            "srun --mpi=pmix --kill-on-bad-exit=1 '/bin/encoderlab' pretrain --continue --config '/c/a.toml' --threads 12\n",
        ] {
            assert!(s.contains(line), "{line} not in\n{s}");
        }
        assert!(!s.contains("--array"));
    }

    #[test]
    fn several_runs_are_an_array_of_jobs() {
        let s = pretrain_script(
            "arms",
            &[PathBuf::from("a.toml"), PathBuf::from("b.toml")],
            &JobShape::default(),
            Path::new("e"),
            Path::new("w"),
            Path::new("l"),
        );
        assert!(s.contains("#SBATCH --array=0-1\n"));
        assert!(s.contains("configs=('a.toml' 'b.toml')\n"));
        assert!(s.contains("--config \"${configs[$SLURM_ARRAY_TASK_ID]}\""));
        assert!(!s.contains("--gpus-per-task"));
    }
}
