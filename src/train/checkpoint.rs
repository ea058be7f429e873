//! Checkpoints: a folder written atomically (staged, then renamed) holding `model.safetensors`
//! (HF Llama names), `config.json` (HF-style, with our `attention` field), `tokenizer.json`,
//! `optimizer.safetensors` (AdamW moments) and `trainer_state.json` (step, phase, data cursor,
//! RNG scheme, resolved configuration). Loading fills an existing variable map and names every
//! missing tensor.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use crate::config::{load_json, save_json};
use crate::data::Cursor;
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{write_atomic, StagingDir};
use crate::model::{sorted_vars, ModelConfig};
use crate::train::config::PretrainConfig;
use crate::train::AdamW;

/// Where a run stands, saved with each checkpoint.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrainerState {
    /// Optimizer steps done.
    pub step: usize,
    /// Phase of the next step.
    pub phase: usize,
    /// The training sampler's position.
    pub cursor: Cursor,
    /// Updates of the optimizer since its moments were last reset.
    pub optimizer_step: usize,
    /// Tokens consumed so far.
    pub tokens_seen: u64,
    /// How randomness is derived: masks of step s, micro-batch k come from stream
    /// (seed, MASK_STREAM + s·grad_accum + k), so no generator state needs saving.
    pub rng: String,
    /// The run's id (hash of the resolved configuration).
    pub run_id: String,
    /// The resolved configuration.
    pub config: PretrainConfig,
}

/// The model's weights as named tensors.
pub fn weights(map: &VarMap) -> Result<HashMap<String, Tensor>> {
    Ok(sorted_vars(map)?
        .into_iter()
        .map(|(name, var)| (name, var.as_tensor().clone()))
        .collect())
}

/// Writes a checkpoint folder at `dir` (replacing it if present), atomically.
pub(crate) fn save_checkpoint(
    dir: &Path,
    map: &VarMap,
    model: &ModelConfig,
    tokenizer: &Path,
    optimizer: &AdamW,
    state: &TrainerState,
) -> Result<()> {
    let stage = StagingDir::create(dir)?;
    let p = stage.path();
    candle_core::safetensors::save(&weights(map)?, p.join("model.safetensors"))?;
    candle_core::safetensors::save(&optimizer.state()?, p.join("optimizer.safetensors"))?;
    save_json(&model.to_hf_json(), &p.join("config.json"))?;
    let tok = std::fs::read(tokenizer).at(tokenizer)?;
    write_atomic(p.join("tokenizer.json"), &tok)?;
    save_json(state, &p.join("trainer_state.json"))?;
    stage.commit()
}

/// Fills every variable of `map` from `dir/model.safetensors` (shapes checked; a missing tensor
/// is an error naming it). Extra tensors in the file are ignored.
pub fn load_weights(dir: &Path, map: &VarMap, device: &Device) -> Result<()> {
    fill_vars(&dir.join("model.safetensors"), &read_weights(dir, device)?, map)
}

/// The tensors of the checkpoint folder `dir` (`model.safetensors`), on `device`.
pub(crate) fn read_weights(dir: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    let path = dir.join("model.safetensors");
    if !path.exists() {
        return Err(Error::data(&path, 0, "no model.safetensors: not a checkpoint folder"));
    }
    read_safetensors(&path, device, "the model's weights")
}

/// Fills every variable of `map` from `tensors` (read from `path`, which errors name): shapes
/// checked, a missing tensor an error naming it, extra tensors ignored.
pub(crate) fn fill_vars(path: &Path, tensors: &HashMap<String, Tensor>, map: &VarMap) -> Result<()> {
    let vars = sorted_vars(map)?;
    let missing: Vec<&str> = vars
        .iter()
        .filter(|(n, _)| !tensors.contains_key(n))
        .map(|(n, _)| n.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(Error::data(
            path,
            0,
            format!("missing tensors: {} (is it a Llama-layout model?)", missing.join(", ")),
        ));
    }
    for (name, var) in vars {
        let t = &tensors[&name];
        if t.shape() != var.shape() {
            return Err(Error::data(
                path,
                0,
                format!("`{name}` has shape {:?}, the model {:?}", t.shape(), var.shape()),
            ));
        }
        var.set(&t.to_dtype(var.dtype())?)?;
    }
    Ok(())
}

/// Reads a safetensors file; an error names the file and what it holds (`what`).
pub(crate) fn read_safetensors(path: &Path, device: &Device, what: &str) -> Result<HashMap<String, Tensor>> {
    if !path.exists() {
        return Err(Error::data(path, 0, format!("not found (it should hold {what})")));
    }
    candle_core::safetensors::load(path, device).map_err(|e| {
        Error::data(
            path,
            0,
            format!("cannot read {what} ({e}): the file is damaged or incomplete (a checkpoint: resume from an earlier one)"),
        )
    })
}

/// Why the checkpoint folder `dir` cannot be resumed (its state, weights or optimizer moments
/// do not read whole), or `None` when it can. Reads headers and sizes only.
pub(crate) fn checkpoint_problem(dir: &Path) -> Option<String> {
    if let Err(e) = load_state(dir) {
        return Some(format!("{e}"));
    }
    for (file, what) in [
        ("model.safetensors", "the model's weights"),
        ("optimizer.safetensors", "the optimizer's moments"),
    ] {
        let path = dir.join(file);
        let problem = match std::fs::File::open(&path) {
            Err(e) => Some(e.to_string()),
            // SAFETY: read-only map of a checkpoint file, which is never modified in place
            Ok(f) => match unsafe { memmap2::Mmap::map(&f) } {
                Err(e) => Some(e.to_string()),
                Ok(map) => safetensors::SafeTensors::deserialize(&map).err().map(|e| e.to_string()),
            },
        };
        if let Some(p) = problem {
            return Some(format!("{}: {what} do not read ({p})", path.display()));
        }
    }
    None
}

/// The trainer state of a checkpoint folder.
pub fn load_state(dir: &Path) -> Result<TrainerState> {
    load_json(&dir.join("trainer_state.json"))
}

/// The checkpoint folder of step `step`.
pub fn checkpoint_dir(run_dir: &Path, step: usize) -> PathBuf {
    run_dir.join("checkpoints").join(format!("step-{step:07}"))
}

/// The steps of the checkpoints of a run, ascending.
pub fn list_checkpoints(run_dir: &Path) -> Result<Vec<usize>> {
    let dir = run_dir.join("checkpoints");
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut steps: Vec<usize> = std::fs::read_dir(&dir)
        .at(&dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("step-")?.parse().ok())
        .collect();
    steps.sort_unstable();
    Ok(steps)
}

/// Removes periodic checkpoints beyond the last `keep`, sparing `milestones`.
pub(crate) fn prune_checkpoints(run_dir: &Path, keep: usize, milestones: &[usize]) -> Result<()> {
    let steps = list_checkpoints(run_dir)?;
    let periodic: Vec<usize> = steps.into_iter().filter(|s| !milestones.contains(s)).collect();
    for step in periodic.iter().rev().skip(keep) {
        let dir = checkpoint_dir(run_dir, *step);
        std::fs::remove_dir_all(&dir).at(&dir)?;
    }
    Ok(())
}
