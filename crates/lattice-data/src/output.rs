//! Writing a command's output without destroying what it did not create.
//!
//! Every command that writes (`train`, `score`, `evaluate`, `export-events`, `audience`,
//! `generate`) goes through here:
//!
//! - A path that already exists is replaced only when it holds Lattice's own kind of output
//!   (a directory with the kind's marker file, or an empty one; a regular file with the kind's
//!   extension and content signature) or when the user said `--force`. Anything else (a data
//!   directory, a home directory, a source file) is refused with a message saying why.
//! - Output is written under a temporary name in the same parent directory, fsynced, and
//!   renamed into place, so an interrupted run leaves the previous complete result (or
//!   nothing), never half of one under the final name.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};

/// A kind of directory output: recognised by a file only that kind of output holds.
#[derive(Debug, Clone, Copy)]
pub struct DirKind {
    /// What the user is told, e.g. "a model directory".
    pub name: &'static str,
    /// A file every directory of this kind holds, e.g. `manifest.json`.
    pub marker: &'static str,
}

/// A kind of file output: recognised by extension and by how the file starts.
#[derive(Debug, Clone, Copy)]
pub struct FileKind {
    /// What the user is told, e.g. "a table".
    pub name: &'static str,
    /// Extensions (without the dot) the kind is written with.
    pub extensions: &'static [&'static str],
}

/// A directory written by `lattice train`.
pub const MODEL_DIR: DirKind = DirKind {
    name: "a model directory",
    marker: "manifest.json",
};
/// A directory written by `lattice generate`: only the generator writes the planted truth.
pub const GENERATED_DIR: DirKind = DirKind {
    name: "a generated data directory",
    marker: "truth.parquet",
};
/// A directory written by `lattice export-events`.
pub const EXPORT_DIR: DirKind = DirKind {
    name: "an events export",
    marker: "decisions.parquet",
};
/// A directory written by `lattice evaluate --dump-features`.
pub const FEATURE_DUMP_DIR: DirKind = DirKind {
    name: "a feature dump",
    marker: "meta.json",
};

/// A directory written by `lattice score --cluster`: Parquet part files, then `_SUCCESS` last.
pub const SCORES_DIR: DirKind = DirKind {
    name: "a scores directory",
    marker: "_SUCCESS",
};
/// Tabular outputs (`score`, `audience`).
pub const TABLE_FILE: FileKind = FileKind {
    name: "a table",
    extensions: &["csv", "parquet", "json"],
};
/// `evaluate --out`.
pub const REPORT_FILE: FileKind = FileKind {
    name: "a JSON report",
    extensions: &["json"],
};

fn refuse(path: &Path, why: String) -> DataError {
    DataError::invalid(
        path,
        format!(
            "{why}; refusing to replace it (choose another path, or pass --force to replace it)"
        ),
    )
}

/// Checks that `dest` may become a directory of `kind`: absent, empty, already of that kind,
/// or `force`.
pub fn check_dir(dest: &Path, kind: DirKind, force: bool) -> Result<()> {
    let meta = match std::fs::symlink_metadata(dest) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(DataError::io(dest, e)),
    };
    if force {
        return Ok(());
    }
    if !meta.is_dir() {
        return Err(refuse(
            dest,
            format!(
                "exists and is not a directory ({} is a directory)",
                kind.name
            ),
        ));
    }
    if dest.join(kind.marker).is_file() {
        return Ok(());
    }
    let mut entries = std::fs::read_dir(dest).map_err(|e| DataError::io(dest, e))?;
    if entries.next().is_none() {
        return Ok(());
    }
    Err(refuse(
        dest,
        format!(
            "exists and is not {} (it has files but no {})",
            kind.name, kind.marker
        ),
    ))
}

/// Checks that `dest` may become a file of `kind`: absent, or a regular file with one of the
/// kind's extensions whose content looks like that format, or `force`.
pub fn check_file(dest: &Path, kind: FileKind, force: bool) -> Result<()> {
    let meta = match std::fs::symlink_metadata(dest) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(DataError::io(dest, e)),
    };
    if meta.is_dir() {
        // Even --force never replaces a directory with a file.
        return Err(DataError::invalid(
            dest,
            format!("is a directory; {} is written to a file", kind.name),
        ));
    }
    if force {
        return Ok(());
    }
    if !meta.is_file() {
        return Err(refuse(dest, "exists and is not a regular file".into()));
    }
    let ext = dest
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if !kind.extensions.contains(&ext.as_str()) {
        return Err(refuse(
            dest,
            format!(
                "exists and its extension is not one {} is written with ({})",
                kind.name,
                kind.extensions.join(", ")
            ),
        ));
    }
    if meta.len() > 0 && !looks_like(dest, &ext)? {
        return Err(refuse(dest, format!("exists and its content is not {ext}")));
    }
    Ok(())
}

/// Whether the start of the file matches its extension's format.
fn looks_like(path: &Path, ext: &str) -> Result<bool> {
    let mut head = [0u8; 512];
    let mut f = File::open(path).map_err(|e| DataError::io(path, e))?;
    let n = f.read(&mut head).map_err(|e| DataError::io(path, e))?;
    let head = &head[..n];
    Ok(match ext {
        "parquet" => head.starts_with(b"PAR1"),
        "json" => matches!(
            head.iter().find(|b| !b.is_ascii_whitespace()),
            Some(b'{') | Some(b'[')
        ),
        // Text: no NUL bytes.
        _ => !head.contains(&0),
    })
}

