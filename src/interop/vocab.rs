//! The tokenizer against the embedding: every id of the tokenizer must have a row, and MLM
//! needs a mask token that a causal LM's tokenizer usually lacks. [`add_mask_token`] adds
//! `<|mask|>` (EuroBERT's name) as a special token and, when its id has no row, grows the
//! embedding (and an untied LM head) by one row set to the mean of the others, as
//! `transformers`' `resize_token_embeddings(mean_resizing=True)` does.

use std::path::Path;

use candle_core::{Tensor, D};
use tokenizers::{AddedToken, Tokenizer};

use super::ModelFiles;
use crate::error::{Error, Result};
use crate::model::ModelConfig;
use crate::tokenizer::MASK;

/// Names under which a tokenizer's mask token is recognised (as [`crate::tokenizer`] does).
const MASK_NAMES: [&str; 3] = [MASK, "<mask>", "[MASK]"];

/// Checks that every id of `tokenizer` has a row in the embedding of `cfg`.
pub(crate) fn check_vocab(cfg: &ModelConfig, tokenizer: &Tokenizer, origin: &Path) -> Result<()> {
    let ids = tokenizer.get_vocab_size(true);
    if ids > cfg.vocab_size {
        return Err(Error::data(
            origin,
            0,
            format!(
                "the tokenizer has {ids} ids but the embedding {} rows (vocab_size): the tokenizer is not this model's",
                cfg.vocab_size
            ),
        ));
    }
    Ok(())
}

/// The mask token's id, if the tokenizer has one.
pub fn mask_id(tokenizer: &Tokenizer) -> Option<u32> {
    MASK_NAMES.iter().find_map(|n| tokenizer.token_to_id(n))
}

/// Adds `<|mask|>` when the tokenizer has no mask token; returns its id, or `None` when one was
/// already there. A new row (mean of the existing rows) is appended to the embedding, and to the
/// LM head when untied, when the new id is beyond the embedding.
pub fn add_mask_token(files: &mut ModelFiles) -> Result<Option<u32>> {
    if mask_id(&files.tokenizer).is_some() {
        return Ok(None);
    }
    let id = files.tokenizer.get_vocab(true).values().max().map_or(0, |m| m + 1);
    files.tokenizer.add_special_tokens(&[AddedToken::from(MASK, true)]);
    let given = files.tokenizer.token_to_id(MASK);
    if given != Some(id) {
        return Err(Error::Tokenizer {
            path: "<import>".into(),
            reason: format!("adding {MASK} gave id {given:?}, expected {id}"),
        });
    }
    if id as usize >= files.config.vocab_size {
        let mut names = vec!["model.embed_tokens.weight"];
        if !files.config.tie_word_embeddings {
            names.push("lm_head.weight");
        }
        for name in names {
            let Some(w) = files.weights.get(name) else {
                return Err(Error::config("weights", format!("`{name}` is missing")));
            };
            let mean = w.mean_keepdim(0)?; // (1, H)
            let grown = Tensor::cat(&[w, &mean], 0)?;
            debug_assert_eq!(grown.dim(D::Minus1)?, files.config.hidden_size);
            files.weights.insert(name.to_string(), grown);
        }
        files.config.vocab_size = id as usize + 1;
    }
    Ok(Some(id))
}
