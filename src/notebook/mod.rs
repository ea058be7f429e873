//! Notebook support (`notebook` feature): evcxr's rich display on the result types (tables as
//! HTML, plots as inline PNG), pretraining histories and loss curves, the attention-mask
//! demonstration, and the analysis report as a value.

pub mod attention;
pub mod display;
pub mod history;
pub mod report;

pub use attention::{attention_demo, MaskDemo};
pub use display::{Html, Png};
pub use history::{compare, History};
pub use report::{results_table, Report};

use std::path::PathBuf;

use crate::error::{Error, IoContext, Result};

/// What a notebook's first cell calls: the repository becomes the working directory
/// ([`enter_repository`]) and long loops show their progress as lines in the cell's output
/// ([`crate::runtime::progress_as_lines`]). Rerunning it changes nothing. Returns the folder.
pub fn notebook_setup() -> Result<PathBuf> {
    crate::runtime::progress_as_lines(true);
    enter_repository()
}

/// Makes the encoderlab repository the working directory (the notebooks' paths are relative to
/// it), from wherever the kernel started: the current folder or the nearest one above it whose
/// `Cargo.toml` is encoderlab's. Rerunning it changes nothing (a `set_current_dir("..")` would
/// climb once more on each run). Returns the folder.
pub fn enter_repository() -> Result<PathBuf> {
    let start = std::env::current_dir().at(".")?;
    let root = start
        .ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|t| t.lines().any(|l| l.trim() == "name = \"encoderlab\""))
        })
        .ok_or_else(|| {
            Error::config(
                "working directory",
                format!(
                    "{} is not inside the encoderlab repository: start Jupyter in the repository or its notebooks/ folder",
                    start.display()
                ),
            )
        })?
        .to_path_buf();
    std::env::set_current_dir(&root).at(&root)?;
    Ok(root)
}
