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
        if dest.exists() && !dest.is_dir() {
            return Err(crate::error::Error::data(
                &dest,
                0,
                "exists and is not a folder: a folder is written here; move the file away or name another path (nothing was written)",
            ));
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

/// The marker a command leaves in a folder it owns ([`OwnedDir`]): what wrote it and the
/// entries it wrote, so that a later call replaces those and nothing else.
pub const OWNED_MARKER: &str = ".encoderlab-owned.json";

/// `OWNED_MARKER`'s content.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OwnedMarker {
    /// The command that wrote the folder, e.g. `analysis report`.
    pub written_by: String,
    /// The entries (files and folders) it wrote, sorted.
    pub entries: Vec<String>,
}

/// What an existing folder holds of ours: the entries a command may replace or remove.
fn owned_entries(dest: &Path, written_by: &str) -> Result<Option<Vec<String>>> {
    let meta = match fs::metadata(dest) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).at(dest),
    };
    if !meta.is_dir() {
        return Err(crate::error::Error::data(
            dest,
            0,
            format!("exists and is not a folder: `{written_by}` writes a folder here; name a new folder (nothing was written)"),
        ));
    }
    let marker = dest.join(OWNED_MARKER);
    if marker.exists() {
        let text = fs::read_to_string(&marker).at(&marker)?;
        let m: OwnedMarker =
            serde_json::from_str(&text).map_err(|e| crate::error::Error::data(&marker, e.line(), e.to_string()))?;
        return Ok(Some(m.entries));
    }
    let mut present: Vec<String> = fs::read_dir(dest)
        .at(dest)?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    present.sort();
    if present.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let shown: Vec<&str> = present.iter().take(5).map(String::as_str).collect();
    Err(crate::error::Error::data(
        dest,
        0,
        format!(
            "holds files that `{written_by}` did not write ({}{}): it replaces only a folder it wrote itself (marked by {OWNED_MARKER}); name a new or empty folder (nothing was written)",
            shown.join(", "),
            if present.len() > 5 { ", …" } else { "" }
        ),
    ))
}

/// Checks, before any work, that `dest` is absent, an empty folder, or a folder `written_by`
/// wrote (its marker): what [`OwnedDir::commit`] will need.
pub fn check_owned(dest: &Path, written_by: &str) -> Result<()> {
    owned_entries(dest, written_by).map(|_| ())
}

/// A folder a command owns, filled in a staging folder beside it. On [`OwnedDir::commit`] a new
/// destination appears in one rename; an existing one (empty, or marked as written by the same
/// command) has each of its entries replaced by its new version, the entries the last call
/// wrote and this one did not removed, and everything else in it left untouched.
pub struct OwnedDir {
    written_by: String,
    stage: StagingDir,
}

impl OwnedDir {
    /// Starts filling `dest` for `written_by`; refuses (writing nothing) when `dest` is a file
    /// or a folder with entries that `written_by` did not write.
    pub fn create(dest: impl AsRef<Path>, written_by: &str) -> Result<Self> {
        check_owned(dest.as_ref(), written_by)?;
        Ok(Self {
            written_by: written_by.to_string(),
            stage: StagingDir::create(dest)?,
        })
    }

    /// Where to write the entries now.
    pub fn path(&self) -> &Path {
        self.stage.path()
    }

    /// Moves the staged entries into place (see the type's documentation).
    pub fn commit(self) -> Result<()> {
        let dest = self.stage.dest().to_path_buf();
        let staged = self.stage.path().to_path_buf();
        let mut entries: Vec<String> = fs::read_dir(&staged)
            .at(&staged)?
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .filter(|n| n != OWNED_MARKER)
            .collect();
        entries.sort();
        let marker = OwnedMarker {
            written_by: self.written_by.clone(),
            entries: entries.clone(),
        };
        let text = serde_json::to_string_pretty(&marker)
            .map_err(|e| crate::error::Error::data(&staged, 0, format!("cannot serialise: {e}")))?;
        write_atomic(staged.join(OWNED_MARKER), format!("{text}\n").as_bytes())?;
        let Some(old) = owned_entries(&dest, &self.written_by)? else {
            return self.stage.commit();
        };
        // an entry of ours would replace something we did not write: refuse before moving any
        if let Some(clash) = entries.iter().find(|e| !old.contains(e) && dest.join(e).exists()) {
            return Err(crate::error::Error::data(
                dest.join(clash),
                0,
                format!(
                    "was not written by `{}`, which would replace it: move it away or name another folder (nothing was written)",
                    self.written_by
                ),
            ));
        }
        for e in &entries {
            remove_entry(&dest.join(e))?;
            fs::rename(staged.join(e), dest.join(e)).at(dest.join(e))?;
        }
        for e in old.iter().filter(|e| !entries.contains(e)) {
            remove_entry(&dest.join(e))?;
        }
        fs::rename(staged.join(OWNED_MARKER), dest.join(OWNED_MARKER)).at(dest.join(OWNED_MARKER))?;
        Ok(()) // the emptied staging folder goes with `self.stage`
    }
}

fn remove_entry(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).at(path),
        Ok(_) => fs::remove_file(path).at(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).at(path),
    }
}

/// Removes what an interrupted [`StagingDir`] or [`AtomicFile`] of `name` left in `dir`
/// (`.{name}.tmp-*`, and `.{name}.tmp-*.old`): only names of that form, which nothing else uses.
pub(crate) fn remove_stale_staging(dir: &Path, name_prefix: &str) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(removed);
    };
    let prefix = format!(".{name_prefix}");
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && name.contains(".tmp-") {
            let path = e.path();
            remove_entry(&path)?;
            removed.push(path);
        }
    }
    removed.sort();
    Ok(removed)
}

/// The lowercase hex SHA-256 of a file's bytes.
pub(crate) fn sha256_file(path: impl AsRef<Path>) -> Result<String> {
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
pub(crate) fn sha256_bytes(bytes: &[u8]) -> String {
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
