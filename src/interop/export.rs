//! `encoderlab export hf`: a checkpoint folder, or a fine-tuned model (`train.save_model`) → a
//! folder `transformers` loads as the model it was trained to be. Our weights already carry HF
//! Llama names and our `config.json` Llama fields; the export adds what `transformers` expects
//! around them (token ids, label names, safetensors metadata `format: pt`, the tokenizer's
//! configuration, a model card) and chooses the class ([`super::hf_layout`]):
//!
//! - a causal model whose head transformers implements the same way → the stock Llama class
//!   (`LlamaForCausalLM`, `LlamaForTokenClassification`, …), no custom code;
//! - a bidirectional model (MLM, or any backbone fine-tuned as an encoder), or a classifier that
//!   pools the mean or the first token → `model_type: "encoderlab"` with `auto_map` onto
//!   `modeling_encoderlab.py`, shipped in the folder: it loads with `trust_remote_code=True` and
//!   runs bidirectionally with the usual 2D mask, and without that flag transformers refuses it
//!   rather than run it causally.
//!
//! A fine-tuned model's tokenizer ends every input with the separator, as fine-tuning did, so
//! `tokenizer(text)` gives the ids the model was trained on. A retrieval model also gets the
//! sentence-transformers files (mean pooling, then L2 normalisation).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde::Serialize;
use serde_json::{json, Value};

use super::check_shapes;
use super::hf_layout::{hf_weights, write_sentence_transformers, Layout, MODELING_FILE, MODELING_SOURCE};
use crate::config::save_json;
use crate::error::{Error, Result};
use crate::finetune::saved::TaskHead;
use crate::fsutil::{write_atomic, OwnedDir};
use crate::model::{parameter_shapes, AttentionMode, ModelConfig};
use crate::tokenizer::{save_tokenizer, save_tokenizer_with, TextTokenizer};

/// How to export.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// The attention the exported model runs with (default: the one it was last trained or
    /// fine-tuned with). A pretraining checkpoint only: e.g. a CLM model exported as the
    /// bidirectional encoder the paper fine-tunes.
    pub attention: Option<AttentionMode>,
}

/// What an export wrote.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct ExportReport {
    /// The folder written.
    pub out_dir: PathBuf,
    /// Tensors in `model.safetensors`.
    pub tensors: usize,
    /// Parameters.
    pub parameters: usize,
    /// The attention the exported model runs with.
    pub attention: AttentionMode,
    /// The `transformers` class it loads as (`architectures[0]`).
    pub class: String,
    /// Whether loading needs `trust_remote_code=True` (the shipped `modeling_encoderlab.py`).
    pub custom_code: bool,
}

