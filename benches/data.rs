//! Data-pipeline figures on the whole of `../shared/data/pretrain`: byte-level BPE training
//! time and packing throughput (tokens/s). Run with `cargo bench --bench data`; it prints
//! figures and asserts nothing about speed.

use std::path::PathBuf;
use std::time::Instant;

use encoderlab::data::{pack_corpus, Corpus, PackConfig};
use encoderlab::tokenizer::{save_tokenizer, train_bpe, TextTokenizer};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(std::env::var("ENCODERLAB_SHARED_DATA").unwrap_or_else(|_| "../shared/data".into()));
    let pretrain = root.join("pretrain");
    if !pretrain.exists() {
        println!("skipped: {} not found (set ENCODERLAB_SHARED_DATA)", pretrain.display());
        return Ok(());
    }
    let vocab_size: usize = std::env::var("BENCH_VOCAB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32_768);
    let corpus = Corpus::open(std::slice::from_ref(&pretrain), "text")?;
    let bytes: u64 = corpus
        .files()
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum();
    println!(
        "corpus: {} ({} files, {:.1} MB) on {} threads [{}]",
        pretrain.display(),
        corpus.files().len(),
        bytes as f64 / 1e6,
        rayon::current_num_threads(),
        encoderlab::model::kernels::vmath::cpu_summary()
    );

    let dir = tempfile::tempdir()?;
    let tok_path = dir.path().join("tokenizer.json");
    let started = Instant::now();
    let tokenizer = train_bpe(&corpus, vocab_size, 2)?;
    let train_secs = started.elapsed().as_secs_f64();
    save_tokenizer(&tokenizer, &tok_path)?;
    println!("tokenizer train: vocab {vocab_size}, {train_secs:.2} s");

    let tokenizer = TextTokenizer::load(&tok_path)?;
    for seq_len in [128usize, 512] {
        let cfg = PackConfig {
            seq_len,
            ..PackConfig::default()
        };
        let started = Instant::now();
        let meta = pack_corpus(&corpus, &tokenizer, &cfg, &dir.path().join("pack"))?;
        let secs = started.elapsed().as_secs_f64();
        let tokens = meta.train.tokens + meta.validation.tokens;
        println!(
            "pack: seq_len {seq_len}, {} documents, {tokens} tokens in {secs:.2} s = {:.0} tokens/s",
            meta.train.documents + meta.validation.documents,
            tokens as f64 / secs
        );
    }
    Ok(())
}
