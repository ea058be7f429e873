//! The backbone (embeddings → blocks → final norm) and the language model (backbone → LM head),
//! with HF Llama weight names (`model.embed_tokens`, `model.layers.{i}`, `model.norm`,
//! `lm_head`). The attention mode and the padding mask are arguments of `forward_t`.
// B = batch, T = seq len, H = hidden, V = vocab

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Embedding, VarBuilder};

use super::block::Block;
use super::config::{AttentionMode, ModelConfig};
use super::linear::Linear;
use super::mask::AttentionMask;
use super::norm::RmsNorm;
use super::rope::RotaryEmbedding;

/// Embeddings, blocks and the final norm.
#[derive(Debug, Clone)]
pub struct Transformer {
    embed_tokens: Embedding,
    layers: Vec<Block>,
    norm: RmsNorm,
    rope: RotaryEmbedding,
    max_positions: usize,
    compute: DType,
    /// Recompute each block's activations in the backward instead of keeping them.
    checkpoint_activations: bool,
}

impl Transformer {
    /// The backbone under `vb` (`model`).
    pub fn new(cfg: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        let embed = vb.pp("embed_tokens").get((cfg.vocab_size, cfg.hidden_size), "weight")?;
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| Block::new(cfg, vb.pp("layers").pp(i)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            embed_tokens: Embedding::new(embed, cfg.hidden_size),
            layers,
            norm: RmsNorm::new(cfg.hidden_size, cfg.rms_norm_eps, vb.pp("norm"))?,
            rope: RotaryEmbedding::new(cfg.head_dim(), cfg.max_position_embeddings, cfg.rope_theta, vb.device())?,
            max_positions: cfg.max_position_embeddings,
            compute: DType::F32,
            checkpoint_activations: false,
        })
    }

    /// The token embedding matrix (V, H).
    pub fn embeddings(&self) -> &Tensor {
        self.embed_tokens.embeddings()
    }

    /// Hidden states of the last layer, after the final norm. The model has no dropout, so
    /// train and eval forwards compute the same; `train` turns on activation checkpointing
    /// where the model has it ([`LanguageModel::with_activation_checkpointing`]).
    ///
    /// # Shapes
    /// `input_ids`: (B, T) u32; `padding`: (B, T), 1 = token, 0 = padding → (B, T, H).
    pub fn forward_t(
        &self,
        input_ids: &Tensor,
        padding: Option<&Tensor>,
        mode: AttentionMode,
        train: bool,
    ) -> Result<Tensor> {
        let (_, t) = input_ids.dims2()?;
        if t > self.max_positions {
            candle_core::bail!("sequence of {t} tokens, the model has {} positions", self.max_positions);
        }
        let mask = AttentionMask::new(mode, padding, t, input_ids.device())?;
        let mut x = self.embed_tokens.forward(input_ids)?.to_dtype(self.compute)?;
        for layer in &self.layers {
            x = match train && self.checkpoint_activations {
                true => layer.forward_checkpointed(&x, &self.rope, &mask)?,
                false => layer.forward(&x, &self.rope, &mask)?,
            };
        }
        self.norm.forward(&x)
    }
}

/// The backbone with its LM head: logits for every position (CLM and MLM share it).
#[derive(Debug, Clone)]
pub struct LanguageModel {
    /// The backbone.
    pub model: Transformer,
    lm_head: Linear,
    /// The configuration it was built from.
    pub config: ModelConfig,
}

impl LanguageModel {
    /// The model under the root of `vb` (HF names).
    pub fn new(cfg: &ModelConfig, vb: VarBuilder) -> Result<Self> {
        let model = Transformer::new(cfg, vb.pp("model"))?;
        let head = if cfg.tie_word_embeddings {
            model.embeddings().clone()
        } else {
            vb.pp("lm_head").get((cfg.vocab_size, cfg.hidden_size), "weight")?
        };
        Ok(Self {
            model,
            lm_head: Linear::new(head),
            config: cfg.clone(),
        })
    }

    /// # Shapes
    /// `input_ids`: (B, T) u32; `padding`: (B, T) → logits (B, T, V).
    pub fn forward_t(
        &self,
        input_ids: &Tensor,
        padding: Option<&Tensor>,
        mode: AttentionMode,
        train: bool,
    ) -> Result<Tensor> {
        let hidden = self.model.forward_t(input_ids, padding, mode, train)?;
        self.lm_head.forward(&hidden)
    }

    /// The model computing in `dtype` (f32 or bf16) with its weights kept as they are (f32):
    /// each weight is cast at use, norms and softmax run in f32, logits reach the loss in
    /// their dtype and the loss casts them to f32.
    pub fn with_compute_dtype(mut self, dtype: DType) -> Self {
        self.model.compute = dtype;
        self
    }

    /// The model recomputing each block's activations in the backward of a training forward
    /// instead of keeping them (less memory, one more forward per block; the same gradients).
    pub fn with_activation_checkpointing(mut self, on: bool) -> Self {
        self.model.checkpoint_activations = on;
        self
    }

    /// The LM head's weight (V, H): the embedding matrix when tied.
    pub fn head_weight(&self) -> &Tensor {
        self.lm_head.weight()
    }

    /// The LM head alone: hidden states (…, H) → logits (…, V).
    pub fn head(&self, hidden: &Tensor) -> Result<Tensor> {
        self.lm_head.forward(hidden)
    }
}