/// `.NAME.tmp-PID` beside `dest`: the same file system, so the final rename is atomic.
fn temp_beside(dest: &Path, suffix: &str) -> Result<(PathBuf, PathBuf)> {
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let name = dest
        .file_name()
        .ok_or_else(|| DataError::invalid(dest, "the output path needs a file name"))?
        .to_string_lossy()
        .to_string();
    std::fs::create_dir_all(&parent).map_err(|e| DataError::io(&parent, e))?;
    let tmp = parent.join(format!(".{name}.{suffix}-{}", std::process::id()));
    Ok((parent, tmp))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| DataError::io(dir, e))
}

/// A directory output being written: files go to a temporary sibling directory
/// ([`OutputDir::path`]) until [`OutputDir::commit`] fsyncs them and swaps it into place.
/// Dropped without a commit, the temporary directory is removed and `dest` is untouched.
#[derive(Debug)]
pub struct OutputDir {
    tmp: PathBuf,
    dest: PathBuf,
    parent: PathBuf,
    committed: bool,
}

impl OutputDir {
    /// Checks `dest` (see [`check_dir`]) and creates the temporary directory.
    pub fn create(dest: &Path, kind: DirKind, force: bool) -> Result<OutputDir> {
        check_dir(dest, kind, force)?;
        let (parent, tmp) = temp_beside(dest, "tmp")?;
        if tmp.exists() {
            // Left by an earlier run of this process id that was killed: ours to remove.
            std::fs::remove_dir_all(&tmp).map_err(|e| DataError::io(&tmp, e))?;
        }
        std::fs::create_dir_all(&tmp).map_err(|e| DataError::io(&tmp, e))?;
        Ok(OutputDir {
            tmp,
            dest: dest.to_path_buf(),
            parent,
            committed: false,
        })
    }

    /// The temporary directory to write the output's files into.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Where the output will be once committed.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Fsyncs every file, then replaces `dest` with the written directory.
    pub fn commit(mut self) -> Result<PathBuf> {
        for entry in std::fs::read_dir(&self.tmp).map_err(|e| DataError::io(&self.tmp, e))? {
            let p = entry.map_err(|e| DataError::io(&self.tmp, e))?.path();
            if p.is_file() {
                File::open(&p)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| DataError::io(&p, e))?;
            }
        }
        sync_dir(&self.tmp)?;
        if std::fs::symlink_metadata(&self.dest).is_ok() {
            // Move the old output aside so the swap is two renames, never a partial copy; if
            // the second fails, the old one goes back.
            let (_, old) = temp_beside(&self.dest, "old")?;
            std::fs::rename(&self.dest, &old).map_err(|e| DataError::io(&self.dest, e))?;
            if let Err(e) = std::fs::rename(&self.tmp, &self.dest) {
                let _ = std::fs::rename(&old, &self.dest);
                return Err(DataError::io(&self.dest, e));
            }
            let removed = if old.is_dir() {
                std::fs::remove_dir_all(&old)
            } else {
                std::fs::remove_file(&old)
            };
            removed.map_err(|e| DataError::io(&old, e))?;
        } else {
            std::fs::rename(&self.tmp, &self.dest).map_err(|e| DataError::io(&self.dest, e))?;
        }
        self.committed = true;
        sync_dir(&self.parent)?;
        Ok(self.dest.clone())
    }
}

impl Drop for OutputDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}

/// A file output being written to a temporary sibling; [`OutputFile::commit`] flushes,
/// fsyncs and renames it into place. Dropped without a commit, the temporary file is removed.
#[derive(Debug)]
pub struct OutputFile {
    file: Option<File>,
    tmp: PathBuf,
    dest: PathBuf,
    parent: PathBuf,
}

impl OutputFile {
    /// Checks `dest` (see [`check_file`]) and creates the temporary file.
    pub fn create(dest: &Path, kind: FileKind, force: bool) -> Result<OutputFile> {
        check_file(dest, kind, force)?;
        let (parent, tmp) = temp_beside(dest, "tmp")?;
        let file = File::create(&tmp).map_err(|e| DataError::io(&tmp, e))?;
        Ok(OutputFile {
            file: Some(file),
            tmp,
            dest: dest.to_path_buf(),
            parent,
        })
    }

    /// The temporary file's path (for errors).
    pub fn tmp_path(&self) -> &Path {
        &self.tmp
    }

    /// A handle to the temporary file, for writers that take a `File`.
    pub fn try_clone(&self) -> Result<File> {
        match &self.file {
            Some(f) => f.try_clone().map_err(|e| DataError::io(&self.tmp, e)),
            None => Err(DataError::invalid(&self.tmp, "already committed")),
        }
    }

    /// Fsyncs the file and renames it to `dest`.
    pub fn commit(mut self) -> Result<PathBuf> {
        if let Some(mut f) = self.file.take() {
            f.flush().map_err(|e| DataError::io(&self.tmp, e))?;
            f.sync_all().map_err(|e| DataError::io(&self.tmp, e))?;
        }
        std::fs::rename(&self.tmp, &self.dest).map_err(|e| DataError::io(&self.dest, e))?;
        sync_dir(&self.parent)?;
        Ok(self.dest.clone())
    }
}

impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.file {
            Some(f) => f.write(buf),
            None => Err(std::io::Error::other("output already committed")),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
