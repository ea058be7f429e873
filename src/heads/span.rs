//! Extractive QA answers from start/end logits, as Hugging Face's `postprocess_qa_predictions`:
//! per window, the `n_best` highest start and end positions inside the context are paired
//! (end ≥ start, at most `max_answer_tokens` tokens), scored by the sum of their logits; the
//! best pair over all windows of a question is its answer, cut from the context by the
//! tokens' offsets.

/// A candidate answer: its score and its byte range in the context.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpanCandidate {
    /// start logit + end logit.
    pub score: f32,
    /// First byte of the answer in the context.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

/// One window's logits and where its context tokens point.
pub struct WindowLogits<'a> {
    /// Start logit of every position of the window.
    pub start: &'a [f32],
    /// End logit of every position.
    pub end: &'a [f32],
    /// For each position, the byte range in the context of a context token; `None` for the
    /// question, separators and padding.
    pub offsets: &'a [Option<(usize, usize)>],
}

/// The indices of the `n` largest values of `v` among the positions `keep` allows, largest
/// first (ties: lower index first).
fn top_n(v: &[f32], n: usize, keep: impl Fn(usize) -> bool) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..v.len()).filter(|&i| keep(i)).collect();
    idx.sort_by(|&a, &b| v[b].total_cmp(&v[a]).then(a.cmp(&b)));
    idx.truncate(n);
    idx
}

/// The best answer of one question over its windows (`None` when no window has a valid pair).
pub fn best_span(windows: &[WindowLogits], n_best: usize, max_answer_tokens: usize) -> Option<SpanCandidate> {
    let mut best: Option<SpanCandidate> = None;
    for w in windows {
        let in_context = |i: usize| w.offsets.get(i).is_some_and(|o| o.is_some());
        for &s in &top_n(w.start, n_best, in_context) {
            for &e in &top_n(w.end, n_best, in_context) {
                if e < s || e - s + 1 > max_answer_tokens {
                    continue;
                }
                let (Some((start, _)), Some((_, end))) = (w.offsets[s], w.offsets[e]) else {
                    continue;
                };
                let score = w.start[s] + w.end[e];
                if best.is_none_or(|b| score > b.score) {
                    best = Some(SpanCandidate { score, start, end });
                }
            }
        }
    }
    best
}
