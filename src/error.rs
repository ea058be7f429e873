//! The library's error type: every variant names the file (and line, where there is one) and
//! says how to fix the problem.

use std::path::PathBuf;

/// Everything the library can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },

    /// A TOML file could not be parsed (unknown keys included).
    #[error("{path}: {reason}")]
    Toml {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        reason: String,
    },

    /// A configuration value is out of range or inconsistent.
    #[error("invalid configuration `{field}`: {reason}")]
    InvalidConfig {
        /// The dotted path of the field.
        field: String,
        /// What is wrong and how to fix it.
        reason: String,
    },

    /// A data file holds something it should not (`line` is 1-based; 0 = the whole file).
    #[error("{}: {reason}", location(path, *line))]
    Data {
        /// The file.
        path: PathBuf,
        /// 1-based line (or row) number; 0 when the problem is the file as a whole.
        line: usize,
        /// What is wrong and how to fix it.
        reason: String,
    },

    /// A dataset name that the registry does not know.
    #[error("unknown dataset `{name}`; known datasets: {}", known.join(", "))]
    UnknownDataset {
        /// The name asked for.
        name: String,
        /// Every name the registry knows.
        known: Vec<String>,
    },

    /// An external program (npm, pip) that a command needs is missing or failed.
    #[error("`{tool}` {reason}")]
    Tool {
        /// The program.
        tool: String,
        /// What happened and how to fix it.
        reason: String,
    },

    /// A process of a data-parallel world could not work with the others (a collective timed
    /// out, the MPI library is missing, the ranks disagree on the run).
    #[error("rank {rank} of {size}: {reason}")]
    Distributed {
        /// This process's rank.
        rank: usize,
        /// Processes in the world.
        size: usize,
        /// What happened and what to do.
        reason: String,
    },

    /// The tokenizers library failed.
    #[error("tokenizer {path}: {reason}")]
    Tokenizer {
        /// The tokenizer file (or `<training>`).
        path: PathBuf,
        /// The message.
        reason: String,
    },

    /// A metric's inputs do not fit together (predictions and references of different
    /// lengths, a tag or label the metric cannot read).
    #[error("metric {metric}: {reason}")]
    Metric {
        /// The metric.
        metric: String,
        /// What is wrong.
        reason: String,
    },

    /// A plot could not be drawn or encoded.
    #[error("plot {name}: {reason}")]
    Plot {
        /// The plot's file stem, e.g. `lr_curves`.
        name: String,
        /// What the drawing library said.
        reason: String,
    },

    /// Polars failed to read or write a table.
    #[cfg(feature = "polars")]
    #[error("{path}: {source}")]
    Polars {
        /// The file.
        path: PathBuf,
        /// Polars' message.
        source: polars::error::PolarsError,
    },
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn location(path: &std::path::Path, line: usize) -> String {
    if line == 0 {
        path.display().to_string()
    } else {
        format!("{}:{line}", path.display())
    }
}

impl Error {
    /// A [`Error::Data`] error.
    pub fn data(path: impl Into<PathBuf>, line: usize, reason: impl Into<String>) -> Self {
        Error::Data {
            path: path.into(),
            line,
            reason: reason.into(),
        }
    }

    /// An [`Error::InvalidConfig`] error.
    pub fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Attaches a path to an `io::Error`.
pub trait IoContext<T> {
    /// Turns the I/O error into [`Error::Io`] naming `path`.
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::result::Result<T, std::io::Error> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.into(),
            source,
        })
    }
}
