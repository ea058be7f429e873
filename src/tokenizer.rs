//! Tokenizers: train a byte-level BPE (Hugging Face `tokenizers`) with the special tokens an
//! encoder study needs, or load any existing `tokenizer.json`. Files are written in the
//! Hugging Face format, so Python's `tokenizers.Tokenizer.from_file` and transformers'
//! `PreTrainedTokenizerFast` load them unchanged.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::json;
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

use crate::data::corpus::Corpus;
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{sha256_bytes, write_atomic};

/// Begin-of-text token (Llama-3 name); documents are packed without it, as in the paper.
pub const BOS: &str = "<|begin_of_text|>";
/// End-of-text token, appended to every document.
pub const EOS: &str = "<|end_of_text|>";
/// Padding token.
pub const PAD: &str = "<|pad|>";
/// Mask token for MLM.
pub const MASK: &str = "<|mask|>";
/// The special tokens of a trained tokenizer, in id order (ids 0..4).
pub const SPECIAL_TOKENS: [&str; 4] = [BOS, EOS, PAD, MASK];

const BOS_NAMES: [&str; 5] = [BOS, "<s>", "<bos>", "<|startoftext|>", "[CLS]"];
const EOS_NAMES: [&str; 5] = [EOS, "</s>", "<eos>", "<|endoftext|>", "[SEP]"];
const PAD_NAMES: [&str; 4] = [PAD, "<pad>", "[PAD]", "<|finetune_right_pad_id|>"];
const MASK_NAMES: [&str; 3] = [MASK, "<mask>", "[MASK]"];

/// Ids of the special tokens that a tokenizer has (found by their usual names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SpecialIds {
    /// Begin of text.
    pub bos: Option<u32>,
    /// End of text (document separator when packing).
    pub eos: Option<u32>,
    /// Padding.
    pub pad: Option<u32>,
    /// Mask.
    pub mask: Option<u32>,
}

/// Token ids and each token's byte range in the encoded text.
pub type IdsWithOffsets = (Vec<u32>, Vec<(usize, usize)>);

/// A loaded tokenizer with its file's hash and special-token ids.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    path: PathBuf,
    sha256: String,
    special: SpecialIds,
    memo: Option<Arc<Mutex<Memo>>>,
}

/// Encodings already computed, by text ([`TextTokenizer::remembering`]).
#[derive(Default)]
struct Memo {
    ids: HashMap<String, Vec<u32>>,
    offsets: HashMap<String, IdsWithOffsets>,
}

/// Texts a memo keeps before it starts over (a bound on its memory).
const MEMO_TEXTS: usize = 500_000;

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("path", &self.path)
            .field("vocab_size", &self.vocab_size())
            .field("special", &self.special)
            .finish()
    }
}

fn tok_err(path: &Path) -> impl Fn(tokenizers::Error) -> Error + '_ {
    move |e| Error::Tokenizer {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

fn find(tok: &Tokenizer, names: &[&str]) -> Option<u32> {
    names.iter().find_map(|n| tok.token_to_id(n))
}

/// Trains a byte-level BPE of `vocab_size` ids (special tokens included) on every document of
/// `corpus`. Pairs seen fewer than `min_frequency` times are not merged.
pub fn train_bpe(corpus: &Corpus, vocab_size: usize, min_frequency: u64) -> Result<Tokenizer> {
    let alphabet = ByteLevel::alphabet();
    let minimum = alphabet.len() + SPECIAL_TOKENS.len();
    if vocab_size < minimum {
        return Err(Error::config(
            "vocab_size",
            format!(
                "{vocab_size} is too small: a byte-level BPE needs {} byte symbols + {} special tokens = {minimum} ids at least",
                alphabet.len(),
                SPECIAL_TOKENS.len()
            ),
        ));
    }
    if vocab_size > u32::MAX as usize {
        return Err(Error::config("vocab_size", "must fit in 32 bits"));
    }
    let texts: Vec<String> = corpus.documents().map(|d| d.map(|d| d.text)).collect::<Result<_>>()?;
    if texts.is_empty() {
        return Err(Error::data(
            &corpus.files()[0],
            0,
            "empty corpus: no non-empty document",
        ));
    }
    let trainer = BpeTrainerBuilder::new()
        .show_progress(false)
        .vocab_size(vocab_size)
        .min_frequency(min_frequency)
        .special_tokens(SPECIAL_TOKENS.iter().map(|t| AddedToken::from(*t, true)).collect())
        .initial_alphabet(alphabet.into_iter().collect())
        .build();
    let byte_level = ByteLevel::new(false, true, true);
    let mut tokenizer = Tokenizer::new(BPE::default());
    tokenizer
        .with_pre_tokenizer(Some(byte_level))
        .with_decoder(Some(byte_level))
        .with_post_processor(Some(byte_level));
    let training = Path::new("<training>");
    tokenizer
        .train(&mut TrainerWrapper::from(trainer), texts.iter())
        .map_err(tok_err(training))?;
    Ok(tokenizer)
}

/// Writes `tokenizer` to `path` (a Hugging Face `tokenizer.json`) and, beside it, a
/// `tokenizer_config.json` naming the special tokens for transformers' `AutoTokenizer`.
pub fn save_tokenizer(tokenizer: &Tokenizer, path: &Path) -> Result<()> {
    save_tokenizer_with(tokenizer, path, serde_json::Map::new())
}

/// [`save_tokenizer`], with `extra` keys set in `tokenizer_config.json` (a fine-tuned model's
/// export: its padding and separator tokens, its input length).
pub fn save_tokenizer_with(
    tokenizer: &Tokenizer,
    path: &Path,
    extra: serde_json::Map<String, serde_json::Value>,
) -> Result<()> {
    let text = tokenizer.to_string(true).map_err(tok_err(path))?;
    write_atomic(path, text.as_bytes())?;
    let name = |ids: &[&str]| find(tokenizer, ids).and_then(|id| tokenizer.id_to_token(id));
    let mut config = json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": name(&BOS_NAMES),
        "eos_token": name(&EOS_NAMES),
        "pad_token": name(&PAD_NAMES),
        "mask_token": name(&MASK_NAMES),
        "model_max_length": 1_000_000_000_000_000_000u64,
        "clean_up_tokenization_spaces": false,
    });
    if let Some(obj) = config.as_object_mut() {
        obj.extend(extra);
    }
    let config_path = path.with_file_name("tokenizer_config.json");
    let mut text = serde_json::to_string_pretty(&config).map_err(|e| Error::data(&config_path, 0, e.to_string()))?;
    text.push('\n');
    write_atomic(&config_path, text.as_bytes())
}

