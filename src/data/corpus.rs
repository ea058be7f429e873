//! Pretraining text: any mix of files and folders holding `.jsonl` / `.parquet` tables with a
//! text column, or plain `.txt` files where each blank-line-separated block is one document.
//! Documents are streamed in a fixed order (files sorted by path), so every reader of the same
//! corpus sees the same sequence.

use std::fs;
use std::path::{Path, PathBuf};

use crate::data::records::{JsonLines, TableFormat};
use crate::error::{Error, IoContext, Result};

/// One pretraining document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// Index of its file in [`Corpus::files`].
    pub file: usize,
    /// 1-based line (JSONL), row (Parquet) or block-start line (txt) in that file.
    pub line: usize,
    /// The text, as stored (JSONL/Parquet) or with surrounding blank space trimmed (txt).
    pub text: String,
}

/// A set of corpus files and the name of their text column.
#[derive(Debug, Clone)]
pub struct Corpus {
    files: Vec<PathBuf>,
    text_field: String,
}

const EXTENSIONS: [&str; 5] = ["jsonl", "json", "ndjson", "parquet", "txt"];

fn is_corpus_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e))
}

fn collect_files(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = fs::read_dir(path)
            .at(path)?
            .map(|e| e.map(|e| e.path()).at(path))
            .collect::<Result<_>>()?;
        entries.sort();
        for entry in entries {
            let hidden = entry.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if hidden {
                continue;
            }
            if entry.is_dir() || is_corpus_file(&entry) {
                collect_files(&entry, out)?;
            }
        }
        Ok(())
    } else if path.is_file() {
        if !is_corpus_file(path) {
            return Err(Error::data(
                path,
                0,
                "not a corpus file: use .jsonl, .parquet or .txt (one document per blank-line-separated block)",
            ));
        }
        out.push(path.to_path_buf());
        Ok(())
    } else {
        Err(Error::data(path, 0, "file or folder not found"))
    }
}

impl Corpus {
    /// Collects the corpus files under `paths` (folders are searched recursively).
    pub fn open(paths: &[PathBuf], text_field: &str) -> Result<Self> {
        if paths.is_empty() {
            return Err(Error::config("corpus", "no corpus path given"));
        }
        let mut files = Vec::new();
        for path in paths {
            collect_files(path, &mut files)?;
        }
        if files.is_empty() {
            let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            return Err(Error::data(
                &paths[0],
                0,
                format!(
                    "empty corpus: no .jsonl, .parquet or .txt file under {}",
                    shown.join(", ")
                ),
            ));
        }
        Ok(Self {
            files,
            text_field: text_field.to_string(),
        })
    }

    /// The corpus files, in reading order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The text column of table files.
    pub fn text_field(&self) -> &str {
        &self.text_field
    }

    /// Streams every non-empty document.
    pub fn documents(&self) -> Documents<'_> {
        Documents {
            corpus: self,
            next_file: 0,
            current: None,
        }
    }
}

type FileDocs = Box<dyn Iterator<Item = Result<(usize, String)>>>;

/// Iterator over a corpus' documents (see [`Corpus::documents`]).
pub struct Documents<'a> {
    corpus: &'a Corpus,
    next_file: usize,
    current: Option<(usize, FileDocs)>,
}

impl Iterator for Documents<'_> {
    type Item = Result<Document>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((file, docs)) = &mut self.current {
                match docs.next() {
                    Some(Ok((_, text))) if text.trim().is_empty() => continue,
                    Some(Ok((line, text))) => {
                        return Some(Ok(Document {
                            file: *file,
                            line,
                            text,
                        }))
                    }
                    Some(Err(e)) => {
                        self.current = None;
                        self.next_file = self.corpus.files.len();
                        return Some(Err(e));
                    }
                    None => self.current = None,
                }
            }
            let index = self.next_file;
            let path = self.corpus.files.get(index)?;
            self.next_file += 1;
            match open_file(path, &self.corpus.text_field) {
                Ok(docs) => self.current = Some((index, docs)),
                Err(e) => {
                    self.next_file = self.corpus.files.len();
                    return Some(Err(e));
                }
            }
        }
    }
}

