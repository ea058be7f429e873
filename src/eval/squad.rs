//! Extractive QA: SQuAD v1.1 exact match and token F1, as the official `evaluate-v1.1.py`
//! computes them: answers normalised (lower case, ASCII punctuation removed, the articles
//! a/an/the removed as whole words, whitespace collapsed), each question scored against its
//! best reference. The official script prints percentages; these are 0–1.

use std::collections::HashMap;

use super::{mismatch, Instance, Scores};
use crate::error::{Error, Result};

/// Python's `\w` on `str`: `_` and the characters `str.isalnum()` accepts, i.e. the general
/// categories L* and N*. Rust's `char::is_alphanumeric` also accepts the `Other_Alphabetic`
/// marks and symbols (combining U+0345, circled letters), which Python's `\b` treats as breaks.
pub(crate) fn is_python_word(c: char) -> bool {
    use unicode_general_category::{get_general_category, GeneralCategory as G};
    c == '_'
        || matches!(
            get_general_category(c),
            G::UppercaseLetter
                | G::LowercaseLetter
                | G::TitlecaseLetter
                | G::ModifierLetter
                | G::OtherLetter
                | G::DecimalNumber
                | G::LetterNumber
                | G::OtherNumber
        )
}

/// Python's `re.sub(r'\b(a|an|the)\b', ' ', text)`: a maximal run of word characters
/// ([`is_python_word`]) equal to an article becomes one space.
fn remove_articles(text: &str) -> String {
    let is_word = is_python_word;
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if matches!(word.as_str(), "a" | "an" | "the") {
            out.push(' ');
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if is_word(c) {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Python's `str.split()`: runs of Unicode whitespace and the four ASCII separators
/// U+001C–U+001F (which Rust's `char::is_whitespace` leaves out).
fn py_split(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
        .filter(|t| !t.is_empty())
}

/// The official `normalize_answer`.
pub fn normalize_answer(s: &str) -> String {
    let lower = s.to_lowercase();
    let no_punct: String = lower.chars().filter(|c| !c.is_ascii_punctuation()).collect();
    py_split(&remove_articles(&no_punct)).collect::<Vec<_>>().join(" ")
}

/// Exact match of one prediction against one reference.
pub fn exact_match(prediction: &str, reference: &str) -> bool {
    normalize_answer(prediction) == normalize_answer(reference)
}

/// Token F1 of one prediction against one reference (bag of normalised tokens).
pub fn f1(prediction: &str, reference: &str) -> f64 {
    let (p, r) = (normalize_answer(prediction), normalize_answer(reference));
    let (p, r): (Vec<&str>, Vec<&str>) = (p.split_whitespace().collect(), r.split_whitespace().collect());
    let mut counts: HashMap<&str, i64> = HashMap::new();
    for t in &r {
        *counts.entry(t).or_default() += 1;
    }
    let mut same = 0usize;
    for t in &p {
        if let Some(c) = counts.get_mut(t) {
            if *c > 0 {
                *c -= 1;
                same += 1;
            }
        }
    }
    if same == 0 {
        return 0.0;
    }
    let precision = same as f64 / p.len() as f64;
    let recall = same as f64 / r.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

/// Exact match and F1 of every question (`predictions[i]` answers the question with
/// `ids[i]` and references `references[i]`), each the maximum over the references.
pub fn squad_scores(ids: &[String], predictions: &[String], references: &[Vec<String>]) -> Result<(Scores, Scores)> {
    if predictions.len() != references.len() {
        return Err(mismatch("squad", "questions", predictions.len(), references.len()));
    }
    if ids.len() != references.len() {
        return Err(mismatch("squad", "ids", references.len(), ids.len()));
    }
    let (mut em, mut f) = (Vec::new(), Vec::new());
    for ((id, p), refs) in ids.iter().zip(predictions).zip(references) {
        if refs.is_empty() {
            return Err(Error::Metric {
                metric: "squad".to_string(),
                reason: format!(
                    "question `{id}` has no reference answer (SQuAD v1.1 scores answerable questions only)"
                ),
            });
        }
        let best_em = refs.iter().any(|r| exact_match(p, r));
        let best_f1 = refs.iter().map(|r| f1(p, r)).fold(0.0, f64::max);
        em.push(Instance {
            id: id.clone(),
            score: f64::from(u8::from(best_em)),
            counts: None,
        });
        f.push(Instance {
            id: id.clone(),
            score: best_f1,
            counts: None,
        });
    }
    Ok((Scores::mean("exact_match", em), Scores::mean("f1", f)))
}
