//! Interoperability: export to a Hugging Face folder, import of Hugging Face folders (single and
//! sharded) and GGUF files (llama.cpp's permuted q/k rows, quantized tensors, tokenizer rebuilt
//! from metadata), the mask token added for MLM, continued pretraining from an import, held-out
//! perplexity, and the errors for what we do not support. The comparison with transformers
//! itself is `scripts/hf_parity.py` (torch is not a test dependency).

mod common;

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use common::{tiny_checkpoint, write};
use encoderlab::data::{PackedDataset, Split};
use encoderlab::interop::export::{export_hf, ExportOptions};
use encoderlab::interop::gguf::{permute_rows, unpermute_rows};
use encoderlab::interop::lm::{load_language_model, logits, perplexity};
use encoderlab::interop::{import_model, ImportOptions};
use encoderlab::model::{AttentionMode, ModelConfig};
use encoderlab::tokenizer::TextTokenizer;

fn tensors(path: &Path) -> anyhow::Result<HashMap<String, Tensor>> {
    Ok(candle_core::safetensors::load(path, &Device::Cpu)?)
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> anyhow::Result<f32> {
    Ok((a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?)
}

/// Logits of the checkpoint at `dir` on a fixed padded batch, in `mode`.
fn batch_logits(dir: &Path, mode: AttentionMode) -> anyhow::Result<Tensor> {
    let model = load_language_model(dir, &Device::Cpu)?;
    let ids = Tensor::new(
        &[[5u32, 17, 42, 99, 7, 3, 250, 12], [9, 8, 77, 64, 1, 2, 0, 0]],
        &Device::Cpu,
    )?;
    let mask = Tensor::new(
        &[[1f32, 1., 1., 1., 1., 1., 1., 1.], [1., 1., 1., 1., 1., 1., 0., 0.]],
        &Device::Cpu,
    )?;
    let out = logits(&model, &ids, Some(&mask), mode)?;
    // only the non-padding positions are compared
    Ok(Tensor::cat(&[out.get(0)?, out.get(1)?.narrow(0, 0, 6)?], 0)?)
}

#[test]
fn export_writes_a_transformers_folder_with_the_same_weights() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ckpt = tiny_checkpoint(dir.path())?;
    let out = dir.path().join("hf");
    let report = export_hf(&ckpt, &out, &ExportOptions::default())?;
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "README.md",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("config.json"))?)?;
    assert_eq!(config["architectures"][0], "LlamaForCausalLM");
    assert_eq!(config["model_type"], "llama");
    let tok = TextTokenizer::load(&ckpt.join("tokenizer.json"))?;
    assert_eq!(config["eos_token_id"], serde_json::json!(tok.special().eos));
    let special: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("special_tokens_map.json"))?)?;
    assert_eq!(special["mask_token"], "<|mask|>");
    // transformers refuses safetensors whose metadata does not say the format
    let bytes = std::fs::read(out.join("model.safetensors"))?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)?;
    assert_eq!(
        meta.metadata()
            .as_ref()
            .and_then(|m| m.get("format"))
            .map(String::as_str),
        Some("pt")
    );
    let (a, b) = (
        tensors(&ckpt.join("model.safetensors"))?,
        tensors(&out.join("model.safetensors"))?,
    );
    assert_eq!(report.tensors, b.len());
    assert_eq!(a.len(), b.len());
    for (name, t) in &a {
        assert_eq!(max_abs_diff(t, &b[name])?, 0.0, "{name}");
    }
    // a folder without weights: a clear error, and nothing written
    let bad = dir.path().join("not_a_checkpoint");
    std::fs::create_dir_all(&bad)?;
    std::fs::copy(ckpt.join("config.json"), bad.join("config.json"))?;
    let e = export_hf(&bad, &dir.path().join("hf2"), &ExportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("no model.safetensors"), "{e}");
    assert!(!dir.path().join("hf2").exists());
    Ok(())
}

