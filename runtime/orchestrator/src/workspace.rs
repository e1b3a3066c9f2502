//! Per-run workspaces: a directory under the relo home, seeded from the workflow's
//! `workspace:` folder, saved into the store as a tar snapshot after every step that
//! may write it, restored by whoever continues the run, removed when the run ends.
//!
//! Snapshots are deterministic (entries sorted, times, owners and modes normalised), so
//! the same tree always has the same sha256, and an instance can tell whether its local
//! copy is the run's newest state by hashing it. Only directories and regular files are
//! kept: a symbolic link (which a step cannot make, but a seeded folder could hold) is
//! refused rather than followed.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// Why a workspace could not be made, saved or restored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkspaceError {
    /// Reading or writing a file failed.
    #[error("workspace {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The tree holds something that is neither a directory nor a regular file.
    #[error("workspace {}: only directories and regular files are allowed (not a symbolic link or device)", .0.display())]
    Unsupported(PathBuf),
}

/// A saved workspace: a tar archive and its sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// sha256 of `bytes`, lowercase hex.
    pub digest: String,
    /// The tar archive.
    pub bytes: Vec<u8>,
    /// Regular files in it.
    pub files: u64,
}

/// Where runs' workspaces live: one directory per run under `root`.
#[derive(Debug, Clone)]
pub struct Workspaces {
    root: PathBuf,
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> WorkspaceError + '_ {
    move |source| WorkspaceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Workspaces {
    /// Workspaces under `root` (created when first needed).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The run's workspace directory.
    pub fn dir(&self, run_id: &str) -> PathBuf {
        self.root.join(run_id)
    }

    /// The snapshot of the run's workspace as it is now.
    pub fn snapshot(&self, run_id: &str) -> Result<Snapshot, WorkspaceError> {
        snapshot_of(&self.dir(run_id))
    }

    /// Replaces the run's workspace by the tree in the tar archive `bytes`.
    pub fn restore(&self, run_id: &str, bytes: &[u8]) -> Result<(), WorkspaceError> {
        let dir = self.dir(run_id);
        self.remove(run_id)?;
        fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        let mut archive = tar::Archive::new(bytes);
        archive.set_preserve_permissions(false);
        archive.set_overwrite(false);
        // `unpack` refuses entries that would land outside `dir` (absolute paths, `..`).
        archive.unpack(&dir).map_err(io_error(&dir))
    }

    /// Removes the run's workspace directory, if there is one.
    pub fn remove(&self, run_id: &str) -> Result<(), WorkspaceError> {
        let dir = self.dir(run_id);
        match fs::remove_dir_all(&dir) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(io_error(&dir)(error)),
            _ => Ok(()),
        }
    }
}

/// A deterministic tar archive of the tree under `root` (sorted, times and owners
/// zeroed); a symbolic link or anything but files and folders is refused.
pub fn snapshot_of(root: &Path) -> Result<Snapshot, WorkspaceError> {
    let mut paths = Vec::new();
    collect(root, Path::new(""), &mut paths)?;
    paths.sort();
    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Deterministic);
    let mut files = 0;
    for (relative, is_dir) in &paths {
        let full = root.join(relative);
        let mut header = tar::Header::new_ustar();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        if *is_dir {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            builder
                .append_data(&mut header, relative, io::empty())
                .map_err(io_error(&full))?;
        } else {
            let bytes = fs::read(&full).map_err(io_error(&full))?;
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(0o644);
            header.set_size(bytes.len() as u64);
            builder
                .append_data(&mut header, relative, bytes.as_slice())
                .map_err(io_error(&full))?;
            files += 1;
        }
    }
    let bytes = builder.into_inner().map_err(io_error(root))?;
    Ok(Snapshot {
        digest: hex::encode(Sha256::digest(&bytes)),
        bytes,
        files,
    })
}

/// Every directory and regular file below `root/relative`, as (path, is a directory).
fn collect(
    root: &Path,
    relative: &Path,
    out: &mut Vec<(PathBuf, bool)>,
) -> Result<(), WorkspaceError> {
    let dir = root.join(relative);
    for entry in fs::read_dir(&dir).map_err(io_error(&dir))? {
        let entry = entry.map_err(io_error(&dir))?;
        let path = relative.join(entry.file_name());
        let kind = entry.file_type().map_err(io_error(&root.join(&path)))?;
        if kind.is_dir() {
            out.push((path.clone(), true));
            collect(root, &path, out)?;
        } else if kind.is_file() {
            out.push((path, false));
        } else {
            return Err(WorkspaceError::Unsupported(root.join(path)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(root: &Path) {
        fs::create_dir_all(root.join("deploy/chart")).expect("mkdir");
        fs::write(root.join("VERSION"), "1.4.0\n").expect("write");
        fs::write(root.join("deploy/chart/values.yaml"), "image: a:1\n").expect("write");
    }

    #[test]
    fn snapshots_are_deterministic_and_restore_the_same_tree() {
        let temp = tempfile::tempdir().expect("tempdir");
        let source = temp.path().join("source");
        tree(&source);
        let workspaces = Workspaces::new(temp.path().join("ws"));
        let first = snapshot_of(&source).expect("snapshot");
        workspaces.restore("run-1", &first.bytes).expect("create");
        assert_eq!(first.files, 2);
        assert_eq!(workspaces.snapshot("run-1").expect("snapshot"), first);

        fs::write(workspaces.dir("run-1").join("VERSION"), "1.5.0\n").expect("write");
        let changed = workspaces.snapshot("run-1").expect("snapshot");
        assert_ne!(changed.digest, first.digest);

        workspaces
            .restore("run-2", &changed.bytes)
            .expect("restore");
        assert_eq!(
            fs::read_to_string(workspaces.dir("run-2").join("VERSION")).expect("read"),
            "1.5.0\n"
        );
        assert_eq!(
            workspaces.snapshot("run-2").expect("snapshot").digest,
            changed.digest
        );
        workspaces.remove("run-2").expect("remove");
        assert!(!workspaces.dir("run-2").exists());
    }

    #[test]
    fn a_symbolic_link_is_refused() {
        let temp = tempfile::tempdir().expect("tempdir");
        tree(temp.path());
        std::os::unix::fs::symlink("/etc/passwd", temp.path().join("escape")).expect("symlink");
        let error = snapshot_of(temp.path()).expect_err("refused");
        assert!(matches!(error, WorkspaceError::Unsupported(path) if path.ends_with("escape")));
    }
}
