//! Packing a corpus for pretraining, as the paper does: each document is tokenized without BOS
//! and ends with EOS; documents are concatenated and the stream is cut into blocks of
//! `seq_len` tokens (attention may cross document boundaries). A seeded set of whole documents
//! is held out for validation. Output, in one folder that appears only when complete:
//! `train.bin`, `validation.bin` (little-endian u16 when the vocabulary fits, else u32) and
//! `meta.json`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::save_json;
use crate::data::corpus::{Corpus, Document};
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{sha256_file, write_atomic, OwnedDir};
use crate::rng::{choose_indices, seeded};
use crate::tokenizer::TextTokenizer;

/// How to pack.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PackConfig {
    /// Tokens per block.
    pub seq_len: usize,
    /// Share of documents held out for validation (0 ≤ f < 1).
    pub validation_fraction: f64,
    /// Seed of the held-out choice.
    pub seed: u64,
    /// Documents tokenized together in parallel.
    pub chunk_documents: usize,
}

impl Default for PackConfig {
    /// 512-token blocks, 1% validation documents, seed 0.
    fn default() -> Self {
        Self {
            seq_len: 512,
            validation_fraction: 0.01,
            seed: 0,
            chunk_documents: 2048,
        }
    }
}

impl PackConfig {
    /// Checks every field once.
    pub fn validate(&self) -> Result<()> {
        if self.seq_len < 2 {
            return Err(Error::config(
                "seq_len",
                format!("{} is too short: use at least 2 tokens", self.seq_len),
            ));
        }
        if !(0.0..1.0).contains(&self.validation_fraction) {
            return Err(Error::config(
                "validation_fraction",
                format!("{} must be in [0, 1)", self.validation_fraction),
            ));
        }
        if self.chunk_documents == 0 {
            return Err(Error::config("chunk_documents", "must be at least 1"));
        }
        Ok(())
    }
}

/// Width of the stored token ids.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TokenDtype {
    /// 2 bytes per token (vocabularies up to 65,536 ids).
    U16,
    /// 4 bytes per token.
    U32,
}

impl TokenDtype {
    /// The narrowest width that holds ids `0..vocab_size`.
    pub fn for_vocab(vocab_size: usize) -> Self {
        if vocab_size <= 1 << 16 {
            TokenDtype::U16
        } else {
            TokenDtype::U32
        }
    }

    /// Bytes per token.
    pub fn bytes(self) -> usize {
        match self {
            TokenDtype::U16 => 2,
            TokenDtype::U32 => 4,
        }
    }
}

/// Counts of one split.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Default)]
pub struct SplitMeta {
    /// The token file, relative to the pack folder.
    pub file: String,
    /// Documents in the split.
    pub documents: u64,
    /// Tokens in the file (EOS included).
    pub tokens: u64,
    /// Full blocks of `seq_len` tokens.
    pub blocks: u64,
    /// Tokens after the last full block (in the file, in no block).
    pub tail_tokens: u64,
}

/// One source file of the corpus.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct SourceMeta {
    /// Path as given.
    pub path: PathBuf,
    /// SHA-256 of its bytes.
    pub sha256: String,
    /// Non-empty documents read from it.
    pub documents: u64,
}

/// The tokenizer a pack was made with.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct TokenizerMeta {
    /// Path as given.
    pub path: PathBuf,
    /// SHA-256 of the `tokenizer.json` bytes.
    pub sha256: String,
    /// Number of ids.
    pub vocab_size: usize,
    /// The id appended to every document.
    pub eos_id: u32,
}

/// `meta.json` of a pack folder.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct PackMeta {
    /// Layout version of the folder.
    pub format_version: u32,
    /// The tokenizer.
    pub tokenizer: TokenizerMeta,
    /// Width of stored ids.
    pub dtype: TokenDtype,
    /// How it was packed.
    pub config: PackConfig,
    /// Text column of table files.
    pub text_field: String,
    /// The training split.
    pub train: SplitMeta,
    /// The held-out split.
    pub validation: SplitMeta,
    /// Global indices (in corpus order) of the held-out documents.
    pub validation_documents: Vec<u64>,
    /// The corpus files, in reading order.
    pub sources: Vec<SourceMeta>,
}