#[test]
fn hf_import_single_and_sharded_gives_the_same_model() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ckpt = tiny_checkpoint(dir.path())?;
    let hf = dir.path().join("hf");
    export_hf(&ckpt, &hf, &ExportOptions::default())?;
    let reference = batch_logits(&ckpt, AttentionMode::Causal)?;

    let single = dir.path().join("single");
    let report = import_model(&hf, &single, &ImportOptions::default())?;
    assert_eq!(report.format, "hf");
    assert_eq!(
        max_abs_diff(&batch_logits(&single, AttentionMode::Causal)?, &reference)?,
        0.0
    );
    // a Hugging Face Llama is a causal LM
    assert_eq!(
        ModelConfig::from_hf_json(&single.join("config.json"))?.attention,
        AttentionMode::Causal
    );

    // the same weights in two shards with an index, in bf16 (the usual storage), without the
    // `model.` prefix on the backbone's names (as a bare LlamaModel saves them) for one shard
    let sharded = dir.path().join("sharded");
    std::fs::create_dir_all(&sharded)?;
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(hf.join(f), sharded.join(f))?;
    }
    let all = tensors(&hf.join("model.safetensors"))?;
    let mut names: Vec<&String> = all.keys().collect();
    names.sort();
    let (first, second) = names.split_at(names.len() / 2);
    let mut weight_map = serde_json::Map::new();
    for (i, part) in [first, second].iter().enumerate() {
        let file = format!("model-0000{}-of-00002.safetensors", i + 1);
        let mut shard = HashMap::new();
        for n in part.iter() {
            let stored = if i == 0 {
                n.trim_start_matches("model.").to_string()
            } else {
                (*n).clone()
            };
            shard.insert(stored.clone(), all[*n].to_dtype(DType::BF16)?);
            weight_map.insert(stored, serde_json::json!(file));
        }
        candle_core::safetensors::save(&shard, sharded.join(&file))?;
    }
    write(
        &sharded,
        "model.safetensors.index.json",
        &serde_json::json!({"metadata": {}, "weight_map": weight_map}).to_string(),
    );
    let from_shards = dir.path().join("from_shards");
    let report = import_model(&sharded, &from_shards, &ImportOptions::default())?;
    assert_eq!(report.source_dtypes.get("BF16"), Some(&all.len()), "{report:?}");
    let d = max_abs_diff(&batch_logits(&from_shards, AttentionMode::Causal)?, &reference)?;
    assert!(d > 0.0 && d < 0.05, "bf16 storage changes the logits a little: {d}");

    // a missing shard is named
    std::fs::remove_file(sharded.join("model-00002-of-00002.safetensors"))?;
    let e = import_model(&sharded, &dir.path().join("x"), &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("1 of 2 shards are missing") && e.contains("model-00002-of-00002.safetensors"),
        "{e}"
    );
    assert!(!dir.path().join("x").exists());
    Ok(())
}

/// Rewrites `key` of `hf/config.json` and returns the import error.
fn import_error_with(hf: &Path, key: &str, value: serde_json::Value) -> anyhow::Result<String> {
    let path = hf.join("config.json");
    let original = std::fs::read_to_string(&path)?;
    let mut config: serde_json::Value = serde_json::from_str(&original)?;
    config[key] = value;
    std::fs::write(&path, config.to_string())?;
    let out = hf.with_file_name("refused");
    let e = import_model(hf, &out, &ImportOptions::default())
        .unwrap_err()
        .to_string();
    std::fs::write(&path, original)?;
    assert!(!out.exists(), "a refused import wrote {}", out.display());
    Ok(e)
}

