//! Task heads on a backbone (`model::Transformer`), each returning logits (or, for retrieval,
//! embeddings): sequence classification (pooled hidden state → linear), token classification
//! (per-token linear), extractive QA (start/end logits per token) and retrieval (mean-pooled,
//! L2-normalised embeddings). Weight names follow HF: the backbone under `model.`, `score` for
//! the classifiers (HF `LlamaForSequenceClassification` has no bias there,
//! `LlamaForTokenClassification` has one), `qa_outputs` for QA.

pub mod contrastive;
pub mod pool;
pub mod span;

use candle_core::{Device, Module, Result, Tensor, Var, D};
use candle_nn::{VarBuilder, VarMap};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::data::TaskFamily;
use crate::model::init::{initial_tensor, parameter_shapes};
use crate::model::linear::Linear;
use crate::model::{AttentionMode, ModelConfig, Transformer};
pub use pool::{pool, Pooling};

/// Which head sits on the backbone.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum HeadKind {
    /// Pooled hidden state → `labels` logits.
    Sequence {
        /// Number of classes.
        labels: usize,
    },
    /// Each token → `labels` logits.
    Token {
        /// Number of tags.
        labels: usize,
    },
    /// Each token → start and end logits.
    Span,
    /// Mean-pooled, L2-normalised embedding.
    Embedding,
}

impl HeadKind {
    /// The head a task of `family` with `labels` classes puts on the backbone; `None` for
    /// pretraining text, which has none.
    pub fn of(family: TaskFamily, labels: usize) -> Option<HeadKind> {
        match family {
            TaskFamily::SequenceClassification => Some(HeadKind::Sequence { labels }),
            TaskFamily::TokenClassification => Some(HeadKind::Token { labels }),
            TaskFamily::ExtractiveQa => Some(HeadKind::Span),
            TaskFamily::Retrieval => Some(HeadKind::Embedding),
            TaskFamily::Pretraining => None,
        }
    }

    /// The head's parameters: (HF name, shape).
    pub fn parameters(self, hidden: usize) -> Vec<(String, Vec<usize>)> {
        match self {
            HeadKind::Sequence { labels } => vec![("score.weight".into(), vec![labels, hidden])],
            HeadKind::Token { labels } => vec![
                ("score.weight".into(), vec![labels, hidden]),
                ("score.bias".into(), vec![labels]),
            ],
            HeadKind::Span => vec![
                ("qa_outputs.weight".into(), vec![2, hidden]),
                ("qa_outputs.bias".into(), vec![2]),
            ],
            HeadKind::Embedding => Vec::new(),
        }
    }
}

/// Fresh weights for a task model: the backbone drawn from `backbone_rng` (replaced by a
/// checkpoint's when one is loaded), the head from `head_rng` (N(0, 0.02), biases 0). The LM
/// head of a pretraining checkpoint has no place here.
pub fn init_task_weights(
    cfg: &ModelConfig,
    head: HeadKind,
    backbone_rng: &mut impl RngCore,
    head_rng: &mut impl RngCore,
    device: &Device,
) -> Result<VarMap> {
    let map = VarMap::new();
    {
        let mut data = map.data().lock().map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        for (name, shape) in parameter_shapes(cfg)
            .into_iter()
            .filter(|(n, _)| n.starts_with("model."))
        {
            let tensor = initial_tensor(&name, &shape, backbone_rng, device)?;
            data.insert(name, Var::from_tensor(&tensor)?);
        }
        for (name, shape) in head.parameters(cfg.hidden_size) {
            let tensor = initial_tensor(&name, &shape, head_rng, device)?;
            data.insert(name, Var::from_tensor(&tensor)?);
        }
    }
    Ok(map)
}

/// A backbone with one head. The attention mode is the model's for fine-tuning
/// (bidirectional by default for every backbone; causal tests a CLM model as a decoder).
#[derive(Debug, Clone)]
pub struct TaskModel {
    /// The backbone.
    pub backbone: Transformer,
    /// The head.
    pub kind: HeadKind,
    weight: Option<Linear>,
    bias: Option<Tensor>,
    pooling: Pooling,
    mode: AttentionMode,
    frozen: bool,
}

impl TaskModel {
    /// The same model with its backbone frozen: the forward detaches the backbone's output, so
    /// that only the head receives gradients (a linear probe).
    pub fn frozen(mut self) -> Self {
        self.frozen = true;
        self
    }

    /// The model under the root of `vb` (HF names).
    pub fn new(
        cfg: &ModelConfig,
        kind: HeadKind,
        pooling: Pooling,
        mode: AttentionMode,
        vb: VarBuilder,
    ) -> Result<Self> {
        let backbone = Transformer::new(cfg, vb.pp("model"))?;
        let (mut weight, mut bias) = (None, None);
        for (name, shape) in kind.parameters(cfg.hidden_size) {
            let t = vb.get(shape.as_slice(), &name)?;
            if name.ends_with(".bias") {
                bias = Some(t);
            } else {
                weight = Some(Linear::new(t));
            }
        }
        Ok(Self {
            backbone,
            kind,
            weight,
            bias,
            pooling,
            mode,
            frozen: false,
        })
    }

    /// The attention mode of the forward.
    pub fn mode(&self) -> AttentionMode {
        self.mode
    }

    fn project(&self, x: &Tensor) -> Result<Tensor> {
        let w = self
            .weight
            .as_ref()
            .ok_or_else(|| candle_core::Error::Msg("head without weight".into()))?;
        let y = w.forward(x)?;
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }

    /// # Shapes
    /// `input_ids`: (B, T) u32, `padding`: (B, T) f32 (1 = token) →
    /// sequence: (B, labels); token: (B, T, labels); span: (B, T, 2) (start, end);
    /// embedding: (B, H), unit L2 norm.
    pub fn forward(&self, input_ids: &Tensor, padding: &Tensor, train: bool) -> Result<Tensor> {
        let hidden = if self.frozen {
            self.backbone
                .forward_t(input_ids, Some(padding), self.mode, false)?
                .detach()
        } else {
            self.backbone.forward_t(input_ids, Some(padding), self.mode, train)?
        };
        match self.kind {
            HeadKind::Sequence { .. } => self.project(&pool(&hidden, padding, self.pooling)?),
            HeadKind::Token { .. } | HeadKind::Span => self.project(&hidden),
            HeadKind::Embedding => {
                let pooled = pool(&hidden, padding, Pooling::Mean)?;
                let norm = pooled
                    .sqr()?
                    .sum_keepdim(D::Minus1)?
                    .sqrt()?
                    .clamp(1e-12, f64::INFINITY)?;
                pooled.broadcast_div(&norm)
            }
        }
    }
}
