//! Reading a GGUF file (llama.cpp's format) of a Llama-architecture model: metadata → our
//! configuration, every tensor dequantized to f32 through candle's quantized support and renamed
//! to HF Llama names, and the tokenizer rebuilt from the `tokenizer.ggml.*` metadata.
//!
//! llama.cpp stores q_proj and k_proj with the rows of each head interleaved for its RoPE
//! (`convert_hf_to_gguf.py`'s `permute`); [`unpermute_rows`] undoes it, as transformers'
//! `LlamaTensorProcessor` does, so the half-split RoPE of our model applies unchanged.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{Device, Tensor};

use super::{check_weights, vocab::check_vocab, ImportReport, ModelFiles};
use crate::error::{Error, IoContext, Result};
use crate::model::{AttentionMode, ModelConfig};

mod tokenizer;

pub(crate) use tokenizer::tokenizer_from_gguf;

/// ggml type numbers candle does not decode, by name (ggml.h), for the error message.
fn ggml_type_name(n: u32) -> &'static str {
    match n {
        4 | 5 => "Q4_2/Q4_3 (removed from ggml)",
        16 => "IQ2_XXS",
        17 => "IQ2_XS",
        18 => "IQ3_XXS",
        19 => "IQ1_S",
        20 => "IQ4_NL",
        21 => "IQ3_S",
        22 => "IQ2_S",
        23 => "IQ4_XS",
        24 => "I8",
        25 => "I16",
        26 => "I32",
        27 => "I64",
        28 => "F64",
        29 => "IQ1_M",
        34 => "TQ1_0",
        35 => "TQ2_0",
        _ => "an unknown type",
    }
}

/// Reads the GGUF header, turning candle's message for an undecodable tensor type into one that
/// names the type and the way out.
fn read_content(path: &Path, reader: &mut BufReader<File>) -> Result<Content> {
    Content::read(reader).map_err(|e| {
        let msg = e.to_string();
        let number = msg.split_once("unknown dtype for tensor ").and_then(|(_, rest)| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u32>().ok()
        });
        let reason = match number {
            Some(n) => format!(
                "holds tensors of ggml type {n} ({}), a quantization candle does not decode; candle reads F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1 and Q2_K…Q8_K: re-quantize the model with llama.cpp's llama-quantize (e.g. to Q8_0)",
                ggml_type_name(n)
            ),
            None => format!("not a readable GGUF file: {}", msg.lines().next().unwrap_or_default()),
        };
        Error::data(path, 0, reason)
    })
}

/// Metadata getters that name the missing or mistyped key.
struct Meta<'a> {
    map: &'a HashMap<String, Value>,
    path: &'a Path,
}

impl Meta<'_> {
    fn get(&self, key: &str) -> Result<&Value> {
        self.map
            .get(key)
            .ok_or_else(|| Error::data(self.path, 0, format!("metadata `{key}` is missing")))
    }

    fn usize(&self, key: &str) -> Result<usize> {
        let v = self.get(key)?;
        v.to_u64()
            .or_else(|_| v.to_u32().map(u64::from))
            .or_else(|_| v.to_i32().map(|x| x.max(0) as u64))
            .map(|x| x as usize)
            .map_err(|_| Error::data(self.path, 0, format!("metadata `{key}` is not an integer")))
    }

    fn opt_usize(&self, key: &str) -> Result<Option<usize>> {
        match self.map.get(key) {
            Some(_) => self.usize(key).map(Some),
            None => Ok(None),
        }
    }

    fn opt_f64(&self, key: &str) -> Result<Option<f64>> {
        match self.map.get(key) {
            // an f32 as the decimal it was written from (1e-5, not 9.999999747378752e-6)
            Some(v) => v
                .to_f32()
                .map(|x| x.to_string().parse::<f64>().unwrap_or(f64::from(x)))
                .or_else(|_| v.to_f64())
                .map(Some)
                .map_err(|_| Error::data(self.path, 0, format!("metadata `{key}` is not a number"))),
            None => Ok(None),
        }
    }

    fn opt_str(&self, key: &str) -> Option<&str> {
        self.map.get(key).and_then(|v| v.to_string().ok()).map(String::as_str)
    }
}

/// Our configuration from a GGUF's `llama.*` metadata; `tied` when the file has no
/// `output.weight` (the LM head is the embedding).
fn config_from_meta(meta: &Meta, tied: bool, vocab: usize) -> Result<ModelConfig> {
    let arch = meta.opt_str("general.architecture").unwrap_or("?");
    if arch != "llama" {
        return Err(Error::data(
            meta.path,
            0,
            format!("metadata `general.architecture` is `{arch}`: encoderlab imports the `llama` architecture only"),
        ));
    }
    if let Some(kind) = meta.opt_str("llama.rope.scaling.type") {
        if kind != "none" {
            return Err(Error::data(
                meta.path,
                0,
                format!("metadata `llama.rope.scaling.type` is `{kind}`: RoPE scaling is not implemented"),
            ));
        }
    }
    let heads = meta.usize("llama.attention.head_count")?;
    let hidden = meta.usize("llama.embedding_length")?;
    let cfg = ModelConfig {
        vocab_size: meta.opt_usize("llama.vocab_size")?.unwrap_or(vocab),
        hidden_size: hidden,
        num_hidden_layers: meta.usize("llama.block_count")?,
        num_attention_heads: heads,
        num_key_value_heads: meta.opt_usize("llama.attention.head_count_kv")?.unwrap_or(heads),
        intermediate_size: meta.usize("llama.feed_forward_length")?,
        max_position_embeddings: meta.usize("llama.context_length")?,
        rope_theta: meta.opt_f64("llama.rope.freq_base")?.unwrap_or(10_000.0),
        rms_norm_eps: meta.opt_f64("llama.attention.layer_norm_rms_epsilon")?.unwrap_or(1e-5),
        tie_word_embeddings: tied,
        attention: AttentionMode::Causal,
    };
    cfg.validate().map_err(|e| Error::data(meta.path, 0, e.to_string()))?;
    if let Some(rot) = meta.opt_usize("llama.rope.dimension_count")? {
        if rot != cfg.head_dim() {
            return Err(Error::data(
                meta.path,
                0,
                format!(
                    "metadata `llama.rope.dimension_count` is {rot}: partial RoPE (head size {}) is not implemented",
                    cfg.head_dim()
                ),
            ));
        }
    }
    Ok(cfg)
}

