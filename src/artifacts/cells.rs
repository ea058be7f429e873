//! How a cell of the project's CSV files is written and read, for `#[serde(with = …)]` on the
//! row types: text is written as is ([`super::csv_text`] escapes the whole table against
//! spreadsheet formulas, [`crate::csvcell`]) and trimmed and unescaped on reading; numbers are written as Rust prints them (`0.00001`, not `1e-5`, so that files
//! stay byte-identical to what the project always wrote) and read with a message that names the
//! cell.

use serde::{Deserialize, Deserializer, Serializer};

use crate::csvcell::unescape;

/// A text cell.
pub mod text {
    use super::*;

    /// Writes the text.
    pub fn serialize<S: Serializer>(v: &str, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v)
    }

    /// Reads the text, trimmed and unescaped.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        let raw = String::deserialize(d)?;
        Ok(unescape(raw.trim()).to_string())
    }
}

/// A text cell that may be empty (`None`).
pub mod opt_text {
    use super::*;

    /// Writes the text, or an empty cell.
    pub fn serialize<S: Serializer>(v: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.as_deref().unwrap_or(""))
    }

    /// Reads the text (trimmed, unescaped), `None` when empty.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        let raw = Option::<String>::deserialize(d)?.unwrap_or_default();
        let v = unescape(raw.trim());
        Ok((!v.is_empty()).then(|| v.to_string()))
    }
}

fn parse_f64<E: serde::de::Error>(raw: &str) -> Result<f64, E> {
    raw.trim()
        .parse::<f64>()
        .map_err(|_| E::custom(format!("{:?} is not a number", raw.trim())))
}

/// A number cell.
pub mod float {
    use super::*;

    /// Writes `v` as `{}` prints it.
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    /// Reads a number.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        parse_f64(&String::deserialize(d)?)
    }
}

/// A number cell that may be empty (`None`).
pub mod opt_float {
    use super::*;

    /// Writes `v` as `{}` prints it, or an empty cell.
    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.map_or(String::new(), |v| v.to_string()))
    }

    /// Reads a number, `None` when empty.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        match Option::<String>::deserialize(d)?.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(raw) => parse_f64(raw).map(Some),
        }
    }
}

/// A number cell written with 3 decimals (seconds).
pub mod millis {
    use super::*;

    /// Writes `v` as `{:.3}` prints it, or an empty cell.
    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.map_or(String::new(), |v| format!("{v:.3}")))
    }

    /// Reads a number, `None` when empty.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        super::opt_float::deserialize(d)
    }
}

fn parse_i64<E: serde::de::Error>(raw: &str) -> Result<i64, E> {
    raw.trim()
        .parse::<i64>()
        .map_err(|_| E::custom(format!("{:?} is not an integer", raw.trim())))
}

/// An integer cell that may be empty (`None`).
pub mod opt_int {
    use super::*;

    /// Writes the integer, or an empty cell.
    pub fn serialize<S: Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.map_or(String::new(), |v| v.to_string()))
    }

    /// Reads an integer, `None` when empty.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        match Option::<String>::deserialize(d)?.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(raw) => parse_i64(raw).map(Some),
        }
    }
}

/// An integer cell.
pub mod int {
    use super::*;

    /// Writes the integer.
    pub fn serialize<S: Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    /// Reads an integer.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        parse_i64(&String::deserialize(d)?)
    }
}

/// A number cell written as `{:?}` prints it (`1.0`, never `1`).
pub mod debug_float {
    use super::*;

    /// Writes `v` as `{:?}` prints it.
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{v:?}"))
    }

    /// Reads a number.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        parse_f64(&String::deserialize(d)?)
    }
}

/// A number cell that may be empty (`None`), written as `{:?}` prints it.
pub mod opt_debug_float {
    use super::*;

    /// Writes `v` as `{:?}` prints it, or an empty cell.
    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.map_or(String::new(), |v| format!("{v:?}")))
    }

    /// Reads a number, `None` when empty.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        super::opt_float::deserialize(d)
    }
}

/// A yes/no cell: written `true` or `false`; read from `true`/`1`/`yes` or `false`/`0`/`no` in
/// any case.
pub mod flag {
    use super::*;

    /// Writes `true` or `false`.
    pub fn serialize<S: Serializer>(v: &bool, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if *v { "true" } else { "false" })
    }

    /// Reads a flag.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        let raw = String::deserialize(d)?;
        match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            other => Err(serde::de::Error::custom(format!("{other:?} is not true/false"))),
        }
    }
}
