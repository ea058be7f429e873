//! Token classification: entity-level micro F1 over IOB2 (or IOBES) tags as seqeval's default
//! `f1_score` computes it (its `get_entities` chunking, reproduced rule for rule, so that an
//! `I-` tag without a `B-` still opens an entity), and token accuracy (POS tagging). Both
//! are over words: a sentence is a list of tag strings.

use super::{mismatch, Counts, Instance, Scores};
use crate::error::{Error, Result};

/// An entity: (type, first word, last word), as seqeval's `get_entities`.
pub type Entity = (String, usize, usize);

/// seqeval's split of a tag into its prefix character and its type (`B-PER` → (`B`, `PER`);
/// `O` → (`O`, `_`)).
fn split_tag(tag: &str) -> Result<(char, String)> {
    let mut chars = tag.chars();
    let prefix = chars.next().ok_or_else(|| Error::Metric {
        metric: "entity_f1".to_string(),
        reason: "an empty tag".to_string(),
    })?;
    let rest = chars.as_str();
    let kind = match rest.split_once('-') {
        Some((_, after)) => after,
        None => rest,
    };
    Ok((
        prefix,
        if kind.is_empty() {
            "_".to_string()
        } else {
            kind.to_string()
        },
    ))
}

fn end_of_chunk(prev_tag: char, tag: char, prev_type: &str, kind: &str) -> bool {
    matches!(prev_tag, 'E' | 'S')
        || (matches!(prev_tag, 'B' | 'I') && matches!(tag, 'B' | 'S' | 'O'))
        || (prev_tag != 'O' && prev_tag != '.' && prev_type != kind)
}

fn start_of_chunk(prev_tag: char, tag: char, prev_type: &str, kind: &str) -> bool {
    matches!(tag, 'B' | 'S')
        || (matches!(prev_tag, 'E' | 'S' | 'O') && matches!(tag, 'E' | 'I'))
        || (tag != 'O' && tag != '.' && prev_type != kind)
}

/// The entities of one sentence's tags (seqeval's `get_entities`).
pub fn entities(tags: &[String]) -> Result<Vec<Entity>> {
    let (mut prev_tag, mut prev_type, mut begin) = ('O', String::new(), 0);
    let mut chunks = Vec::new();
    let end = "O".to_string();
    for (i, tag) in tags.iter().chain(std::iter::once(&end)).enumerate() {
        let (tag, kind) = split_tag(tag)?;
        if end_of_chunk(prev_tag, tag, &prev_type, &kind) {
            chunks.push((prev_type.clone(), begin, i.saturating_sub(1)));
        }
        if start_of_chunk(prev_tag, tag, &prev_type, &kind) {
            begin = i;
        }
        (prev_tag, prev_type) = (tag, kind);
    }
    Ok(chunks)
}

/// Entity-level micro F1 over sentences: an entity counts when type, first and last word all
/// match. Each sentence's instance holds its counts (their sum gives the corpus F1) and its own
/// F1 (1 for a sentence with no entity in either).
pub fn entity_f1(ids: &[String], predicted: &[Vec<String>], gold: &[Vec<String>]) -> Result<Scores> {
    check("entity_f1", ids, predicted, gold)?;
    let mut total = Counts::default();
    let mut instances = Vec::with_capacity(gold.len());
    for ((id, p), g) in ids.iter().zip(predicted).zip(gold) {
        let (pe, ge) = (entities(p)?, entities(g)?);
        let counts = Counts {
            tp: pe.iter().filter(|e| ge.contains(e)).count() as u64,
            predicted: pe.len() as u64,
            gold: ge.len() as u64,
        };
        total = total + counts;
        let score = if counts.predicted + counts.gold == 0 {
            1.0
        } else {
            counts.f1()
        };
        instances.push(Instance {
            id: id.clone(),
            score,
            counts: Some(counts),
        });
    }
    Ok(Scores {
        metric: "entity_f1".to_string(),
        score: total.f1(),
        instances,
    })
}

/// Word-level accuracy over all words of all sentences; each sentence's instance holds its
/// accuracy and, as counts, (right words, words, words), so the corpus value is the sum of
/// `tp` over the sum of `gold`.
pub fn token_accuracy(ids: &[String], predicted: &[Vec<String>], gold: &[Vec<String>]) -> Result<Scores> {
    check("token_accuracy", ids, predicted, gold)?;
    let (mut right, mut words) = (0u64, 0u64);
    let mut instances = Vec::with_capacity(gold.len());
    for ((id, p), g) in ids.iter().zip(predicted).zip(gold) {
        let r = p.iter().zip(g).filter(|(a, b)| a == b).count() as u64;
        let n = g.len() as u64;
        (right, words) = (right + r, words + n);
        instances.push(Instance {
            id: id.clone(),
            score: if n == 0 { 1.0 } else { r as f64 / n as f64 },
            counts: Some(Counts {
                tp: r,
                predicted: n,
                gold: n,
            }),
        });
    }
    Ok(Scores {
        metric: "token_accuracy".to_string(),
        score: if words == 0 { 0.0 } else { right as f64 / words as f64 },
        instances,
    })
}

fn check(metric: &str, ids: &[String], predicted: &[Vec<String>], gold: &[Vec<String>]) -> Result<()> {
    if predicted.len() != gold.len() {
        return Err(mismatch(metric, "reference sentences", predicted.len(), gold.len()));
    }
    if ids.len() != gold.len() {
        return Err(mismatch(metric, "ids", gold.len(), ids.len()));
    }
    for (i, (p, g)) in predicted.iter().zip(gold).enumerate() {
        if p.len() != g.len() {
            return Err(Error::Metric {
                metric: metric.to_string(),
                reason: format!(
                    "sentence {} (`{}`): {} predicted tags for {} words",
                    i,
                    ids[i],
                    p.len(),
                    g.len()
                ),
            });
        }
    }
    Ok(())
}
