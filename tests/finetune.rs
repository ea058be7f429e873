//! Fine-tuning: the four families end to end on the shared data with a tiny checkpoint, heads
//! that overfit a tiny subset, QA windows, retrieval on a hand-made corpus, partial loading,
//! divergence, and bad input.

mod common;

use std::path::Path;

use candle_core::{DType, Device};
use common::{finetune_config as config, sample_corpus, shared_data, tiny_checkpoint, write};
use encoderlab::data::corpus::Corpus;
use encoderlab::data::tasks::{Answer, QaExample};
use encoderlab::eval::Counts;
use encoderlab::finetune::features::qa_windows;
use encoderlab::finetune::record::InstanceRow;
use encoderlab::finetune::trainer::load_backbone;
use encoderlab::finetune::{finetune, FinetuneConfig, FinetuneOptions, RunResult, Status};
use encoderlab::heads::span::{best_span, WindowLogits};
use encoderlab::heads::{init_task_weights, HeadKind};
use encoderlab::model::{sorted_vars, ModelConfig};
use encoderlab::rng::seeded;
use encoderlab::stats::runs::read_runs;
use encoderlab::tokenizer::{save_tokenizer, train_bpe, TextTokenizer};

fn losses(run: &Path) -> Vec<f64> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<encoderlab::artifacts::FinetuneStepMetrics>(l)
                .unwrap()
                .loss
        })
        .collect()
}

