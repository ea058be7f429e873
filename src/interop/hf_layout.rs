//! Which `transformers` class an export loads as, and what that class needs of the folder: the
//! names of its weights, the modeling file of the classes transformers does not have, and the
//! sentence-transformers files of an embedding model.

use std::collections::HashMap;
use std::path::Path;

use candle_core::Tensor;
use serde_json::json;

use crate::config::save_json;
use crate::error::{IoContext, Result};
use crate::finetune::saved::TaskHead;
use crate::heads::{HeadKind, Pooling};
use crate::model::{AttentionMode, ModelConfig};

/// The modeling file shipped in an export that needs custom code.
pub const MODELING_FILE: &str = "modeling_encoderlab.py";

/// Its source: transformers' `LlamaModel` with a bidirectional mask, and heads that pool as ours.
pub const MODELING_SOURCE: &str = include_str!("modeling_encoderlab.py");

/// The class an export loads as.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// The attention the exported model runs with.
    pub attention: AttentionMode,
    /// `architectures[0]`: a stock Llama class, or one of `modeling_encoderlab.py`.
    pub class: &'static str,
    /// The `transformers` auto class that loads it.
    pub auto_class: &'static str,
    /// Whether the class is ours (`model_type: "encoderlab"`, `auto_map`, the modeling file).
    pub custom_code: bool,
}

impl Layout {
    /// The stock Llama class when transformers computes the same thing with it (causal
    /// attention, and a sequence classifier that pools the last token, which transformers finds
    /// as the last non-padding id: so only with a padding token distinct from the separator);
    /// our class otherwise.
    pub fn choose(attention: AttentionMode, task: Option<&TaskHead>) -> Self {
        let causal = attention == AttentionMode::Causal;
        let (stock, ours, auto_class, stock_fits) = match task {
            None => (
                "LlamaForCausalLM",
                "EncoderlabForMaskedLM",
                "AutoModelForCausalLM",
                true,
            ),
            Some(t) => match t.head {
                HeadKind::Sequence { .. } => (
                    "LlamaForSequenceClassification",
                    "EncoderlabForSequenceClassification",
                    "AutoModelForSequenceClassification",
                    t.pooling == Pooling::Last && t.pad_token_id != t.sep_token_id,
                ),
                HeadKind::Token { .. } => (
                    "LlamaForTokenClassification",
                    "EncoderlabForTokenClassification",
                    "AutoModelForTokenClassification",
                    true,
                ),
                HeadKind::Span => (
                    "LlamaForQuestionAnswering",
                    "EncoderlabForQuestionAnswering",
                    "AutoModelForQuestionAnswering",
                    true,
                ),
                HeadKind::Embedding => ("LlamaModel", "EncoderlabModel", "AutoModel", true),
            },
        };
        if causal && stock_fits {
            Self {
                attention,
                class: stock,
                auto_class,
                custom_code: false,
            }
        } else {
            Self {
                attention,
                class: ours,
                // a bidirectional language model is a masked one
                auto_class: if task.is_none() {
                    "AutoModelForMaskedLM"
                } else {
                    auto_class
                },
                custom_code: true,
            }
        }
    }
}

/// The weights under the names `layout`'s class reads: transformers' `LlamaForQuestionAnswering`
/// keeps its backbone under `transformer.`; our masked LM reads `lm_head.weight` even when it is
/// tied to the embeddings.
pub fn hf_weights(mut weights: HashMap<String, Tensor>, cfg: &ModelConfig, layout: &Layout) -> HashMap<String, Tensor> {
    if layout.class == "LlamaForQuestionAnswering" {
        weights = weights
            .into_iter()
            .map(|(n, w)| match n.strip_prefix("model.") {
                Some(rest) => (format!("transformer.{rest}"), w),
                None => (n, w),
            })
            .collect();
    }
    if layout.class == "EncoderlabForMaskedLM" && cfg.tie_word_embeddings && !weights.contains_key("lm_head.weight") {
        if let Some(embed) = weights.get("model.embed_tokens.weight").cloned() {
            weights.insert("lm_head.weight".into(), embed);
        }
    }
    weights
}

/// sentence-transformers' files for an embedding model (`modules.json`: the transformer, mean
/// pooling, L2 normalisation), so that `SentenceTransformer(PATH)` embeds as fine-tuning did.
pub fn write_sentence_transformers(dir: &Path, cfg: &ModelConfig, task: &TaskHead) -> Result<()> {
    let modules = json!([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]);
    save_json(&modules, &dir.join("modules.json"))?;
    save_json(
        &json!({"max_seq_length": task.max_length, "do_lower_case": false}),
        &dir.join("sentence_bert_config.json"),
    )?;
    let pooling = dir.join("1_Pooling");
    std::fs::create_dir_all(&pooling).at(&pooling)?;
    save_json(
        &json!({
            "word_embedding_dimension": cfg.hidden_size,
            "pooling_mode_cls_token": false,
            "pooling_mode_mean_tokens": true,
            "pooling_mode_max_tokens": false,
            "pooling_mode_mean_sqrt_len_tokens": false,
            "pooling_mode_weightedmean_tokens": false,
            "pooling_mode_lasttoken": false,
            "include_prompt": true
        }),
        &pooling.join("config.json"),
    )?;
    let normalize = dir.join("2_Normalize");
    std::fs::create_dir_all(&normalize).at(&normalize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(kind: HeadKind, pooling: Pooling, pad: u32) -> TaskHead {
        TaskHead {
            head: kind,
            pooling,
            attention: AttentionMode::Causal,
            max_length: 64,
            sep_token_id: 1,
            pad_token_id: pad,
            labels: Vec::new(),
            dataset: "d".into(),
            run_id: "r".into(),
        }
    }

    #[test]
    fn the_stock_class_only_where_transformers_computes_the_same() {
        use AttentionMode::{Bidirectional, Causal};
        let seq = HeadKind::Sequence { labels: 2 };
        let class = |a, t: Option<&TaskHead>| Layout::choose(a, t).class;
        assert_eq!(class(Causal, None), "LlamaForCausalLM");
        assert_eq!(class(Bidirectional, None), "EncoderlabForMaskedLM");
        assert_eq!(Layout::choose(Bidirectional, None).auto_class, "AutoModelForMaskedLM");
        // transformers pools the last non-padding id: only the last token, with a distinct pad
        assert_eq!(
            class(Causal, Some(&head(seq, Pooling::Last, 2))),
            "LlamaForSequenceClassification"
        );
        assert_eq!(
            class(Causal, Some(&head(seq, Pooling::Last, 1))),
            "EncoderlabForSequenceClassification"
        );
        assert_eq!(
            class(Causal, Some(&head(seq, Pooling::Mean, 2))),
            "EncoderlabForSequenceClassification"
        );
        let span = head(HeadKind::Span, Pooling::Mean, 2);
        assert_eq!(class(Causal, Some(&span)), "LlamaForQuestionAnswering");
        assert_eq!(class(Bidirectional, Some(&span)), "EncoderlabForQuestionAnswering");
        let emb = head(HeadKind::Embedding, Pooling::Mean, 2);
        assert_eq!(Layout::choose(Bidirectional, Some(&emb)).auto_class, "AutoModel");
        assert!(Layout::choose(Bidirectional, Some(&emb)).custom_code);
        assert!(!Layout::choose(Causal, Some(&emb)).custom_code);
    }
}
