//! Masked language modelling: each non-special token is selected with probability `ratio`; a
//! selected token is replaced by the mask token, a random token or kept as it is (fractions
//! `mask`, `random`, `keep`; the paper's code: 100 % mask); the loss covers the selected
//! positions only, predicting the original token at the same position with the LM head.
//! Attention is bidirectional. Evaluation masks come from a fixed seed per block, so every
//! evaluation of every run and phase scores the same masked positions.

use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::TrainBatch;
use crate::error::{Error, Result};
use crate::model::AttentionMode;
use crate::rng::{below, seeded, unit, Rng};

/// How tokens are masked.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MaskingConfig {
    /// Share of the selected tokens replaced by the mask token.
    #[serde(default = "one")]
    pub mask: f64,
    /// Share replaced by a uniformly drawn non-special token.
    #[serde(default)]
    pub random: f64,
    /// Share left unchanged (still predicted).
    #[serde(default)]
    pub keep: f64,
    /// Masking ratio of the MLM evaluation loss, the same for every phase and run so that
    /// evaluations are comparable (default 0.15; the paper's runs train at 0.2–0.5).
    #[serde(default = "default_eval_ratio")]
    pub eval_ratio: f64,
    /// Seed of the evaluation masks.
    #[serde(default)]
    pub eval_seed: u64,
}

fn one() -> f64 {
    1.0
}

fn default_eval_ratio() -> f64 {
    0.15
}

impl Default for MaskingConfig {
    /// The paper's code: every selected token becomes the mask token; evaluation at 15 %.
    fn default() -> Self {
        Self {
            mask: 1.0,
            random: 0.0,
            keep: 0.0,
            eval_ratio: default_eval_ratio(),
            eval_seed: 0,
        }
    }
}

impl MaskingConfig {
    /// Checks the fractions (each in [0, 1], summing to 1) and the evaluation ratio.
    pub fn validate(&self) -> Result<()> {
        for (field, v) in [("mask", self.mask), ("random", self.random), ("keep", self.keep)] {
            if !(0.0..=1.0).contains(&v) {
                return Err(Error::config(
                    format!("masking.{field}"),
                    format!("{v} is not in [0, 1]"),
                ));
            }
        }
        let sum = self.mask + self.random + self.keep;
        if (sum - 1.0).abs() > 1e-6 {
            return Err(Error::config(
                "masking",
                format!("mask + random + keep = {sum}, must be 1"),
            ));
        }
        check_ratio("masking.eval_ratio", self.eval_ratio)
    }
}

/// A masking ratio must be in (0, 1).
pub(crate) fn check_ratio(field: &str, ratio: f64) -> Result<()> {
    if ratio > 0.0 && ratio < 1.0 {
        Ok(())
    } else {
        Err(Error::config(field, format!("masking ratio {ratio} must be in (0, 1)")))
    }
}

/// What the masking needs to know of the tokenizer.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskTokens {
    /// The mask token's id.
    pub mask_id: u32,
    /// Ids never selected nor drawn as random replacements (BOS, EOS, padding, mask…).
    pub special: Vec<u32>,
    /// Vocabulary size (random replacements are drawn below it).
    pub vocab_size: u32,
}

/// The MLM batch of `blocks`: tokens selected with probability `ratio`, replaced per `cfg`.
pub fn mlm_batch(
    blocks: &[Vec<u32>],
    ratio: f64,
    cfg: &MaskingConfig,
    tokens: &MaskTokens,
    rng: &mut impl RngCore,
) -> TrainBatch {
    let mut batch = TrainBatch::empty(AttentionMode::Bidirectional);
    for block in blocks {
        mask_block(block, ratio, cfg, tokens, rng, &mut batch);
    }
    batch.shape = (blocks.len(), blocks.first().map_or(0, Vec::len));
    batch
}

/// The evaluation batch of `blocks` (their indices in the held-out split are `indices`): each
/// block masked at `cfg.eval_ratio` with a generator seeded by (eval seed, block index).
pub fn mlm_eval_batch(blocks: &[Vec<u32>], indices: &[u64], cfg: &MaskingConfig, tokens: &MaskTokens) -> TrainBatch {
    let mut batch = TrainBatch::empty(AttentionMode::Bidirectional);
    for (block, &index) in blocks.iter().zip(indices) {
        let mut rng: Rng = seeded(cfg.eval_seed, index);
        mask_block(block, cfg.eval_ratio, cfg, tokens, &mut rng, &mut batch);
    }
    batch.shape = (blocks.len(), blocks.first().map_or(0, Vec::len));
    batch
}

fn mask_block(
    block: &[u32],
    ratio: f64,
    cfg: &MaskingConfig,
    tokens: &MaskTokens,
    rng: &mut impl RngCore,
    batch: &mut TrainBatch,
) {
    for &token in block {
        let special = tokens.special.contains(&token);
        // one draw per token whatever happens, so positions stay aligned in the stream
        let selected = unit(rng) < ratio && !special;
        let how = unit(rng);
        let input = if !selected {
            token
        } else if how < cfg.mask {
            tokens.mask_id
        } else if how < cfg.mask + cfg.random {
            random_token(tokens, rng)
        } else {
            token
        };
        batch.inputs.push(input);
        batch.targets.push(token);
        batch.weights.push(if selected { 1.0 } else { 0.0 });
    }
}

/// A uniformly drawn non-special id below the vocabulary size.
fn random_token(tokens: &MaskTokens, rng: &mut impl RngCore) -> u32 {
    loop {
        let id = below(rng, u64::from(tokens.vocab_size)) as u32;
        if !tokens.special.contains(&id) {
            return id;
        }
    }
}
