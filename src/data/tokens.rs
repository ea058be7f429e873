//! Reading a pack folder (memory-mapped token files) and walking its blocks: a seeded,
//! shuffled order per epoch, and a cursor `(epoch, position)` that is saved with a checkpoint
//! so that a resumed run sees exactly the blocks it would have seen.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use serde::{Deserialize, Serialize};

use crate::config::load_json;
use crate::data::pack::{PackMeta, SplitMeta, TokenDtype, PACK_FORMAT_VERSION};
use crate::error::{Error, IoContext, Result};
use crate::rng::{seeded, shuffle};

/// Which part of a pack.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Training documents.
    Train,
    /// Held-out documents.
    Validation,
}

/// A memory-mapped token file.
pub struct TokenFile {
    map: Option<Mmap>,
    dtype: TokenDtype,
    len: usize,
}

impl TokenFile {
    /// Maps `path`, checking that it holds `expected` tokens of `dtype`.
    pub fn open(path: &Path, dtype: TokenDtype, expected: u64) -> Result<Self> {
        let file = File::open(path).at(path)?;
        let bytes = file.metadata().at(path)?.len();
        if bytes != expected * dtype.bytes() as u64 {
            return Err(Error::data(
                path,
                0,
                format!(
                    "holds {bytes} bytes but meta.json promises {expected} tokens of {} bytes: the pack is damaged, pack again",
                    dtype.bytes()
                ),
            ));
        }
        // SAFETY: the file is opened read-only and pack folders are never modified in place
        // (a new pack replaces the whole folder by rename).
        let map = if bytes == 0 {
            None
        } else {
            Some(unsafe { Mmap::map(&file) }.at(path)?)
        };
        Ok(Self {
            map,
            dtype,
            len: expected as usize,
        })
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the file holds no token.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Tokens `start..start + n` (panics never: out-of-range is an error).
    pub fn tokens(&self, start: usize, n: usize) -> Result<Vec<u32>> {
        let end = start.checked_add(n).filter(|&e| e <= self.len).ok_or_else(|| {
            Error::config(
                "block",
                format!("tokens {start}..{} are outside the file's {}", start + n, self.len),
            )
        })?;
        let Some(map) = &self.map else { return Ok(Vec::new()) };
        let w = self.dtype.bytes();
        let bytes = &map[start * w..end * w];
        Ok(match self.dtype {
            TokenDtype::U16 => bytes
                .chunks_exact(2)
                .map(|b| u32::from(u16::from_le_bytes([b[0], b[1]])))
                .collect(),
            TokenDtype::U32 => bytes
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        })
    }
}

impl TokenFile {
    /// The first token (position, id) whose id is `limit` or more, if any: a scan of the whole
    /// file (a few milliseconds per million tokens), run once before training.
    pub fn first_id_at_least(&self, limit: u32) -> Option<(usize, u32)> {
        let map = self.map.as_ref()?;
        match self.dtype {
            TokenDtype::U16 => map
                .chunks_exact(2)
                .map(|b| u32::from(u16::from_le_bytes([b[0], b[1]])))
                .enumerate()
                .find(|&(_, id)| id >= limit),
            TokenDtype::U32 => map
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .enumerate()
                .find(|&(_, id)| id >= limit),
        }
    }
}

/// A pack folder opened for reading.
pub struct PackedDataset {
    dir: PathBuf,
    meta: PackMeta,
    train: TokenFile,
    validation: TokenFile,
}

impl PackedDataset {
    /// Opens a folder written by [`crate::data::pack::pack_corpus`].
    pub fn open(dir: &Path) -> Result<Self> {
        let meta: PackMeta = load_json(&dir.join("meta.json"))?;
        if meta.format_version != PACK_FORMAT_VERSION {
            return Err(Error::data(
                dir.join("meta.json"),
                0,
                format!(
                    "pack format {} is not {PACK_FORMAT_VERSION}: pack again",
                    meta.format_version
                ),
            ));
        }
        let open = |s: &SplitMeta| TokenFile::open(&dir.join(&s.file), meta.dtype, s.tokens);
        Ok(Self {
            train: open(&meta.train)?,
            validation: open(&meta.validation)?,
            meta,
            dir: dir.to_path_buf(),
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its `meta.json`.
    pub fn meta(&self) -> &PackMeta {
        &self.meta
    }

    /// Tokens per block.
    pub fn seq_len(&self) -> usize {
        self.meta.config.seq_len
    }

    /// The token file of `split`.
    pub fn file(&self, split: Split) -> &TokenFile {
        match split {
            Split::Train => &self.train,
            Split::Validation => &self.validation,
        }
    }

    /// Full blocks in `split`.
    pub fn blocks(&self, split: Split) -> u64 {
        (self.file(split).len() / self.seq_len()) as u64
    }

    /// Block `index` of `split`: `seq_len` token ids.
    pub fn block(&self, split: Split, index: u64) -> Result<Vec<u32>> {
        let n = self.blocks(split);
        if index >= n {
            return Err(Error::config(
                "block",
                format!("block {index} of a split with {n} blocks"),
            ));
        }
        self.file(split).tokens(index as usize * self.seq_len(), self.seq_len())
    }
}

/// Where a [`BlockSampler`] stands: the next block is `order(epoch)[position]`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cursor {
    /// 0-based epoch.
    pub epoch: u64,
    /// Blocks already taken in this epoch.
    pub position: u64,
}

/// A deterministic, shuffled walk over `n_blocks` blocks: each epoch is a permutation drawn
/// from `(seed, epoch)` alone.
#[derive(Debug, Clone)]
pub struct BlockSampler {
    n_blocks: u64,
    seed: u64,
    cursor: Cursor,
    order: Vec<u64>,
}

/// The block order of one epoch.
pub(crate) fn epoch_order(n_blocks: u64, seed: u64, epoch: u64) -> Vec<u64> {
    let mut order: Vec<u64> = (0..n_blocks).collect();
    shuffle(&mut seeded(seed, epoch), &mut order);
    order
}

impl BlockSampler {
    /// A sampler at the start of epoch 0.
    pub fn new(n_blocks: u64, seed: u64) -> Result<Self> {
        Self::resume(n_blocks, seed, Cursor::default())
    }

    /// A sampler standing at `cursor` (as saved by [`BlockSampler::cursor`]).
    pub fn resume(n_blocks: u64, seed: u64, cursor: Cursor) -> Result<Self> {
        if n_blocks == 0 {
            return Err(Error::config("blocks", "cannot sample from a split with no block"));
        }
        if cursor.position > n_blocks {
            return Err(Error::config(
                "cursor.position",
                format!(
                    "{} is past the {n_blocks} blocks of an epoch: was the cursor saved for another pack?",
                    cursor.position
                ),
            ));
        }
        Ok(Self {
            n_blocks,
            seed,
            cursor,
            order: epoch_order(n_blocks, seed, cursor.epoch),
        })
    }

    /// The position to save.
    pub fn cursor(&self) -> Cursor {
        self.cursor
    }

    /// The next block index (moving to the next epoch after the last block).
    pub fn next_block(&mut self) -> u64 {
        if self.cursor.position == self.n_blocks {
            self.cursor = Cursor {
                epoch: self.cursor.epoch + 1,
                position: 0,
            };
            self.order = epoch_order(self.n_blocks, self.seed, self.cursor.epoch);
        }
        let block = self.order[self.cursor.position as usize];
        self.cursor.position += 1;
        block
    }

    /// The next `n` block indices.
    pub fn next_blocks(&mut self, n: usize) -> Vec<u64> {
        (0..n).map(|_| self.next_block()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_epoch_is_a_permutation() -> anyhow::Result<()> {
        let mut s = BlockSampler::new(10, 5)?;
        for _ in 0..3 {
            let mut e = s.next_blocks(10);
            e.sort_unstable();
            assert_eq!(e, (0..10).collect::<Vec<_>>());
        }
        assert_eq!(s.cursor(), Cursor { epoch: 2, position: 10 });
        assert_ne!(epoch_order(10, 5, 0), epoch_order(10, 5, 1));
        Ok(())
    }

    #[test]
    fn resume_continues_exactly() -> anyhow::Result<()> {
        let mut full = BlockSampler::new(7, 9)?;
        let reference = full.next_blocks(30);
        let mut first = BlockSampler::new(7, 9)?;
        let mut seen = first.next_blocks(12);
        let saved = serde_json::to_string(&first.cursor())?;
        let mut resumed = BlockSampler::resume(7, 9, serde_json::from_str(&saved)?)?;
        seen.extend(resumed.next_blocks(18));
        assert_eq!(seen, reference);
        Ok(())
    }

    #[test]
    fn bad_cursor_and_empty_split_are_errors() {
        assert!(BlockSampler::new(0, 1).is_err());
        let err = BlockSampler::resume(4, 1, Cursor { epoch: 0, position: 5 }).unwrap_err();
        assert!(err.to_string().contains("past the 4 blocks"));
    }
}