/// The model card of an export: what it is and how to load it.
fn model_card(
    cfg: &ModelConfig,
    layout: &Layout,
    task: Option<&TaskHead>,
    tok: &TextTokenizer,
    source: &Path,
) -> String {
    let what = match task {
        Some(t) => format!(
            "fine-tuned on `{}` (run `{}`) with {} attention",
            t.dataset,
            t.run_id,
            mode_name(t.attention)
        ),
        None => format!("pretrained; it runs with {} attention", mode_name(layout.attention)),
    };
    let remote = if layout.custom_code {
        ", trust_remote_code=True"
    } else {
        ""
    };
    let auto = layout.auto_class;
    let mut usage = format!(
        "import torch\nfrom transformers import AutoTokenizer, {auto}\n\ntok = AutoTokenizer.from_pretrained(PATH{remote})\nmodel = {auto}.from_pretrained(PATH{remote}).eval()\nbatch = tok([\"a sentence\", \"another one\"], return_tensors=\"pt\", padding=True)\nwith torch.no_grad():\n    out = model(**batch)\n"
    );
    match layout.auto_class {
        "AutoModel" => usage += "# the embedding: mean over the tokens, then unit length (as fine-tuned)\nm = batch[\"attention_mask\"][..., None].float()\nemb = (out.last_hidden_state * m).sum(1) / m.sum(1)\nemb = torch.nn.functional.normalize(emb, dim=-1)\n# or: sentence_transformers.SentenceTransformer(PATH) (modules.json)\n",
        "AutoModelForQuestionAnswering" => usage += "start, end = out.start_logits, out.end_logits\n",
        _ => usage += "logits = out.logits\n",
    }
    let custom = if layout.custom_code {
        format!(
            "\n`{MODELING_FILE}` (shipped here) is transformers' `LlamaModel` with a bidirectional mask: every \
             position sees every non-padding position, from the usual 2D `attention_mask`. Without \
             `trust_remote_code=True`, transformers refuses the folder instead of running it causally.\n"
        )
    } else if layout.attention == AttentionMode::Causal && task.is_none() {
        "\nThe stock class: no custom code. To run it bidirectionally, export it with \
         `encoderlab export hf --attention bidirectional`.\n"
            .to_string()
    } else {
        "\nThe stock class: no custom code.\n".to_string()
    };
    let inputs = match task {
        Some(t) => format!(
            "\nThe tokenizer ends every input with `{}` (id {}) and joins a pair as `a <sep> b <sep>`, as \
             fine-tuning did (inputs up to {} tokens; `truncation=True` cuts there).\n",
            tok.inner().id_to_token(t.sep_token_id).unwrap_or_default(),
            t.sep_token_id,
            t.max_length
        ),
        None => String::new(),
    };
    format!(
        "# encoderlab export\n\nExported by `encoderlab export hf` from `{source}`: a Llama-architecture model \
         ({layers} layers, width {hidden}, {heads} query / {kv} key-value heads, vocabulary {vocab}, {params} \
         parameters), float32, {what}. It loads as `{class}`.\n\n```python\n{usage}```\n{custom}{inputs}\n\
         `scripts/hf_parity.py` in encoderlab checks these outputs against encoderlab's own.\n",
        source = source.display(),
        layers = cfg.num_hidden_layers,
        hidden = cfg.hidden_size,
        heads = cfg.num_attention_heads,
        kv = cfg.num_key_value_heads,
        vocab = cfg.vocab_size,
        params = cfg.num_parameters(),
        class = layout.class,
    )
}

fn mode_name(mode: AttentionMode) -> &'static str {
    match mode {
        AttentionMode::Causal => "causal",
        AttentionMode::Bidirectional => "bidirectional",
    }
}

/// `transformers`' `config.json`: `cfg`'s fields, the tokenizer's special ids, the class (and
/// `auto_map`), and a classifier's labels.
fn hf_config(cfg: &ModelConfig, tok: &TextTokenizer, layout: &Layout, task: Option<&TaskHead>) -> Value {
    let mut config = cfg.to_hf_json();
    let s = tok.special();
    if let Some(obj) = config.as_object_mut() {
        obj.insert("attention".into(), json!(layout.attention));
        obj.insert("architectures".into(), json!([layout.class]));
        obj.insert("bos_token_id".into(), json!(s.bos));
        obj.insert("eos_token_id".into(), json!(s.eos));
        obj.insert(
            "pad_token_id".into(),
            json!(task.map_or(s.pad, |t| Some(t.pad_token_id))),
        );
        if layout.custom_code {
            obj.insert("model_type".into(), json!("encoderlab"));
            let module = MODELING_FILE.trim_end_matches(".py");
            let mut map = serde_json::Map::new();
            map.insert("AutoConfig".into(), json!(format!("{module}.EncoderlabConfig")));
            map.insert("AutoModel".into(), json!(format!("{module}.EncoderlabModel")));
            if layout.auto_class != "AutoModel" {
                map.insert(layout.auto_class.into(), json!(format!("{module}.{}", layout.class)));
            }
            obj.insert("auto_map".into(), Value::Object(map));
            if let Some(t) = task {
                obj.insert("pooling".into(), json!(t.pooling));
            }
        }
        if let Some(t) = task.filter(|t| !t.labels.is_empty()) {
            let (mut id2label, mut label2id) = (serde_json::Map::new(), serde_json::Map::new());
            for (i, label) in t.labels.iter().enumerate() {
                id2label.insert(i.to_string(), json!(label));
                label2id.insert(label.clone(), json!(i));
            }
            obj.insert("num_labels".into(), json!(t.labels.len()));
            obj.insert("id2label".into(), Value::Object(id2label));
            obj.insert("label2id".into(), Value::Object(label2id));
        }
    }
    config
}

