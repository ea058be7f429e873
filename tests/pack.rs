//! Packing invariants, held-out documents, determinism, the block sampler's cursor, and bad
//! input.

mod common;

use std::path::Path;

use common::{sample_corpus, write};
use encoderlab::data::pack::validation_documents;
use encoderlab::data::{pack_corpus, BlockSampler, Corpus, Cursor, PackConfig, PackedDataset, Split, TokenDtype};
use encoderlab::tokenizer::{save_tokenizer, train_bpe, TextTokenizer};

fn tokenizer(dir: &Path, corpus: &Corpus) -> anyhow::Result<TextTokenizer> {
    let path = dir.join("tokenizer.json");
    save_tokenizer(&train_bpe(corpus, 400, 2)?, &path)?;
    Ok(TextTokenizer::load(&path)?)
}

/// A sample corpus of `documents` in `dir`, and a tokenizer trained on it.
fn corpus_and_tokenizer(dir: &Path, documents: usize) -> anyhow::Result<(Corpus, TextTokenizer)> {
    let corpus = Corpus::open(&[sample_corpus(dir, documents)], "text")?;
    let tok = tokenizer(dir, &corpus)?;
    Ok((corpus, tok))
}

#[test]
fn no_token_lost_or_duplicated_and_eos_after_every_document() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (corpus, tok) = corpus_and_tokenizer(dir.path(), 300)?;
    let cfg = PackConfig {
        seq_len: 32,
        validation_fraction: 0.1,
        seed: 4,
        chunk_documents: 7,
    };
    let out = dir.path().join("pack");
    let meta = pack_corpus(&corpus, &tok, &cfg, &out)?;
    assert_eq!(meta.dtype, TokenDtype::U16);
    assert_eq!(meta.validation.documents, 30);
    assert_eq!(meta.train.documents + meta.validation.documents, 300);

    // expected streams, tokenized independently, document by document
    let held: std::collections::HashSet<u64> = meta.validation_documents.iter().copied().collect();
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for (i, doc) in corpus.documents().enumerate() {
        let mut ids = tok.encode(&doc?.text)?;
        ids.push(tok.eos_id()?);
        if held.contains(&(i as u64)) {
            val.extend(ids)
        } else {
            train.extend(ids)
        }
    }
    let ds = PackedDataset::open(&out)?;
    let t = ds.file(Split::Train);
    let v = ds.file(Split::Validation);
    assert_eq!(
        t.tokens(0, t.len())?,
        train,
        "train stream = train documents in order, each + EOS"
    );
    assert_eq!(
        v.tokens(0, v.len())?,
        val,
        "validation stream = held-out documents only"
    );
    let eos = tok.eos_id()?;
    assert_eq!(train.iter().filter(|&&x| x == eos).count() as u64, meta.train.documents);
    assert_eq!(train.last(), Some(&eos));
    assert_eq!(meta.train.blocks, train.len() as u64 / 32);
    assert_eq!(meta.train.tail_tokens, train.len() as u64 % 32);
    // the blocks tile the stream
    let blocks: Vec<u32> = (0..ds.blocks(Split::Train))
        .flat_map(|b| ds.block(Split::Train, b).unwrap())
        .collect();
    assert_eq!(blocks[..], train[..blocks.len()]);
    assert!(ds.block(Split::Train, ds.blocks(Split::Train)).is_err());
    // meta records the tokenizer and the sources
    assert_eq!(meta.tokenizer.sha256, tok.sha256());
    assert_eq!(meta.sources.len(), 1);
    assert_eq!(meta.sources[0].documents, 300);
    assert_eq!(meta.sources[0].sha256.len(), 64);
    Ok(())
}

#[test]
fn validation_documents_never_in_train() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let lines: String = (0..50)
        .map(|i| format!("{{\"text\": \"document number {i} says word{i}x\"}}\n"))
        .collect();
    let corpus = Corpus::open(&[write(dir.path(), "c.jsonl", &lines)], "text")?;
    let tok = tokenizer(dir.path(), &corpus)?;
    let cfg = PackConfig {
        seq_len: 4,
        validation_fraction: 0.2,
        seed: 1,
        chunk_documents: 3,
    };
    let meta = pack_corpus(&corpus, &tok, &cfg, &dir.path().join("p"))?;
    assert_eq!(meta.validation_documents, validation_documents(50, 0.2, 1));
    let ds = PackedDataset::open(&dir.path().join("p"))?;
    let train = tok.decode(&ds.file(Split::Train).tokens(0, ds.file(Split::Train).len())?)?;
    let val = tok.decode(&ds.file(Split::Validation).tokens(0, ds.file(Split::Validation).len())?)?;
    for i in 0..50u64 {
        let marker = format!("word{i}x");
        let in_val = meta.validation_documents.contains(&i);
        assert_eq!(val.contains(&marker), in_val, "{marker}");
        assert_eq!(train.contains(&marker), !in_val, "{marker}");
    }
    Ok(())
}

