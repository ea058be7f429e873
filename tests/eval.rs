//! Fine-tuning metrics against their reference implementations: scikit-learn 1.9.1, seqeval
//! 1.2.2, the official SQuAD v1.1 script, pytrec_eval 0.5 and BEIR's MRR. Expected values come
//! from this script (Python 3.12):
//!
//! ```python
//! import re, string, collections
//! from sklearn.metrics import accuracy_score, f1_score
//! from seqeval.metrics import f1_score as seq_f1
//! from seqeval.metrics.sequence_labeling import get_entities
//! import pytrec_eval
//!
//! y_true = [0, 1, 2, 2, 1, 0, 3, 1, 2, 0, 0, 1]
//! y_pred = [0, 2, 2, 2, 1, 1, 4, 1, 0, 0, 2, 1]
//! print(accuracy_score(y_true, y_pred), f1_score(y_true, y_pred, average="macro"))
//!
//! true = [["B-PER", "I-PER", "O", "B-LOC"], ["I-ORG", "I-ORG", "O", "B-MISC", "I-MISC", "I-MISC"],
//!         ["O", "O"], ["B-LOC", "B-LOC", "I-PER", "O", "S-ORG", "B-PER", "E-PER"]]
//! pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "I-ORG", "O", "B-MISC", "I-MISC", "O"],
//!         ["O", "B-PER"], ["B-LOC", "I-LOC", "I-PER", "O", "S-ORG", "B-PER", "E-PER"]]
//! print(seq_f1(true, pred)); [print(get_entities(s)) for s in true + pred]
//! for s in [['S-ORG','I-ORG','E-ORG'], ['O','I','B','I'], ['E-PER','E-PER'], ['B-X','.','I-X']]:
//!     print(s, get_entities(s))
//!
//! # the official evaluate-v1.1.py
//! def normalize_answer(s):
//!     def remove_articles(text): return re.sub(r'\b(a|an|the)\b', ' ', text)
//!     def white_space_fix(text): return ' '.join(text.split())
//!     def remove_punc(text):
//!         exclude = set(string.punctuation); return ''.join(ch for ch in text if ch not in exclude)
//!     return white_space_fix(remove_articles(remove_punc(s.lower())))
//! def f1(prediction, ground_truth):
//!     p = normalize_answer(prediction).split(); g = normalize_answer(ground_truth).split()
//!     num_same = sum((collections.Counter(p) & collections.Counter(g)).values())
//!     if num_same == 0: return 0
//!     precision = 1.0 * num_same / len(p); recall = 1.0 * num_same / len(g)
//!     return (2 * precision * recall) / (precision + recall)
//! def em(prediction, ground_truth): return normalize_answer(prediction) == normalize_answer(ground_truth)
//! qa = [("The Eiffel Tower", ["Eiffel Tower", "the tower"]), ("in 1889, Paris", ["1889"]),
//!       ("an apple a day", ["apple day", "An Apple-a-day"]), ("Théâtre—the Opéra", ["théâtre opéra"]),
//!       ("the the the", ["cat"]), ("New  York\tCity!", ["new york city", "NYC"])]
//! for p, refs in qa:
//!     print(normalize_answer(p), max(em(p, r) for r in refs), max(f1(p, r) for r in refs))
//!
//! qrels = {"q1": {"d1": 2, "d3": 1, "d7": 1}, "q2": {"d2": 1}, "q3": {"d4": 3, "d5": 1, "d9": 2}}
//! run = {"q1": {"d1": 0.5, "d2": 0.9, "d3": 0.5, "d4": 0.1, "d7": -0.2},
//!        "q2": {"d1": 0.3, "d2": 0.3, "d3": 0.3},
//!        "q3": {f"d{i}": 1.0 / (i + 1) for i in range(12)}}
//! ev = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100", "recall.2"})
//! for q, m in sorted(ev.evaluate(run).items()): print(q, m["ndcg_cut_10"], m["recall_100"], m["recall_2"])
//! # BEIR (beir/retrieval/custom_metrics.py::mrr): per query, sorted(doc_scores.items(),
//! # key=lambda item: item[1], reverse=True)[0:k]; 1 / (rank + 1) of the first doc with qrels > 0;
//! # summed and divided by len(qrels)
//! ```
//! printed: 0.5833333333333334 0.37857142857142856; 0.5555555555555556; the entities below;
//! the SQuAD rows below; q1 0.6444675286963276 1.0 0.3333333333333333, q2 0.6309297535714575 1.0
//! 1.0, q3 0.4399321857994812 1.0 0.0; MRR@1 0.0, MRR@10 0.39999999999999997 (q1 0.5, q2 0.5,
//! q3 0.2).

