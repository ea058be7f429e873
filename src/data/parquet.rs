//! Parquet tables through polars (eager, `polars` feature): rows become JSON objects (which
//! `records` numbers into its `Record`s) so that the typed readers treat Parquet and JSON Lines
//! alike; CSV text becomes a typed Parquet file.

use std::fs::File;
use std::path::Path;

use polars::prelude::*;
use serde_json::{Map, Number, Value};

use crate::error::{Error, IoContext, Result};
use crate::fsutil::AtomicFile;

fn polars_err(path: &Path) -> impl Fn(PolarsError) -> Error + '_ {
    move |source| Error::Polars {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads a whole Parquet file into a DataFrame.
pub fn read_frame(path: &Path) -> Result<DataFrame> {
    let file = File::open(path).at(path)?;
    ParquetReader::new(file).finish().map_err(polars_err(path))
}

/// Every row of a Parquet file as a JSON object (field name → value), in row order.
pub(crate) fn read_rows(path: &Path) -> Result<Vec<Map<String, Value>>> {
    let df = read_frame(path)?;
    let columns = df.columns();
    let mut out = Vec::with_capacity(df.height());
    for row in 0..df.height() {
        let mut fields = Map::new();
        for col in columns {
            let av = col.get(row).map_err(polars_err(path))?;
            fields.insert(col.name().to_string(), to_json(&av));
        }
        out.push(fields);
    }
    Ok(out)
}

/// The string column `name` of a Parquet file, as (1-based row, text); a null is an error.
pub(crate) fn read_text_column(path: &Path, name: &str) -> Result<Vec<(usize, String)>> {
    let df = read_frame(path)?;
    let col = df.column(name).map_err(|_| {
        let present: Vec<String> = df.get_column_names().iter().map(|c| c.to_string()).collect();
        Error::data(
            path,
            0,
            format!(
                "missing column `{name}` (columns present: {}); name the text column with --text-field",
                present.join(", ")
            ),
        )
    })?;
    let strings = col.str().map_err(|_| {
        Error::data(
            path,
            0,
            format!("column `{name}` should hold strings, found {}", col.dtype()),
        )
    })?;
    strings
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            Some(s) => Ok((i + 1, s.to_string())),
            None => Err(Error::data(path, i + 1, format!("column `{name}` is null"))),
        })
        .collect()
}

/// The Parquet type of a column written from CSV text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// UTF-8 text.
    Text,
    /// 64-bit float.
    Float,
    /// 64-bit integer.
    Int,
}

/// Writes CSV text (a header line, then rows) to `dest` as Parquet, atomically: `kind(name)`
/// types each column and an empty cell is null; a cell that does not parse as its column's
/// type is an error naming its line and column, and nothing is written.
pub(crate) fn write_csv_as_parquet(csv_text: &str, dest: &Path, kind: impl Fn(&str) -> ColumnKind) -> Result<()> {
    let mut reader = csv::ReaderBuilder::new().from_reader(csv_text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| Error::data(dest, 1, e.to_string()))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); headers.len()];
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| Error::data(dest, i + 2, e.to_string()))?;
        for (c, column) in cells.iter_mut().enumerate() {
            column.push(record.get(c).unwrap_or("").to_string());
        }
    }
    let height = cells.first().map_or(0, Vec::len);
    let mut columns = Vec::with_capacity(headers.len());
    for (name, values) in headers.iter().zip(&cells) {
        let series = match kind(name) {
            ColumnKind::Text => Series::new(name.into(), values.as_slice()),
            ColumnKind::Float => Series::new(name.into(), parse_cells::<f64>(values, name, "a number", dest)?),
            ColumnKind::Int => Series::new(name.into(), parse_cells::<i64>(values, name, "an integer", dest)?),
        };
        columns.push(series.into_column());
    }
    let mut frame = DataFrame::new(height, columns).map_err(polars_err(dest))?;
    let mut file = AtomicFile::create(dest)?;
    ParquetWriter::new(&mut file)
        .finish(&mut frame)
        .map_err(polars_err(dest))?;
    file.commit()
}

/// The cells of column `name` parsed as `T` (empty: null); a bad cell is an error naming its
/// line (the header is line 1).
fn parse_cells<T: std::str::FromStr>(values: &[String], name: &str, what: &str, dest: &Path) -> Result<Vec<Option<T>>> {
    values
        .iter()
        .enumerate()
        .map(|(row, v)| match v.trim() {
            "" => Ok(None),
            t => t
                .parse::<T>()
                .map(Some)
                .map_err(|_| Error::data(dest, row + 2, format!("column `{name}`: `{v}` is not {what}"))),
        })
        .collect()
}

/// Converts one polars value to JSON (nested lists and structs included).
fn to_json(av: &AnyValue) -> Value {
    match av {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(b) => Value::Bool(*b),
        AnyValue::String(s) => Value::String((*s).to_string()),
        AnyValue::StringOwned(s) => Value::String(s.to_string()),
        AnyValue::UInt8(v) => Value::from(*v),
        AnyValue::UInt16(v) => Value::from(*v),
        AnyValue::UInt32(v) => Value::from(*v),
        AnyValue::UInt64(v) => Value::from(*v),
        AnyValue::Int8(v) => Value::from(*v),
        AnyValue::Int16(v) => Value::from(*v),
        AnyValue::Int32(v) => Value::from(*v),
        AnyValue::Int64(v) => Value::from(*v),
        AnyValue::Float32(v) => float(f64::from(*v)),
        AnyValue::Float64(v) => float(*v),
        AnyValue::List(series) => Value::Array(series.iter().map(|v| to_json(&v)).collect()),
        AnyValue::Struct(_, _, fields) => Value::Object(
            av._iter_struct_av()
                .zip(fields.iter())
                .map(|(v, f)| (f.name().to_string(), to_json(&v)))
                .collect(),
        ),
        AnyValue::StructOwned(payload) => Value::Object(
            payload
                .0
                .iter()
                .zip(payload.1.iter())
                .map(|(v, f)| (f.name().to_string(), to_json(v)))
                .collect(),
        ),
        other => Value::String(other.to_string()),
    }
}

fn float(v: f64) -> Value {
    Number::from_f64(v).map_or(Value::Null, Value::Number)
}
