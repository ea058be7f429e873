//! `encoderlab export hf`: a checkpoint folder → a folder that `transformers` loads with no
//! custom code. Our weights already carry HF Llama names and our `config.json` Llama fields, so
//! the export adds what `transformers` expects around them: the token ids in `config.json`,
//! safetensors metadata `format: pt`, `tokenizer_config.json`, `special_tokens_map.json`, and a
//! model card (`README.md`) that says how to run the model as a bidirectional encoder.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use serde::Serialize;
use serde_json::{json, Value};

use super::check_weights;
use crate::config::save_json;
use crate::error::{Error, Result};
use crate::fsutil::{write_atomic, OwnedDir};
use crate::model::{AttentionMode, ModelConfig};
use crate::tokenizer::{save_tokenizer, TextTokenizer};

/// What an export wrote.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct ExportReport {
    /// The folder written.
    pub out_dir: PathBuf,
    /// Tensors in `model.safetensors`.
    pub tensors: usize,
    /// Parameters.
    pub parameters: usize,
    /// The attention the weights were last trained with.
    pub attention: AttentionMode,
}

/// The model card of an export: what it is and how to load it as an encoder.
fn model_card(cfg: &ModelConfig, source: &Path) -> String {
    let trained = match cfg.attention {
        AttentionMode::Causal => "causal (CLM): use it as `LlamaForCausalLM` directly",
        AttentionMode::Bidirectional => {
            "bidirectional (MLM): run it with the 4D mask below, not the default causal one"
        }
    };
    format!(
        r#"# encoderlab export

Exported by `encoderlab export hf` from `{source}`: a Llama-architecture model
({layers} layers, width {hidden}, {heads} query / {kv} key-value heads, vocabulary {vocab},
{params} parameters), float32. Last trained with attention: {trained}.

```python
import torch
from transformers import AutoModelForCausalLM, AutoModel, AutoTokenizer

tok = AutoTokenizer.from_pretrained(PATH)
lm = AutoModelForCausalLM.from_pretrained(PATH)          # LlamaForCausalLM, no custom code
batch = tok(["a sentence", "another one"], return_tensors="pt", padding=True)

# causal (as trained with CLM): the usual call
logits = lm(**batch).logits

# bidirectional (as trained with MLM; the encoder the paper fine-tunes): every position sees
# every non-padding position. transformers uses a 4D mask as given, so pass one, additive
# (0 = attend; eager attention adds it to the scores, sdpa takes it as is):
T = batch["input_ids"].shape[1]
keys = batch["attention_mask"].bool()[:, None, None, :].expand(-1, 1, T, T)
full = torch.zeros(keys.shape).masked_fill(~keys, torch.finfo(torch.float32).min)
logits = lm(input_ids=batch["input_ids"], attention_mask=full).logits
hidden = AutoModel.from_pretrained(PATH)(input_ids=batch["input_ids"], attention_mask=full).last_hidden_state
```

`scripts/hf_parity.py` in encoderlab checks both calls against encoderlab's own logits.
"#,
        source = source.display(),
        layers = cfg.num_hidden_layers,
        hidden = cfg.hidden_size,
        heads = cfg.num_attention_heads,
        kv = cfg.num_key_value_heads,
        vocab = cfg.vocab_size,
        params = cfg.num_parameters(),
    )
}

/// `transformers`' `config.json` for `cfg`, with the tokenizer's special ids.
fn hf_config(cfg: &ModelConfig, tok: &TextTokenizer) -> Value {
    let mut config = cfg.to_hf_json();
    let s = tok.special();
    if let Some(obj) = config.as_object_mut() {
        obj.insert("bos_token_id".into(), json!(s.bos));
        obj.insert("eos_token_id".into(), json!(s.eos));
        obj.insert("pad_token_id".into(), json!(s.pad));
    }
    config
}

/// `special_tokens_map.json`: the special tokens by role.
fn special_tokens_map(tok: &TextTokenizer) -> Value {
    let s = tok.special();
    let name = |id: Option<u32>| id.and_then(|i| tok.inner().id_to_token(i));
    let mut map = serde_json::Map::new();
    for (role, id) in [
        ("bos_token", s.bos),
        ("eos_token", s.eos),
        ("pad_token", s.pad),
        ("mask_token", s.mask),
    ] {
        if let Some(t) = name(id) {
            map.insert(role.into(), json!(t));
        }
    }
    Value::Object(map)
}

/// Exports the checkpoint folder `checkpoint` (`config.json`, `model.safetensors`,
/// `tokenizer.json`) to `out_dir`, replacing it only once complete.
pub fn export_hf(checkpoint: &Path, out_dir: &Path) -> Result<ExportReport> {
    let cfg = ModelConfig::from_hf_json(&checkpoint.join("config.json"))?;
    let weights_path = checkpoint.join("model.safetensors");
    if !weights_path.exists() {
        return Err(Error::data(
            &weights_path,
            0,
            "no model.safetensors: give a checkpoint folder (runs/pretrain/NAME/checkpoints/step-N)",
        ));
    }
    let tok_path = checkpoint.join("tokenizer.json");
    let tok = TextTokenizer::load(&tok_path)?;
    super::vocab::check_vocab(&cfg, tok.inner(), &tok_path)?;
    let mut weights = crate::train::checkpoint::read_safetensors(&weights_path, &Device::Cpu, "the model's weights")?;
    check_weights(&cfg, &mut weights, &weights_path)?;
    let stage = OwnedDir::create(out_dir, "export hf")?;
    let p = stage.path();
    save_json(&hf_config(&cfg, &tok), &p.join("config.json"))?;
    let mut names: Vec<&String> = weights.keys().collect();
    names.sort();
    let tensors: Vec<(&String, candle_core::Tensor)> = names
        .iter()
        .map(|n| Ok((*n, weights[*n].to_dtype(DType::F32)?.contiguous()?)))
        .collect::<Result<_>>()?;
    let metadata: HashMap<String, String> = [("format".to_string(), "pt".to_string())].into();
    let st_path = p.join("model.safetensors");
    safetensors::serialize_to_file(tensors.iter().map(|(n, t)| (n.as_str(), t)), Some(metadata), &st_path)
        .map_err(|e| Error::data(&st_path, 0, e.to_string()))?;
    save_tokenizer(tok.inner(), &p.join("tokenizer.json"))?;
    save_json(&special_tokens_map(&tok), &p.join("special_tokens_map.json"))?;
    write_atomic(p.join("README.md"), model_card(&cfg, checkpoint).as_bytes())?;
    stage.commit()?;
    Ok(ExportReport {
        out_dir: out_dir.to_path_buf(),
        tensors: tensors.len(),
        parameters: cfg.num_parameters(),
        attention: cfg.attention,
    })
}
