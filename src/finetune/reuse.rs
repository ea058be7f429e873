//! What consecutive fine-tuning runs in one process share: the tokenizer, the encoded task and
//! the checkpoint's weights. A sweep's grid runs each (checkpoint, dataset) pair at six
//! learning rates and several seeds; reading and tokenizing the dataset and reading the
//! checkpoint once per worker instead of once per run is most of a small run's overhead. What
//! is kept is exactly what a run alone would load (the same files, the same encoding, the same
//! seeded hold-out), so a run's record is the same bit for bit whether it ran alone or after
//! others (`finetune_reusing`).
//!
//! Entries are keyed by what they are computed from: a file by its path, length and
//! modification time (a checkpoint rewritten mid-sweep is read again); an encoded task by its
//! resolved `[task]` section, the tokenizer's key, the separator and padding ids and, where
//! the task draws a seeded validation hold-out, the run's seed. Each kind keeps its few most
//! recently used entries.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::SystemTime;

use candle_core::{Device, Tensor};

use super::config::TaskConfig;
use super::task::Task;
use crate::error::{IoContext, Result};
use crate::tokenizer::TextTokenizer;
use crate::train::checkpoint::read_weights;

/// A file as it is now: its path, length and modification time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileKey {
    path: PathBuf,
    len: u64,
    modified: Option<SystemTime>,
}

impl FileKey {
    /// The key of `path` (an error names the file when it cannot be read).
    pub fn of(path: &Path) -> Result<Self> {
        let meta = std::fs::metadata(path).at(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            len: meta.len(),
            modified: meta.modified().ok(),
        })
    }
}

/// What an encoded task is computed from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TaskKey {
    task: String,
    tokenizer: FileKey,
    tokens: (u32, u32),
    seed: Option<u64>,
}

impl TaskKey {
    /// The key of `task` encoded with the tokenizer `tokenizer` and `tokens` (separator,
    /// padding); `seed` only where the task's splits depend on it (a seeded hold-out).
    pub fn new(task: &TaskConfig, tokenizer: FileKey, tokens: (u32, u32), seed: Option<u64>) -> Result<Self> {
        Ok(Self {
            task: serde_json::to_string(task).map_err(|e| crate::error::Error::config("task", e.to_string()))?,
            tokenizer,
            tokens,
            seed,
        })
    }
}

/// The `capacity` most recently used values by key, oldest first, and how often a value was
/// found / made.
struct Recent<K, V> {
    entries: Vec<(K, V)>,
    capacity: usize,
    counts: (usize, usize),
}

impl<K: PartialEq, V: Clone> Recent<K, V> {
    fn new(capacity: usize) -> Self {
        Self {
            entries: Vec::new(),
            capacity,
            counts: (0, 0),
        }
    }

    /// The value of `key`, made by `make` when absent (an error is returned and nothing kept).
    fn get_or_try(&mut self, key: K, make: impl FnOnce() -> Result<V>) -> Result<(V, bool)> {
        if let Some(i) = self.entries.iter().position(|(k, _)| *k == key) {
            let entry = self.entries.remove(i);
            let value = entry.1.clone();
            self.entries.push(entry);
            self.counts.0 += 1;
            return Ok((value, true));
        }
        let value = make()?;
        self.counts.1 += 1;
        if self.capacity > 0 {
            if self.entries.len() == self.capacity {
                self.entries.remove(0);
            }
            self.entries.push((key, value.clone()));
        }
        Ok((value, false))
    }
}

/// How often each kind of entry was found rather than made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReuseCounts {
    /// Tokenizers found / loaded.
    pub tokenizers: (usize, usize),
    /// Encoded tasks found / loaded.
    pub tasks: (usize, usize),
    /// Checkpoint weights found / read.
    pub weights: (usize, usize),
}

/// The shared state of consecutive runs in one process; [`Reuse::none`] keeps nothing (a run
/// alone).
pub struct Reuse {
    tokenizers: Recent<FileKey, Rc<TextTokenizer>>,
    tasks: Recent<TaskKey, Rc<dyn Task>>,
    weights: Recent<(FileKey, String), Rc<HashMap<String, Tensor>>>,
}

