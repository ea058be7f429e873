//! Fine-tuned models out: `train.save_model` writes the trained backbone and head with the run
//! record (and leaves the run's id alone); `export hf` turns a fine-tuned model into its
//! `transformers` class (the stock Llama class where it computes the same, encoderlab's
//! bidirectional classes through `auto_map` otherwise), and a bidirectional checkpoint into a
//! masked LM that cannot be run causally by mistake. Where torch and transformers are installed,
//! `scripts/hf_parity.py` checks every export against transformers (outputs ≤ 1e-4, and a
//! classifier fine-tuned on a user-registered dataset scoring its test split the same from
//! text); elsewhere that part says SKIPPED.

mod common;

use std::path::Path;
use std::process::Command;

use candle_core::{Device, Tensor};
use common::{own_dataset, python_has, shared_data, tiny_checkpoint};
use encoderlab::finetune::saved::{task_outputs, TaskHead, MODEL_DIR};
use encoderlab::finetune::{finetune, FinetuneConfig, FinetuneOptions, Status};
use encoderlab::heads::HeadKind;
use encoderlab::interop::export::{export_hf, ExportOptions};
use encoderlab::model::AttentionMode;
use serde_json::Value;

/// The tests' fine-tuning config of `ckpt` on `dataset` ([`common::finetune_config`]), with the
/// model saved.
fn config(ckpt: &Path, dataset: &str, data_dir: &Path, out: &Path, sets: &[&str]) -> anyhow::Result<FinetuneConfig> {
    let mut sets = sets.to_vec();
    sets.push("train.save_model=true");
    common::finetune_config(ckpt, dataset, data_dir, out, &sets)
}

fn json(path: &Path) -> anyhow::Result<Value> {
    Ok(serde_json::from_str(&std::fs::read_to_string(path)?)?)
}

/// Whether the parity script can run here (torch and transformers); says SKIPPED when not.
fn parity_available() -> bool {
    let ok = python_has("torch, transformers, safetensors, numpy");
    if !ok {
        eprintln!("SKIPPED: torch or transformers is not installed here: the transformers side of the export is not checked (pip install torch transformers safetensors)");
    }
    ok
}

/// `scripts/hf_parity.py export` on `model` with `extra` arguments; its output on failure.
fn parity(model: &Path, extra: &[&str]) -> anyhow::Result<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3")
        .arg(root.join("scripts/hf_parity.py"))
        .args([
            "export",
            "--encoderlab",
            env!("CARGO_BIN_EXE_encoderlab"),
            "--checkpoint",
        ])
        .arg(model)
        .args(extra)
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "hf_parity.py failed on {}:\n{text}",
        model.display()
    );
    assert!(text.contains("PARITY OK"), "{text}");
    // the figures, in the test's log
    for line in text
        .lines()
        .filter(|l| l.contains("max |") || l.contains(" OK") || l.contains("SKIPPED"))
    {
        eprintln!("{line}");
    }
    Ok(text)
}

