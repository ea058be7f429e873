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
    let root = repository_above(&start).ok_or_else(|| {
        Error::config(
            "working directory",
            format!(
                "{} is not inside the encoderlab repository: start Jupyter in the repository or its notebooks/ folder",
                start.display()
            ),
        )
    })?;
    std::env::set_current_dir(&root).at(&root)?;
    Ok(root)
}

/// `start` or the nearest folder above it whose `Cargo.toml` is encoderlab's.
fn repository_above(start: &std::path::Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|t| t.lines().any(|l| l.trim() == "name = \"encoderlab\""))
        })
        .map(std::path::Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_is_found_from_itself_and_below_it() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        assert_eq!(repository_above(root).as_deref(), Some(root));
        assert_eq!(repository_above(&root.join("notebooks")).as_deref(), Some(root));
        assert_eq!(repository_above(&root.join("src/notebook")).as_deref(), Some(root));
        assert_eq!(repository_above(std::path::Path::new("/")), None);
    }
}
