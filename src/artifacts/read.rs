//! Reading artefact rows back: a CSV row as its type, with an error that names the file, the
//! line and the column; a report file as its rows.

use std::path::Path;

use serde::de::DeserializeOwned;

use super::ReportRow;
use crate::error::{Error, Result};

/// A row of a table read as its artefact type; an error names the file (`origin`), the line
/// and, where it can be told, the column and its cell.
pub(crate) fn deserialize_row<T: DeserializeOwned>(
    origin: &Path,
    headers: &csv::StringRecord,
    line: usize,
    row: &csv::StringRecord,
) -> Result<T> {
    let message = |e: &csv::Error| match e.kind() {
        csv::ErrorKind::Deserialize { err, .. } => (err.field(), err.kind().to_string()),
        _ => (None, e.to_string()),
    };
    let e = match row.deserialize::<T>(Some(headers)) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    let (field, reason) = message(&e);
    // a cell's own reader (`artifacts::cells`) cannot know its column: the columns are read in
    // order, so the failing one is the first whose prefix of the row fails the same way
    let field = field.map(|i| i as usize).or_else(|| {
        (0..headers.len()).find(|&j| {
            let h: csv::StringRecord = headers.iter().take(j + 1).collect();
            let r: csv::StringRecord = row.iter().take(j + 1).collect();
            r.deserialize::<T>(Some(&h))
                .err()
                .is_some_and(|e| message(&e).1 == reason)
        })
    });
    Err(match field.and_then(|i| headers.get(i)) {
        Some(name) => Error::data(origin, line, format!("column `{name}`: {reason}")),
        None => Error::data(origin, line, reason),
    })
}

/// The rows of the report file `R::FILE` in `dir`, every cell unescaped
/// ([`crate::csvcell::unescape`]) as the report wrote it; an error names the file, line and
/// column.
pub fn read_report<R: ReportRow>(dir: &Path) -> Result<Vec<R>> {
    let path = dir.join(R::FILE);
    let err = |e: csv::Error| Error::data(&path, e.position().map_or(0, |p| p.line() as usize), e.to_string());
    if !path.exists() {
        return Err(Error::data(&path, 0, "file not found"));
    }
    let mut reader = csv::Reader::from_path(&path).map_err(err)?;
    let headers = reader.headers().map_err(err)?.clone();
    reader
        .records()
        .map(|record| {
            let record = record.map_err(err)?;
            let line = record.position().map_or(0, |p| p.line() as usize);
            let cells: csv::StringRecord = record.iter().map(crate::csvcell::unescape).collect();
            deserialize_row(&path, &headers, line, &cells)
        })
        .collect()
}
