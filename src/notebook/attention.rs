//! What the attention mask does, shown on one sentence: the two masks as grids, and how far each
//! position's final hidden state moves when only a later word of the sentence changes. Under the
//! causal mask a position cannot see later tokens, so positions before the change do not move
//! at all; under the bidirectional mask every position moves.

use std::fmt::Write as _;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use super::display::{emit, escape, figure_html, html_table, short};
use crate::error::{Error, Result};
use crate::model::{AttentionMode, LanguageModel, ModelConfig};
use crate::stats::plots::{Figure, Mark, Panel, Point, Series};
use crate::tokenizer::TextTokenizer;
use crate::train::checkpoint::load_weights;

/// The demonstration's numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskDemo {
    /// The tokens of the first sentence (their text).
    pub tokens: Vec<String>,
    /// The tokens of the second sentence.
    pub other_tokens: Vec<String>,
    /// The first position where the two sentences' token ids differ.
    pub first_change: usize,
    /// Per position (of the shared length): the largest absolute change of the final hidden
    /// state between the two sentences, under the causal mask.
    pub causal_shift: Vec<f64>,
    /// The same under the bidirectional mask.
    pub bidirectional_shift: Vec<f64>,
}

fn token_texts(text: &str, offsets: &[(usize, usize)]) -> Vec<String> {
    offsets
        .iter()
        .map(|&(a, b)| text.get(a..b).unwrap_or("?").to_string())
        .collect()
}

/// Runs the checkpoint in `checkpoint` (a folder with `model.safetensors`, `config.json` and
/// `tokenizer.json`) on `sentence` and on `other` (the same sentence with a later word
/// changed), under both masks, on the CPU.
pub fn attention_demo(checkpoint: impl AsRef<Path>, sentence: &str, other: &str) -> Result<MaskDemo> {
    let dir = checkpoint.as_ref();
    let cfg = ModelConfig::from_hf_json(&dir.join("config.json"))?;
    let tok = TextTokenizer::load(&dir.join("tokenizer.json"))?;
    let (ids_a, off_a) = tok.encode_with_offsets(sentence)?;
    let (ids_b, off_b) = tok.encode_with_offsets(other)?;
    let n = ids_a.len().min(ids_b.len());
    let Some(first_change) = (0..n).find(|&i| ids_a[i] != ids_b[i]) else {
        return Err(Error::config(
            "other",
            "the two sentences share their first tokens to the end: change a word inside both",
        ));
    };
    let dev = Device::Cpu;
    let map = VarMap::new();
    let model = LanguageModel::new(&cfg, VarBuilder::from_varmap(&map, DType::F32, &dev))?;
    load_weights(dir, &map, &dev)?;
    let hidden = |ids: &[u32], mode| -> Result<Vec<Vec<f32>>> {
        let input = Tensor::new(&ids[..n], &dev)?.unsqueeze(0)?;
        Ok(model
            .model
            .forward_t(&input, None, mode, false)?
            .squeeze(0)?
            .to_vec2()?)
    };
    let shift = |mode| -> Result<Vec<f64>> {
        let (a, b) = (hidden(&ids_a, mode)?, hidden(&ids_b, mode)?);
        Ok(a.iter()
            .zip(&b)
            .map(|(x, y)| {
                x.iter()
                    .zip(y)
                    .map(|(p, q)| f64::from((p - q).abs()))
                    .fold(0.0, f64::max)
            })
            .collect())
    };
    Ok(MaskDemo {
        tokens: token_texts(sentence, &off_a),
        other_tokens: token_texts(other, &off_b),
        first_change,
        causal_shift: shift(AttentionMode::Causal)?,
        bidirectional_shift: shift(AttentionMode::Bidirectional)?,
    })
}

impl MaskDemo {
    /// The mask of `mode` over the first sentence's tokens as an HTML grid (rows: queries,
    /// columns: keys; ■ = may attend).
    pub fn mask_html(&self, mode: AttentionMode) -> String {
        let n = self.causal_shift.len();
        let mut s = format!("<table><caption>{mode:?} mask</caption><tr><th></th>");
        for t in &self.tokens[..n] {
            let _ = write!(s, "<th>{}</th>", escape(t.trim()));
        }
        s.push_str("</tr>");
        for (q, t) in self.tokens[..n].iter().enumerate() {
            let _ = write!(s, "<tr><th>{}</th>", escape(t.trim()));
            for k in 0..n {
                let seen = mode == AttentionMode::Bidirectional || k <= q;
                s.push_str(if seen {
                    "<td>■</td>"
                } else {
                    "<td style=\"color:#bbb\">·</td>"
                });
            }
            s.push_str("</tr>");
        }
        s.push_str("</table>");
        s
    }

    /// Per position: both sentences' tokens and the two shifts.
    pub fn shift_rows(&self) -> Vec<Vec<String>> {
        (0..self.causal_shift.len())
            .map(|i| {
                vec![
                    i.to_string(),
                    self.tokens[i].clone(),
                    self.other_tokens[i].clone(),
                    short(self.causal_shift[i]),
                    short(self.bidirectional_shift[i]),
                ]
            })
            .collect()
    }

    /// The shifts against the position, one line per mask.
    pub fn plot(&self) -> Figure {
        let line = |system, v: &[f64]| Series {
            system,
            mark: Mark::Line,
            points: v.iter().enumerate().map(|(i, &y)| Point::at(i as f64, y)).collect(),
        };
        Figure {
            name: "attention_masks",
            title: "how far each position moves when a later word changes".into(),
            legend: vec!["causal".into(), "bidirectional".into()],
            panels: vec![Panel {
                title: format!("the sentences differ from token {}", self.first_change),
                x_label: "position (token of the first sentence)".into(),
                y_label: "max |Δ hidden|".into(),
                x_ticks: Some(
                    self.tokens[..self.causal_shift.len()]
                        .iter()
                        .enumerate()
                        .map(|(i, t)| (i as f64, t.trim().to_string()))
                        .collect(),
                ),
                y_ticks: None,
                series: vec![line(0, &self.causal_shift), line(1, &self.bidirectional_shift)],
            }],
            note: "causal: zero before the change; bidirectional: every position moves".into(),
        }
    }

    /// Shows the two masks, the table of shifts and the plot.
    pub fn evcxr_display(&self) {
        let mut html = format!(
            "<div style=\"display:flex;gap:2em\">{}{}</div>",
            self.mask_html(AttentionMode::Causal),
            self.mask_html(AttentionMode::Bidirectional)
        );
        html.push_str(&html_table(
            "max |Δ hidden| per position",
            &["position", "token", "other token", "causal", "bidirectional"],
            &self.shift_rows(),
        ));
        html.push_str(&figure_html(&self.plot()));
        emit("text/html", &html);
    }
}
