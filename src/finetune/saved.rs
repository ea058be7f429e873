//! A fine-tuned model saved with its run (`train.save_model = true`): the folder `model/` of the
//! run record holds the backbone and its head (`model.safetensors`, HF names: `model.*`,
//! `score.*`, `qa_outputs.*`), the backbone's `config.json` with an `encoderlab_task` object (the
//! head, its label names, pooling, attention, input length and how inputs end) and the
//! tokenizer. It is written inside the record's staging folder, so it appears with the record in
//! one rename or not at all. `export hf` turns it into a `transformers` folder; `eval logits`
//! scores it.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

use crate::config::save_json;
use crate::error::{Error, IoContext, Result};
use crate::fsutil::write_atomic;
use crate::heads::{HeadKind, Pooling, TaskModel};
use crate::model::{AttentionMode, ModelConfig};
use crate::train::checkpoint::{load_weights, weights};

/// The folder of the run record that holds the fine-tuned model.
pub const MODEL_DIR: &str = "model";

/// The key of `config.json` that makes a folder a fine-tuned model.
pub const TASK_KEY: &str = "encoderlab_task";

/// What sits on the backbone and how inputs reach it: `config.json`'s `encoderlab_task`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TaskHead {
    /// The head (and its number of labels).
    pub head: HeadKind,
    /// How the sequence classifier pools (the embedding head always pools the mean).
    pub pooling: Pooling,
    /// The attention the model was fine-tuned with.
    pub attention: AttentionMode,
    /// Longest input in tokens while fine-tuning.
    pub max_length: usize,
    /// The token that ends every input (and separates the two texts of a pair).
    pub sep_token_id: u32,
    /// The padding token.
    pub pad_token_id: u32,
    /// The label names of a classifier, by index (empty for QA and retrieval).
    pub labels: Vec<String>,
    /// The dataset it was fine-tuned on.
    pub dataset: String,
    /// The run that wrote it.
    pub run_id: String,
}

impl TaskHead {
    /// Reads `encoderlab_task` from the `config.json` at `path`; `None` when the file has none
    /// (a pretraining checkpoint).
    pub fn read(path: &Path) -> Result<Option<TaskHead>> {
        let text = std::fs::read_to_string(path).at(path)?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| Error::data(path, e.line(), e.to_string()))?;
        value
            .get(TASK_KEY)
            .map(|task| {
                serde_json::from_value(task.clone()).map_err(|e| Error::data(path, 0, format!("`{TASK_KEY}`: {e}")))
            })
            .transpose()
    }
}

/// A fine-tuned model to save with its record.
pub(crate) struct ModelToSave<'a> {
    /// The backbone's architecture.
    pub config: &'a ModelConfig,
    /// The head and how inputs reach it.
    pub head: TaskHead,
    /// The backbone's and the head's variables.
    pub map: &'a VarMap,
    /// The backbone's `tokenizer.json`.
    pub tokenizer: &'a Path,
}

/// Writes the fine-tuned model `m` to `dir` (a folder inside a staging folder):
/// `model.safetensors`, `config.json` (the backbone's HF fields and `encoderlab_task`; no
/// `transformers` class: `export hf` chooses it), and the tokenizer with its `tokenizer_config.json`.
pub(crate) fn save_task_model(dir: &Path, m: &ModelToSave) -> Result<()> {
    let (cfg, head, map, tokenizer) = (m.config, &m.head, m.map, m.tokenizer);
    std::fs::create_dir_all(dir).at(dir)?;
    candle_core::safetensors::save(&weights(map)?, dir.join("model.safetensors"))?;
    let mut config = cfg.to_hf_json();
    if let Some(obj) = config.as_object_mut() {
        // not a `transformers` folder (`export hf` makes one): no class to name
        obj.remove("architectures");
        obj.insert(
            TASK_KEY.into(),
            serde_json::to_value(head).map_err(|e| Error::data(dir, 0, e.to_string()))?,
        );
    }
    save_json(&config, &dir.join("config.json"))?;
    let tok = std::fs::read(tokenizer).at(tokenizer)?;
    write_atomic(dir.join("tokenizer.json"), &tok)?;
    let tok_config = tokenizer.with_file_name("tokenizer_config.json");
    if tok_config.is_file() {
        let bytes = std::fs::read(&tok_config).at(&tok_config)?;
        write_atomic(dir.join("tokenizer_config.json"), &bytes)?;
    }
    Ok(())
}

/// Loads the fine-tuned model folder `dir` (what `train.save_model` wrote).
pub fn load_task_model(dir: &Path, dev: &Device) -> Result<TaskModel> {
    let config_path = dir.join("config.json");
    let cfg = ModelConfig::from_hf_json(&config_path)?;
    let head = TaskHead::read(&config_path)?.ok_or_else(|| {
        Error::data(
            &config_path,
            0,
            format!(
                "no `{TASK_KEY}`: a pretraining checkpoint, not a fine-tuned model (runs/finetune/RUN/{MODEL_DIR})"
            ),
        )
    })?;
    let map = VarMap::new();
    let vb = VarBuilder::from_varmap(&map, DType::F32, dev);
    let model = TaskModel::new(&cfg, head.head, head.pooling, head.attention, vb)?;
    load_weights(dir, &map, dev)?;
    Ok(model)
}

/// The output of the fine-tuned model at `dir` on `input_ids` (B, T) with padding `mask` (B, T;
/// 1 = token): the head's logits (sequence: (B, labels); token: (B, T, labels); span: (B, T, 2))
/// or the embeddings (B, H).
pub fn task_outputs(dir: &Path, input_ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let model = load_task_model(dir, &Device::Cpu)?;
    Ok(model.forward(&input_ids.to_dtype(DType::U32)?, &mask.to_dtype(DType::F32)?, false)?)
}
