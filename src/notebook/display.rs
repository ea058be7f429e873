//! evcxr's display protocol: a value whose type has an `evcxr_display(&self)` method is shown by
//! what that method prints between `EVCXR_BEGIN_CONTENT <mime>` and `EVCXR_END_CONTENT`. Tables
//! are HTML, plots inline PNG. Printing never panics (a closed stdout is ignored).

use std::fmt::Write as _;
use std::io::Write as _;

use base64::Engine as _;

/// Prints one rich output.
pub fn emit(mime: &str, content: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "EVCXR_BEGIN_CONTENT {mime}\n{content}\nEVCXR_END_CONTENT");
    let _ = out.flush();
}

/// `text` with `& < > "` escaped for HTML.
pub fn escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            c => s.push(c),
        }
    }
    s
}

/// An HTML table (cells escaped; numbers right-aligned, those longer than 8 characters shown to
/// 4 significant digits).
pub(crate) fn html_table<H: AsRef<str>>(caption: &str, header: &[H], rows: &[Vec<String>]) -> String {
    let mut s = String::from("<table>");
    if !caption.is_empty() {
        let _ = write!(s, "<caption>{}</caption>", escape(caption));
    }
    s.push_str("<thead><tr>");
    for h in header {
        let _ = write!(s, "<th>{}</th>", escape(h.as_ref()));
    }
    s.push_str("</tr></thead><tbody>");
    for row in rows {
        s.push_str("<tr>");
        for cell in row {
            let (text, align) = match cell.parse::<f64>() {
                // long numbers shown to 4 significant digits (the table itself keeps them whole)
                Ok(v) if cell.len() > 8 => (short(v), " style=\"text-align:right\""),
                Ok(_) => (cell.clone(), " style=\"text-align:right\""),
                Err(_) => (cell.clone(), ""),
            };
            let _ = write!(s, "<td{align}>{}</td>", escape(&text));
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s
}

/// Field name → value, as a two-column HTML table.
pub(crate) fn html_fields(caption: &str, fields: &[(&str, String)]) -> String {
    let rows: Vec<Vec<String>> = fields.iter().map(|(k, v)| vec![k.to_string(), v.clone()]).collect();
    html_table(caption, &["field", "value"], &rows)
}

/// A number for a table: 4 significant digits, NaN as `NaN`.
pub fn short(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v == 0.0 {
        return "0".into();
    }
    if (1e-3..1e5).contains(&v.abs()) {
        let digits = (3 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
        format!("{v:.digits$}")
    } else {
        format!("{v:.3e}")
    }
}

/// An HTML `<img>` holding `png` inline (to show a picture inside other HTML: evcxr merges the
/// outputs of one display into a single message, where a frontend shows only one type).
pub(crate) fn png_html(png: &[u8]) -> String {
    format!(
        "<img src=\"data:image/png;base64,{}\"/>",
        base64::engine::general_purpose::STANDARD.encode(png)
    )
}

/// A figure as inline-image HTML, or its drawing error as text.
pub(crate) fn figure_html(fig: &crate::stats::plots::Figure) -> String {
    match crate::stats::plots::render_png(fig) {
        Ok(png) => png_html(&png),
        Err(e) => format!("<p>could not draw `{}`: {}</p>", fig.name, escape(&e.to_string())),
    }
}

/// HTML, shown as such by evcxr.
#[derive(Debug, Clone, PartialEq)]
pub struct Html(pub String);

impl Html {
    /// Shows the HTML.
    pub fn evcxr_display(&self) {
        emit("text/html", &self.0);
    }
}

/// PNG bytes, shown inline by evcxr.
#[derive(Debug, Clone, PartialEq)]
pub struct Png(pub Vec<u8>);

impl Png {
    /// Shows the picture.
    pub fn evcxr_display(&self) {
        emit("image/png", &base64::engine::general_purpose::STANDARD.encode(&self.0));
    }

    /// Writes the PNG to `path` atomically.
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> crate::Result<()> {
        crate::fsutil::write_atomic(path, &self.0)
    }
}

impl crate::stats::plots::Figure {
    /// Shows the figure as an inline PNG (or the drawing error as text).
    pub fn evcxr_display(&self) {
        match crate::stats::plots::render_png(self) {
            Ok(png) => Png(png).evcxr_display(),
            Err(e) => emit("text/plain", &format!("could not draw `{}`: {e}", self.name)),
        }
    }

    /// The figure as PNG bytes.
    pub fn png(&self) -> crate::Result<Png> {
        crate::stats::plots::render_png(self).map(Png)
    }
}

impl crate::stats::report::Table {
    /// Shows the table as HTML.
    pub fn evcxr_display(&self) {
        emit("text/html", &html_table(self.name, &self.header, &self.rows));
    }

    /// The first `n` rows.
    pub fn head(&self, n: usize) -> Self {
        Self {
            rows: self.rows.iter().take(n).cloned().collect(),
            ..self.clone()
        }
    }

    /// Only the columns `columns`, in that order (unknown names are left out).
    pub fn select(&self, columns: &[&str]) -> Self {
        let idx: Vec<usize> = columns
            .iter()
            .filter_map(|c| self.header.iter().position(|h| h == c))
            .collect();
        Self {
            name: self.name,
            header: idx.iter().map(|&i| self.header[i]).collect(),
            rows: self
                .rows
                .iter()
                .map(|r| idx.iter().map(|&i| r.get(i).cloned().unwrap_or_default()).collect())
                .collect(),
        }
    }

    /// The rows whose column `column` equals `value`.
    pub fn filter(&self, column: &str, value: &str) -> Self {
        let i = self.header.iter().position(|h| *h == column);
        Self {
            rows: self
                .rows
                .iter()
                .filter(|r| i.and_then(|i| r.get(i)).is_some_and(|c| c == value))
                .cloned()
                .collect(),
            ..self.clone()
        }
    }
}

impl crate::train::RunSummary {
    /// Shows the summary as an HTML table.
    pub fn evcxr_display(&self) {
        let opt = |v: Option<f64>| v.map_or("-".into(), short);
        let fields = [
            ("status", self.status.clone()),
            ("steps", self.steps.to_string()),
            ("last training loss", opt(self.last_loss)),
            ("held-out CLM loss", opt(self.last_eval_clm_loss)),
            ("held-out MLM loss", opt(self.last_eval_mlm_loss)),
            ("tokens seen", self.tokens_seen.to_string()),
            (
                "checkpoint",
                self.checkpoint.as_ref().map_or("-".into(), |p| p.display().to_string()),
            ),
            ("seconds", format!("{:.1}", self.seconds)),
        ];
        emit("text/html", &html_fields("pretraining run", &fields));
    }
}

impl crate::data::prepare::Prepared {
    /// Shows the pack as an HTML table.
    pub fn evcxr_display(&self) {
        let m = &self.meta;
        let fields = [
            ("pack", self.pack.display().to_string()),
            ("kept from an earlier call", self.reused.to_string()),
            ("tokenizer vocabulary", m.tokenizer.vocab_size.to_string()),
            ("block length", m.config.seq_len.to_string()),
            (
                "train: documents, tokens, blocks",
                format!("{}, {}, {}", m.train.documents, m.train.tokens, m.train.blocks),
            ),
            (
                "held out: documents, tokens, blocks",
                format!(
                    "{}, {}, {}",
                    m.validation.documents, m.validation.tokens, m.validation.blocks
                ),
            ),
            (
                "sources",
                m.sources
                    .iter()
                    .map(|s| s.path.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        ];
        emit("text/html", &html_fields("pretraining data", &fields));
    }
}

impl crate::finetune::RunResult {
    /// Shows the result as an HTML table.
    pub fn evcxr_display(&self) {
        let opt = |v: Option<f64>| v.map_or("-".into(), short);
        let fields = [
            ("run", self.run_id.clone()),
            ("model", format!("{} ({})", self.model, self.objective)),
            ("task", format!("{} {}", self.family, self.dataset)),
            (
                "learning rate, seed",
                format!("{:e}, {}", self.learning_rate, self.seed),
            ),
            (
                "status",
                format!(
                    "{}{}",
                    self.status.name(),
                    self.reason.as_ref().map_or(String::new(), |r| format!(": {r}"))
                ),
            ),
            ("validation", format!("{} {}", self.metric, opt(self.validation))),
            ("test", format!("{} {}", self.metric, opt(self.test))),
            ("steps", self.steps.to_string()),
            ("seconds", format!("{:.1}", self.wall_seconds)),
        ];
        emit("text/html", &html_fields("fine-tuning run", &fields));
    }
}

impl crate::stats::hierarchical::HierarchicalBootstrap {
    /// Shows the estimate, the levels resampled, the 95 % percentile interval and the p-value.
    pub fn evcxr_display(&self) {
        let (lo, hi) = crate::stats::bootstrap::ci_from_bootstrap_distribution(
            self.estimate,
            &self.star,
            &self.jackknife,
            crate::stats::bootstrap::BootstrapMethod::Percentile,
            0.95,
        );
        let fields = [
            ("estimate", short(self.estimate)),
            ("levels resampled", self.levels.name()),
            ("resamples", self.star.len().to_string()),
            ("95 % percentile interval", format!("[{}, {}]", short(lo), short(hi))),
            ("bootstrap p (two-sided)", short(self.p_value())),
        ];
        emit("text/html", &html_fields("hierarchical bootstrap", &fields));
    }
}

impl crate::stats::report::VarianceComponents {
    /// Shows each component with its share.
    pub fn evcxr_display(&self) {
        let names = ["learning rate", "pretraining seed", "fine-tuning seed", "test set"];
        let rows: Vec<Vec<String>> = names
            .iter()
            .zip(self.parts().iter().zip(self.shares()))
            .map(|(n, (v, share))| vec![n.to_string(), short(*v), short(share)])
            .collect();
        emit(
            "text/html",
            &html_table("variance components", &["source", "variance", "share"], &rows),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_escape_and_align() {
        let t = html_table(
            "c<1>",
            &["a", "b", "c"],
            &[vec!["x&y".into(), "0.5".into(), "0.9107798165137615".into()]],
        );
        let right = "<td style=\"text-align:right\">";
        assert_eq!(
            t,
            format!(
                "<table><caption>c&lt;1&gt;</caption><thead><tr><th>a</th><th>b</th><th>c</th></tr></thead><tbody>\
                 <tr><td>x&amp;y</td>{right}0.5</td>{right}0.9108</td></tr></tbody></table>"
            )
        );
    }

    #[test]
    fn short_numbers() {
        assert_eq!(
            [0.123456, 12.3456, 1234.56, 1e-5, 0.0, f64::NAN].map(short),
            ["0.1235", "12.35", "1235", "1.000e-5", "0", "NaN"]
        );
    }
}
