//! From examples to model inputs. Every input is the text's tokens followed by the end-of-text
//! separator (the document boundary the backbone saw in pretraining); a pair is
//! `a <eos> b <eos>`; no begin-of-text token (pretraining packed documents without one). Inputs
//! longer than `max_length` are cut (pairs: the longer side first); QA contexts are instead
//! split into overlapping windows.

use crate::data::tasks::{ClassificationExample, QaExample, TaggingExample};
use crate::error::{Error, Result};
use crate::tokenizer::TextTokenizer;

/// Cuts the longer of `a` and `b` one token at a time until both fit in `budget` tokens.
fn truncate_pair(a: &mut Vec<u32>, b: &mut Vec<u32>, budget: usize) {
    while a.len() + b.len() > budget {
        if a.len() >= b.len() {
            a.pop();
        } else {
            b.pop();
        }
    }
}

/// Input ids of a sequence-classification example.
pub(crate) fn classification_input(
    tok: &TextTokenizer,
    ex: &ClassificationExample,
    sep: u32,
    max_length: usize,
) -> Result<Vec<u32>> {
    let mut a = tok.encode(&ex.text)?;
    Ok(match &ex.text_pair {
        None => {
            a.truncate(max_length.saturating_sub(1));
            a.push(sep);
            a
        }
        Some(pair) => {
            let mut b = tok.encode(pair)?;
            truncate_pair(&mut a, &mut b, max_length.saturating_sub(2));
            a.push(sep);
            a.extend(b);
            a.push(sep);
            a
        }
    })
}

/// A tagged sentence as model input: ids, the gold tag of each word's first token (−1 on the
/// other positions) and, per word, the position of its first token (`None` when truncation cut
/// the word off).
#[derive(Debug, Clone, PartialEq)]
pub struct TaggingInput {
    /// Token ids, separator included.
    pub ids: Vec<u32>,
    /// Per position: the tag to learn, or −1 (not a word's first token).
    pub labels: Vec<i64>,
    /// Per word: the position of its first token.
    pub word_starts: Vec<Option<usize>>,
}

/// Input of a tagged sentence: the words joined by single spaces, each token assigned to the
/// word its byte range overlaps first.
pub(crate) fn tagging_input(
    tok: &TextTokenizer,
    ex: &TaggingExample,
    sep: u32,
    max_length: usize,
) -> Result<TaggingInput> {
    let mut text = String::new();
    let mut ranges = Vec::with_capacity(ex.tokens.len());
    for (i, w) in ex.tokens.iter().enumerate() {
        if i > 0 {
            text.push(' ');
        }
        ranges.push((text.len(), text.len() + w.len()));
        text.push_str(w);
    }
    let (mut ids, offsets) = tok.encode_with_offsets(&text)?;
    ids.truncate(max_length.saturating_sub(1));
    let mut labels = vec![-1i64; ids.len()];
    let mut word_starts = vec![None; ex.tokens.len()];
    let mut w = 0;
    for (pos, &(s, e)) in offsets.iter().enumerate().take(ids.len()) {
        // the first word this token overlaps (tokens and words both go left to right)
        while w < ranges.len() && ranges[w].1 <= s {
            w += 1;
        }
        if w < ranges.len() && ranges[w].0 < e.max(s + 1) && word_starts[w].is_none() {
            word_starts[w] = Some(pos);
            labels[pos] = ex.tags[w] as i64;
        }
    }
    ids.push(sep);
    labels.push(-1);
    Ok(TaggingInput {
        ids,
        labels,
        word_starts,
    })
}

/// One window of a QA example.
#[derive(Debug, Clone, PartialEq)]
pub struct QaWindow {
    /// Index of the example among the split's questions.
    pub example: usize,
    /// `question <eos> context-part <eos>`.
    pub ids: Vec<u32>,
    /// Per position, the byte range of a context token in the context.
    pub offsets: Vec<Option<(usize, usize)>>,
    /// Positions of the first answer's first and last token, or (0, 0) when this window does
    /// not hold the whole answer (HF's convention).
    pub target: (usize, usize),
}

/// The byte offset of character `c` of `s` (`s.len()` at the end); `None` past it.
pub(crate) fn char_to_byte(s: &str, c: usize) -> Option<usize> {
    s.char_indices().map(|(b, _)| b).chain(std::iter::once(s.len())).nth(c)
}

/// Windows of `max_length` tokens over the context, consecutive ones sharing `stride` context
/// tokens; the question is cut to `max_question` tokens. `ex_index` names the example.
pub fn qa_windows(
    tok: &TextTokenizer,
    ex: &QaExample,
    ex_index: usize,
    sep: u32,
    (max_length, stride, max_question): (usize, usize, usize),
) -> Result<Vec<QaWindow>> {
    let mut q = tok.encode(&ex.question)?;
    q.truncate(max_question);
    let (ctx, offsets) = tok.encode_with_offsets(&ex.context)?;
    let room = max_length.saturating_sub(q.len() + 2);
    if room == 0 || stride >= room {
        return Err(Error::config(
            "task.doc_stride",
            format!("{stride} overlapping tokens leave no room in windows of {room} context tokens"),
        ));
    }
    // the first answer's byte range (training target)
    let answer = ex.answers.first().and_then(|a| {
        let s = char_to_byte(&ex.context, a.start_char)?;
        Some((s, s + a.text.len()))
    });
    let mut windows = Vec::new();
    let mut start = 0;
    loop {
        let end = (start + room).min(ctx.len());
        let mut ids = q.clone();
        ids.push(sep);
        let mut offs = vec![None; ids.len()];
        ids.extend_from_slice(&ctx[start..end]);
        offs.extend(offsets[start..end].iter().map(|o| Some(*o)));
        ids.push(sep);
        offs.push(None);
        let target = answer
            .and_then(|(a_start, a_end)| {
                let first = (start..end).find(|&i| offsets[i].1 > a_start)?;
                let last = (start..end).rev().find(|&i| offsets[i].0 < a_end)?;
                let inside = offsets[start].0 <= a_start && offsets[end - 1].1 >= a_end && first <= last;
                inside.then(|| (first - start + q.len() + 1, last - start + q.len() + 1))
            })
            .unwrap_or((0, 0));
        windows.push(QaWindow {
            example: ex_index,
            ids,
            offsets: offs,
            target,
        });
        if end >= ctx.len() {
            break;
        }
        start = end - stride;
    }
    Ok(windows)
}

/// Input ids of a retrieval text (query, or document title and body).
pub(crate) fn text_input(tok: &TextTokenizer, text: &str, sep: u32, max_length: usize) -> Result<Vec<u32>> {
    let mut ids = tok.encode(text)?;
    ids.truncate(max_length.saturating_sub(1));
    ids.push(sep);
    Ok(ids)
}