fn instances(run: &Path) -> Vec<InstanceRow> {
    std::fs::read_to_string(run.join("instances.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn every_family_runs_end_to_end_and_writes_its_record() -> anyhow::Result<()> {
    let Some(data) = shared_data() else { return Ok(()) };
    let dir = tempfile::tempdir()?;
    let ckpt = tiny_checkpoint(dir.path())?;
    let out = dir.path().join("ft");
    for (dataset, family, metric) in [
        ("sst2", "SC", "accuracy"),
        ("conll2003", "TC", "entity_f1"),
        ("squad", "QA", "f1"),
        ("squad_retrieval", "IR", "ndcg@10"),
        // text pairs; a held-out validation split (no validation file); POS; graded qrels
        ("rte", "SC", "accuracy"),
        ("trec", "SC", "accuracy"),
        ("ud_ewt_upos", "TC", "token_accuracy"),
        ("cranfield", "IR", "ndcg@10"),
    ] {
        let cfg = config(&ckpt, dataset, &data, &out, &[])?;
        let r: RunResult = finetune(&cfg, &FinetuneOptions::default())?;
        assert_eq!(
            (r.status, r.family.as_str(), r.metric.as_str()),
            (Status::Ok, family, metric),
            "{dataset}"
        );
        assert_eq!(
            (r.model.as_str(), r.objective.as_str(), r.steps),
            ("tinyclm-step2", "clm", 3)
        );
        let run = cfg.run_dir()?;
        assert_eq!(run.file_name().unwrap().to_str().unwrap(), r.run_id);
        // the saved configuration is the resolved one: same id
        let saved: FinetuneConfig = serde_json::from_str(&std::fs::read_to_string(run.join("config.json"))?)?;
        assert_eq!(saved.run_id()?, r.run_id);
        // the rows the analysis reads
        let rows = read_runs(&run.join("runs.csv"))?;
        assert_eq!(rows.len(), 2);
        for (row, (split, score)) in rows.iter().zip([("validation", r.validation), ("test", r.test)]) {
            assert_eq!((row.split.as_str(), row.dataset.as_str()), (split, dataset));
            assert_eq!(row.family.as_deref(), Some(family));
            assert_eq!(row.metric.as_deref(), Some(metric));
            assert_eq!(row.score, score.unwrap());
        }
        // per-instance scores give the reported score back
        for (split, score) in [("validation", r.validation.unwrap()), ("test", r.test.unwrap())] {
            let rows: Vec<_> = instances(&run)
                .into_iter()
                .filter(|i| i.split == split && i.metric == metric)
                .collect();
            assert!(!rows.is_empty(), "{dataset} {split}");
            let counts = rows
                .iter()
                .filter_map(|i| i.counts)
                .fold(Counts::default(), |a, c| a + c);
            let back = match metric {
                "entity_f1" => counts.f1(),
                "token_accuracy" => counts.tp as f64 / counts.gold as f64,
                _ => rows.iter().map(|i| i.score).sum::<f64>() / rows.len() as f64,
            };
            assert!((back - score).abs() < 1e-12, "{dataset} {split}: {back} vs {score}");
        }
        assert_eq!(losses(&run).len(), 3);
        let events = std::fs::read_dir(run.join("tensorboard"))?.count();
        assert_eq!(events, 1, "{dataset}: the record holds its TensorBoard event file");
    }
    Ok(())
}

#[test]
fn each_head_overfits_a_tiny_subset() -> anyhow::Result<()> {
    let Some(data) = shared_data() else { return Ok(()) };
    let dir = tempfile::tempdir()?;
    let ckpt = tiny_checkpoint(dir.path())?;
    for dataset in ["sst2", "conll2003", "squad", "squad_retrieval"] {
        let cfg = config(
            &ckpt,
            dataset,
            &data,
            &dir.path().join("ft"),
            &[
                "task.max_train_examples=8",
                "task.max_eval_examples=4",
                "train.max_steps=60",
                "train.learning_rate=3e-3",
                "train.warmup_ratio=0.0",
                "optim.weight_decay=0.0",
            ],
        )?;
        let r = finetune(&cfg, &FinetuneOptions::default())?;
        assert_eq!(r.status, Status::Ok);
        let l = losses(&cfg.run_dir()?);
        let (first, last) = (l[0], l[l.len() - 3..].iter().sum::<f64>() / 3.0);
        assert!(last < 0.2 * first, "{dataset}: loss {first} → {last}");
    }
    Ok(())
}

#[test]
fn qa_windows_recover_answers_that_straddle_a_window_boundary() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let corpus = Corpus::open(&[sample_corpus(dir.path(), 100)], "text")?;
    let tok_path = dir.path().join("tokenizer.json");
    save_tokenizer(&train_bpe(&corpus, 300, 2)?, &tok_path)?;
    let tok = TextTokenizer::load(&tok_path)?;
    let sep = tok.eos_id()?;
    let context = "The jury said the election was conducted fairly. Quarterly profits at the media giant jumped by a large margin. In meeting you again I feel much satisfaction.";
    let answer = "profits at the media giant";
    let start = context.find(answer).unwrap();
    let ex = QaExample {
        id: "q".into(),
        title: String::new(),
        context: context.into(),
        question: "What jumped?".into(),
        answers: vec![Answer {
            text: answer.into(),
            start_char: context[..start].chars().count(),
        }],
    };
    let q_len = tok.encode("What jumped?")?.len();
    // windows whose first one ends two tokens into the answer, the next starting before it
    let (_, offsets) = tok.encode_with_offsets(context)?;
    let a0 = offsets.iter().position(|o| o.1 > start).unwrap();
    let a1 = offsets.iter().rposition(|o| o.0 < start + answer.len()).unwrap();
    assert!(a1 >= a0 + 3, "the answer needs several tokens");
    let room = a0 + 2;
    let stride = room.min(a1 - a0 + 3).min(room - 1);
    let window = q_len + 2 + room;
    let windows = qa_windows(&tok, &ex, 0, sep, (window, stride, 16))?;
    assert!(windows.len() >= 3, "{} windows", windows.len());
    let mut holding = 0;
    for (i, w) in windows.iter().enumerate() {
        assert!(w.ids.len() <= window);
        let ctx: Vec<(usize, usize)> = w.offsets.iter().flatten().copied().collect();
        if i + 1 < windows.len() {
            // consecutive windows share `stride` context tokens
            let next: Vec<(usize, usize)> = windows[i + 1].offsets.iter().flatten().copied().collect();
            assert_eq!(ctx[ctx.len() - stride..], next[..stride]);
        }
        let covers = ctx[0].0 <= start && ctx[ctx.len() - 1].1 >= start + answer.len();
        if covers {
            holding += 1;
            let (s, e) = w.target;
            let text = &context[w.offsets[s].unwrap().0..w.offsets[e].unwrap().1];
            assert_eq!(text.trim(), answer);
            // the span extraction finds it from logits peaking there
            let (mut sl, mut el) = (vec![0f32; w.ids.len()], vec![0f32; w.ids.len()]);
            (sl[s], el[e]) = (5.0, 5.0);
            let got = best_span(
                &[WindowLogits {
                    start: &sl,
                    end: &el,
                    offsets: &w.offsets,
                }],
                5,
                30,
            )
            .unwrap();
            assert_eq!(context[got.start..got.end].trim(), answer);
        } else {
            assert_eq!(w.target, (0, 0), "window {i} does not hold the whole answer");
        }
    }
    // the answer is cut by some window boundary and still held whole by another window
    let cut = windows.iter().any(|w| {
        let ctx: Vec<(usize, usize)> = w.offsets.iter().flatten().copied().collect();
        let (a, b) = (ctx[0].0, ctx[ctx.len() - 1].1);
        (a > start && a < start + answer.len()) || (b > start && b < start + answer.len())
    });
    assert!(cut && holding >= 1, "cut {cut}, holding {holding}");
    Ok(())
}

const HAND_MADE_PAIRS: [(&str, &str, &str, &str); 4] = [
    (
        "q1",
        "who won the election",
        "d1",
        "The jury said the election was conducted fairly.",
    ),
    (
        "q2",
        "what did profits do",
        "d2",
        "Quarterly profits at the media giant jumped by a large margin.",
    ),
    (
        "q3",
        "how do you feel",
        "d3",
        "In meeting you again I feel much satisfaction.",
    ),
    (
        "q4",
        "what grew in Zürich",
        "d4",
        "Café owners in Zürich reported 12% growth — a record.",
    ),
];

/// Trains a retriever on `dataset` (whose training pairs come from `train_pairs`) and checks
/// that every test query ranks its document first.
fn retriever_ranks_first(dir: &Path, ckpt: &Path, data: &Path, dataset: &str, train_pairs: &str) -> anyhow::Result<()> {
    let cfg = config(
        ckpt,
        dataset,
        data,
        &dir.join("ft"),
        &[
            &format!("task.train_pairs=\"{train_pairs}\""),
            "task.max_train_examples=0",
            "task.max_eval_examples=0",
            "task.validation_fraction=0.05",
            "train.batch_size=4",
            "train.max_steps=80",
            "train.learning_rate=3e-3",
            "optim.weight_decay=0.0",
        ],
    )?;
    let r = finetune(&cfg, &FinetuneOptions::default())?;
    assert_eq!(r.status, Status::Ok);
    let ndcg: Vec<_> = instances(&cfg.run_dir()?)
        .into_iter()
        .filter(|i| i.split == "test" && i.metric == "ndcg@10")
        .collect();
    assert_eq!(ndcg.len(), 4);
    for i in &ndcg {
        assert_eq!(i.score, 1.0, "query {} does not rank its document first", i.id);
    }
    Ok(())
}

#[test]
fn retrieval_ranks_the_right_document_first_on_a_hand_made_corpus() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ckpt = tiny_checkpoint(dir.path())?;
    let data = dir.path().join("data");
    let (mut corpus, mut queries, mut qrels, mut train) = (
        String::new(),
        String::new(),
        String::from("query-id\tcorpus-id\tscore\n"),
        String::new(),
    );
    for (q, qt, d, dt) in HAND_MADE_PAIRS {
        corpus.push_str(&serde_json::json!({"_id": d, "title": "", "text": dt}).to_string());
        corpus.push('\n');
        queries.push_str(&serde_json::json!({"_id": q, "text": qt}).to_string());
        queries.push('\n');
        qrels.push_str(&format!("{q}\t{d}\t1\n"));
        for copy in 0..5 {
            let row = serde_json::json!({"id": format!("{q}-{copy}"), "title": "", "context": dt, "question": qt,
                "answers": {"text": [], "answer_start": []}});
            train.push_str(&row.to_string());
            train.push('\n');
        }
    }
    write(&data, "retrieval/squad_dev/corpus.jsonl", &corpus);
    write(&data, "retrieval/squad_dev/queries.jsonl", &queries);
    write(&data, "retrieval/squad_dev/qrels/test.tsv", &qrels);
    write(&data, "question_answering/squad/train.jsonl", &train);
    retriever_ranks_first(dir.path(), &ckpt, &data, "squad_retrieval", "squad")
}