#[test]
fn unsupported_architectures_and_mismatches_are_refused_by_name() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ckpt = tiny_checkpoint(dir.path())?;
    let hf = dir.path().join("hf");
    export_hf(&ckpt, &hf, &ExportOptions::default())?;
    let e = import_error_with(&hf, "model_type", serde_json::json!("qwen2"))?;
    assert!(e.contains("field `model_type`") && e.contains("qwen2"), "{e}");
    let e = import_error_with(
        &hf,
        "rope_scaling",
        serde_json::json!({"rope_type": "llama3", "factor": 8.0}),
    )?;
    assert!(e.contains("field `rope_scaling`") && e.contains("llama3"), "{e}");
    let e = import_error_with(&hf, "attention_bias", serde_json::json!(true))?;
    assert!(e.contains("field `attention_bias`"), "{e}");
    let e = import_error_with(&hf, "hidden_act", serde_json::json!("gelu"))?;
    assert!(e.contains("field `hidden_act`"), "{e}");
    // a config whose shapes are not the weights'
    let e = import_error_with(&hf, "intermediate_size", serde_json::json!(96))?;
    assert!(
        e.contains("mlp.down_proj.weight") || e.contains("mlp.gate_proj.weight"),
        "{e}"
    );
    // a tokenizer with more ids than the embedding has rows
    let e = import_error_with(&hf, "vocab_size", serde_json::json!(280))?;
    assert!(e.contains("shape") || e.contains("tokenizer"), "{e}");
    let small = ModelConfig::from_hf_json(&hf.join("config.json"))?;
    let tok = TextTokenizer::load(&hf.join("tokenizer.json"))?;
    let mut bigger = tok.inner().clone();
    let extra: Vec<tokenizers::AddedToken> = (0..small.vocab_size)
        .map(|i| tokenizers::AddedToken::from(format!("<extra_{i}>"), true))
        .collect();
    bigger.add_special_tokens(&extra);
    let big_tok = dir.path().join("big_tokenizer.json");
    bigger.save(&big_tok, false).map_err(|e| anyhow::anyhow!("{e}"))?;
    let opts = ImportOptions {
        tokenizer: Some(big_tok),
        ..ImportOptions::default()
    };
    let e = import_model(&hf, &dir.path().join("y"), &opts).unwrap_err().to_string();
    assert!(e.contains("the tokenizer has") && e.contains("not this model's"), "{e}");
    // no tokenizer.json
    std::fs::remove_file(hf.join("tokenizer.json"))?;
    let e = import_model(&hf, &dir.path().join("z"), &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("tokenizer.json") && e.contains("missing"), "{e}");
    Ok(())
}

#[test]
fn permute_and_unpermute_are_inverse_and_move_rows_within_heads() -> anyhow::Result<()> {
    // 2 heads of width 4, 3 input columns: row r holds the value r in every column
    let w = Tensor::arange(0f32, 8.0, &Device::Cpu)?
        .reshape((8, 1))?
        .repeat((1, 3))?;
    let p = permute_rows(&w, 2)?;
    // llama.cpp: within a head, rows (0, 1, 2, 3) → (0, 2, 1, 3)
    let rows: Vec<f32> = p.narrow(1, 0, 1)?.flatten_all()?.to_vec1()?;
    assert_eq!(rows, vec![0., 2., 1., 3., 4., 6., 5., 7.]);
    assert_eq!(max_abs_diff(&unpermute_rows(&p, 2)?, &w)?, 0.0);
    Ok(())
}

/// The tokenizer's vocabulary in id order, its merges as "a b", and token types (3 = control).
fn tokenizer_metadata(path: &Path) -> anyhow::Result<(Vec<String>, Vec<String>, Vec<i32>)> {
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let tok = TextTokenizer::load(path)?;
    let n = tok.vocab_size();
    let tokens: Vec<String> = (0..n as u32)
        .map(|i| tok.inner().id_to_token(i).unwrap_or_default())
        .collect();
    let special: Vec<u32> = json["added_tokens"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["special"] == true)
        .filter_map(|t| t["id"].as_u64().map(|i| i as u32))
        .collect();
    let types = (0..n as u32)
        .map(|i| if special.contains(&i) { 3 } else { 1 })
        .collect();
    let merges = json["model"]["merges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| match m {
            serde_json::Value::String(s) => s.clone(),
            other => other
                .as_array()
                .map(|p| p.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(" "))
                .unwrap_or_default(),
        })
        .collect();
    Ok((tokens, merges, types))
}