/// The current layout version.
pub const PACK_FORMAT_VERSION: u32 = 1;

struct SplitWriter {
    out: BufWriter<File>,
    path: PathBuf,
    meta: SplitMeta,
    dtype: TokenDtype,
}

impl SplitWriter {
    fn create(dir: &Path, file: &str, dtype: TokenDtype) -> Result<Self> {
        let path = dir.join(file);
        let out = BufWriter::with_capacity(1 << 20, File::create(&path).at(&path)?);
        let meta = SplitMeta {
            file: file.to_string(),
            ..SplitMeta::default()
        };
        Ok(Self { out, path, meta, dtype })
    }

    fn push(&mut self, ids: &[u32]) -> Result<()> {
        let mut buf = Vec::with_capacity(ids.len() * self.dtype.bytes());
        for &id in ids {
            match self.dtype {
                TokenDtype::U16 => buf.extend_from_slice(&(id as u16).to_le_bytes()),
                TokenDtype::U32 => buf.extend_from_slice(&id.to_le_bytes()),
            }
        }
        self.out.write_all(&buf).at(&self.path)?;
        self.meta.documents += 1;
        self.meta.tokens += ids.len() as u64;
        Ok(())
    }

    fn finish(mut self, seq_len: usize) -> Result<SplitMeta> {
        self.out.flush().at(&self.path)?;
        self.out.get_ref().sync_all().at(&self.path)?;
        let l = seq_len as u64;
        self.meta.blocks = self.meta.tokens / l;
        self.meta.tail_tokens = self.meta.tokens % l;
        Ok(self.meta)
    }
}

fn count_documents(corpus: &Corpus) -> Result<(u64, Vec<u64>)> {
    let mut per_file = vec![0u64; corpus.files().len()];
    let mut total = 0;
    for doc in corpus.documents() {
        per_file[doc?.file] += 1;
        total += 1;
    }
    Ok((total, per_file))
}

/// The held-out documents: exactly `round(f·n)` of them (at least one when `f > 0` and there
/// are two documents or more), chosen from the seed alone.
pub fn validation_documents(n_documents: u64, fraction: f64, seed: u64) -> Vec<u64> {
    if fraction <= 0.0 || n_documents < 2 {
        return Vec::new();
    }
    let k = ((fraction * n_documents as f64).round() as u64).clamp(1, n_documents - 1);
    choose_indices(&mut seeded(seed, 0x7061_636b), n_documents as usize, k as usize)
        .into_iter()
        .map(|i| i as u64)
        .collect()
}

fn progress(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    let style = ProgressStyle::with_template("packing {bar:40} {pos}/{len} documents ({per_sec}, eta {eta}) {msg}");
    if let Ok(style) = style {
        bar.set_style(style);
    }
    bar
}