#[test]
fn a_retrieval_dataset_with_train_qrels_is_its_own_training_set() -> anyhow::Result<()> {
    // the BEIR layout of the fetched BBC News retrieval set: train and test queries in one
    // queries.jsonl, each split's judgements in qrels/{split}.tsv
    let dir = tempfile::tempdir()?;
    let ckpt = tiny_checkpoint(dir.path())?;
    let data = dir.path().join("data");
    let header = String::from("query-id\tcorpus-id\tscore\n");
    let (mut corpus, mut queries, mut test, mut train) = (String::new(), String::new(), header.clone(), header);
    for (q, qt, d, dt) in HAND_MADE_PAIRS {
        corpus.push_str(&serde_json::json!({"_id": d, "title": "", "text": dt}).to_string());
        corpus.push('\n');
        for id in std::iter::once(q.to_string()).chain((0..5).map(|c| format!("train-{q}-{c}"))) {
            queries.push_str(&serde_json::json!({"_id": id, "text": qt}).to_string());
            queries.push('\n');
            let (qrels, grade) = if id == q { (&mut test, 1) } else { (&mut train, 2) };
            qrels.push_str(&format!("{id}\t{d}\t{grade}\n"));
        }
        // most training queries also judge another document, lower: a pair takes the best-judged
        // one (taking the other would teach the wrong document for most copies)
        for c in 0..3 {
            train.push_str(&format!("train-{q}-{c}\td{}\t1\n", if d == "d1" { 2 } else { 1 }));
        }
    }
    write(&data, "retrieval/bbc_news/corpus.jsonl", &corpus);
    write(&data, "retrieval/bbc_news/queries.jsonl", &queries);
    write(&data, "retrieval/bbc_news/qrels/test.tsv", &test);
    write(&data, "retrieval/bbc_news/qrels/train.tsv", &train);
    retriever_ranks_first(dir.path(), &ckpt, &data, "bbc_news_retrieval", "bbc_news_retrieval")
}

