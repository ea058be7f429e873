//! CSV cells a spreadsheet would run as a formula. A cell that begins with `=`, `+`, `-`, `@`, a
//! tab or a carriage return (and is not a plain number such as `-0.5`) is written with a leading
//! `'`, as OWASP's "CSV Injection" page recommends; a cell that begins with `'` before such a
//! cell gets one more, so reading strips exactly what writing added and every name round-trips.
//! Every CSV the project writes goes through [`escape`] (or [`escape_csv_text`]); every reader
//! of those files undoes it with [`unescape`].

use std::borrow::Cow;

use crate::error::{Error, Result};

fn is_number(cell: &str) -> bool {
    let digits = cell.trim_start_matches(['+', '-']);
    digits.starts_with(|c: char| c.is_ascii_digit() || c == '.') && cell.parse::<f64>().is_ok()
}

fn triggers(cell: &str) -> bool {
    cell.starts_with(['=', '+', '-', '@', '\t', '\r']) && !is_number(cell)
}

/// Whether `cell` is written with a leading `'`.
fn escapable(cell: &str) -> bool {
    triggers(cell) || cell.strip_prefix('\'').is_some_and(escapable)
}

/// The cell as written (see the module's documentation).
pub fn escape(cell: &str) -> Cow<'_, str> {
    if escapable(cell) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// The cell as it was before [`escape`].
pub fn unescape(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if escapable(rest) => rest,
        _ => cell,
    }
}

/// CSV text with every cell escaped (for tables written through `csv::Writer::serialize`).
pub fn escape_csv_text(text: &str) -> Result<String> {
    let err = |e: csv::Error| Error::data("<csv>", 0, e.to_string());
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut w = csv::WriterBuilder::new().flexible(true).from_writer(Vec::new());
    for record in reader.records() {
        let record = record.map_err(err)?;
        w.write_record(record.iter().map(|c| escape(c).into_owned()))
            .map_err(err)?;
    }
    let bytes = w.into_inner().map_err(|e| Error::data("<csv>", 0, e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| Error::data("<csv>", 0, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_escaped_and_numbers_are_not() {
        for (cell, written) in [
            ("=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"),
            ("+cmd", "'+cmd"),
            ("-model", "'-model"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("'=x", "''=x"),
            ("-0.5", "-0.5"),
            ("+1e-3", "+1e-3"),
            ("clm", "clm"),
            ("'quoted", "'quoted"),
            ("", ""),
        ] {
            assert_eq!(escape(cell), written, "{cell:?}");
            assert_eq!(unescape(written), cell, "{written:?}");
        }
    }

    #[test]
    fn whole_text_is_escaped_cell_by_cell() -> anyhow::Result<()> {
        let text = "model,score\n=1+1,-0.25\n\"a,b\",0.5\n";
        assert_eq!(escape_csv_text(text)?, "model,score\n'=1+1,-0.25\n\"a,b\",0.5\n");
        Ok(())
    }
}