/// The HF name of a GGUF tensor name, or `None` for a name we do not know.
pub(crate) fn hf_name(gguf: &str) -> Option<String> {
    let top = match gguf {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output.weight" => Some("lm_head.weight"),
        _ => None,
    };
    if let Some(t) = top {
        return Some(t.to_string());
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (layer, part) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let part = match part {
        "attn_norm.weight" => "input_layernorm.weight",
        "ffn_norm.weight" => "post_attention_layernorm.weight",
        "attn_q.weight" => "self_attn.q_proj.weight",
        "attn_k.weight" => "self_attn.k_proj.weight",
        "attn_v.weight" => "self_attn.v_proj.weight",
        "attn_output.weight" => "self_attn.o_proj.weight",
        "ffn_gate.weight" => "mlp.gate_proj.weight",
        "ffn_up.weight" => "mlp.up_proj.weight",
        "ffn_down.weight" => "mlp.down_proj.weight",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{part}"))
}

/// Undoes llama.cpp's row permutation of a q or k projection with `heads` heads: within each
/// head, rows stored as (pairs, 2) are put back as (2, pairs).
///
/// # Shapes
/// `w`: (heads·hd, in) → (heads·hd, in).
pub fn unpermute_rows(w: &Tensor, heads: usize) -> Result<Tensor> {
    let (rows, cols) = w.dims2()?;
    let half = rows / heads / 2;
    Ok(w.reshape((heads, half, 2, cols))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((rows, cols))?)
}

/// llama.cpp's permutation (the inverse of [`unpermute_rows`]), for writing GGUF files in tests.
pub fn permute_rows(w: &Tensor, heads: usize) -> Result<Tensor> {
    let (rows, cols) = w.dims2()?;
    let half = rows / heads / 2;
    Ok(w.reshape((heads, 2, half, cols))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((rows, cols))?)
}

/// Reads the GGUF file `path`: architecture, f32 weights (dequantized), tokenizer rebuilt from
/// its metadata.
pub fn read_gguf(path: &Path) -> Result<(ModelFiles, ImportReport)> {
    let file = File::open(path).at(path)?;
    let mut reader = BufReader::new(file);
    let content = read_content(path, &mut reader)?;
    let meta = Meta {
        map: &content.metadata,
        path,
    };
    let tokenizer = tokenizer_from_gguf(&content.metadata, path)?;
    let tied = !content.tensor_infos.contains_key("output.weight");
    let config = config_from_meta(&meta, tied, tokenizer.get_vocab_size(true))?;
    let unknown: Vec<&String> = content.tensor_infos.keys().filter(|n| hf_name(n).is_none()).collect();
    if !unknown.is_empty() {
        let mut shown: Vec<&str> = unknown.iter().map(|s| s.as_str()).collect();
        shown.sort_unstable();
        shown.truncate(6);
        return Err(Error::data(
            path,
            0,
            format!(
                "tensors outside the Llama architecture: {} (not imported)",
                shown.join(", ")
            ),
        ));
    }
    let mut weights = HashMap::new();
    let mut dtypes: BTreeMap<String, usize> = BTreeMap::new();
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    for name in names {
        let q = content
            .tensor(&mut reader, name, &Device::Cpu)
            .map_err(|e| Error::data(path, 0, format!("tensor `{name}`: {e}")))?;
        *dtypes.entry(format!("{:?}", q.dtype())).or_default() += 1;
        let mut t = q.dequantize(&Device::Cpu)?;
        if name.ends_with("attn_q.weight") {
            t = unpermute_rows(&t, config.num_attention_heads)?;
        } else if name.ends_with("attn_k.weight") {
            t = unpermute_rows(&t, config.num_key_value_heads)?;
        }
        if let Some(hf) = hf_name(name) {
            weights.insert(hf, t);
        }
    }
    check_weights(&config, &mut weights, path)?;
    check_vocab(&config, &tokenizer, path)?;
    let source = format!(
        "rebuilt from GGUF metadata (tokenizer.ggml.model {}, pre {})",
        meta.opt_str("tokenizer.ggml.model").unwrap_or("?"),
        meta.opt_str("tokenizer.ggml.pre").unwrap_or("default")
    );
    let files = ModelFiles {
        config,
        weights,
        tokenizer,
    };
    let report = ImportReport::of(&files, (path, "gguf"), path, dtypes, source)?;
    Ok((files, report))
}