#[test]
fn partial_loading_keeps_the_backbone_bit_identical() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ckpt = tiny_checkpoint(dir.path())?;
    let cfg = ModelConfig::from_hf_json(&ckpt.join("config.json"))?;
    let saved = candle_core::safetensors::load(ckpt.join("model.safetensors"), &Device::Cpu)?;
    let head = HeadKind::Sequence { labels: 3 };
    let build = |seed: u64| -> anyhow::Result<candle_nn::VarMap> {
        let map = init_task_weights(&cfg, head, &mut seeded(seed, 1), &mut seeded(seed, 2), &Device::Cpu)?;
        load_backbone(&ckpt, &map, &Device::Cpu)?;
        Ok(map)
    };
    let (a, b, c) = (build(0)?, build(0)?, build(1)?);
    let vars = sorted_vars(&a)?;
    assert!(
        vars.iter().all(|(n, _)| n != "lm_head.weight"),
        "the LM head is left out"
    );
    let bits = |t: &candle_core::Tensor| -> Vec<u32> {
        t.flatten_all()
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|x| x.to_bits())
            .collect()
    };
    let mut backbone = 0;
    for (name, var) in &vars {
        if let Some(name) = name.strip_prefix("").filter(|n| n.starts_with("model.")) {
            assert_eq!(bits(var.as_tensor()), bits(&saved[name]), "{name}");
            backbone += 1;
        }
    }
    assert_eq!(backbone, saved.keys().filter(|k| k.starts_with("model.")).count());
    // the head: fresh, from the seed
    let score = |m: &candle_nn::VarMap| {
        bits(
            sorted_vars(m)
                .unwrap()
                .iter()
                .find(|(n, _)| n == "score.weight")
                .unwrap()
                .1
                .as_tensor(),
        )
    };
    assert_eq!(score(&a), score(&b));
    assert_ne!(score(&a), score(&c));
    Ok(())
}

#[test]
fn a_diverging_run_ends_with_status_diverged() -> anyhow::Result<()> {
    let Some(data) = shared_data() else { return Ok(()) };
    let dir = tempfile::tempdir()?;
    let ckpt = tiny_checkpoint(dir.path())?;
    let cfg = config(
        &ckpt,
        "sst2",
        &data,
        &dir.path().join("ft"),
        &[
            "train.learning_rate=1e30",
            "optim.grad_clip=0.0",
            "train.max_steps=20",
            "train.warmup_ratio=0.0",
        ],
    )?;
    let r = finetune(&cfg, &FinetuneOptions::default())?;
    assert_eq!(r.status, Status::Diverged, "{r:?}");
    assert!(r.reason.as_deref().unwrap_or("").contains("at step"), "{:?}", r.reason);
    assert_eq!((r.validation, r.test), (None, None));
    let csv = std::fs::read_to_string(cfg.run_dir()?.join("runs.csv"))?;
    assert!(csv.lines().skip(1).all(|l| l.ends_with(",accuracy,,diverged")), "{csv}");
    // the analysis reads it as a failed run
    assert!(read_runs(&cfg.run_dir()?.join("runs.csv"))?
        .iter()
        .all(|r| r.score.is_nan()));
    Ok(())
}