use encoderlab::eval::classification::{accuracy, macro_f1};
use encoderlab::eval::retrieval::{retrieval_metric, retrieval_scores, Qrels, Run};
use encoderlab::eval::squad::{normalize_answer, squad_scores};
use encoderlab::eval::tagging::{entities, entity_f1, token_accuracy};
use encoderlab::eval::{Counts, Scores};

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("i{i}")).collect()
}

fn strings(rows: &[&[&str]]) -> Vec<Vec<String>> {
    rows.iter().map(|r| r.iter().map(|s| s.to_string()).collect()).collect()
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-12, "{a} vs {b}");
}

/// For averaged metrics, the instances' mean is the reported score.
fn mean_is_score(s: &Scores) {
    let mean = s.instances.iter().map(|i| i.score).sum::<f64>() / s.instances.len() as f64;
    close(mean, s.score);
}

#[test]
fn accuracy_and_macro_f1_match_scikit_learn() -> anyhow::Result<()> {
    let gold = [0, 1, 2, 2, 1, 0, 3, 1, 2, 0, 0, 1];
    let pred = [0, 2, 2, 2, 1, 1, 4, 1, 0, 0, 2, 1];
    let acc = accuracy(&ids(12), &pred, &gold)?;
    close(acc.score, 0.5833333333333334);
    mean_is_score(&acc);
    let f = macro_f1(&ids(12), &pred, &gold)?;
    close(f.score, 0.37857142857142856);
    assert_eq!(f.metric, "macro_f1");
    assert!(accuracy(&ids(12), &pred[..11], &gold).is_err());
    Ok(())
}

#[test]
fn entities_and_entity_f1_match_seqeval() -> anyhow::Result<()> {
    let gold = strings(&[
        &["B-PER", "I-PER", "O", "B-LOC"],
        &["I-ORG", "I-ORG", "O", "B-MISC", "I-MISC", "I-MISC"],
        &["O", "O"],
        &["B-LOC", "B-LOC", "I-PER", "O", "S-ORG", "B-PER", "E-PER"],
    ]);
    let pred = strings(&[
        &["B-PER", "I-PER", "O", "B-ORG"],
        &["B-ORG", "I-ORG", "O", "B-MISC", "I-MISC", "O"],
        &["O", "B-PER"],
        &["B-LOC", "I-LOC", "I-PER", "O", "S-ORG", "B-PER", "E-PER"],
    ]);
    let e = |t: &str, a: usize, b: usize| (t.to_string(), a, b);
    let expected = [
        vec![e("PER", 0, 1), e("LOC", 3, 3)],
        vec![e("ORG", 0, 1), e("MISC", 3, 5)],
        vec![],
        vec![
            e("LOC", 0, 0),
            e("LOC", 1, 1),
            e("PER", 2, 2),
            e("ORG", 4, 4),
            e("PER", 5, 6),
        ],
        vec![e("PER", 0, 1), e("ORG", 3, 3)],
        vec![e("ORG", 0, 1), e("MISC", 3, 4)],
        vec![e("PER", 1, 1)],
        vec![e("LOC", 0, 1), e("PER", 2, 2), e("ORG", 4, 4), e("PER", 5, 6)],
    ];
    for (tags, want) in gold.iter().chain(&pred).zip(&expected) {
        assert_eq!(&entities(tags)?, want, "{tags:?}");
    }
    // the rarer rules (IOBES continuations, bare tags, seqeval's '.')
    for (tags, want) in [
        (&["S-ORG", "I-ORG", "E-ORG"][..], vec![e("ORG", 0, 0), e("ORG", 1, 2)]),
        (&["O", "I", "B", "I"], vec![e("_", 1, 1), e("_", 2, 3)]),
        (&["E-PER", "E-PER"], vec![e("PER", 0, 0), e("PER", 1, 1)]),
        (&["B-X", ".", "I-X"], vec![e("X", 0, 0), e("X", 2, 2)]),
    ] {
        let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        assert_eq!(entities(&tags)?, want, "{tags:?}");
    }
    let f = entity_f1(&ids(4), &pred, &gold)?;
    close(f.score, 0.5555555555555556);
    // the summed counts give the corpus score; a sentence without entities on either side is 1
    let total = f
        .instances
        .iter()
        .filter_map(|i| i.counts)
        .fold(Counts::default(), |a, c| a + c);
    close(total.f1(), f.score);
    assert_eq!(f.instances[2].score, 0.0); // predicted an entity where there is none
    let none = entity_f1(&ids(1), &strings(&[&["O"]]), &strings(&[&["O"]]))?;
    assert_eq!((none.score, none.instances[0].score), (0.0, 1.0));
    // misaligned sentences are refused, naming the sentence
    let err = entity_f1(&ids(1), &strings(&[&["O"]]), &strings(&[&["O", "O"]])).unwrap_err();
    assert!(err.to_string().contains("sentence 0"), "{err}");
    Ok(())
}

