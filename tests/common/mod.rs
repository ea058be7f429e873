//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The shared data bundle (`../shared/data` beside the checkout, or `$ENCODERLAB_SHARED_DATA`),
/// if present. Tests that need it print that they were skipped when it is not.
pub fn shared_data() -> Option<PathBuf> {
    let dir = std::env::var("ENCODERLAB_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    if dir.join("README.md").exists() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: the shared data bundle was not found at {} (set ENCODERLAB_SHARED_DATA)",
            dir.display()
        );
        None
    }
}

/// Writes `text` to `dir/name` (creating folders) and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// A small real-looking corpus: `n` documents of varied English sentences.
pub fn sample_corpus(dir: &Path, n: usize) -> PathBuf {
    let sentences = [
        "The jury said the election was conducted fairly.",
        "Quarterly profits at the media giant jumped by a large margin.",
        "In meeting you again I feel much satisfaction.",
        "Investigators found no evidence of irregularities in the primary.",
        "The new technology is causing both worries and guarded optimism.",
        "Café owners in Zürich reported 12% growth — a record.",
    ];
    let mut lines = String::new();
    for i in 0..n {
        let text: Vec<&str> = (0..(1 + i % 4)).map(|k| sentences[(i + k) % sentences.len()]).collect();
        lines.push_str(&serde_json::json!({"id": i, "text": text.join(" ")}).to_string());
        lines.push('\n');
    }
    write(dir, "corpus.jsonl", &lines)
}

/// Whether `python3 -c "import <modules>"` succeeds.
pub fn python_has(modules: &str) -> bool {
    std::process::Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Packs `corpus` with `tok` into blocks of 32 tokens (5 % held out, seed 0) at `out`.
pub fn pack32(
    corpus: &encoderlab::data::corpus::Corpus,
    tok: &encoderlab::tokenizer::TextTokenizer,
    out: &Path,
) -> anyhow::Result<()> {
    let cfg = encoderlab::data::pack::PackConfig {
        seq_len: 32,
        validation_fraction: 0.05,
        seed: 0,
        ..encoderlab::data::pack::PackConfig::default()
    };
    encoderlab::data::pack::pack_corpus(corpus, tok, &cfg, out)?;
    Ok(())
}

/// A 300-id tokenizer trained on 400 sample documents and their pack of 32-token blocks, under
/// `dir` (`tokenizer.json`, `pack/`); returns the pack's folder.
pub fn tiny_pack(dir: &Path) -> anyhow::Result<PathBuf> {
    let corpus = encoderlab::data::corpus::Corpus::open(&[sample_corpus(dir, 400)], "text")?;
    let tok_path = dir.join("tokenizer.json");
    encoderlab::tokenizer::save_tokenizer(&encoderlab::tokenizer::train_bpe(&corpus, 300, 2)?, &tok_path)?;
    let out = dir.join("pack");
    pack32(&corpus, &encoderlab::tokenizer::TextTokenizer::load(&tok_path)?, &out)?;
    Ok(out)
}

/// A tiny CLM checkpoint (vocabulary 300, 2 steps) under `dir`.
pub fn tiny_checkpoint(dir: &Path) -> anyhow::Result<PathBuf> {
    let corpus = encoderlab::data::corpus::Corpus::open(&[sample_corpus(dir, 200)], "text")?;
    let tok_path = dir.join("tokenizer.json");
    encoderlab::tokenizer::save_tokenizer(&encoderlab::tokenizer::train_bpe(&corpus, 300, 2)?, &tok_path)?;
    let tok = encoderlab::tokenizer::TextTokenizer::load(&tok_path)?;
    let pack = dir.join("pack");
    pack32(&corpus, &tok, &pack)?;
    let text = format!(
        r#"
name = "tinyclm"
[model]
preset = "tiny"
[data]
pack = "{}"
batch_size = 4
eval_blocks = 2
[train]
phases = [{{ objective = "clm", steps = 2 }}]
eval_every_steps = 2
checkpoint_every_steps = 2
out_dir = "{}"
[lr]
peak = 1e-3
warmup_steps = 1
schedule = {{ kind = "constant" }}
"#,
        pack.display(),
        dir.join("runs").display()
    );
    let path = write(dir, "pretrain.toml", &text);
    let cfg = encoderlab::train::PretrainConfig::load(&path, &[])?;
    encoderlab::train::pretrain(&cfg, &encoderlab::train::RunOptions::default())?;
    Ok(dir.join("runs/tinyclm/checkpoints/step-0000002"))
}

/// Every tensor of a checkpoint's weights (`dir/model.safetensors`), flattened, by name.
pub fn checkpoint_weights(dir: &Path) -> anyhow::Result<Vec<(String, Vec<f32>)>> {
    let mut t: Vec<(String, Vec<f32>)> =
        candle_core::safetensors::load(dir.join("model.safetensors"), &candle_core::Device::Cpu)?
            .into_iter()
            .map(|(k, v)| (k, v.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
            .collect();
    t.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(t)
}

/// The lines of a pretraining run's `metrics.jsonl`.
pub fn metrics(run: &Path) -> Vec<encoderlab::train::StepMetrics> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A sentence-classification dataset of the user's own (JSONL splits, `labels.json`, a registry
/// file): returns (registry, data folder, test split file).
pub fn own_dataset(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf, PathBuf)> {
    let data = dir.join("mydata");
    let folder = data.join("reviews");
    std::fs::create_dir_all(&folder)?;
    let words = ["good", "great", "fine", "bad", "awful", "poor"];
    for (split, n) in [("train", 32), ("validation", 8), ("test", 16)] {
        let lines: String = (0..n)
            .map(|i| {
                let label = i % 2;
                let text = format!(
                    "the film was {} and {}",
                    words[label * 3 + i % 3],
                    words[label * 3 + (i + 1) % 3]
                );
                let name = ["positive", "negative"][label];
                serde_json::json!({"idx": i, "text": text, "label": name}).to_string() + "\n"
            })
            .collect();
        std::fs::write(folder.join(format!("{split}.jsonl")), lines)?;
    }
    std::fs::write(folder.join("labels.json"), r#"["positive", "negative"]"#)?;
    let registry = write(
        dir,
        "registry.toml",
        r#"[my_reviews]
family = "sequence_classification"
origin = "fetched"
path = "reviews"
splits = { train = "train.jsonl", validation = "validation.jsonl", test = "test.jsonl" }
text_field = "text"
label_field = "label"
labels_file = "labels.json"
metric = "accuracy"
chance_score = 0.5
description = "my own reviews"
"#,
    );
    Ok((registry, data, folder.join("test.jsonl")))
}

/// A fine-tuning config of the tiny checkpoint on `dataset`, records under `out`.
pub fn finetune_config(
    ckpt: &Path,
    dataset: &str,
    data_dir: &Path,
    out: &Path,
    sets: &[&str],
) -> anyhow::Result<encoderlab::finetune::FinetuneConfig> {
    let text = format!(
        r#"
[model]
checkpoint = "{}"
[task]
dataset = "{dataset}"
data_dir = "{}"
max_length = 48
max_question_tokens = 16
doc_stride = 8
max_train_examples = 32
max_eval_examples = 12
[train]
learning_rate = 1e-3
batch_size = 8
max_steps = 3
eval_batch_size = 16
log_every = 1
out_dir = "{}"
"#,
        ckpt.display(),
        data_dir.display(),
        out.display()
    );
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    Ok(encoderlab::finetune::FinetuneConfig::parse(
        &text,
        Path::new("test.toml"),
        &sets,
    )?)
}