#[test]
fn bad_input_is_refused_with_its_file_and_nothing_is_written() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ckpt = tiny_checkpoint(dir.path())?;
    let out = dir.path().join("ft");
    let data = dir.path().join("data");
    let nothing_written = || !out.exists() || std::fs::read_dir(&out).unwrap().next().is_none();
    // a label out of range
    write(&data, "classification/sst2/labels.json", "[\"negative\", \"positive\"]");
    write(
        &data,
        "classification/sst2/train.jsonl",
        "{\"idx\": 0, \"sentence\": \"fine\", \"label\": 1}\n{\"idx\": 1, \"sentence\": \"bad\", \"label\": 5}\n",
    );
    for split in ["validation", "test"] {
        write(
            &data,
            &format!("classification/sst2/{split}.jsonl"),
            "{\"idx\": 0, \"sentence\": \"ok\", \"label\": 0}\n",
        );
    }
    let err = finetune(&config(&ckpt, "sst2", &data, &out, &[])?, &FinetuneOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("train.jsonl:2"), "{err}");
    // a QA answer whose offset does not match its text
    let row = serde_json::json!({"id": "a", "title": "", "context": "Paris is in France.", "question": "Where?",
        "answers": {"text": ["France"], "answer_start": [3]}});
    write(&data, "question_answering/squad/train.jsonl", &format!("{row}\n"));
    write(&data, "question_answering/squad/validation.jsonl", &format!("{row}\n"));
    let err = finetune(&config(&ckpt, "squad", &data, &out, &[])?, &FinetuneOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("train.jsonl:1") && err.contains("does not stand at answer_start 3"),
        "{err}"
    );
    // a tag missing from labels.json
    write(
        &data,
        "token_classification/conll2003/labels.json",
        "[\"O\", \"B-PER\", \"I-PER\"]",
    );
    let tagged = "{\"id\": \"0\", \"tokens\": [\"John\", \"ran\"], \"ner_tags\": [\"B-PER\", \"O\"]}\n";
    write(
        &data,
        "token_classification/conll2003/train.jsonl",
        &format!("{tagged}{}", tagged.replace("\"O\"]", "\"B-XYZ\"]")),
    );
    for split in ["validation", "test"] {
        write(&data, &format!("token_classification/conll2003/{split}.jsonl"), tagged);
    }
    let err = finetune(
        &config(&ckpt, "conll2003", &data, &out, &[])?,
        &FinetuneOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("train.jsonl:2") && err.contains("outside labels.json"),
        "{err}"
    );
    // a qrels line naming an unknown document
    let good = serde_json::json!({"id": "a", "title": "", "context": "Paris is in France.", "question": "Where?",
        "answers": {"text": ["France"], "answer_start": [12]}});
    write(
        &data,
        "question_answering/squad/train.jsonl",
        &format!("{good}\n{good}\n"),
    );
    write(
        &data,
        "retrieval/squad_dev/corpus.jsonl",
        "{\"_id\": \"d1\", \"title\": \"\", \"text\": \"Paris is in France.\"}\n",
    );
    write(
        &data,
        "retrieval/squad_dev/queries.jsonl",
        "{\"_id\": \"q1\", \"text\": \"Where is Paris?\"}\n",
    );
    write(
        &data,
        "retrieval/squad_dev/qrels/test.tsv",
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td9\t1\n",
    );
    let err = finetune(
        &config(&ckpt, "squad_retrieval", &data, &out, &[])?,
        &FinetuneOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("test.tsv:3") && err.contains("not in corpus.jsonl"),
        "{err}"
    );
    // a checkpoint whose vocabulary does not fit its tokenizer
    let small_vocab = dir.path().join("small_vocab");
    std::fs::create_dir_all(&small_vocab)?;
    for f in ["model.safetensors", "tokenizer.json"] {
        std::fs::copy(ckpt.join(f), small_vocab.join(f))?;
    }
    let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(ckpt.join("config.json"))?)?;
    json["vocab_size"] = 100.into();
    std::fs::write(small_vocab.join("config.json"), json.to_string())?;
    write(
        &data,
        "classification/sst2/train.jsonl",
        "{\"idx\": 0, \"sentence\": \"fine\", \"label\": 1}\n",
    );
    let err = finetune(
        &config(&small_vocab, "sst2", &data, &out, &[])?,
        &FinetuneOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("tokenizer.json") && err.contains("not this model's tokenizer"),
        "{err}"
    );
    // a backbone whose sizes differ from the checkpoint's weights
    json["vocab_size"] = 300.into();
    json["intermediate_size"] = 40.into();
    std::fs::write(small_vocab.join("config.json"), json.to_string())?;
    let err = finetune(
        &config(&small_vocab, "sst2", &data, &out, &[])?,
        &FinetuneOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("model.safetensors") && err.contains("mlp") && err.contains("shape"),
        "{err}"
    );
    // configuration errors name the field
    for (set, field) in [
        ("train.learning_rate=0.0", "train.learning_rate"),
        ("train.grad_accum=3", "train.grad_accum"),
        ("task.validation_fraction=1.5", "task.validation_fraction"),
        ("train.unknown=1", "unknown"),
    ] {
        let err = config(&ckpt, "sst2", &data, &out, &[set]).unwrap_err().to_string();
        assert!(err.contains(field), "{set}: {err}");
    }
    let err = finetune(
        &config(&ckpt, "wiki_squad", &data, &out, &[])?,
        &FinetuneOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("pretraining corpus"), "{err}");
    assert!(nothing_written(), "a refused run left files in {}", out.display());
    Ok(())
}

