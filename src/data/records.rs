//! Tables of records read from JSON Lines or Parquet, each record remembering its line (or row)
//! so that every later error can name `file:line` and the offending field.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Error, IoContext, Result};

/// One row of a table: its 1-based line (JSONL) or row (Parquet) number and its fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// 1-based line or row number.
    pub line: usize,
    /// Field name → value.
    pub fields: Map<String, Value>,
}

/// The file formats a table can come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    /// JSON Lines (`.jsonl`, `.json`): one JSON object per line.
    JsonLines,
    /// Apache Parquet (`.parquet`), read with polars.
    Parquet,
}

impl TableFormat {
    /// The format of a file, from its extension.
    pub fn of(path: &Path) -> Result<Self> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("jsonl") | Some("json") | Some("ndjson") => Ok(TableFormat::JsonLines),
            Some("parquet") => Ok(TableFormat::Parquet),
            _ => Err(Error::data(
                path,
                0,
                "unsupported table format: use .jsonl (JSON Lines) or .parquet",
            )),
        }
    }
}

/// Reads every record of a `.jsonl` or `.parquet` file.
pub(crate) fn read_records(path: &Path) -> Result<Vec<Record>> {
    if !path.exists() {
        return Err(Error::data(path, 0, "file not found"));
    }
    match TableFormat::of(path)? {
        TableFormat::JsonLines => JsonLines::open(path)?.collect(),
        TableFormat::Parquet => read_parquet_records(path),
    }
}

/// Streams the records of a JSON Lines file; blank lines are skipped.
pub struct JsonLines {
    path: PathBuf,
    lines: std::io::Lines<BufReader<File>>,
    line: usize,
}

impl JsonLines {
    /// Opens `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).at(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            lines: BufReader::with_capacity(1 << 20, file).lines(),
            line: 0,
        })
    }
}

impl Iterator for JsonLines {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let text = match self.lines.next()? {
                Ok(t) => t,
                Err(e) => {
                    return Some(Err(Error::data(
                        &self.path,
                        self.line + 1,
                        format!("cannot read line: {e}"),
                    )))
                }
            };
            self.line += 1;
            if text.trim().is_empty() {
                continue;
            }
            return Some(parse_line(&self.path, self.line, &text));
        }
    }
}

fn parse_line(path: &Path, line: usize, text: &str) -> Result<Record> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(fields)) => Ok(Record { line, fields }),
        Ok(other) => Err(Error::data(
            path,
            line,
            format!("expected a JSON object, found {}", kind(&other)),
        )),
        Err(e) => Err(Error::data(
            path,
            line,
            format!("malformed JSON at column {}: {e}", e.column()),
        )),
    }
}

/// A JSON value's kind, for messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Record {
    /// The field `name`, or an error listing the fields present.
    pub fn field(&self, path: &Path, name: &str) -> Result<&Value> {
        self.fields.get(name).ok_or_else(|| {
            let present: Vec<&str> = self.fields.keys().map(String::as_str).collect();
            Error::data(
                path,
                self.line,
                format!(
                    "missing field `{name}` (fields present: {}); name the right column in the dataset registry or with --text-field",
                    present.join(", ")
                ),
            )
        })
    }

    /// The string field `name`.
    pub fn str(&self, path: &Path, name: &str) -> Result<&str> {
        match self.field(path, name)? {
            Value::String(s) => Ok(s),
            other => Err(self.wrong(path, name, "a string", other)),
        }
    }

    /// The field `name` as a string id: strings as they are, integers written in decimal.
    pub fn id(&self, path: &Path, name: &str) -> Result<String> {
        match self.field(path, name)? {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) if n.is_u64() || n.is_i64() => Ok(n.to_string()),
            other => Err(self.wrong(path, name, "a string or integer id", other)),
        }
    }

    /// The non-negative integer field `name`.
    pub fn index(&self, path: &Path, name: &str) -> Result<usize> {
        match self.field(path, name)? {
            Value::Number(n) => n
                .as_u64()
                .map(|v| v as usize)
                .ok_or_else(|| self.wrong(path, name, "a non-negative integer", &Value::Number(n.clone()))),
            other => Err(self.wrong(path, name, "a non-negative integer", other)),
        }
    }

    /// The array-of-strings field `name`.
    pub fn strings(&self, path: &Path, name: &str) -> Result<Vec<String>> {
        let Value::Array(items) = self.field(path, name)? else {
            let v = self.field(path, name)?;
            return Err(self.wrong(path, name, "an array of strings", v));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(self.wrong(path, &format!("{name}[{i}]"), "a string", other)),
            })
            .collect()
    }

    /// An error saying field `name` holds the wrong kind of value.
    pub fn wrong(&self, path: &Path, name: &str, expected: &str, found: &Value) -> Error {
        Error::data(
            path,
            self.line,
            format!("field `{name}` should be {expected}, found {}", kind(found)),
        )
    }

    /// Any error about this record.
    pub fn error(&self, path: &Path, reason: impl Into<String>) -> Error {
        Error::data(path, self.line, reason)
    }
}

#[cfg(feature = "polars")]
fn read_parquet_records(path: &Path) -> Result<Vec<Record>> {
    let rows = crate::data::parquet::read_rows(path)?;
    Ok(rows
        .into_iter()
        .enumerate()
        .map(|(row, fields)| Record { line: row + 1, fields })
        .collect())
}

#[cfg(not(feature = "polars"))]
fn read_parquet_records(path: &Path) -> Result<Vec<Record>> {
    Err(Error::data(
        path,
        0,
        "Parquet support is off in this build: rebuild encoderlab with the `polars` feature",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lines_and_names_the_bad_one() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("t.jsonl");
        std::fs::write(&path, "{\"a\": 1}\n\n{\"a\": 2}\n{\"a\": 3,}\n")?;
        let err = read_records(&path).unwrap_err().to_string();
        assert!(err.contains("t.jsonl:4"), "{err}");
        assert!(err.contains("malformed JSON"), "{err}");
        std::fs::write(&path, "{\"a\": 1}\n\n{\"a\": 2}\n")?;
        let recs = read_records(&path)?;
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[1].line, 3);
        assert_eq!(recs[1].index(&path, "a")?, 2);
        let err = recs[0].str(&path, "b").unwrap_err().to_string();
        assert!(
            err.contains("missing field `b`") && err.contains("fields present: a"),
            "{err}"
        );
        let err = recs[0].str(&path, "a").unwrap_err().to_string();
        assert!(err.contains("should be a string, found a number"), "{err}");
        Ok(())
    }

    #[test]
    fn non_object_line_is_an_error() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("t.jsonl");
        std::fs::write(&path, "[1, 2]\n")?;
        let err = read_records(&path).unwrap_err().to_string();
        assert!(
            err.contains("t.jsonl:1") && err.contains("expected a JSON object"),
            "{err}"
        );
        Ok(())
    }

    #[test]
    fn unknown_extension_and_missing_file() {
        let err = read_records(Path::new("/nonexistent/x.jsonl")).unwrap_err().to_string();
        assert!(err.contains("file not found"), "{err}");
        let err = TableFormat::of(Path::new("x.csv")).unwrap_err().to_string();
        assert!(err.contains("unsupported table format"), "{err}");
    }
}