/// Writes the checkpoint at `ckpt` as a llama.cpp-style GGUF file: `llama.*` metadata, the
/// tokenizer as `tokenizer.ggml.*`, GGUF tensor names, q/k rows permuted, matrices in `dtype`.
fn write_gguf(ckpt: &Path, path: &Path, dtype: GgmlDType, arch: &str) -> anyhow::Result<()> {
    let cfg = ModelConfig::from_hf_json(&ckpt.join("config.json"))?;
    let weights = tensors(&ckpt.join("model.safetensors"))?;
    let (tokens, merges, types) = tokenizer_metadata(&ckpt.join("tokenizer.json"))?;
    let strings = |v: &[String]| Value::Array(v.iter().map(|s| Value::String(s.clone())).collect());
    let metadata: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String(arch.into())),
        ("llama.block_count", Value::U32(cfg.num_hidden_layers as u32)),
        ("llama.context_length", Value::U32(cfg.max_position_embeddings as u32)),
        ("llama.embedding_length", Value::U32(cfg.hidden_size as u32)),
        ("llama.feed_forward_length", Value::U32(cfg.intermediate_size as u32)),
        ("llama.attention.head_count", Value::U32(cfg.num_attention_heads as u32)),
        (
            "llama.attention.head_count_kv",
            Value::U32(cfg.num_key_value_heads as u32),
        ),
        ("llama.rope.freq_base", Value::F32(cfg.rope_theta as f32)),
        (
            "llama.attention.layer_norm_rms_epsilon",
            Value::F32(cfg.rms_norm_eps as f32),
        ),
        ("llama.rope.dimension_count", Value::U32(cfg.head_dim() as u32)),
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.pre", Value::String("default".into())),
        ("tokenizer.ggml.tokens", strings(&tokens)),
        ("tokenizer.ggml.merges", strings(&merges)),
        (
            "tokenizer.ggml.token_type",
            Value::Array(types.iter().map(|t| Value::I32(*t)).collect()),
        ),
    ];
    let gguf_name = |hf: &str| -> String {
        let map = [
            ("model.embed_tokens.weight", "token_embd.weight"),
            ("model.norm.weight", "output_norm.weight"),
            ("lm_head.weight", "output.weight"),
        ];
        if let Some((_, g)) = map.iter().find(|(h, _)| *h == hf) {
            return g.to_string();
        }
        let rest = hf.trim_start_matches("model.layers.");
        let (layer, part) = rest.split_once('.').unwrap();
        let part = match part {
            "input_layernorm.weight" => "attn_norm.weight",
            "post_attention_layernorm.weight" => "ffn_norm.weight",
            "self_attn.q_proj.weight" => "attn_q.weight",
            "self_attn.k_proj.weight" => "attn_k.weight",
            "self_attn.v_proj.weight" => "attn_v.weight",
            "self_attn.o_proj.weight" => "attn_output.weight",
            "mlp.gate_proj.weight" => "ffn_gate.weight",
            "mlp.up_proj.weight" => "ffn_up.weight",
            "mlp.down_proj.weight" => "ffn_down.weight",
            other => panic!("{other}"),
        };
        format!("blk.{layer}.{part}")
    };
    let mut qtensors = Vec::new();
    let mut names: Vec<&String> = weights.keys().collect();
    names.sort();
    for name in names {
        let mut t = weights[name].clone();
        if name.ends_with("q_proj.weight") {
            t = permute_rows(&t, cfg.num_attention_heads)?;
        } else if name.ends_with("k_proj.weight") {
            t = permute_rows(&t, cfg.num_key_value_heads)?;
        }
        let q = if t.rank() == 1 {
            QTensor::quantize(&t, GgmlDType::F32)?
        } else {
            QTensor::quantize(&t, dtype)?
        };
        qtensors.push((gguf_name(name), q));
    }
    let meta_refs: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = qtensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut file = std::fs::File::create(path)?;
    gguf_file::write(&mut file, &meta_refs, &tensor_refs)?;
    Ok(())
}