#[test]
fn the_cli_runs_a_config_and_prints_the_record() -> anyhow::Result<()> {
    let Some(data) = shared_data() else { return Ok(()) };
    let dir = tempfile::tempdir()?;
    let ckpt = tiny_checkpoint(dir.path())?;
    let cfg = config(&ckpt, "sst2", &data, &dir.path().join("ft"), &[])?;
    let path = dir.path().join("sst2.toml");
    std::fs::write(&path, toml::to_string(&cfg)?)?;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_encoderlab"))
        .args(["finetune", "--config"])
        .arg(&path)
        .args(["--set", "train.seed=4", "--threads", "2", "--save-model"])
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("\"status\": \"ok\"") && stdout.contains("\"seed\": 4"),
        "{stdout}"
    );
    let record = stdout
        .lines()
        .find_map(|l| l.strip_prefix("record: "))
        .expect("a record line");
    assert!(Path::new(record).join("runs.csv").exists());
    // --save-model: the fine-tuned model beside the record, named for `export hf`
    let model = stdout
        .lines()
        .find_map(|l| l.strip_prefix("model: "))
        .and_then(|l| l.split(" (").next())
        .expect("a model line");
    assert!(Path::new(model).join("model.safetensors").exists(), "{model}");
    assert_eq!(Path::new(model), Path::new(record).join("model"));
    // an unknown key is refused with its name, exit code 1
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_encoderlab"))
        .args(["finetune", "--config"])
        .arg(&path)
        .args(["--set", "task.bogus=1"])
        .output()?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus"));
    Ok(())
}

#[test]
fn a_config_without_a_corpus_cap_keeps_its_run_id() -> anyhow::Result<()> {
    // `task.max_corpus_docs` came after runs were recorded: left at 0 it is not serialised, so
    // the run id (the hash of the saved configuration) of every earlier config is unchanged
    let cfg = FinetuneConfig::load("configs/finetune/sst2_small.toml", &[])?;
    let saved = serde_json::to_string(&cfg)?;
    assert!(!saved.contains("max_corpus_docs"), "{saved}");
    let capped = FinetuneConfig::load(
        "configs/finetune/squad_retrieval_small.toml",
        &["task.max_corpus_docs=300".to_string()],
    )?;
    assert_eq!(capped.task.max_corpus_docs, 300);
    assert!(serde_json::to_string(&capped)?.contains("\"max_corpus_docs\":300"));
    Ok(())
}

/// Issue 20, item 4: evaluation batches sequences by length, and a sequence's scores do not
/// depend on its batch: one sequence a batch and 5 or 16 a batch (each padded to its longest)
/// give the same score for every instance, on sentences (SST-2), tagged words (CoNLL-2003) and
/// retrieval queries with their documents (SQuAD retrieval).
#[test]
fn scores_do_not_depend_on_the_evaluation_batch() -> anyhow::Result<()> {
    let Some(data) = shared_data() else { return Ok(()) };
    let dir = tempfile::tempdir()?;
    let ckpt = tiny_checkpoint(dir.path())?;
    for dataset in ["sst2", "conll2003", "squad_retrieval"] {
        let mut seen = Vec::new();
        for size in ["1", "5", "16"] {
            let out = dir.path().join(format!("{dataset}-{size}"));
            let set = format!("train.eval_batch_size={size}");
            let cfg = config(&ckpt, dataset, &data, &out, &[&set, "task.max_corpus_docs=40"])?;
            let result = finetune(&cfg, &FinetuneOptions::default())?;
            assert_eq!(result.status, Status::Ok, "{dataset}: {:?}", result.reason);
            seen.push(std::fs::read_to_string(cfg.run_dir()?.join("instances.jsonl"))?);
        }
        assert!(seen[0].lines().count() > 10, "{dataset}: {}", seen[0]);
        assert_eq!(seen[0], seen[1], "{dataset}: batches of 1 and 5 differ");
        assert_eq!(seen[0], seen[2], "{dataset}: batches of 1 and 16 differ");
    }
    Ok(())
}