impl TextTokenizer {
    /// Loads any Hugging Face `tokenizer.json`.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).at(path)?;
        let mut inner = Tokenizer::from_bytes(&bytes).map_err(tok_err(path))?;
        // Documents are packed whole: a file's own padding or truncation (many BERT
        // tokenizer.json files pad or cut to 128 or 512) must not apply.
        inner.with_padding(None);
        inner.with_truncation(None).map_err(tok_err(path))?;
        let special = SpecialIds {
            bos: find(&inner, &BOS_NAMES),
            eos: find(&inner, &EOS_NAMES),
            pad: find(&inner, &PAD_NAMES),
            mask: find(&inner, &MASK_NAMES),
        };
        Ok(Self {
            inner,
            path: path.to_path_buf(),
            sha256: sha256_bytes(&bytes),
            special,
            memo: None,
        })
    }

    /// Remembers every text it encodes, so that encoding it again is a lookup: for a process
    /// that encodes the same dataset again and again (a sweep worker). The ids are the same.
    pub fn remembering(mut self) -> Self {
        self.memo = Some(Arc::default());
        self
    }

    /// `compute(text)`, or what an earlier call remembered (`pick` chooses the map).
    fn memoised<T: Clone>(
        &self,
        text: &str,
        pick: fn(&mut Memo) -> &mut HashMap<String, T>,
        compute: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let Some(memo) = &self.memo else { return compute() };
        // the memo only holds finished encodings: a lock poisoned by a panic elsewhere still
        // holds valid ones
        let lock = || memo.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(v) = pick(&mut lock()).get(text) {
            return Ok(v.clone());
        }
        let v = compute()?;
        let mut m = lock();
        if m.ids.len() + m.offsets.len() >= MEMO_TEXTS {
            *m = Memo::default();
        }
        pick(&mut m).insert(text.to_string(), v.clone());
        Ok(v)
    }

    /// Uses `token` as end of text instead of the usual names.
    pub fn with_eos_token(mut self, token: &str) -> Result<Self> {
        let id = self.inner.token_to_id(token).ok_or_else(|| Error::Tokenizer {
            path: self.path.clone(),
            reason: format!("has no token {token:?}"),
        })?;
        self.special.eos = Some(id);
        Ok(self)
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// SHA-256 of the file's bytes.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Ids of the special tokens found.
    pub fn special(&self) -> SpecialIds {
        self.special
    }

    /// The end-of-text id, or an error saying how to name it.
    pub fn eos_id(&self) -> Result<u32> {
        self.special.eos.ok_or_else(|| Error::Tokenizer {
            path: self.path.clone(),
            reason: format!(
                "has no end-of-text token (looked for {}): name one with --eos-token",
                EOS_NAMES.join(", ")
            ),
        })
    }

    /// Number of ids, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Token ids of `text`, without any special token (no BOS, no EOS).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.memoised(
            text,
            |m| &mut m.ids,
            || {
                let enc = self.inner.encode_fast(text, false).map_err(tok_err(&self.path))?;
                Ok(enc.get_ids().to_vec())
            },
        )
    }

    /// Token ids of `text` with each token's byte range in it (no special token).
    pub fn encode_with_offsets(&self, text: &str) -> Result<IdsWithOffsets> {
        self.memoised(
            text,
            |m| &mut m.offsets,
            || {
                let enc = self.inner.encode(text, false).map_err(tok_err(&self.path))?;
                Ok((enc.get_ids().to_vec(), enc.get_offsets().to_vec()))
            },
        )
    }

    /// Text of `ids` (special tokens kept).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, false).map_err(tok_err(&self.path))
    }

    /// The id of `token`, if the vocabulary has it.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The underlying Hugging Face tokenizer.
    pub fn inner(&self) -> &Tokenizer {
        &self.inner
    }
}
