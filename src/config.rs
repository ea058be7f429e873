//! Loading configuration files: TOML for what people edit (unknown keys rejected), JSON for what
//! machines write (always atomically, resolved, next to the artefact). Every run configuration
//! (pretraining, fine-tuning, sweep, study) goes one way: read → `--set` overrides → parse →
//! validate once ([`ConfigFile`], [`load_config`]) → id ([`config_id`]).

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, IoContext, Result};
use crate::fsutil::write_atomic;

/// A configuration type read from TOML: parsed (unknown keys refused), then validated once.
pub trait ConfigFile: Serialize + DeserializeOwned {
    /// Checks every field; an error names the field and the fix.
    fn validate(&self) -> Result<()>;
}

/// Reads `path`, applies `overrides` (`key.path=value`, see [`set_override`]), parses and
/// validates.
pub fn load_config<T: ConfigFile>(path: &Path, overrides: &[String]) -> Result<T> {
    let text = std::fs::read_to_string(path).at(path)?;
    parse_config(&text, path, overrides)
}

/// As [`load_config`] from text (`origin` names it in errors).
pub fn parse_config<T: ConfigFile>(text: &str, origin: &Path, overrides: &[String]) -> Result<T> {
    let cfg: T = if overrides.is_empty() {
        parse_toml(text, origin)?
    } else {
        let mut table: toml::Table = parse_toml(text, origin)?;
        for o in overrides {
            set_override(&mut table, o)?;
        }
        let text = toml::to_string(&table).map_err(|e| Error::config("overrides", e.to_string()))?;
        parse_toml(&text, origin)?
    };
    cfg.validate()?;
    Ok(cfg)
}

/// `true`: the default of a switch that is on unless turned off.
pub(crate) fn yes() -> bool {
    true
}

/// Whether a switch is on (such a switch is written only when off, so that configs and run ids
/// from before it was added stay as they were).
pub(crate) fn is_true(v: &bool) -> bool {
    *v
}

/// Whether a switch is off (such a switch is written only when on, for the same reason).
pub(crate) fn is_false(v: &bool) -> bool {
    !*v
}

/// A short hash of a resolved configuration (its JSON): the id of the run it describes.
pub fn config_id<T: Serialize>(cfg: &T) -> Result<String> {
    let json = serde_json::to_vec(cfg).map_err(|e| Error::config("config", e.to_string()))?;
    Ok(crate::fsutil::sha256_bytes(&json)[..12].to_string())
}

/// Writes a configuration value as TOML under a comment `header` (one `# ` line per line),
/// atomically, after checking it as its reader will: what a program that builds configs (the
/// study) hands to the commands that read them.
pub fn save_toml<T: ConfigFile>(value: &T, path: &Path, header: &str) -> Result<()> {
    value.validate()?;
    let body = toml::to_string(value).map_err(|e| Error::config(path.display().to_string(), e.to_string()))?;
    let comment: String = header.lines().map(|l| format!("# {l}\n")).collect();
    write_atomic(path, format!("{comment}{body}").as_bytes())
}

/// Sets `path = value` (a dotted path; `value` read as TOML, else as a string) in `table`.
pub fn set_override(table: &mut toml::Table, assignment: &str) -> Result<()> {
    let (path, raw) = assignment
        .split_once('=')
        .ok_or_else(|| Error::config(assignment, "an override is KEY=VALUE, e.g. train.seed=2"))?;
    let value: toml::Value = match toml::from_str::<toml::Table>(&format!("v = {}", raw.trim())) {
        Ok(mut t) => t.remove("v").unwrap_or(toml::Value::String(raw.trim().into())),
        Err(_) => toml::Value::String(raw.trim().to_string()),
    };
    set_path(table, path.trim(), value)
}

/// Sets the dotted `path` to `value` in `table`, creating tables on the way.
pub fn set_path(table: &mut toml::Table, path: &str, value: toml::Value) -> Result<()> {
    let keys: Vec<&str> = path.split('.').collect();
    let mut node = table;
    for (i, key) in keys.iter().enumerate() {
        if i + 1 == keys.len() {
            node.insert(key.to_string(), value);
            return Ok(());
        }
        let entry = node
            .entry(key.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = entry
            .as_table_mut()
            .ok_or_else(|| Error::config(keys[..=i].join("."), format!("is not a table, cannot set {path}")))?;
    }
    Ok(())
}

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
