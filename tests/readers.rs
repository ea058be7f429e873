//! Dataset readers on small inline samples of every format, the registry, every bad input, and
//! (when the shared bundle is present) every registry dataset of `../shared/data`.

mod common;

use std::path::Path;

use common::{shared_data, write};
use encoderlab::data::registry::Origin;
use encoderlab::data::stats::{dataset_stats, majority_share};
use encoderlab::data::tasks::{
    read_classification, read_labels, read_qa, read_retrieval, read_tagging, ClassificationFields,
};
use encoderlab::data::{Metric, Registry, TaskFamily};

const SST: &str = r#"{"idx": 0, "sentence": "a gripping film", "label": 1}
{"idx": 1, "sentence": "dull", "label": 0}
"#;

#[test]
fn classification_single_pair_and_named_labels() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let labels = vec!["negative".to_string(), "positive".to_string()];
    let path = write(dir.path(), "sst.jsonl", SST);
    let fields = ClassificationFields {
        text: "sentence",
        text_pair: None,
        label: "label",
    };
    let ex = read_classification(&path, &fields, &labels)?;
    assert_eq!(ex.len(), 2);
    assert_eq!(
        (ex[0].id.as_str(), ex[0].text.as_str(), ex[0].label),
        ("0", "a gripping film", 1)
    );
    assert_eq!(ex[1].text_pair, None);

    let rte = write(
        dir.path(),
        "rte.jsonl",
        r#"{"idx": 7, "premise": "A dog runs.", "hypothesis": "An animal moves.", "label": "positive"}
"#,
    );
    let fields = ClassificationFields {
        text: "premise",
        text_pair: Some("hypothesis"),
        label: "label",
    };
    let ex = read_classification(&rte, &fields, &labels)?;
    assert_eq!(ex[0].text_pair.as_deref(), Some("An animal moves."));
    assert_eq!(ex[0].label, 1);
    Ok(())
}

#[test]
fn classification_bad_inputs_name_file_line_and_field() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let labels = vec!["negative".to_string(), "positive".to_string()];
    let fields = ClassificationFields {
        text: "sentence",
        text_pair: None,
        label: "label",
    };
    let cases = [
        (
            "{\"sentence\": \"x\", \"label\": 2}\n",
            "bad.jsonl:1",
            "outside labels.json (2 labels: negative, positive)",
        ),
        (
            "{\"sentence\": \"x\", \"label\": 0}\n{\"sentence\": \"y\"}\n",
            "bad.jsonl:2",
            "missing field `label`",
        ),
        ("{\"label\": 0}\n", "bad.jsonl:1", "missing field `sentence`"),
        (
            "{\"sentence\": 3, \"label\": 0}\n",
            "bad.jsonl:1",
            "field `sentence` should be a string",
        ),
        (
            "{\"sentence\": \"x\", \"label\": 0}\n{\"sentence\": \"y\" \"label\": 1}\n",
            "bad.jsonl:2",
            "malformed JSON",
        ),
    ];
    for (text, location, message) in cases {
        let path = write(dir.path(), "bad.jsonl", text);
        let err = read_classification(&path, &fields, &labels).unwrap_err().to_string();
        assert!(err.contains(location) && err.contains(message), "{err}");
    }
    let err = read_classification(&dir.path().join("absent.jsonl"), &fields, &labels)
        .unwrap_err()
        .to_string();
    assert!(err.contains("absent.jsonl") && err.contains("not found"), "{err}");
    Ok(())
}

#[test]
fn labels_json_list_and_keyed() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let list = write(dir.path(), "a/labels.json", r#"["O", "B-PER"]"#);
    assert_eq!(read_labels(&list, None)?, ["O", "B-PER"]);
    let keyed = write(
        dir.path(),
        "b/labels.json",
        r#"{"coarse_label": ["ABBR", "ENTY"], "fine_label": ["x"]}"#,
    );
    assert_eq!(read_labels(&keyed, Some("coarse_label"))?, ["ABBR", "ENTY"]);
    let err = read_labels(&keyed, None).unwrap_err().to_string();
    assert!(err.contains("labels_key"), "{err}");
    let dup = write(dir.path(), "c/labels.json", r#"["a", "a"]"#);
    assert!(read_labels(&dup, None).unwrap_err().to_string().contains("repeat"));
    Ok(())
}

#[test]
fn tagging_string_tags_and_mismatches() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let labels: Vec<String> = ["O", "B-PER", "I-PER"].iter().map(|s| s.to_string()).collect();
    let path = write(
        dir.path(),
        "t.jsonl",
        "{\"id\": \"0\", \"tokens\": [\"John\", \"Smith\", \"ran\"], \"ner_tags\": [\"B-PER\", \"I-PER\", \"O\"]}\n",
    );
    let ex = read_tagging(&path, "tokens", "ner_tags", &labels)?;
    assert_eq!(ex[0].tags, [1, 2, 0]);
    assert_eq!(ex[0].tokens, ["John", "Smith", "ran"]);
    let path = write(
        dir.path(),
        "t.jsonl",
        "{\"tokens\": [\"a\", \"b\"], \"ner_tags\": [\"O\"]}\n",
    );
    let err = read_tagging(&path, "tokens", "ner_tags", &labels)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("t.jsonl:1") && err.contains("2 tokens but 1 tags"),
        "{err}"
    );
    let path = write(
        dir.path(),
        "t.jsonl",
        "{\"tokens\": [\"a\"], \"ner_tags\": [\"B-LOC\"]}\n",
    );
    let err = read_tagging(&path, "tokens", "ner_tags", &labels)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ner_tags[0]") && err.contains("outside labels.json"),
        "{err}"
    );
    Ok(())
}