/// `special_tokens_map.json`: the special tokens by role.
fn special_tokens_map(tok: &TextTokenizer, task: Option<&TaskHead>) -> Value {
    let s = tok.special();
    let name = |id: Option<u32>| id.and_then(|i| tok.inner().id_to_token(i));
    let mut map = serde_json::Map::new();
    for (role, id) in [
        ("bos_token", s.bos),
        ("eos_token", s.eos),
        ("pad_token", task.map_or(s.pad, |t| Some(t.pad_token_id))),
        ("mask_token", s.mask),
        ("sep_token", task.map(|t| t.sep_token_id)),
    ] {
        if let Some(t) = name(id) {
            map.insert(role.into(), json!(t));
        }
    }
    Value::Object(map)
}

/// A fine-tuned model's tokenizer files: `tokenizer.json` with a post-processor that appends the
/// separator (`a <sep>`, `a <sep> b <sep>`) after the tokenizer's own, and a
/// `tokenizer_config.json` that pads on the right and cuts at the fine-tuning length.
fn save_task_tokenizer(tok: &TextTokenizer, task: &TaskHead, dir: &Path) -> Result<()> {
    let path = dir.join("tokenizer.json");
    let err = |e: String| Error::data(&path, 0, e);
    let mut value: Value = serde_json::from_str(&tok.inner().to_string(false).map_err(|e| err(e.to_string()))?)
        .map_err(|e| err(e.to_string()))?;
    let sep = tok
        .inner()
        .id_to_token(task.sep_token_id)
        .ok_or_else(|| err(format!("no token has the separator's id {}", task.sep_token_id)))?;
    let special = |type_id: u32| json!({"SpecialToken": {"id": sep, "type_id": type_id}});
    let sequence = |id: &str, type_id: u32| json!({"Sequence": {"id": id, "type_id": type_id}});
    let template = json!({
        "type": "TemplateProcessing",
        "single": [sequence("A", 0), special(0)],
        "pair": [sequence("A", 0), special(0), sequence("B", 1), special(1)],
        "special_tokens": {sep.clone(): {"id": sep, "ids": [task.sep_token_id], "tokens": [sep]}},
    });
    let processor = match value.get("post_processor") {
        Some(p) if !p.is_null() => json!({"type": "Sequence", "processors": [p, template]}),
        _ => template,
    };
    value["post_processor"] = processor;
    let text = serde_json::to_string(&value).map_err(|e| err(e.to_string()))?;
    // the tokenizers library reads it back, or the export stops here
    let with_sep = tokenizers::Tokenizer::from_bytes(text.as_bytes()).map_err(|e| err(e.to_string()))?;
    let name = |id: u32| tok.inner().id_to_token(id);
    let extra = [
        ("pad_token", json!(name(task.pad_token_id))),
        ("sep_token", json!(name(task.sep_token_id))),
        ("model_max_length", json!(task.max_length)),
        ("padding_side", json!("right")),
        ("truncation_side", json!("right")),
        ("model_input_names", json!(["input_ids", "attention_mask"])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    save_tokenizer_with(&with_sep, &path, extra)
}

/// Reads the weights of `checkpoint` and checks them against the backbone `cfg` and, for a
/// fine-tuned model, its head.
fn read_checked_weights(
    checkpoint: &Path,
    cfg: &ModelConfig,
    task: Option<&TaskHead>,
) -> Result<HashMap<String, Tensor>> {
    let weights_path = checkpoint.join("model.safetensors");
    if !weights_path.exists() {
        return Err(Error::data(
            &weights_path,
            0,
            "no model.safetensors: give a checkpoint folder (runs/pretrain/NAME/checkpoints/step-N) or a fine-tuned model (runs/finetune/RUN/model)",
        ));
    }
    let mut weights = crate::train::checkpoint::read_safetensors(&weights_path, &Device::Cpu, "the model's weights")?;
    let shapes = match task {
        None => parameter_shapes(cfg),
        // the backbone without its LM head, and the task head
        Some(t) => parameter_shapes(cfg)
            .into_iter()
            .filter(|(n, _)| n.starts_with("model."))
            .chain(t.head.parameters(cfg.hidden_size))
            .collect(),
    };
    check_shapes(&shapes, &mut weights, &weights_path)?;
    Ok(weights)
}

/// Exports the checkpoint folder or fine-tuned model `checkpoint` (`config.json`,
/// `model.safetensors`, `tokenizer.json`) to `out_dir`, replacing it only once complete.
pub fn export_hf(checkpoint: &Path, out_dir: &Path, opts: &ExportOptions) -> Result<ExportReport> {
    let config_path = checkpoint.join("config.json");
    let cfg = ModelConfig::from_hf_json(&config_path)?;
    let task = TaskHead::read(&config_path)?;
    if let (Some(t), Some(a)) = (&task, opts.attention) {
        if a != t.attention {
            return Err(Error::config(
                "--attention",
                format!(
                    "the model was fine-tuned with {} attention: its head only means something with that attention",
                    mode_name(t.attention)
                ),
            ));
        }
    }
    let weights = read_checked_weights(checkpoint, &cfg, task.as_ref())?;
    let tok_path = checkpoint.join("tokenizer.json");
    let tok = TextTokenizer::load(&tok_path)?;
    super::vocab::check_vocab(&cfg, tok.inner(), &tok_path)?;
    let attention = opts
        .attention
        .or(task.as_ref().map(|t| t.attention))
        .unwrap_or(cfg.attention);
    let layout = Layout::choose(attention, task.as_ref());
    let stage = OwnedDir::create(out_dir, "export hf")?;
    let p = stage.path();
    save_json(&hf_config(&cfg, &tok, &layout, task.as_ref()), &p.join("config.json"))?;
    let weights = hf_weights(weights, &cfg, &layout);
    let mut names: Vec<&String> = weights.keys().collect();
    names.sort();
    let tensors: Vec<(&String, Tensor)> = names
        .iter()
        .map(|n| Ok((*n, weights[*n].to_dtype(DType::F32)?.contiguous()?)))
        .collect::<Result<_>>()?;
    let metadata: HashMap<String, String> = [("format".to_string(), "pt".to_string())].into();
    let st_path = p.join("model.safetensors");
    safetensors::serialize_to_file(tensors.iter().map(|(n, t)| (n.as_str(), t)), Some(metadata), &st_path)
        .map_err(|e| Error::data(&st_path, 0, e.to_string()))?;
    match &task {
        Some(t) => save_task_tokenizer(&tok, t, p)?,
        None => save_tokenizer(tok.inner(), &p.join("tokenizer.json"))?,
    }
    save_json(
        &special_tokens_map(&tok, task.as_ref()),
        &p.join("special_tokens_map.json"),
    )?;
    if layout.custom_code {
        write_atomic(p.join(MODELING_FILE), MODELING_SOURCE.as_bytes())?;
    }
    if let Some(t) = task.as_ref().filter(|_| layout.auto_class == "AutoModel") {
        write_sentence_transformers(p, &cfg, t)?;
    }
    write_atomic(
        p.join("README.md"),
        model_card(&cfg, &layout, task.as_ref(), &tok, checkpoint).as_bytes(),
    )?;
    stage.commit()?;
    Ok(ExportReport {
        out_dir: out_dir.to_path_buf(),
        tensors: tensors.len(),
        parameters: cfg.num_parameters(),
        attention,
        class: layout.class.to_string(),
        custom_code: layout.custom_code,
    })
}