/// Packs `corpus` into `out` (replacing any earlier pack there) and returns its metadata.
pub fn pack_corpus(corpus: &Corpus, tokenizer: &TextTokenizer, cfg: &PackConfig, out: &Path) -> Result<PackMeta> {
    cfg.validate()?;
    let eos = tokenizer.eos_id()?;
    let vocab_size = tokenizer.vocab_size();
    let dtype = TokenDtype::for_vocab(vocab_size);
    let (n_documents, per_file) = count_documents(corpus)?;
    if n_documents == 0 {
        return Err(Error::data(
            &corpus.files()[0],
            0,
            "empty corpus: no non-empty document",
        ));
    }
    let held_out = validation_documents(n_documents, cfg.validation_fraction, cfg.seed);
    let mut is_validation = vec![false; n_documents as usize];
    for &i in &held_out {
        is_validation[i as usize] = true;
    }

    let stage = OwnedDir::create(out, "data pack")?;
    let mut train = SplitWriter::create(stage.path(), "train.bin", dtype)?;
    let mut validation = SplitWriter::create(stage.path(), "validation.bin", dtype)?;
    let bar = progress(n_documents);
    let started = Instant::now();
    let mut next_index = 0u64;
    let mut docs = corpus.documents();
    loop {
        let chunk: Vec<Document> = docs.by_ref().take(cfg.chunk_documents).collect::<Result<_>>()?;
        if chunk.is_empty() {
            break;
        }
        let encoded: Vec<Vec<u32>> = chunk
            .par_iter()
            .map(|d| {
                let mut ids = tokenizer.encode(&d.text)?;
                ids.push(eos);
                Ok(ids)
            })
            .collect::<Result<_>>()?;
        for ids in &encoded {
            if let Some(&bad) = ids.iter().find(|&&id| id as usize >= vocab_size) {
                return Err(Error::Tokenizer {
                    path: tokenizer.path().to_path_buf(),
                    reason: format!("produced id {bad} outside its vocabulary of {vocab_size}"),
                });
            }
            let split = if is_validation[next_index as usize] {
                &mut validation
            } else {
                &mut train
            };
            split.push(ids)?;
            next_index += 1;
        }
        bar.inc(chunk.len() as u64);
        let tokens = train.meta.tokens + validation.meta.tokens;
        bar.set_message(format!(
            "{:.0} tokens/s",
            tokens as f64 / started.elapsed().as_secs_f64().max(1e-9)
        ));
    }
    bar.finish_and_clear();
    let train = train.finish(cfg.seq_len)?;
    let validation = validation.finish(cfg.seq_len)?;
    if train.blocks == 0 {
        return Err(Error::data(
            &corpus.files()[0],
            0,
            format!(
                "corpus too small: {} training tokens do not fill one block of seq_len {}; use a shorter --seq-len or more text",
                train.tokens, cfg.seq_len
            ),
        ));
    }
    let sources = corpus
        .files()
        .iter()
        .zip(&per_file)
        .map(|(path, &documents)| {
            Ok(SourceMeta {
                path: path.clone(),
                sha256: sha256_file(path)?,
                documents,
            })
        })
        .collect::<Result<_>>()?;
    let meta = PackMeta {
        format_version: PACK_FORMAT_VERSION,
        tokenizer: TokenizerMeta {
            path: tokenizer.path().to_path_buf(),
            sha256: tokenizer.sha256().to_string(),
            vocab_size,
            eos_id: eos,
        },
        dtype,
        config: cfg.clone(),
        text_field: corpus.text_field().to_string(),
        train,
        validation,
        validation_documents: held_out,
        sources,
    };
    save_json(&meta, &stage.path().join("meta.json"))?;
    // the pack carries its tokenizer, so training needs nothing else
    let tok = std::fs::read(tokenizer.path()).at(tokenizer.path())?;
    write_atomic(stage.path().join("tokenizer.json"), &tok)?;
    stage.commit()?;
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_out_count_is_exact_and_seeded() {
        let v = validation_documents(1000, 0.05, 3);
        assert_eq!(v.len(), 50);
        assert_eq!(v, validation_documents(1000, 0.05, 3));
        assert_ne!(v, validation_documents(1000, 0.05, 4));
        assert_eq!(validation_documents(10, 0.01, 0).len(), 1);
        assert!(validation_documents(10, 0.0, 0).is_empty());
        assert!(validation_documents(1, 0.5, 0).is_empty());
        assert_eq!(validation_documents(3, 0.99, 0).len(), 2);
    }

    #[test]
    fn config_rules() {
        assert!(PackConfig::default().validate().is_ok());
        let bad = PackConfig {
            seq_len: 1,
            ..PackConfig::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("seq_len"));
        let bad = PackConfig {
            validation_fraction: 1.0,
            ..PackConfig::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("validation_fraction"));
    }

    #[test]
    fn dtype_follows_vocab() {
        assert_eq!(TokenDtype::for_vocab(65_536), TokenDtype::U16);
        assert_eq!(TokenDtype::for_vocab(65_537), TokenDtype::U32);
        assert_eq!(TokenDtype::for_vocab(128_256), TokenDtype::U32);
    }
}