#[test]
fn token_accuracy_counts_words() -> anyhow::Result<()> {
    let gold = strings(&[&["DET", "NOUN", "VERB"], &["PRON"]]);
    let pred = strings(&[&["DET", "VERB", "VERB"], &["PRON"]]);
    let s = token_accuracy(&ids(2), &pred, &gold)?;
    close(s.score, 3.0 / 4.0);
    close(s.instances[0].score, 2.0 / 3.0);
    let (right, words) = s
        .instances
        .iter()
        .filter_map(|i| i.counts)
        .fold((0, 0), |(r, w), c| (r + c.tp, w + c.gold));
    close(right as f64 / words as f64, s.score);
    Ok(())
}

#[test]
fn squad_scores_match_the_official_script() -> anyhow::Result<()> {
    let rows: [(&str, &[&str], &str, bool, f64); 6] = [
        (
            "The Eiffel Tower",
            &["Eiffel Tower", "the tower"],
            "eiffel tower",
            true,
            1.0,
        ),
        ("in 1889, Paris", &["1889"], "in 1889 paris", false, 0.5),
        (
            "an apple a day",
            &["apple day", "An Apple-a-day"],
            "apple day",
            true,
            1.0,
        ),
        ("Théâtre—the Opéra", &["théâtre opéra"], "théâtre— opéra", false, 0.5),
        ("the the the", &["cat"], "", false, 0.0),
        (
            "New  York\tCity!",
            &["new york city", "NYC"],
            "new york city",
            true,
            1.0,
        ),
    ];
    for (p, _, normal, _, _) in &rows {
        assert_eq!(normalize_answer(p), *normal, "{p}");
    }
    let predictions: Vec<String> = rows.iter().map(|r| r.0.to_string()).collect();
    let references: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.1.iter().map(|s| s.to_string()).collect())
        .collect();
    let (em, f1) = squad_scores(&ids(6), &predictions, &references)?;
    for (i, (_, _, _, e, f)) in rows.iter().enumerate() {
        assert_eq!(em.instances[i].score, f64::from(u8::from(*e)), "row {i}");
        close(f1.instances[i].score, *f);
    }
    close(em.score, 3.0 / 6.0);
    close(f1.score, 4.0 / 6.0);
    mean_is_score(&f1);
    // a question without a reference is refused
    assert!(squad_scores(&ids(1), &predictions[..1], &[vec![]]).is_err());
    Ok(())
}

