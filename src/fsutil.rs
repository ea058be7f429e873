//! Writing without half-written results: every output goes to a temporary path beside its
//! destination and is renamed into place only when complete. Dropped before `commit`, the
//! temporary is removed.

use std::fs;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{IoContext, Result};

fn parent_of(path: &Path) -> Result<PathBuf> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).at(&parent)?;
    Ok(parent)
}

fn temp_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.tmp-")
}

/// A file being written; it appears at its destination only on [`AtomicFile::commit`].
pub struct AtomicFile {
    dest: PathBuf,
    writer: BufWriter<tempfile::NamedTempFile>,
}

impl AtomicFile {
    /// Starts writing `dest` (its folder is created if missing).
    pub fn create(dest: impl AsRef<Path>) -> Result<Self> {
        let dest = dest.as_ref().to_path_buf();
        let parent = parent_of(&dest)?;
        let tmp = tempfile::Builder::new()
            .prefix(&temp_prefix(&dest))
            .tempfile_in(&parent)
            .at(&parent)?;
        Ok(Self {
            dest,
            writer: BufWriter::with_capacity(1 << 20, tmp),
        })
    }

    /// The final path.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Flushes and renames the file into place.
    pub fn commit(self) -> Result<()> {
        let dest = self.dest;
        let tmp = self.writer.into_inner().map_err(|e| e.into_error()).at(&dest)?;
        tmp.as_file().sync_all().at(&dest)?;
        #[cfg(unix)]
        {
            // temporary files are created private (0600); a result is an ordinary file
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644)).at(&dest)?;
        }
        tmp.persist(&dest).map_err(|e| e.error).at(&dest)?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush()
    }
}

/// Writes `bytes` to `dest` atomically.
pub fn write_atomic(dest: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let mut file = AtomicFile::create(dest.as_ref())?;
    file.write_all(bytes).at(dest.as_ref())?;
    file.commit()
}

/// A folder being filled; it replaces its destination only on [`StagingDir::commit`].
pub struct StagingDir {
    dest: PathBuf,
    tmp: tempfile::TempDir,
}

impl StagingDir {
    /// Starts a staging folder beside `dest`.
    pub fn create(dest: impl AsRef<Path>) -> Result<Self> {
        let dest = dest.as_ref().to_path_buf();
        let parent = parent_of(&dest)?;
        let tmp = tempfile::Builder::new()
            .prefix(&temp_prefix(&dest))
            .tempdir_in(&parent)
            .at(&parent)?;
        Ok(Self { dest, tmp })
    }

    /// Where to write the files now.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// The final path.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Replaces the destination (if any) with the staged folder.
    pub fn commit(self) -> Result<()> {
        let dest = self.dest;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(self.tmp.path(), fs::Permissions::from_mode(0o755)).at(&dest)?;
        }
        let staged = self.tmp.keep();
        if dest.exists() {
            let old = staged.with_extension("old");
            fs::rename(&dest, &old).at(&dest)?;
            fs::rename(&staged, &dest).at(&dest)?;
            fs::remove_dir_all(&old).at(&old)?;
        } else {
            fs::rename(&staged, &dest).at(&dest)?;
        }
        Ok(())
    }
}

/// The lowercase hex SHA-256 of a file's bytes.
pub fn sha256_file(path: impl AsRef<Path>) -> Result<String> {
    let path = path.as_ref();
    let mut file = fs::File::open(path).at(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).at(path)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// The lowercase hex SHA-256 of bytes.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncommitted_file_leaves_nothing() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let dest = dir.path().join("out.txt");
        {
            let mut f = AtomicFile::create(&dest)?;
            f.write_all(b"half")?;
        }
        assert!(!dest.exists());
        assert_eq!(fs::read_dir(dir.path())?.count(), 0);
        write_atomic(&dest, b"whole")?;
        assert_eq!(fs::read(&dest)?, b"whole");
        Ok(())
    }

    #[test]
    fn staging_dir_replaces_destination() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let dest = dir.path().join("pack");
        fs::create_dir(&dest)?;
        fs::write(dest.join("old"), b"x")?;
        let stage = StagingDir::create(&dest)?;
        fs::write(stage.path().join("new"), b"y")?;
        stage.commit()?;
        assert!(dest.join("new").exists() && !dest.join("old").exists());
        assert_eq!(fs::read_dir(dir.path())?.count(), 1);
        {
            let stage = StagingDir::create(&dest)?;
            fs::write(stage.path().join("dropped"), b"z")?;
        }
        assert_eq!(fs::read_dir(dir.path())?.count(), 1);
        assert!(!dest.join("dropped").exists());
        Ok(())
    }

    #[test]
    fn sha256_matches_known_digest() {
        // python3 -c "import hashlib; print(hashlib.sha256(b'abc').hexdigest())"
        assert_eq!(
            sha256_bytes(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
