//! Per-run workspaces: a directory under the relo home, seeded from the workflow's
//! `workspace:` folder, saved into the store as a tar snapshot after every step that
//! may write it, restored by whoever continues the run, removed when the run ends.
//!
//! Snapshots are deterministic (entries sorted, times, owners and modes normalised), so
//! the same tree always has the same sha256, and an instance can tell whether its local
//! copy is the run's newest state by hashing it. Only directories and regular files are
//! kept. A step with the read-write workspace can make anything WASI allows in it,
//! symbolic links included (`symlink-at` makes relative ones), huge sparse files, and
//! swap a file for a link while the host reads: so a snapshot is taken through
//! relo-sandbox's [`Tree`], which reads through directory handles, never follows a
//! link, and measures the tree against the run's limits before a byte is read. A link
//! or special file is refused (`workspace-entry-refused`), and so is every tar entry
//! other than a directory or a regular file on restore (a sparse or link entry could
//! expand or escape when unpacked).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use relo_sandbox::{LimitExceeded, Tree, TreeError, TreeLimits};
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
    /// The tree or an archive holds something other than directories and regular files
    /// (a symbolic link, a device, a sparse or hard-link tar entry), or an entry that
    /// could not be read through its handles.
    #[error("workspace-entry-refused: {0}")]
    Refused(String),
    /// The tree holds more bytes or entries than the run's limits allow.
    #[error("workspace: {0}")]
    TooLarge(LimitExceeded),
}

impl From<TreeError> for WorkspaceError {
    fn from(error: TreeError) -> Self {
        match error {
            TreeError::TooLarge(limit) => WorkspaceError::TooLarge(limit),
            other => WorkspaceError::Refused(other.to_string()),
        }
    }
}

/// What a workspace seeded from a folder, or found on disk when a run is taken up, may
/// hold: 1 GiB in 100,000 entries. (After a step, the plugin's `[limits] workspace` and
/// `workspace_files` apply.)
pub const SEED_LIMITS: TreeLimits = TreeLimits {
    bytes: 1 << 30,
    entries: 100_000,
};

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

    /// The snapshot of the run's workspace as it is now, within `limits`.
    pub fn snapshot(&self, run_id: &str, limits: TreeLimits) -> Result<Snapshot, WorkspaceError> {
        snapshot_of(&self.dir(run_id), limits)
    }

    /// Replaces the run's workspace by the tree in the tar archive `bytes`, which may
    /// hold only directories and regular files.
    pub fn restore(&self, run_id: &str, bytes: &[u8]) -> Result<(), WorkspaceError> {
        let dir = self.dir(run_id);
        self.remove(run_id)?;
        fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        let mut archive = tar::Archive::new(bytes);
        archive.set_preserve_permissions(false);
        archive.set_overwrite(false);
        for entry in archive.entries().map_err(io_error(&dir))? {
            let mut entry = entry.map_err(io_error(&dir))?;
            let kind = entry.header().entry_type();
            if !matches!(kind, tar::EntryType::Regular | tar::EntryType::Directory) {
                let path = entry
                    .path()
                    .map_or_else(|_| "an entry".to_owned(), |path| path.display().to_string());
                return Err(WorkspaceError::Refused(format!(
                    "{path} is a {kind:?} entry; a workspace archive holds directories and \
                     regular files only"
                )));
            }
            // `unpack_in` refuses entries that would land outside `dir` (absolute paths,
            // `..`) and returns false for them.
            if !entry.unpack_in(&dir).map_err(io_error(&dir))? {
                return Err(WorkspaceError::Refused(
                    "an entry points outside the workspace".to_owned(),
                ));
            }
        }
        Ok(())
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
/// zeroed), measured against `limits` before anything is read, read through handles; a
/// symbolic link or anything but files and folders is refused.
pub fn snapshot_of(root: &Path, limits: TreeLimits) -> Result<Snapshot, WorkspaceError> {
    let tree = Tree::scan(root, limits)?;
    let mut builder = tar::Builder::new(Vec::with_capacity(tree.bytes() as usize / 2));
    builder.mode(tar::HeaderMode::Deterministic);
    for entry in tree.entries() {
        let full = root.join(&entry.path);
        let mut header = tar::Header::new_ustar();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        match entry.size {
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder
                    .append_data(&mut header, &entry.path, io::empty())
                    .map_err(io_error(&full))?;
            }
            Some(size) => {
                let contents = tree.open(entry)?;
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(size);
                builder
                    .append_data(&mut header, &entry.path, contents)
                    .map_err(io_error(&full))?;
            }
        }
    }
    let bytes = builder.into_inner().map_err(io_error(root))?;
    Ok(Snapshot {
        digest: hex::encode(Sha256::digest(&bytes)),
        bytes,
        files: tree.files(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOMY: TreeLimits = TreeLimits {
        bytes: 1 << 20,
        entries: 100,
    };

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
        let first = snapshot_of(&source, ROOMY).expect("snapshot");
        workspaces.restore("run-1", &first.bytes).expect("create");
        assert_eq!(first.files, 2);
        assert_eq!(
            workspaces.snapshot("run-1", ROOMY).expect("snapshot"),
            first
        );

        fs::write(workspaces.dir("run-1").join("VERSION"), "1.5.0\n").expect("write");
        let changed = workspaces.snapshot("run-1", ROOMY).expect("snapshot");
        assert_ne!(changed.digest, first.digest);

        workspaces
            .restore("run-2", &changed.bytes)
            .expect("restore");
        assert_eq!(
            fs::read_to_string(workspaces.dir("run-2").join("VERSION")).expect("read"),
            "1.5.0\n"
        );
        assert_eq!(
            workspaces
                .snapshot("run-2", ROOMY)
                .expect("snapshot")
                .digest,
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
        let error = snapshot_of(temp.path(), ROOMY).expect_err("refused");
        assert!(
            matches!(&error, WorkspaceError::Refused(reason) if reason.contains("escape")),
            "{error:?}"
        );
    }

    #[test]
    fn an_archive_with_a_link_or_sparse_entry_is_refused_on_restore() {
        let temp = tempfile::tempdir().expect("tempdir");
        for kind in [
            tar::EntryType::Symlink,
            tar::EntryType::GNUSparse,
            tar::EntryType::Link,
        ] {
            let mut builder = tar::Builder::new(Vec::new());
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(kind);
            header.set_size(0);
            header.set_mode(0o644);
            if kind == tar::EntryType::GNUSparse {
                // A valid sparse entry: 8 GiB once expanded, from one byte of data.
                header.set_size(1);
                let gnu = header.as_gnu_mut().expect("a GNU header");
                gnu.set_real_size(8 << 30);
                gnu.set_is_extended(false);
                gnu.sparse[0].set_offset((8 << 30) - 1);
                gnu.sparse[0].set_length(1);
            } else {
                header
                    .set_link_name("../../server/jwt.secret")
                    .expect("link name");
            }
            header.set_cksum();
            let data: &[u8] = if kind == tar::EntryType::GNUSparse {
                b"x"
            } else {
                b""
            };
            builder
                .append_data(&mut header, "entry", data)
                .expect("append");
            let bytes = builder.into_inner().expect("tar");
            let workspaces = Workspaces::new(temp.path().join("ws"));
            let error = workspaces.restore("run", &bytes).expect_err("refused");
            assert!(
                matches!(&error, WorkspaceError::Refused(reason) if reason.contains("entry")),
                "{kind:?}: {error:?}"
            );
            assert!(error.to_string().starts_with("workspace-entry-refused"));
        }
    }
}