#[test]
fn a_random_backbone_draws_its_weights_from_the_pretraining_seed_too() -> anyhow::Result<()> {
    let Some(data) = shared_data() else { return Ok(()) };
    let dir = tempfile::tempdir()?;
    let ckpt = tiny_checkpoint(dir.path())?;
    let first_loss = |sets: &[&str]| -> anyhow::Result<f64> {
        let mut all = vec!["model.init=\"random\"", "train.max_steps=1"];
        all.extend_from_slice(sets);
        let cfg = config(&ckpt, "sst2", &data, &dir.path().join("ft"), &all)?;
        finetune(&cfg, &FinetuneOptions::default())?;
        Ok(losses(&cfg.run_dir()?)[0])
    };
    // the same run seed: pretraining seed 0 (the checkpoint's) and an explicit 0 agree, 1 and 2
    // give other weights, and a seed repeated gives the same weights again
    let base = first_loss(&[])?;
    let zero = first_loss(&["model.pretrain_seed=0"])?;
    let one = first_loss(&["model.pretrain_seed=1"])?;
    let two = first_loss(&["model.pretrain_seed=2"])?;
    let again = first_loss(&["model.pretrain_seed=2", "train.log_every=2"])?;
    assert_eq!(base.to_bits(), zero.to_bits());
    assert!(one != base && two != base && one != two, "{base} {one} {two}");
    assert_eq!(two.to_bits(), again.to_bits());
    Ok(())
}

#[test]
fn a_linear_probe_trains_the_head_alone_and_is_its_own_system() -> anyhow::Result<()> {
    use encoderlab::heads::{Pooling, TaskModel};
    use encoderlab::model::AttentionMode;
    let dir = tempfile::tempdir()?;
    let ckpt = tiny_checkpoint(dir.path())?;
    let cfg = ModelConfig::from_hf_json(&ckpt.join("config.json"))?;
    let dev = Device::Cpu;
    for head in [HeadKind::Sequence { labels: 3 }, HeadKind::Token { labels: 5 }] {
        let map = init_task_weights(&cfg, head, &mut seeded(0, 1), &mut seeded(0, 2), &dev)?;
        let vb = candle_nn::VarBuilder::from_varmap(&map, DType::F32, &dev);
        let model = TaskModel::new(&cfg, head, Pooling::Mean, AttentionMode::Bidirectional, vb)?.frozen();
        let ids = candle_core::Tensor::new(&[[5u32, 6, 7, 8, 9]], &dev)?;
        let pad = candle_core::Tensor::ones((1, 5), DType::F32, &dev)?;
        let grads = model.forward(&ids, &pad, true)?.sqr()?.sum_all()?.backward()?;
        // gradients reach the head's weights and none of the backbone's
        for (name, var) in sorted_vars(&map)? {
            assert_eq!(
                grads.get(var.as_tensor()).is_some(),
                !name.starts_with("model."),
                "{name}"
            );
        }
    }
    let Some(data) = shared_data() else { return Ok(()) };
    let run = config(
        &ckpt,
        "sst2",
        &data,
        &dir.path().join("ft"),
        &["model.name=\"tiny\"", "train.freeze_backbone=true", "train.max_steps=4"],
    )?;
    let r = finetune(&run, &FinetuneOptions::default())?;
    assert_eq!(r.status, Status::Ok);
    assert_eq!(r.model, "tiny:probe");
    // the same run unfrozen is another run, of another system
    let full = config(
        &ckpt,
        "sst2",
        &data,
        &dir.path().join("ft"),
        &["model.name=\"tiny\"", "train.max_steps=4"],
    )?;
    assert_ne!(full.run_id()?, run.run_id()?);
    assert_eq!(finetune(&full, &FinetuneOptions::default())?.model, "tiny");
    // retrieval has no classifier to probe: refused by name
    let ir = config(
        &ckpt,
        "squad_retrieval",
        &data,
        &dir.path().join("ft"),
        &["train.freeze_backbone=true", "train.max_steps=2"],
    )?;
    let err = match finetune(&ir, &FinetuneOptions::default()) {
        Ok(r) => r.reason.unwrap_or_default(),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("train.freeze_backbone"), "{err}");
    Ok(())
}