#[test]
fn gguf_import_undoes_the_permutation_and_rebuilds_the_tokenizer() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ckpt = tiny_checkpoint(dir.path())?;
    let reference_causal = batch_logits(&ckpt, AttentionMode::Causal)?;
    let reference_bi = batch_logits(&ckpt, AttentionMode::Bidirectional)?;

    let f32_file = dir.path().join("tiny-f32.gguf");
    write_gguf(&ckpt, &f32_file, GgmlDType::F32, "llama")?;
    let imported = dir.path().join("imported");
    let report = import_model(&f32_file, &imported, &ImportOptions::default())?;
    assert_eq!(report.format, "gguf");
    assert!(report.tokenizer.contains("rebuilt"), "{}", report.tokenizer);
    // f32 storage: the same model (the permutation undone exactly), in both attention modes
    assert!(max_abs_diff(&batch_logits(&imported, AttentionMode::Causal)?, &reference_causal)? < 1e-5);
    assert!(max_abs_diff(&batch_logits(&imported, AttentionMode::Bidirectional)?, &reference_bi)? < 1e-5);
    // the rebuilt tokenizer encodes and decodes as the original
    let (a, b) = (
        TextTokenizer::load(&ckpt.join("tokenizer.json"))?,
        TextTokenizer::load(&imported.join("tokenizer.json"))?,
    );
    for text in [
        "The jury said the election was conducted fairly.",
        "Café owners in Zürich reported 12% growth — a record.",
        "  odd   spacing\tand <|end_of_text|> tokens",
    ] {
        assert_eq!(a.encode(text)?, b.encode(text)?, "{text}");
        assert_eq!(b.decode(&b.encode(text)?)?, text);
    }
    assert_eq!(a.special(), b.special());

    // Q8_0 storage: dequantized on load, close to the original
    let q8_file = dir.path().join("tiny-q8.gguf");
    write_gguf(&ckpt, &q8_file, GgmlDType::Q8_0, "llama")?;
    let q8 = dir.path().join("q8");
    let report = import_model(&q8_file, &q8, &ImportOptions::default())?;
    assert!(report.source_dtypes.contains_key("Q8_0"), "{report:?}");
    let d = max_abs_diff(&batch_logits(&q8, AttentionMode::Causal)?, &reference_causal)?;
    assert!(d > 0.0 && d < 0.05, "Q8_0 rounding moves the logits a little: {d}");
    Ok(())
}

#[test]
fn gguf_errors_name_the_architecture_and_the_quantization() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ckpt = tiny_checkpoint(dir.path())?;
    let other = dir.path().join("other.gguf");
    write_gguf(&ckpt, &other, GgmlDType::F32, "qwen2")?;
    let e = import_model(&other, &dir.path().join("a"), &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("general.architecture") && e.contains("qwen2"), "{e}");

    // a tensor stored as IQ4_NL (ggml type 20), which candle does not decode: patch the type
    // field of one tensor's header entry
    let good = dir.path().join("good.gguf");
    write_gguf(&ckpt, &good, GgmlDType::F32, "llama")?;
    let mut bytes = std::fs::read(&good)?;
    let name = b"blk.0.ffn_up.weight";
    let at = bytes.windows(name.len()).position(|w| w == name).expect("tensor entry");
    let dims_at = at + name.len();
    let n_dims = u32::from_le_bytes(bytes[dims_at..dims_at + 4].try_into()?) as usize;
    let type_at = dims_at + 4 + 8 * n_dims;
    bytes[type_at..type_at + 4].copy_from_slice(&20u32.to_le_bytes());
    let bad = dir.path().join("iq4.gguf");
    std::fs::write(&bad, bytes)?;
    let e = import_model(&bad, &dir.path().join("b"), &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("ggml type 20 (IQ4_NL)") && e.contains("re-quantize"), "{e}");
    assert!(!dir.path().join("b").exists());
    // not a model at all
    let text = write(dir.path(), "notes.txt", "hello");
    let e = import_model(&text, &dir.path().join("c"), &ImportOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("neither a Hugging Face model folder nor a .gguf file"),
        "{e}"
    );
    Ok(())
}

