//! One executor per sweep: `sweep run` (and `sweep slurm` while it submits) holds an exclusive
//! lock on `{sweep dir}/sweep.lock` for as long as it runs; a second call on the same sweep is
//! refused at once, naming the holder. The lock is the operating system's (`flock`), so a
//! killed executor releases it with its process: there is never a stale lock to remove.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

/// A held sweep lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct SweepLock {
    _file: File,
    path: PathBuf,
}

impl SweepLock {
    /// Takes the lock of the sweep folder `dir` for `what` (e.g. `sweep run`), or says who holds it.
    pub fn acquire(dir: &Path, what: &str) -> Result<Self> {
        std::fs::create_dir_all(dir).at(dir)?;
        let path = dir.join("sweep.lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .at(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(Error::data(
                    &path,
                    0,
                    format!(
                        "another executor is running this sweep ({}): two would run the same runs; wait for it to end, or stop it (its runs resume on the next call)",
                        holder.trim()
                    ),
                ));
            }
            Err(TryLockError::Error(e)) => return Err(e).at(&path),
        }
        file.set_len(0).at(&path)?;
        file.seek(SeekFrom::Start(0)).at(&path)?;
        writeln!(file, "`{what}`, process {}", std::process::id()).at(&path)?;
        file.flush().at(&path)?;
        Ok(Self { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let first = SweepLock::acquire(dir.path(), "sweep run")?;
        let err = SweepLock::acquire(dir.path(), "sweep run").unwrap_err().to_string();
        assert!(
            err.contains("another executor") && err.contains(&std::process::id().to_string()),
            "{err}"
        );
        drop(first);
        SweepLock::acquire(dir.path(), "sweep run")?;
        Ok(())
    }
}