/// A dataset registered by the user (a registry file of their own, JSONL splits and a
/// `labels.json`) fine-tunes through `task.registry` (the CLI's `--registry`); registry mistakes
/// are named: an unknown family (file and line), a missing split file, a label outside
/// `labels.json`, a registry that does not exist.
#[test]
fn a_dataset_of_ones_own_registry_fine_tunes_and_its_mistakes_are_named() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ckpt = tiny_checkpoint(dir.path())?;
    let (registry, data, test_split) = common::own_dataset(dir.path())?;
    let folder = test_split.parent().expect("the dataset's folder").to_path_buf();
    let registry_text = std::fs::read_to_string(&registry)?;
    let out = dir.path().join("records");
    let set = format!("task.registry={}", registry.display());
    let cfg = config(&ckpt, "my_reviews", &data, &out, &[&set])?;
    let r = finetune(&cfg, &FinetuneOptions::default())?;
    assert_eq!(r.status, Status::Ok, "{:?}", r.reason);
    assert_eq!((r.dataset.as_str(), r.family.as_str()), ("my_reviews", "SC"));
    assert!(r.test.is_some_and(|s| (0.0..=1.0).contains(&s)));
    // not in the built-in registry: without `task.registry` it is unknown
    let builtin = config(&ckpt, "my_reviews", &data, &out, &[])?;
    let err = finetune(&builtin, &FinetuneOptions::default()).unwrap_err().to_string();
    assert!(err.contains("my_reviews"), "{err}");

    // the error of a run with `set`, refused
    let refused = |set: &str| -> anyhow::Result<String> {
        let cfg = config(&ckpt, "my_reviews", &data, &out, &[set])?;
        Ok(finetune(&cfg, &FinetuneOptions::default()).unwrap_err().to_string())
    };
    // an unknown family: the registry file and its line are named
    let bad = write(
        dir.path(),
        "bad_family.toml",
        &registry_text.replace("sequence_classification", "sentiment"),
    );
    let set = format!("task.registry={}", bad.display());
    let err = refused(&set)?;
    assert!(err.contains("bad_family.toml") && err.contains("sentiment"), "{err}");
    // a split file missing: named
    std::fs::rename(folder.join("validation.jsonl"), folder.join("dev.jsonl"))?;
    let set = format!("task.registry={}", registry.display());
    let err = refused(&set)?;
    assert!(err.contains("validation.jsonl"), "{err}");
    std::fs::rename(folder.join("dev.jsonl"), folder.join("validation.jsonl"))?;
    // a label outside labels.json: the file, line and label are named
    let mut test = std::fs::read_to_string(folder.join("test.jsonl"))?;
    test.push_str("{\"text\": \"the film was odd\", \"label\": 7}\n");
    std::fs::write(folder.join("test.jsonl"), test)?;
    let err = refused(&set)?;
    assert!(
        err.contains("test.jsonl") && err.contains("outside labels.json"),
        "{err}"
    );
    // a registry that does not exist: refused when the config is read
    let err = config(&ckpt, "my_reviews", &data, &out, &["task.registry=nowhere.toml"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("task.registry") && err.contains("nowhere.toml"), "{err}");
    Ok(())
}

/// Every example fine-tuning config loads; the examples on fetched data (BBC News topics, Brown
/// POS, BBC News retrieval: what a fresh clone has after `data fetch`) read `data/`, and each
/// family has one.
#[test]
fn the_example_configs_load_and_some_need_only_fetched_data() -> anyhow::Result<()> {
    let registry = encoderlab::data::Registry::builtin()?;
    let mut fetched_families = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir("configs/finetune")? {
        let path = entry?.path();
        let cfg = FinetuneConfig::load(&path, &[])?;
        let spec = registry.get(&cfg.task.dataset)?;
        if spec.origin == encoderlab::data::registry::Origin::Fetched {
            assert_eq!(cfg.task.data_dir, Path::new("data"), "{}", path.display());
            fetched_families.insert(format!("{:?}", spec.family));
        }
    }
    assert_eq!(
        fetched_families.len(),
        3,
        "{fetched_families:?}: one example per family with fetched data"
    );
    Ok(())
}