#[test]
fn a_mask_token_is_added_and_mlm_continues_from_the_import() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ckpt = tiny_checkpoint(dir.path())?;
    // a causal LM's tokenizer without a mask token: rename ours to a name no one reads as one
    let hf = dir.path().join("hf");
    export_hf(&ckpt, &hf, &ExportOptions::default())?;
    let tok_path = hf.join("tokenizer.json");
    let text = std::fs::read_to_string(&tok_path)?.replace("<|mask|>", "<|reserved_0|>");
    std::fs::write(&tok_path, text)?;
    let before = ModelConfig::from_hf_json(&hf.join("config.json"))?;
    let out = dir.path().join("with_mask");
    let report = import_model(
        &hf,
        &out,
        &ImportOptions {
            add_mask_token: true,
            ..ImportOptions::default()
        },
    )?;
    // the id after the last one, a new row
    let tok = TextTokenizer::load(&out.join("tokenizer.json"))?;
    let id = report.added_mask_token.expect("a mask token was added");
    assert_eq!(tok.special().mask, Some(id));
    assert_eq!(id as usize, before.vocab_size);
    let after = ModelConfig::from_hf_json(&out.join("config.json"))?;
    assert_eq!(after.vocab_size, before.vocab_size + 1);
    let w = tensors(&out.join("model.safetensors"))?;
    let emb = &w["model.embed_tokens.weight"];
    let mean = emb.narrow(0, 0, before.vocab_size)?.mean_keepdim(0)?;
    assert!(max_abs_diff(&emb.narrow(0, before.vocab_size, 1)?, &mean)? < 1e-6);
    assert_eq!(w["lm_head.weight"].dims(), &[before.vocab_size + 1, before.hidden_size]);
    // and the old rows are untouched
    let old = tensors(&hf.join("model.safetensors"))?;
    assert_eq!(
        max_abs_diff(&emb.narrow(0, 0, before.vocab_size)?, &old["model.embed_tokens.weight"])?,
        0.0
    );

    // continued pretraining with MLM from it: no [model] preset, the architecture comes from
    // the import; the pack is made with the import's tokenizer
    let corpus = encoderlab::data::corpus::Corpus::open(&[common::sample_corpus(dir.path(), 120)], "text")?;
    let pack = dir.path().join("pack_masked");
    common::pack32(&corpus, &tok, &pack)?;
    let text = format!(
        r#"
name = "cpt"
[data]
pack = "{}"
batch_size = 4
eval_blocks = 2
[train]
phases = [{{ objective = "mlm", ratio = 0.4, steps = 2 }}]
eval_every_steps = 2
checkpoint_every_steps = 2
out_dir = "{}"
init_from = "{}"
[lr]
peak = 1e-3
warmup_steps = 1
schedule = {{ kind = "constant" }}
"#,
        pack.display(),
        dir.path().join("runs").display(),
        out.display()
    );
    let cfg = encoderlab::train::PretrainConfig::load(write(dir.path(), "cpt.toml", &text), &[])?;
    let summary = encoderlab::train::pretrain(&cfg, &encoderlab::train::RunOptions::default())?;
    assert_eq!(summary.status, "completed");
    let cpt = ModelConfig::from_hf_json(&dir.path().join("runs/cpt/checkpoints/step-0000002/config.json"))?;
    assert_eq!(cpt.vocab_size, after.vocab_size);
    assert_eq!(cpt.attention, AttentionMode::Bidirectional);

    // without the mask token, MLM says how to get one
    let plain = dir.path().join("plain");
    import_model(&hf, &plain, &ImportOptions::default())?;
    assert!(TextTokenizer::load(&plain.join("tokenizer.json"))?
        .special()
        .mask
        .is_none());
    Ok(())
}

#[test]
fn perplexity_of_a_uniform_model_is_the_vocabulary_size() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ckpt = tiny_checkpoint(dir.path())?;
    // zero the LM head: every logit 0, every token has probability 1/V, perplexity exactly V
    let uniform = dir.path().join("uniform");
    std::fs::create_dir_all(&uniform)?;
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(ckpt.join(f), uniform.join(f))?;
    }
    let mut w = tensors(&ckpt.join("model.safetensors"))?;
    let head = w["lm_head.weight"].zeros_like()?;
    w.insert("lm_head.weight".into(), head);
    candle_core::safetensors::save(&w, uniform.join("model.safetensors"))?;
    let data = PackedDataset::open(&dir.path().join("pack"))?;
    encoderlab::interop::lm::check_pack_tokenizer(&uniform, &data)?;
    let model = load_language_model(&uniform, &Device::Cpu)?;
    let p = perplexity(&model, &data, Split::Validation, 4, 3, false)?;
    let v = ModelConfig::from_hf_json(&uniform.join("config.json"))?.vocab_size as f64;
    assert!((p.perplexity - v).abs() < 1e-3 * v, "{} vs {v}", p.perplexity);
    assert_eq!(p.tokens, p.blocks * (data.seq_len() - 1));
    // the trained checkpoint predicts better than uniform
    let trained = perplexity(
        &load_language_model(&ckpt, &Device::Cpu)?,
        &data,
        Split::Validation,
        4,
        3,
        false,
    )?;
    assert!(trained.perplexity < v, "{}", trained.perplexity);
    Ok(())
}