#[test]
fn same_seed_same_pack_and_order() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (corpus, tok) = corpus_and_tokenizer(dir.path(), 120)?;
    let cfg = PackConfig {
        seq_len: 16,
        validation_fraction: 0.05,
        seed: 9,
        chunk_documents: 11,
    };
    pack_corpus(&corpus, &tok, &cfg, &dir.path().join("a"))?;
    let other_chunks = PackConfig {
        chunk_documents: 1000,
        ..cfg.clone()
    };
    pack_corpus(&corpus, &tok, &other_chunks, &dir.path().join("b"))?;
    for f in ["train.bin", "validation.bin"] {
        assert_eq!(
            std::fs::read(dir.path().join("a").join(f))?,
            std::fs::read(dir.path().join("b").join(f))?
        );
    }
    let ds = PackedDataset::open(&dir.path().join("a"))?;
    let n = ds.blocks(Split::Train);
    let a = BlockSampler::new(n, 3)?.next_blocks(3 * n as usize);
    let b = BlockSampler::new(n, 3)?.next_blocks(3 * n as usize);
    assert_eq!(a, b);
    assert_ne!(a, BlockSampler::new(n, 4)?.next_blocks(3 * n as usize));
    Ok(())
}

#[test]
fn cursor_save_restore_resumes_the_exact_sequence() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (corpus, tok) = corpus_and_tokenizer(dir.path(), 100)?;
    let cfg = PackConfig {
        seq_len: 8,
        validation_fraction: 0.0,
        seed: 0,
        chunk_documents: 64,
    };
    pack_corpus(&corpus, &tok, &cfg, &dir.path().join("p"))?;
    let ds = PackedDataset::open(&dir.path().join("p"))?;
    let n = ds.blocks(Split::Train);
    let steps = 2 * n as usize + 5;
    let mut whole = BlockSampler::new(n, 11)?;
    let reference: Vec<Vec<u32>> = (0..steps)
        .map(|_| ds.block(Split::Train, whole.next_block()).unwrap())
        .collect();
    let mut first = BlockSampler::new(n, 11)?;
    let mut seen: Vec<Vec<u32>> = (0..n as usize + 3)
        .map(|_| ds.block(Split::Train, first.next_block()).unwrap())
        .collect();
    let saved = serde_json::to_string(&first.cursor())?;
    let cursor: Cursor = serde_json::from_str(&saved)?;
    assert_eq!(cursor, Cursor { epoch: 1, position: 3 });
    let mut resumed = BlockSampler::resume(n, 11, cursor)?;
    seen.extend((seen.len()..steps).map(|_| ds.block(Split::Train, resumed.next_block()).unwrap()));
    assert_eq!(seen, reference);
    Ok(())
}

#[test]
fn bad_inputs_leave_no_output() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (corpus, tok) = corpus_and_tokenizer(dir.path(), 20)?;
    let out = dir.path().join("out");
    // a corpus too small for one block
    let cfg = PackConfig {
        seq_len: 100_000,
        ..PackConfig::default()
    };
    let err = pack_corpus(&corpus, &tok, &cfg, &out).unwrap_err().to_string();
    assert!(err.contains("corpus too small"), "{err}");
    // a corpus with only empty documents
    let empty = Corpus::open(
        &[write(dir.path(), "e.jsonl", "{\"text\": \"\"}\n{\"text\": \"  \"}\n")],
        "text",
    )?;
    let err = pack_corpus(&empty, &tok, &PackConfig::default(), &out)
        .unwrap_err()
        .to_string();
    assert!(err.contains("empty corpus"), "{err}");
    // a malformed line in the middle
    let broken = write(dir.path(), "b.jsonl", "{\"text\": \"fine\"}\n{\"text\": \"fine\"\n");
    let err = pack_corpus(&Corpus::open(&[broken], "text")?, &tok, &PackConfig::default(), &out)
        .unwrap_err()
        .to_string();
    assert!(err.contains("b.jsonl:2") && err.contains("malformed JSON"), "{err}");
    assert!(!out.exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    // a damaged pack is refused on open
    let good = dir.path().join("good");
    pack_corpus(
        &corpus,
        &tok,
        &PackConfig {
            seq_len: 8,
            ..PackConfig::default()
        },
        &good,
    )?;
    let f = good.join("train.bin");
    let len = std::fs::metadata(&f)?.len();
    std::fs::OpenOptions::new().write(true).open(&f)?.set_len(len - 2)?;
    let err = PackedDataset::open(&good).err().unwrap().to_string();
    assert!(err.contains("damaged"), "{err}");
    Ok(())
}