#[test]
fn qa_offsets_are_checked_in_characters() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let good = r#"{"id": "q1", "title": "Zürich", "context": "Zürich is in Switzerland.", "question": "Where is Zürich?", "answers": {"text": ["Switzerland", "Switzerland"], "answer_start": [13, 13]}}
"#;
    let path = write(dir.path(), "qa.jsonl", good);
    let qa = read_qa(&path)?;
    assert_eq!(qa[0].answers.len(), 2);
    assert_eq!(qa[0].answers[0].start_char, 13);
    assert_eq!(qa[0].title, "Zürich");
    let bad = good.replace("[13, 13]", "[13, 12]");
    let path = write(dir.path(), "qa.jsonl", &bad);
    let err = read_qa(&path).unwrap_err().to_string();
    assert!(
        err.contains("qa.jsonl:1") && err.contains("does not stand at answer_start 12"),
        "{err}"
    );
    let unanswerable = r#"{"id": "q2", "context": "c", "question": "q", "answers": {"text": [], "answer_start": []}}
"#;
    let path = write(dir.path(), "qa.jsonl", unanswerable);
    assert!(read_qa(&path)?[0].answers.is_empty());
    Ok(())
}

#[test]
fn retrieval_beir_folder() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    write(
        dir.path(),
        "corpus.jsonl",
        "{\"_id\": \"d1\", \"title\": \"T\", \"text\": \"one\"}\n{\"_id\": \"d2\", \"text\": \"two\"}\n",
    );
    write(
        dir.path(),
        "queries.jsonl",
        "{\"_id\": \"q1\", \"text\": \"first?\"}\n{\"_id\": \"q2\", \"text\": \"unjudged\"}\n",
    );
    let qrels = write(
        dir.path(),
        "qrels/test.tsv",
        "query-id\tcorpus-id\tscore\nq1\td2\t2\nq1\td1\t0\n",
    );
    let r = read_retrieval(dir.path(), &qrels)?;
    assert_eq!(r.docs.len(), 2);
    assert_eq!(r.queries.len(), 1, "only judged queries are kept");
    assert_eq!(r.qrels["q1"].len(), 1, "zero scores are not relevant");
    assert_eq!(r.qrels["q1"]["d2"], 2);
    write(dir.path(), "qrels/test.tsv", "query-id\tcorpus-id\tscore\nq1\td9\t1\n");
    let err = read_retrieval(dir.path(), &qrels).unwrap_err().to_string();
    assert!(
        err.contains("test.tsv:2") && err.contains("\"d9\" is not in corpus.jsonl"),
        "{err}"
    );
    write(dir.path(), "qrels/test.tsv", "query-id\tcorpus-id\tscore\nq7\td1\t1\n");
    let err = read_retrieval(dir.path(), &qrels).unwrap_err().to_string();
    assert!(err.contains("\"q7\" is not in queries.jsonl"), "{err}");
    Ok(())
}

