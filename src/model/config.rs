//! The model's configuration, with Hugging Face Llama field names so that an EuroBERT/Llama
//! `config.json` reads into it and ours is read by `transformers`. Presets: `tiny` (unit tests),
//! `small` (the CPU study) and the paper's `210m`, `610m` and `1b` (the paper's model table).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

/// Whether a position attends to later positions. An argument of `forward`, never a property
/// of the model: the objective chooses it.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum AttentionMode {
    /// Each position sees itself and earlier positions (CLM).
    Causal,
    /// Each position sees every position (MLM, encoders).
    Bidirectional,
}

/// The architecture: HF Llama names; `attention` is ours (the mode the weights were last
/// trained with, used by default downstream).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Vocabulary size (rows of the embedding and of the LM head).
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Number of transformer blocks.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention; equal to the query heads for plain MHA).
    pub num_key_value_heads: usize,
    /// Inner width of the SwiGLU MLP.
    pub intermediate_size: usize,
    /// Longest sequence (rows of the RoPE tables).
    pub max_position_embeddings: usize,
    /// RoPE base θ.
    #[serde(default = "default_rope_theta")]
    pub rope_theta: f64,
    /// RMSNorm ε.
    #[serde(default = "default_rms_norm_eps")]
    pub rms_norm_eps: f64,
    /// Share the embedding with the LM head (the paper: no).
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Attention the weights were (last) trained with.
    #[serde(default = "default_attention")]
    pub attention: AttentionMode,
}

fn default_rope_theta() -> f64 {
    10_000.0
}

fn default_rms_norm_eps() -> f64 {
    1e-5
}

fn default_attention() -> AttentionMode {
    AttentionMode::Bidirectional
}

/// The fields of an HF `config.json` we read; every other key is ignored.
#[derive(Deserialize)]
struct HfConfig {
    vocab_size: usize,
    hidden_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    intermediate_size: usize,
    max_position_embeddings: usize,
    #[serde(default = "default_rope_theta")]
    rope_theta: f64,
    #[serde(default = "default_rms_norm_eps")]
    rms_norm_eps: f64,
    #[serde(default)]
    tie_word_embeddings: bool,
    #[serde(default)]
    attention: Option<AttentionMode>,
    #[serde(default)]
    is_causal: Option<bool>,
}

impl ModelConfig {
    /// For unit tests: 2 layers, width 64, 4 query / 2 key-value heads, vocabulary 256
    /// (about 0.1 M parameters).
    pub fn tiny() -> Self {
        Self::shape(256, 64, 2, 4, 2, 128, 128)
    }

    /// The smallest: 2 layers, width 32, 2 query / 1 key-value heads (a second size for the
    /// masking-ratio finding of the CPU study).
    pub fn micro() -> Self {
        Self::shape(256, 32, 2, 2, 1, 64, 128)
    }

    /// Between `tiny` and `small`: 4 layers, width 128, 4 / 2 heads.
    pub fn mini() -> Self {
        Self::shape(8192, 128, 4, 4, 2, 384, 512)
    }

    /// For the CPU study: 4 layers, width 256, 4 / 2 heads, vocabulary 8,192 (about 7 M
    /// parameters, 3 M outside the embeddings).
    pub fn small() -> Self {
        Self::shape(8192, 256, 4, 4, 2, 768, 512)
    }

    /// The paper's 210M model (Llama-3 vocabulary).
    pub fn paper_210m() -> Self {
        Self::shape(128_256, 768, 12, 12, 12, 3072, 2048)
    }

    /// The paper's 610M model.
    pub fn paper_610m() -> Self {
        Self::shape(128_256, 1152, 26, 18, 6, 4096, 2048)
    }

    /// The paper's 1B model.
    pub fn paper_1b() -> Self {
        Self::shape(128_256, 1728, 28, 18, 6, 5120, 2048)
    }

    /// A preset by name: `micro`, `tiny`, `mini`, `small`, `210m`, `610m`, `1b`.
    pub fn preset(name: &str) -> Result<Self> {
        Ok(match name {
            "micro" => Self::micro(),
            "tiny" => Self::tiny(),
            "mini" => Self::mini(),
            "small" => Self::small(),
            "210m" => Self::paper_210m(),
            "610m" => Self::paper_610m(),
            "1b" => Self::paper_1b(),
            other => {
                return Err(Error::config(
                    "model.preset",
                    format!("unknown preset `{other}`; use micro, tiny, mini, small, 210m, 610m or 1b"),
                ))
            }
        })
    }