#[test]
fn wide_vocabularies_use_u32() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let corpus = Corpus::open(&[sample_corpus(dir.path(), 40)], "text")?;
    // a WordLevel tokenizer of 70,000 ids, written by hand in the Hugging Face format
    let mut vocab = serde_json::Map::new();
    vocab.insert("<|end_of_text|>".into(), 0.into());
    vocab.insert("[UNK]".into(), 1.into());
    for (i, w) in ["The", "jury", "said"].iter().enumerate() {
        vocab.insert(w.to_string(), (69_997 + i).into());
    }
    for i in 2..69_997 {
        vocab.insert(format!("filler{i}"), i.into());
    }
    let json = serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [{"id": 0, "content": "<|end_of_text|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
        "normalizer": null, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
    });
    let path = write(dir.path(), "wide.json", &json.to_string());
    let tok = TextTokenizer::load(&path)?;
    let meta = pack_corpus(
        &corpus,
        &tok,
        &PackConfig {
            seq_len: 8,
            ..PackConfig::default()
        },
        &dir.path().join("p"),
    )?;
    assert_eq!(meta.dtype, TokenDtype::U32);
    let ds = PackedDataset::open(&dir.path().join("p"))?;
    let all = ds.file(Split::Train).tokens(0, ds.file(Split::Train).len())?;
    assert!(all.contains(&69_997) && all.contains(&0));
    Ok(())
}

#[test]
fn study_data_is_prepared_once_and_redone_when_its_settings_change() -> anyhow::Result<()> {
    use encoderlab::data::prepare::{prepare_pretraining_data, PrepareOptions};
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    // the two pretraining datasets present, so nothing is fetched
    let corpus = std::fs::read_to_string(common::sample_corpus(dir.path(), 60))?;
    common::write(&data, "pretrain/sotu.jsonl", &corpus);
    common::write(&data, "pretrain/brown.jsonl", &corpus);
    let mut opts = PrepareOptions::new(&data, dir.path().join("study"));
    opts.vocab_size = 300;
    opts.seq_len = 16;
    let first = prepare_pretraining_data(&opts)?;
    assert!(!first.reused && first.fetched.is_empty());
    assert_eq!(first.meta.sources.len(), 2);
    assert!(first.meta.train.blocks > 0);
    let meta = first.pack.join("meta.json");
    let written = std::fs::metadata(&meta)?.modified()?;
    let again = prepare_pretraining_data(&opts)?;
    assert!(again.reused);
    assert_eq!(again.meta, first.meta);
    assert_eq!(std::fs::metadata(&meta)?.modified()?, written, "kept, not rewritten");
    opts.seq_len = 32;
    let redone = prepare_pretraining_data(&opts)?;
    assert!(!redone.reused);
    assert_eq!(redone.meta.config.seq_len, 32);
    Ok(())
}

/// A pack goes into a new folder, an empty one or one an earlier pack wrote (its marker): a
/// folder of the user's is refused untouched, and packing again replaces only the pack's files.
#[test]
fn a_pack_never_replaces_a_folder_it_did_not_write() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (corpus, tok) = corpus_and_tokenizer(dir.path(), 40)?;
    let cfg = PackConfig {
        seq_len: 16,
        ..PackConfig::default()
    };
    let mine = dir.path().join("mine");
    write(&mine, "thesis.tex", "months of work");
    let err = pack_corpus(&corpus, &tok, &cfg, &mine).unwrap_err().to_string();
    assert!(err.contains("did not write") && err.contains("thesis.tex"), "{err}");
    assert_eq!(std::fs::read_dir(&mine)?.count(), 1);
    let out = dir.path().join("pack");
    pack_corpus(&corpus, &tok, &cfg, &out)?;
    write(&out, "NOTES.md", "kept");
    pack_corpus(&corpus, &tok, &PackConfig { seq_len: 32, ..cfg }, &out)?;
    assert_eq!(std::fs::read_to_string(out.join("NOTES.md"))?, "kept");
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("meta.json"))?)?;
    assert_eq!(meta["config"]["seq_len"], 32);
    Ok(())
}