#[cfg(feature = "polars")]
#[test]
fn parquet_tables_read_like_jsonl() -> anyhow::Result<()> {
    use encoderlab::data::Corpus;
    use polars::prelude::*;
    let dir = tempfile::tempdir()?;
    let save = |name: &str, df: &mut DataFrame| -> anyhow::Result<std::path::PathBuf> {
        let path = dir.path().join(name);
        ParquetWriter::new(std::fs::File::create(&path)?).finish(df)?;
        Ok(path)
    };
    let labels = vec!["negative".to_string(), "positive".to_string()];
    let mut df = df!("sentence" => ["good", "bad"], "label" => [1i64, 0])?;
    let path = save("cls.parquet", &mut df)?;
    let fields = ClassificationFields {
        text: "sentence",
        text_pair: None,
        label: "label",
    };
    let ex = read_classification(&path, &fields, &labels)?;
    assert_eq!((ex[0].text.as_str(), ex[0].label, ex[1].label), ("good", 1, 0));
    assert_eq!(
        ex[1].id, "2",
        "rows without an id column are named by their 1-based row"
    );

    let tokens = Series::new(
        "tokens".into(),
        [Series::new("".into(), ["John", "ran"]), Series::new("".into(), ["Go"])],
    );
    let tags = Series::new(
        "ner_tags".into(),
        [Series::new("".into(), ["B-PER", "O"]), Series::new("".into(), ["O"])],
    );
    let mut df = DataFrame::new_infer_height(vec![tokens.into(), tags.into()])?;
    let path = save("tag.parquet", &mut df)?;
    let tag_labels: Vec<String> = ["O", "B-PER"].iter().map(|s| s.to_string()).collect();
    let ex = read_tagging(&path, "tokens", "ner_tags", &tag_labels)?;
    assert_eq!(ex[0].tags, [1, 0]);
    assert_eq!(ex[1].tokens, ["Go"]);

    let texts = Series::new("text".into(), [Series::new("".into(), ["Paris"])]);
    let starts = Series::new("answer_start".into(), [Series::new("".into(), [0i64])]);
    let answers = StructChunked::from_series("answers".into(), 1, [texts, starts].iter())?.into_series();
    let mut df = DataFrame::new_infer_height(vec![
        Series::new("id".into(), ["q1"]).into(),
        Series::new("context".into(), ["Paris is big."]).into(),
        Series::new("question".into(), ["Which city?"]).into(),
        answers.into(),
    ])?;
    let path = save("qa.parquet", &mut df)?;
    let qa = read_qa(&path)?;
    assert_eq!(qa[0].answers[0].text, "Paris");

    let mut df = df!("body" => ["first doc", "second doc"])?;
    let path = save("text.parquet", &mut df)?;
    let docs: Vec<_> = Corpus::open(std::slice::from_ref(&path), "body")?
        .documents()
        .collect::<Result<_, _>>()?;
    assert_eq!(docs[1].text, "second doc");
    let err = Corpus::open(&[path], "text")?
        .documents()
        .collect::<Result<Vec<_>, _>>()
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing column `text`") && err.contains("body"), "{err}");
    Ok(())
}

#[test]
fn registry_rejects_unknown_keys_and_names() -> anyhow::Result<()> {
    let reg = Registry::builtin()?;
    let err = reg.get("sst3").unwrap_err().to_string();
    assert!(
        err.contains("unknown dataset `sst3`") && err.contains("sst2") && err.contains("conll2003"),
        "{err}"
    );
    let bad =
        "[x]\nfamily = \"pretraining\"\norigin = \"shared\"\npath = \"p\"\ntext_field = \"text\"\ncolour = \"red\"\n";
    let err = Registry::parse(bad, Path::new("reg.toml")).unwrap_err().to_string();
    assert!(err.contains("reg.toml") && err.contains("colour"), "{err}");
    let missing = "[x]\nfamily = \"sequence_classification\"\norigin = \"shared\"\npath = \"p\"\nsplits = { test = \"t.jsonl\" }\nmetric = \"accuracy\"\nchance_score = 0.5\n";
    let err = Registry::parse(missing, Path::new("reg.toml")).unwrap_err().to_string();
    assert!(err.contains("x.text_field"), "{err}");
    let err = reg
        .classification("conll2003", Path::new("/nowhere"), "train")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`conll2003` is a token_classification dataset, not sequence_classification"),
        "{err}"
    );
    Ok(())
}

#[test]
fn registry_covers_every_family_and_origin() -> anyhow::Result<()> {
    let reg = Registry::builtin()?;
    for family in [
        TaskFamily::Pretraining,
        TaskFamily::SequenceClassification,
        TaskFamily::TokenClassification,
        TaskFamily::ExtractiveQa,
        TaskFamily::Retrieval,
    ] {
        for origin in [Origin::Shared, Origin::Fetched] {
            let any = reg.datasets.values().any(|d| d.family == family && d.origin == origin);
            assert!(
                any || (family == TaskFamily::ExtractiveQa && origin == Origin::Fetched),
                "{family:?} {origin:?}"
            );
        }
    }
    assert_eq!(reg.get("conll2003")?.metric, Some(Metric::EntityF1));
    Ok(())
}