#[test]
fn retrieval_metrics_match_pytrec_eval_and_beir() -> anyhow::Result<()> {
    let mut qrels = Qrels::new();
    for (q, judged) in [
        ("q1", vec![("d1", 2), ("d3", 1), ("d7", 1)]),
        ("q2", vec![("d2", 1)]),
        ("q3", vec![("d4", 3), ("d5", 1), ("d9", 2)]),
    ] {
        qrels.insert(q.into(), judged.into_iter().map(|(d, r)| (d.to_string(), r)).collect());
    }
    let docs = |v: &[(&str, f64)]| v.iter().map(|(d, s)| (d.to_string(), *s)).collect::<Vec<_>>();
    let mut run = Run::new();
    run.insert(
        "q1".into(),
        docs(&[("d1", 0.5), ("d2", 0.9), ("d3", 0.5), ("d4", 0.1), ("d7", -0.2)]),
    );
    run.insert("q2".into(), docs(&[("d1", 0.3), ("d2", 0.3), ("d3", 0.3)]));
    run.insert(
        "q3".into(),
        (0..12).map(|i| (format!("d{i}"), 1.0 / (i + 1) as f64)).collect(),
    );
    let all = retrieval_scores(&run, &qrels)?;
    let ndcg = [0.6444675286963276, 0.6309297535714575, 0.4399321857994812];
    for (inst, want) in all[0].instances.iter().zip(ndcg) {
        close(inst.score, want);
    }
    close(all[0].score, ndcg.iter().sum::<f64>() / 3.0);
    assert_eq!(all[1].metric, "mrr@10");
    close(all[1].score, 0.39999999999999997);
    close(all[2].score, 1.0);
    let r2 = retrieval_metric("recall@2", &run, &qrels)?;
    let got: Vec<f64> = r2.instances.iter().map(|i| i.score).collect();
    assert_eq!(got, vec![1.0 / 3.0, 1.0, 0.0]);
    close(retrieval_metric("mrr@1", &run, &qrels)?.score, 0.0);
    for s in &all {
        mean_is_score(s);
    }
    // a judged query missing from the run scores 0; a malformed name is refused
    run.remove("q2");
    close(retrieval_metric("ndcg@10", &run, &qrels)?.instances[1].score, 0.0);
    assert!(retrieval_metric("ndcg", &run, &qrels).is_err());
    assert!(retrieval_metric("map@10", &run, &qrels).is_err());
    Ok(())
}

/// The SQuAD normalisation against the official script over every assigned code point of
/// Python's Unicode database (private use and surrogates aside): each character placed around
/// and inside articles, in a string the official `normalize_answer` (pasted above; Python 3)
/// normalises here, then compared with ours. It caught `\b` differing from Rust's
/// `is_alphanumeric` on combining marks (U+0345) and circled letters (U+24B6).
#[test]
fn squad_normalisation_matches_the_official_script_on_every_character() -> anyhow::Result<()> {
    const SCRIPT: &str = r#"
import json, re, string, sys, unicodedata
def normalize_answer(s):
    def remove_articles(text): return re.sub(r'\b(a|an|the)\b', ' ', text)
    def white_space_fix(text): return ' '.join(text.split())
    def remove_punc(text):
        exclude = set(string.punctuation); return ''.join(ch for ch in text if ch not in exclude)
    return white_space_fix(remove_articles(remove_punc(s.lower())))
out = sys.stdout
for cp in range(0x110000):
    c = chr(cp)
    if unicodedata.category(c) in ('Cn', 'Co', 'Cs'):
        continue
    s = f"The{c} an{c}x {c}the A{c}"
    out.write(json.dumps([cp, s, normalize_answer(s)]) + "\n")
"#;
    let Ok(output) = std::process::Command::new("python3").args(["-c", SCRIPT]).output() else {
        eprintln!("SKIPPED: python3 not found");
        return Ok(());
    };
    anyhow::ensure!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout)?;
    let mut checked = 0;
    let mut differ = Vec::new();
    for line in text.lines() {
        let (cp, s, expected): (u32, String, String) = serde_json::from_str(line)?;
        let ours = normalize_answer(&s);
        if ours != expected {
            differ.push(format!("U+{cp:04X}: official {expected:?}, ours {ours:?}"));
        }
        checked += 1;
    }
    assert!(checked > 100_000, "only {checked} characters checked");
    assert!(
        differ.is_empty(),
        "{} of {checked} characters differ, e.g. {:?}",
        differ.len(),
        &differ[..differ.len().min(10)]
    );
    Ok(())
}
