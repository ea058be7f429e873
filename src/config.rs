//! Loading configuration files: TOML for what people edit (unknown keys rejected), JSON for what
//! machines write (always atomically, resolved, next to the artefact).

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, IoContext, Result};
use crate::fsutil::write_atomic;

/// Parses TOML text; `origin` names the file in errors (line and column come from the parser).
pub fn parse_toml<T: DeserializeOwned>(text: &str, origin: &Path) -> Result<T> {
    toml::from_str(text).map_err(|e| Error::Toml {
        path: origin.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Reads and parses a TOML file.
pub fn load_toml<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).at(path)?;
    parse_toml(&text, path)
}

/// Checks that `name` (the config field `field`) is one plain folder name: not empty, not `.`
/// or `..`, no path separator or NUL, so that `{out_dir}/{name}` stays inside `out_dir`.
pub fn check_folder_name(field: &str, name: &str) -> Result<()> {
    let bad = name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']);
    if bad {
        return Err(Error::config(
            field,
            format!("{name:?} must be a plain folder name (not empty, `.` or `..`, no `/` or `\\`): the run's folder is created under out_dir with this name"),
        ));
    }
    Ok(())
}

/// Writes `value` as pretty JSON (with a final newline), atomically.
pub fn save_json<T: Serialize>(value: &T, path: &Path) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| Error::Data {
        path: path.to_path_buf(),
        line: 0,
        reason: format!("cannot serialise: {e}"),
    })?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Reads a JSON file written by [`save_json`] (or by anyone else).
pub fn load_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).at(path)?;
    serde_json::from_str(&text).map_err(|e| Error::data(path, e.line(), e.to_string()))
}
