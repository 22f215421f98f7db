//! Atomic file writes: nothing already saved is lost if a run is interrupted.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The temporary sibling a file is written to before the rename.
fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".{}.tmp", std::process::id()));
    path.with_file_name(name)
}

/// A file being written: it appears under its name only after [`AtomicFile::commit`].
pub struct AtomicFile {
    path: PathBuf,
    tmp: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
}

impl AtomicFile {
    /// Start writing `path` (through a temporary file beside it).
    pub fn create(path: &Path) -> Result<Self> {
        let tmp = tmp_path(path);
        let file = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        Ok(AtomicFile {
            path: path.to_path_buf(),
            tmp,
            out: std::io::BufWriter::new(file),
        })
    }

    /// Append a line.
    pub fn line(&mut self, text: &str) -> Result<()> {
        writeln!(self.out, "{text}").with_context(|| format!("cannot write {}", self.tmp.display()))
    }

    /// Flush, sync and rename into place.
    pub fn commit(mut self) -> Result<()> {
        self.out
            .flush()
            .with_context(|| format!("cannot write {}", self.tmp.display()))?;
        self.out
            .get_ref()
            .sync_all()
            .with_context(|| format!("cannot sync {}", self.tmp.display()))?;
        std::fs::rename(&self.tmp, &self.path).with_context(|| {
            format!(
                "cannot rename {} to {}",
                self.tmp.display(),
                self.path.display()
            )
        })
        // Drop then finds no temporary file to remove.
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        // Uncommitted: remove the partial temporary file (after commit it no longer exists).
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// Write `contents` to `path` atomically.
pub fn write_atomic(path: &Path, contents: &str) -> Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.out
        .write_all(contents.as_bytes())
        .with_context(|| format!("cannot write {}", f.tmp.display()))?;
    f.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncommitted_writes_leave_the_old_file() {
        let dir = std::env::temp_dir().join(format!("rlscale-fsutil-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.txt");
        write_atomic(&p, "old").unwrap();
        {
            let mut f = AtomicFile::create(&p).unwrap();
            f.line("new, never committed").unwrap();
        }
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "old");
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "the temporary file is cleaned up"
        );
        write_atomic(&p, "new").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