/// Every shared dataset loads through the registry with the counts of `../shared/data/README.md`,
/// and every accuracy chance score equals the test split's majority share.
#[test]
fn shared_bundle_loads_with_documented_counts() -> anyhow::Result<()> {
    let Some(data) = shared_data() else { return Ok(()) };
    let reg = Registry::builtin()?;
    let expect: &[(&str, &str, u64)] = &[
        ("sst2", "train", 67_349),
        ("sst2", "validation", 872),
        ("sst2", "test", 1_821),
        ("trec", "train", 5_452),
        ("trec", "test", 500),
        ("trec_fine", "test", 500),
        ("rte", "train", 3_030),
        ("rte", "validation", 337),
        ("rte", "test", 800),
        ("conll2003", "train", 14_041),
        ("conll2003", "validation", 3_250),
        ("conll2003", "test", 3_453),
        ("ud_ewt_upos", "train", 12_544),
        ("ud_ewt_upos", "test", 2_077),
        ("squad", "train", 87_599),
        ("squad", "validation", 10_570),
        ("squad_retrieval", "test", 10_570),
        ("cranfield", "test", 225),
        ("wiki_squad", "all", 18_896),
        ("nltk_abc", "all", 3_524),
        ("nltk_webtext", "all", 3_507),
        ("nltk_state_union", "all", 1_057),
        ("nltk_inaugural", "all", 1_417),
    ];
    for &(name, split, count) in expect {
        let stats = dataset_stats(&reg, name, &data)?;
        let s = stats.splits.iter().find(|s| s.split == split).unwrap();
        assert_eq!(s.count, count, "{name} {split}");
    }
    let conll = dataset_stats(&reg, "conll2003", &data)?;
    assert_eq!(
        conll.splits.iter().find(|s| s.split == "train").unwrap().details["tokens"],
        203_621.0
    );
    let squad = dataset_stats(&reg, "squad", &data)?;
    assert_eq!(
        squad.splits.iter().find(|s| s.split == "validation").unwrap().details["answers"],
        34_726.0
    );
    for (name, spec) in &reg.datasets {
        if spec.origin != Origin::Shared {
            continue;
        }
        assert!(
            spec.is_present(&data),
            "{name} is in the registry but not in the shared bundle"
        );
        let chance = spec.chance_score.unwrap_or(0.0);
        match spec.metric {
            Some(Metric::Accuracy) => {
                let test = reg.classification(name, &data, "test")?;
                let share = majority_share(test.examples.iter().map(|e| e.label));
                assert!(
                    (share - chance).abs() < 1e-12,
                    "{name}: registry {chance}, data {share}"
                );
            }
            Some(Metric::TokenAccuracy) => {
                let test = reg.tagging(name, &data, "test")?;
                let share = majority_share(test.examples.iter().flat_map(|e| e.tags.iter().copied()));
                assert!(
                    (share - chance).abs() < 1e-12,
                    "{name}: registry {chance}, data {share}"
                );
            }
            _ => assert_eq!(chance, 0.0, "{name}"),
        }
    }
    Ok(())
}

/// Issue 18, items 10 and 13: an empty split is refused by every reader (a run would otherwise
/// report a score of 0 from 0 examples), and qrels naming an unknown query name the line.
#[test]
fn empty_splits_are_refused_and_unknown_queries_name_their_line() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let labels = vec!["negative".to_string(), "positive".to_string()];
    let fields = ClassificationFields {
        text: "sentence",
        text_pair: None,
        label: "label",
    };
    for text in ["", "\n\n"] {
        let path = write(dir.path(), "validation.jsonl", text);
        let err = read_classification(&path, &fields, &labels).unwrap_err().to_string();
        assert!(
            err.contains("validation.jsonl") && err.contains("holds no example"),
            "{err}"
        );
        let err = read_tagging(&path, "tokens", "tags", &labels).unwrap_err().to_string();
        assert!(err.contains("holds no example"), "{err}");
        let err = read_qa(&path).unwrap_err().to_string();
        assert!(err.contains("holds no example"), "{err}");
    }
    write(dir.path(), "corpus.jsonl", "{\"_id\": \"d1\", \"text\": \"one\"}\n");
    write(dir.path(), "queries.jsonl", "{\"_id\": \"q1\", \"text\": \"first?\"}\n");
    let qrels = write(
        dir.path(),
        "qrels/test.tsv",
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td1\t2\nq7\td1\t1\n",
    );
    let err = read_retrieval(dir.path(), &qrels).unwrap_err().to_string();
    assert!(
        err.contains("test.tsv:4") && err.contains("\"q7\" is not in") && err.contains("queries.jsonl"),
        "{err}"
    );
    Ok(())
}