#[test]
fn a_fine_tuned_model_is_saved_with_its_record_and_scores_the_same_in_transformers() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ckpt = tiny_checkpoint(dir.path())?;
    let (registry, data, test_split) = own_dataset(dir.path())?;
    let out = dir.path().join("records");
    let set = format!("task.registry={}", registry.display());
    let cfg = config(
        &ckpt,
        "my_reviews",
        &data,
        &out,
        &[&set, "train.learning_rate=3e-3", "task.max_eval_examples=0"],
    )?;
    let r = finetune(&cfg, &FinetuneOptions::default())?;
    assert_eq!(r.status, Status::Ok, "{:?}", r.reason);
    // saving the model is not part of the run: the same id as without it
    let mut unsaved = cfg.clone();
    unsaved.train.save_model = false;
    assert_eq!(unsaved.run_id()?, r.run_id);
    let model = cfg.run_dir()?.join(MODEL_DIR);
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        assert!(model.join(f).is_file(), "{f} missing");
    }
    let head = TaskHead::read(&model.join("config.json"))?.expect("a fine-tuned model's config");
    assert_eq!(head.head, HeadKind::Sequence { labels: 2 });
    assert_eq!(head.labels, ["positive", "negative"]);
    assert_eq!(
        (head.attention, head.dataset.as_str()),
        (AttentionMode::Bidirectional, "my_reviews")
    );
    assert_eq!(head.run_id, r.run_id);

    // the saved model is the one that was scored: its predictions on the test split, from the
    // same inputs (the text's tokens, then the separator), give the record's per-instance scores
    let tok = tokenizers::Tokenizer::from_file(model.join("tokenizer.json")).map_err(anyhow::Error::msg)?;
    let rows: Vec<Value> = std::fs::read_to_string(&test_split)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let inputs: Vec<Vec<u32>> = rows
        .iter()
        .map(|row| {
            let mut ids = tok
                .encode(row["text"].as_str().unwrap(), false)
                .unwrap()
                .get_ids()
                .to_vec();
            ids.push(head.sep_token_id);
            ids
        })
        .collect();
    let t = inputs.iter().map(Vec::len).max().unwrap_or(1);
    let ids: Vec<u32> = inputs
        .iter()
        .flat_map(|x| x.iter().copied().chain(std::iter::repeat(head.pad_token_id)).take(t))
        .collect();
    let mask: Vec<f32> = inputs
        .iter()
        .flat_map(|x| (0..t).map(move |j| if j < x.len() { 1.0 } else { 0.0 }))
        .collect();
    let (ids, mask) = (
        Tensor::from_vec(ids, (rows.len(), t), &Device::Cpu)?,
        Tensor::from_vec(mask, (rows.len(), t), &Device::Cpu)?,
    );
    let predicted: Vec<u32> = task_outputs(&model, &ids, &mask)?.argmax(1)?.to_vec1()?;
    let recorded: std::collections::HashMap<String, f64> =
        std::fs::read_to_string(cfg.run_dir()?.join("instances.jsonl"))?
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|v| v["split"] == "test" && v["metric"] == "accuracy")
            .map(|v| (v["id"].as_str().unwrap().to_string(), v["score"].as_f64().unwrap()))
            .collect();
    assert_eq!(recorded.len(), rows.len());
    for (row, p) in rows.iter().zip(&predicted) {
        let gold = if row["label"] == "positive" { 0 } else { 1 };
        assert_eq!(
            recorded[&row["idx"].to_string()],
            f64::from(u8::from(*p == gold)),
            "{row}"
        );
    }

    // the export: encoderlab's bidirectional classifier through auto_map, labels by name, a
    // tokenizer that ends inputs as fine-tuning did
    let hf = dir.path().join("hf");
    let report = export_hf(&model, &hf, &ExportOptions::default())?;
    assert_eq!(
        (report.class.as_str(), report.custom_code),
        ("EncoderlabForSequenceClassification", true)
    );
    let config = json(&hf.join("config.json"))?;
    assert_eq!(config["model_type"], "encoderlab");
    assert_eq!(
        config["auto_map"]["AutoModelForSequenceClassification"],
        "modeling_encoderlab.EncoderlabForSequenceClassification"
    );
    assert_eq!(config["id2label"]["1"], "negative");
    assert_eq!(config["pooling"], "mean");
    assert!(hf.join("modeling_encoderlab.py").is_file());
    let exported = tokenizers::Tokenizer::from_file(hf.join("tokenizer.json")).map_err(anyhow::Error::msg)?;
    let text = rows[0]["text"].as_str().unwrap();
    assert_eq!(
        exported.encode(text, true).map_err(anyhow::Error::msg)?.get_ids(),
        inputs[0].as_slice()
    );
    // a fine-tuned head means nothing under another attention: refused, nothing written
    let causal = ExportOptions {
        attention: Some(AttentionMode::Causal),
    };
    let e = export_hf(&model, &dir.path().join("hf2"), &causal)
        .unwrap_err()
        .to_string();
    assert!(e.contains("fine-tuned with bidirectional"), "{e}");
    assert!(!dir.path().join("hf2").exists());

    // a run that is not saved has no model folder
    let plain = config_without_saving(&ckpt, &data, &out, &set)?;
    finetune(&plain, &FinetuneOptions::default())?;
    assert!(!plain.run_dir()?.join(MODEL_DIR).exists());

    if parity_available() {
        let text = parity(&model, &["--examples", test_split.to_str().unwrap()])?;
        assert!(text.contains("16/16 predictions as in instances.jsonl OK"), "{text}");
        assert!(text.contains("refused"), "{text}");
    }
    Ok(())
}

fn config_without_saving(ckpt: &Path, data: &Path, out: &Path, set: &str) -> anyhow::Result<FinetuneConfig> {
    let mut cfg = config(ckpt, "my_reviews", data, out, &[set, "train.seed=1"])?;
    cfg.train.save_model = false;
    Ok(cfg)
}