fn open_file(path: &Path, text_field: &str) -> Result<FileDocs> {
    if path.extension().is_some_and(|e| e == "txt") {
        let bytes = fs::read(path).at(path)?;
        let text = String::from_utf8(bytes).map_err(|e| Error::data(path, 0, format!("not valid UTF-8: {e}")))?;
        return Ok(Box::new(text_blocks(&text).into_iter().map(Ok)));
    }
    match TableFormat::of(path)? {
        TableFormat::JsonLines => {
            let path_buf = path.to_path_buf();
            let field = text_field.to_string();
            let lines = JsonLines::open(path)?;
            Ok(Box::new(lines.map(move |rec| {
                let rec = rec?;
                Ok((rec.line, rec.str(&path_buf, &field)?.to_string()))
            })))
        }
        TableFormat::Parquet => parquet_texts(path, text_field),
    }
}

#[cfg(feature = "polars")]
fn parquet_texts(path: &Path, text_field: &str) -> Result<FileDocs> {
    let rows = crate::data::parquet::read_text_column(path, text_field)?;
    Ok(Box::new(rows.into_iter().map(Ok)))
}

#[cfg(not(feature = "polars"))]
fn parquet_texts(path: &Path, _text_field: &str) -> Result<FileDocs> {
    Err(Error::data(
        path,
        0,
        "Parquet support is off in this build: rebuild encoderlab with the `polars` feature",
    ))
}

/// Splits plain text into documents at blank (or whitespace-only) lines; each block keeps its
/// inner newlines, loses surrounding blank space, and carries its 1-based first line.
pub(crate) fn text_blocks(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut block: Vec<&str> = Vec::new();
    let mut start = 0;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            if !block.is_empty() {
                out.push((start, block.join("\n").trim().to_string()));
                block.clear();
            }
        } else {
            if block.is_empty() {
                start = i + 1;
            }
            block.push(line);
        }
    }
    if !block.is_empty() {
        out.push((start, block.join("\n").trim().to_string()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_split_at_blank_lines() {
        let blocks = text_blocks("a b\nc\n\n  \n\nd\r\ne\n\n");
        assert_eq!(blocks, vec![(1, "a b\nc".to_string()), (6, "d\ne".to_string())]);
        assert!(text_blocks("\n \n").is_empty());
    }

    #[test]
    fn reads_mixed_folder_in_sorted_order() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        fs::write(dir.path().join("b.txt"), "one\n\ntwo\n")?;
        fs::write(dir.path().join("a.jsonl"), "{\"text\": \"zero\"}\n{\"text\": \"  \"}\n")?;
        fs::write(dir.path().join("notes.md"), "ignored")?;
        let corpus = Corpus::open(&[dir.path().to_path_buf()], "text")?;
        assert_eq!(corpus.files().len(), 2);
        let docs: Vec<Document> = corpus.documents().collect::<Result<_>>()?;
        let texts: Vec<&str> = docs.iter().map(|d| d.text.as_str()).collect();
        assert_eq!(texts, ["zero", "one", "two"]);
        assert_eq!((docs[2].file, docs[2].line), (1, 3));
        Ok(())
    }

    #[test]
    fn missing_text_column_names_file_and_line() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("a.jsonl");
        fs::write(&path, "{\"text\": \"ok\"}\n{\"body\": \"x\"}\n")?;
        let corpus = Corpus::open(&[path], "text")?;
        let err = corpus.documents().collect::<Result<Vec<_>>>().unwrap_err().to_string();
        assert!(
            err.contains("a.jsonl:2") && err.contains("missing field `text`"),
            "{err}"
        );
        Ok(())
    }

    #[test]
    fn empty_folder_and_missing_path_are_errors() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let err = Corpus::open(&[dir.path().to_path_buf()], "text")
            .unwrap_err()
            .to_string();
        assert!(err.contains("empty corpus"), "{err}");
        let err = Corpus::open(&[dir.path().join("nope.jsonl")], "text")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not found"), "{err}");
        Ok(())
    }
}
