//! The tokenizer of a GGUF file, rebuilt from its `tokenizer.ggml.*` metadata as a Hugging
//! Face `tokenizer.json`: a byte-level BPE (`tokenizer.ggml.model = gpt2`) with the file's
//! vocabulary and merges, control tokens (type 3) as special added tokens and user-defined ones
//! (type 4) as plain added tokens, and the pre-tokenizer that llama.cpp uses for the file's
//! `tokenizer.ggml.pre` (llama-vocab.cpp): e.g. `smollm` splits every digit, then applies the
//! GPT-2 pattern.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use candle_core::quantized::gguf_file::Value;
use serde_json::{json, Map};
use tokenizers::Tokenizer;

use crate::error::{Error, Result};

/// llama.cpp's `LLAMA3` pre-tokenizer pattern (also transformers' for these files).
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The pre-tokenizer (HF JSON) of a byte-level vocabulary with llama.cpp pre type `pre`.
fn pre_tokenizer(pre: &str, path: &Path) -> Result<serde_json::Value> {
    let byte_level = |use_regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": use_regex});
    Ok(match pre {
        // the GPT-2 pattern alone
        "default" | "gpt2" | "gpt-2" | "olmo" | "jais" | "poro-chat" | "viking" => byte_level(true),
        // every digit alone, then the GPT-2 pattern
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva-7b" => json!({
            "type": "Sequence",
            "pretokenizers": [{"type": "Digits", "individual_digits": true}, byte_level(true)]
        }),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "smaug-bpe" | "dbrx" | "pixtral" => json!({
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": LLAMA3_SPLIT}, "behavior": "Isolated", "invert": false},
                byte_level(false)
            ]
        }),
        other => {
            return Err(Error::data(
                path,
                0,
                format!(
                    "metadata `tokenizer.ggml.pre` is `{other}`, a pre-tokenizer encoderlab does not rebuild: give the model's tokenizer.json with --tokenizer"
                ),
            ))
        }
    })
}

fn string_array<'a>(meta: &'a HashMap<String, Value>, key: &str, path: &Path) -> Result<Vec<&'a str>> {
    let values = meta
        .get(key)
        .ok_or_else(|| {
            Error::data(
                path,
                0,
                format!("metadata `{key}` is missing: no tokenizer to rebuild; give one with --tokenizer"),
            )
        })?
        .to_vec()
        .map_err(|_| Error::data(path, 0, format!("metadata `{key}` is not an array")))?;
    values
        .iter()
        .map(|v| {
            v.to_string()
                .map(String::as_str)
                .map_err(|_| Error::data(path, 0, format!("metadata `{key}` holds a non-string")))
        })
        .collect()
}

/// The tokenizer described by the GGUF metadata `meta` of the file `path`.
pub(crate) fn tokenizer_from_gguf(meta: &HashMap<String, Value>, path: &Path) -> Result<Tokenizer> {
    let model = meta
        .get("tokenizer.ggml.model")
        .and_then(|v| v.to_string().ok())
        .map(String::as_str)
        .unwrap_or("?");
    if model != "gpt2" {
        return Err(Error::data(
            path,
            0,
            format!(
                "metadata `tokenizer.ggml.model` is `{model}`: encoderlab rebuilds byte-level BPE (gpt2) tokenizers only; give the model's tokenizer.json with --tokenizer"
            ),
        ));
    }
    let pre = meta
        .get("tokenizer.ggml.pre")
        .and_then(|v| v.to_string().ok())
        .map(String::as_str)
        .unwrap_or("default");
    let tokens = string_array(meta, "tokenizer.ggml.tokens", path)?;
    let merges = string_array(meta, "tokenizer.ggml.merges", path)?;
    let types: Vec<i64> = match meta.get("tokenizer.ggml.token_type").map(|v| v.to_vec()) {
        Some(Ok(values)) => values
            .iter()
            .map(|v| {
                v.to_i32()
                    .map(i64::from)
                    .or_else(|_| v.to_u32().map(i64::from))
                    .unwrap_or(1)
            })
            .collect(),
        _ => vec![1; tokens.len()],
    };
    let mut vocab = Map::new();
    let mut added = Vec::new();
    for (id, token) in tokens.iter().enumerate() {
        vocab.insert((*token).to_string(), json!(id));
        let kind = types.get(id).copied().unwrap_or(1);
        if kind == 3 || kind == 4 {
            added.push(json!({
                "id": id, "content": token, "single_word": false, "lstrip": false, "rstrip": false,
                "normalized": kind == 4, "special": kind == 3
            }));
        }
    }
    let spec = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer(pre, path)?,
        "post_processor": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
            "vocab": vocab, "merges": merges
        }
    });
    Tokenizer::from_str(&spec.to_string()).map_err(|e| Error::Tokenizer {
        path: path.to_path_buf(),
        reason: format!("rebuilding from GGUF metadata: {e}"),
    })
}