/// Each family's head exports to its class: a token classifier, a QA model and a retrieval
/// encoder fine-tuned bidirectionally (encoderlab's classes), a causal classifier that pools the
/// last token (the stock `LlamaForSequenceClassification`) and a causal QA model (the stock
/// `LlamaForQuestionAnswering`, its backbone under `transformer.`); each is checked against
/// transformers where it is installed.
#[test]
fn every_head_exports_to_its_transformers_class() -> anyhow::Result<()> {
    let Some(data) = shared_data() else { return Ok(()) };
    let dir = tempfile::tempdir()?;
    let ckpt = tiny_checkpoint(dir.path())?;
    let out = dir.path().join("records");
    let cases: [(&str, &[&str], &str); 5] = [
        ("conll2003", &[], "EncoderlabForTokenClassification"),
        ("squad", &[], "EncoderlabForQuestionAnswering"),
        ("squad_retrieval", &["task.max_corpus_docs=40"], "EncoderlabModel"),
        (
            "sst2",
            &["model.attention=\"causal\"", "model.pooling=\"last\""],
            "LlamaForSequenceClassification",
        ),
        ("squad", &["model.attention=\"causal\""], "LlamaForQuestionAnswering"),
    ];
    let check = parity_available();
    for (dataset, sets, class) in cases {
        let cfg = config(&ckpt, dataset, &data, &out, sets)?;
        let r = finetune(&cfg, &FinetuneOptions::default())?;
        assert_eq!(r.status, Status::Ok, "{dataset}: {:?}", r.reason);
        let model = cfg.run_dir()?.join(MODEL_DIR);
        let hf = dir.path().join(format!("hf-{class}"));
        let report = export_hf(&model, &hf, &ExportOptions::default())?;
        assert_eq!(report.class, class, "{dataset} {sets:?}");
        let config = json(&hf.join("config.json"))?;
        assert_eq!(
            config["model_type"],
            if report.custom_code { "encoderlab" } else { "llama" }
        );
        assert_eq!(hf.join("modeling_encoderlab.py").exists(), report.custom_code);
        if class == "LlamaForQuestionAnswering" {
            let names = candle_core::safetensors::load(hf.join("model.safetensors"), &Device::Cpu)?;
            assert!(names
                .keys()
                .all(|n| n.starts_with("transformer.") || n.starts_with("qa_outputs.")));
        }
        if class == "EncoderlabModel" {
            assert!(hf.join("modules.json").is_file() && hf.join("1_Pooling/config.json").is_file());
        }
        if check {
            parity(&model, &[])?;
        }
    }
    Ok(())
}

/// A bidirectional checkpoint exports as a masked LM behind `auto_map` (and a CLM checkpoint
/// does with `--attention bidirectional`); loaded by transformers, its default call is
/// bidirectional, and without `trust_remote_code` it does not load at all.
#[test]
fn a_bidirectional_checkpoint_exports_as_a_masked_lm_that_cannot_run_causally() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ckpt = tiny_checkpoint(dir.path())?;
    let hf = dir.path().join("hf");
    let bidirectional = ExportOptions {
        attention: Some(AttentionMode::Bidirectional),
    };
    let report = export_hf(&ckpt, &hf, &bidirectional)?;
    assert_eq!(
        (report.class.as_str(), report.custom_code, report.attention),
        ("EncoderlabForMaskedLM", true, AttentionMode::Bidirectional)
    );
    let config = json(&hf.join("config.json"))?;
    assert_eq!(
        config["auto_map"]["AutoModelForMaskedLM"],
        "modeling_encoderlab.EncoderlabForMaskedLM"
    );
    assert_eq!(config["attention"], "bidirectional");
    // the language-model head is there even when tied to the embeddings
    let names = candle_core::safetensors::load(hf.join("model.safetensors"), &Device::Cpu)?;
    assert!(names.contains_key("lm_head.weight"));
    // our own import reads it back as the bidirectional model it is
    let back = dir.path().join("back");
    encoderlab::interop::import_model(&hf, &back, &encoderlab::interop::ImportOptions::default())?;
    assert_eq!(
        encoderlab::model::ModelConfig::from_hf_json(&back.join("config.json"))?.attention,
        AttentionMode::Bidirectional
    );
    if parity_available() {
        let text = parity(&ckpt, &["--attention", "bidirectional"])?;
        assert!(
            text.contains("EncoderlabForMaskedLM") && text.contains("refused"),
            "{text}"
        );
    }
    Ok(())
}