    fn shape(
        vocab: usize,
        hidden: usize,
        layers: usize,
        heads: usize,
        kv: usize,
        inner: usize,
        max_pos: usize,
    ) -> Self {
        Self {
            vocab_size: vocab,
            hidden_size: hidden,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            num_key_value_heads: kv,
            intermediate_size: inner,
            max_position_embeddings: max_pos,
            rope_theta: default_rope_theta(),
            rms_norm_eps: default_rms_norm_eps(),
            tie_word_embeddings: false,
            attention: default_attention(),
        }
    }

    /// Width of one head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Checks the fields once; errors name the field (`model.<name>`).
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.num_key_value_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
        ];
        for (field, v) in positive {
            if v == 0 {
                return Err(Error::config(format!("model.{field}"), "must be at least 1"));
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(Error::config(
                "model.num_attention_heads",
                format!(
                    "{} heads do not divide hidden_size {}",
                    self.num_attention_heads, self.hidden_size
                ),
            ));
        }
        if !self.head_dim().is_multiple_of(2) {
            return Err(Error::config(
                "model.num_attention_heads",
                format!("head size {} must be even for RoPE", self.head_dim()),
            ));
        }
        if !self.num_attention_heads.is_multiple_of(self.num_key_value_heads) {
            return Err(Error::config(
                "model.num_key_value_heads",
                format!(
                    "{} key/value heads must divide the {} query heads (grouped-query attention)",
                    self.num_key_value_heads, self.num_attention_heads
                ),
            ));
        }
        if self.rope_theta.is_nan() || self.rope_theta <= 0.0 {
            return Err(Error::config("model.rope_theta", "must be positive"));
        }
        if self.rms_norm_eps.is_nan() || self.rms_norm_eps <= 0.0 {
            return Err(Error::config("model.rms_norm_eps", "must be positive"));
        }
        Ok(())
    }

    /// Number of parameters.
    pub fn num_parameters(&self) -> usize {
        let (h, kv) = (self.hidden_size, self.num_key_value_heads * self.head_dim());
        let layer = h * h * 2 + h * kv * 2 + 3 * h * self.intermediate_size + 2 * h;
        let head = if self.tie_word_embeddings {
            0
        } else {
            self.vocab_size * h
        };
        self.vocab_size * h + self.num_hidden_layers * layer + h + head
    }

    /// Reads an HF `config.json` (ours, or any Llama-layout model's: unknown keys are ignored),
    /// then validates it.
    pub fn from_hf_json(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).at(path)?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| Error::data(path, e.line(), e.to_string()))?;
        Self::from_hf_value(&value, path)
    }

    /// [`ModelConfig::from_hf_json`] on parsed JSON; `origin` names the file in errors. The RoPE
    /// base is `rope_theta`, or `rope_parameters.rope_theta` as transformers 5 writes it.
    pub fn from_hf_value(value: &serde_json::Value, origin: &Path) -> Result<Self> {
        let mut value = value.clone();
        let nested_theta = value.get("rope_parameters").and_then(|r| r.get("rope_theta")).cloned();
        if let (Some(theta), Some(obj)) = (nested_theta, value.as_object_mut()) {
            obj.entry("rope_theta").or_insert(theta);
        }
        let hf: HfConfig = serde_json::from_value(value).map_err(|e| Error::data(origin, 0, e.to_string()))?;
        let attention = hf.attention.unwrap_or(match hf.is_causal {
            Some(true) => AttentionMode::Causal,
            _ => AttentionMode::Bidirectional,
        });
        let cfg = Self {
            vocab_size: hf.vocab_size,
            hidden_size: hf.hidden_size,
            num_hidden_layers: hf.num_hidden_layers,
            num_attention_heads: hf.num_attention_heads,
            num_key_value_heads: hf.num_key_value_heads.unwrap_or(hf.num_attention_heads),
            intermediate_size: hf.intermediate_size,
            max_position_embeddings: hf.max_position_embeddings,
            rope_theta: hf.rope_theta,
            rms_norm_eps: hf.rms_norm_eps,
            tie_word_embeddings: hf.tie_word_embeddings,
            attention,
        };
        cfg.validate().map_err(|e| Error::data(origin, 0, e.to_string()))?;
        Ok(cfg)
    }

    /// The HF `config.json` of this model (Llama architecture, plus our `attention` field).
    pub fn to_hf_json(&self) -> serde_json::Value {
        serde_json::json!({
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "intermediate_size": self.intermediate_size,
            "max_position_embeddings": self.max_position_embeddings,
            "rope_theta": self.rope_theta,
            "rms_norm_eps": self.rms_norm_eps,
            "tie_word_embeddings": self.tie_word_embeddings,
            "hidden_act": "silu",
            "attention_bias": false,
            "mlp_bias": false,
            "head_dim": self.head_dim(),
            "torch_dtype": "float32",
            "attention": self.attention,
        })
    }
}