impl Default for Reuse {
    /// Two tokenizers, four encoded tasks (a dataset at a few seeds) and two checkpoints.
    fn default() -> Self {
        Self::with_capacity(2, 4, 2)
    }
}

impl Reuse {
    /// Keeps up to this many tokenizers, encoded tasks and checkpoints.
    pub fn with_capacity(tokenizers: usize, tasks: usize, weights: usize) -> Self {
        Self {
            tokenizers: Recent::new(tokenizers),
            tasks: Recent::new(tasks),
            weights: Recent::new(weights),
        }
    }

    /// Keeps nothing: every run loads its own.
    pub fn none() -> Self {
        Self::with_capacity(0, 0, 0)
    }

    /// How often entries were found rather than made so far.
    pub fn counts(&self) -> ReuseCounts {
        ReuseCounts {
            tokenizers: self.tokenizers.counts,
            tasks: self.tasks.counts,
            weights: self.weights.counts,
        }
    }

    /// The tokenizer of `path`, loaded once.
    pub fn tokenizer(&mut self, path: &Path) -> Result<(Rc<TextTokenizer>, FileKey)> {
        let key = FileKey::of(path)?;
        let (tok, _) = self
            .tokenizers
            .get_or_try(key.clone(), || Ok(Rc::new(TextTokenizer::load(path)?.remembering())))?;
        Ok((tok, key))
    }

    /// The task of `key`, made by `load` once.
    pub fn task(&mut self, key: TaskKey, load: impl FnOnce() -> Result<Box<dyn Task>>) -> Result<Rc<dyn Task>> {
        Ok(self.tasks.get_or_try(key, || Ok(Rc::from(load()?)))?.0)
    }

    /// The weights of the checkpoint folder `dir` on `device` (`read_weights`), read once.
    pub fn weights(&mut self, dir: &Path, device: &Device) -> Result<Rc<HashMap<String, Tensor>>> {
        let read = || Ok(Rc::new(read_weights(dir, device)?));
        // no file to key: `read_weights` says what is missing
        let Ok(file) = FileKey::of(&dir.join("model.safetensors")) else {
            return read();
        };
        Ok(self.weights.get_or_try((file, format!("{device:?}")), read)?.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_keeps_the_most_recently_used() {
        let mut r: Recent<u32, u32> = Recent::new(2);
        let made = |v| move || Ok(v);
        assert_eq!(r.get_or_try(1, made(10)).unwrap(), (10, false));
        assert_eq!(r.get_or_try(2, made(20)).unwrap(), (20, false));
        // 1 used again: 2 is now the oldest and goes when 3 comes
        assert_eq!(r.get_or_try(1, made(99)).unwrap(), (10, true));
        assert_eq!(r.get_or_try(3, made(30)).unwrap(), (30, false));
        assert_eq!(r.get_or_try(1, made(99)).unwrap(), (10, true));
        assert_eq!(r.get_or_try(2, made(21)).unwrap(), (21, false));
        // an error keeps nothing
        let failed = r.get_or_try(4, || Err(crate::error::Error::config("x", "no")));
        assert!(failed.is_err());
        assert_eq!(r.get_or_try(4, made(40)).unwrap(), (40, false));
        // capacity 0 keeps nothing
        let mut none: Recent<u32, u32> = Recent::new(0);
        assert_eq!(none.get_or_try(1, made(1)).unwrap(), (1, false));
        assert_eq!(none.get_or_try(1, made(2)).unwrap(), (2, false));
    }

    #[test]
    fn a_rewritten_file_has_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "one").unwrap();
        let a = FileKey::of(&p).unwrap();
        assert_eq!(a, FileKey::of(&p).unwrap());
        std::fs::write(&p, "three").unwrap();
        assert_ne!(a, FileKey::of(&p).unwrap());
        assert!(FileKey::of(&dir.path().join("missing")).is_err());
    }
}
