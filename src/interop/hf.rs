//! Reading a Hugging Face Llama-family folder: `config.json` (checked field by field against
//! what our model implements), `model.safetensors` or sharded `model-0000N-of-0000M.safetensors`
//! with `model.safetensors.index.json`, and `tokenizer.json`. Weights are converted to f32.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use candle_core::{Device, Tensor};
use serde_json::Value;
use tokenizers::Tokenizer;

use super::{check_weights, vocab::check_vocab, ImportReport, ModelFiles};
use crate::error::{Error, IoContext, Result};
use crate::model::{AttentionMode, ModelConfig};

/// `model_type`s whose architecture is exactly ours (Llama: RMSNorm, SwiGLU, RoPE, GQA, no
/// biases); `encoderlab` is our own bidirectional export of it.
const SUPPORTED_TYPES: [&str; 2] = ["llama", "encoderlab"];

/// Refuses, naming the field, what our model does not implement.
pub(crate) fn check_supported(config: &Value, path: &Path) -> Result<()> {
    let refuse = |field: &str, reason: String| {
        Err(Error::data(
            path,
            0,
            format!("field `{field}`: {reason}; encoderlab implements the Llama architecture (RMSNorm, SwiGLU, plain RoPE, grouped-query attention, no biases)"),
        ))
    };
    let str_field = |k: &str| config.get(k).and_then(Value::as_str);
    match str_field("model_type") {
        Some(t) if SUPPORTED_TYPES.contains(&t) => {}
        Some(t) => return refuse("model_type", format!("`{t}` is not supported")),
        None => return refuse("model_type", "missing".into()),
    }
    if let Some(act) = str_field("hidden_act") {
        if act != "silu" {
            return refuse("hidden_act", format!("`{act}` is not supported (only silu)"));
        }
    }
    for field in ["attention_bias", "mlp_bias"] {
        if config.get(field).and_then(Value::as_bool) == Some(true) {
            return refuse(field, "biases are not supported".into());
        }
    }
    let scaling = config
        .get("rope_scaling")
        .filter(|v| !v.is_null())
        .or_else(|| config.get("rope_parameters"));
    if let Some(s) = scaling {
        let kind = s.get("rope_type").or_else(|| s.get("type")).and_then(Value::as_str);
        if !matches!(kind, None | Some("default")) {
            let field = if config.get("rope_scaling").is_some_and(|v| !v.is_null()) {
                "rope_scaling"
            } else {
                "rope_parameters.rope_type"
            };
            return refuse(
                field,
                format!("RoPE scaling `{}` is not implemented", kind.unwrap_or("?")),
            );
        }
    }
    if let (Some(hd), Some(h), Some(n)) = (
        config.get("head_dim").and_then(Value::as_u64),
        config.get("hidden_size").and_then(Value::as_u64),
        config.get("num_attention_heads").and_then(Value::as_u64),
    ) {
        if n > 0 && hd != h / n {
            return refuse(
                "head_dim",
                format!("{hd} differs from hidden_size / num_attention_heads = {}", h / n),
            );
        }
    }
    Ok(())
}

/// The safetensors files of a folder: the shards of `model.safetensors.index.json`, or
/// `model.safetensors`. A shard named by the index but absent is an error naming it.
fn weight_files(dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let index = dir.join("model.safetensors.index.json");
    if index.exists() {
        let text = std::fs::read_to_string(&index).at(&index)?;
        let value: Value = serde_json::from_str(&text).map_err(|e| Error::data(&index, e.line(), e.to_string()))?;
        let map = value
            .get("weight_map")
            .and_then(Value::as_object)
            .ok_or_else(|| Error::data(&index, 0, "no `weight_map` object"))?;
        let shards: BTreeSet<&str> = map.values().filter_map(Value::as_str).collect();
        let missing: Vec<&str> = shards.iter().copied().filter(|s| !dir.join(s).exists()).collect();
        if !missing.is_empty() {
            return Err(Error::data(
                &index,
                0,
                format!(
                    "{} of {} shards are missing from {}: {}",
                    missing.len(),
                    shards.len(),
                    dir.display(),
                    missing.join(", ")
                ),
            ));
        }
        return Ok(shards.iter().map(|s| dir.join(s)).collect());
    }
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok(vec![single]);
    }
    let hint = if dir.join("pytorch_model.bin").exists() {
        "only pytorch_model.bin (a pickle, not read): save it as safetensors with `model.save_pretrained(dir, safe_serialization=True)`"
    } else {
        "no model.safetensors or model.safetensors.index.json"
    };
    Err(Error::data(dir, 0, hint))
}

/// Reads the Hugging Face folder `dir` as a model: architecture, f32 weights, tokenizer.
pub(crate) fn read_hf(dir: &Path) -> Result<(ModelFiles, ImportReport)> {
    let config_path = dir.join("config.json");
    let text = std::fs::read_to_string(&config_path).at(&config_path)?;
    let value: Value = serde_json::from_str(&text).map_err(|e| Error::data(&config_path, e.line(), e.to_string()))?;
    check_supported(&value, &config_path)?;
    let mut config = ModelConfig::from_hf_value(&value, &config_path)?;
    if value.get("attention").is_none() && value.get("is_causal").is_none() {
        // a Hugging Face Llama is a causal LM
        config.attention = AttentionMode::Causal;
    }
    let mut weights: HashMap<String, Tensor> = HashMap::new();
    let mut dtypes: BTreeMap<String, usize> = BTreeMap::new();
    for file in weight_files(dir)? {
        for (name, t) in
            crate::train::checkpoint::read_safetensors(&file, &Device::Cpu, "a shard of the model's weights")?
        {
            *dtypes.entry(format!("{:?}", t.dtype()).to_uppercase()).or_default() += 1;
            // a bare LlamaModel saves its tensors without the `model.` prefix
            let name = if name.starts_with("model.") || name.starts_with("lm_head.") {
                name
            } else {
                format!("model.{name}")
            };
            weights.insert(name, t);
        }
    }
    if !config.tie_word_embeddings
        && !weights.contains_key("lm_head.weight")
        && weights.contains_key("model.embed_tokens.weight")
    {
        return Err(Error::data(
            dir,
            0,
            "no `lm_head.weight` and tie_word_embeddings is false: a bare LlamaModel has no LM head to continue pretraining with; set \"tie_word_embeddings\": true in config.json to use the embedding as the head",
        ));
    }
    check_weights(&config, &mut weights, dir)?;
    let tok_path = dir.join("tokenizer.json");
    if !tok_path.exists() {
        return Err(Error::data(
            &tok_path,
            0,
            "missing: encoderlab reads the fast tokenizer file; write it with `AutoTokenizer.from_pretrained(src).save_pretrained(dir)`",
        ));
    }
    let tokenizer = Tokenizer::from_file(&tok_path).map_err(|e| Error::Tokenizer {
        path: tok_path.clone(),
        reason: e.to_string(),
    })?;
    check_vocab(&config, &tokenizer, &tok_path)?;
    let files = ModelFiles {
        config,
        weights,
        tokenizer,
    };
    let source = tok_path.display().to_string();
    let report = ImportReport::of(&files, (dir, "hf"), &config_path, dtypes, source)?;
    Ok((files, report))
}
