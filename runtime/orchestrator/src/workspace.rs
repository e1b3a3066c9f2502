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
//!
//! A snapshot goes to the store a chunk at a time ([`Workspaces::save`]): the archive is
//! built on a blocking thread through a writer that hashes it and hands over each
//! [`SNAPSHOT_CHUNK_BYTES`] chunk as it fills, so memory holds a few chunks, never the
//! workspace. Restoring ([`Workspaces::restore_snapshot`]) streams the chunks, in order,
//! into the tar unpacker the same way; the store checks them against the recorded sha256
//! after the last, and a workspace whose check fails is removed, not used.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use relo_sandbox::{LimitExceeded, Tree, TreeError, TreeLimits};
use relo_store::{SNAPSHOT_CHUNK_BYTES, SnapshotError, SnapshotReader, Store};
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;

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
    /// The store could not save a snapshot, or returned one that is not what was saved
    /// (`snapshot-tampered`).
    #[error(transparent)]
    Store(#[from] SnapshotError),
}

impl From<relo_store::StoreError> for WorkspaceError {
    fn from(error: relo_store::StoreError) -> Self {
        WorkspaceError::Store(error.into())
    }
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

/// What archiving a tree produced, without the archive: its sha256, size and files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archived {
    /// sha256 of the archive, lowercase hex.
    pub digest: String,
    /// Bytes of the archive.
    pub size: u64,
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

    /// The sha256, size and files of the run's workspace as it is now, archived within
    /// `limits` (the archive itself is not kept).
    pub fn snapshot(&self, run_id: &str, limits: TreeLimits) -> Result<Archived, WorkspaceError> {
        archive(&self.dir(run_id), limits, io::sink())
    }

    /// Replaces the run's workspace by the tree in the tar archive `bytes`, which may
    /// hold only directories and regular files.
    pub fn restore(&self, run_id: &str, bytes: &[u8]) -> Result<(), WorkspaceError> {
        self.restore_from(run_id, bytes)
    }

    /// Replaces the run's workspace by the tree in the tar archive read from `archive`,
    /// which may hold only directories and regular files.
    pub fn restore_from(&self, run_id: &str, archive: impl Read) -> Result<(), WorkspaceError> {
        let dir = self.dir(run_id);
        self.remove(run_id)?;
        fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        let mut archive = tar::Archive::new(archive);
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

    /// Saves the tree under `root` (the run's workspace, or the folder it is seeded
    /// from), archived within `limits`, as the run's next snapshot taken after `step_id`,
    /// streaming it to the store a chunk at a time. What cannot be archived is refused as
    /// by [`snapshot_of`], and the unfinished snapshot is removed from the store.
    pub async fn save(
        &self,
        store: &Store,
        run_id: &str,
        step_id: Option<&str>,
        root: &Path,
        limits: TreeLimits,
    ) -> Result<Archived, WorkspaceError> {
        let mut upload = store
            .begin_snapshot(run_id, step_id, SystemTime::now())
            .await?;
        let (sender, mut receiver) = mpsc::channel(1);
        let tree = root.to_path_buf();
        let archiving = tokio::task::spawn_blocking(move || {
            let mut chunks = ChunkSender::new(sender);
            let archived = archive(&tree, limits, &mut chunks)?;
            chunks.send_last().map_err(io_error(&tree))?;
            Ok(archived)
        });
        let mut stored = Ok(());
        while let Some(chunk) = receiver.recv().await {
            stored = upload.put_chunk(&chunk).await;
            if stored.is_err() {
                break;
            }
        }
        // The archiver's next chunk finds no one to take it, and it stops.
        drop(receiver);
        let failure = match (stored, joined(archiving.await, root)) {
            (Ok(()), Ok(archived)) => {
                upload.finish(&archived.digest, SystemTime::now()).await?;
                return Ok(archived);
            }
            // The archiver stopped for want of the store: the store's error is the cause.
            (Err(error), _) => WorkspaceError::from(error),
            (Ok(()), Err(error)) => error,
        };
        if let Err(error) = upload.abort().await {
            tracing::warn!(run_id, %error, "an unfinished snapshot stays in the store, unused");
        }
        Err(failure)
    }

    /// Replaces the run's workspace by the stored `snapshot`, streaming its chunks into
    /// the unpacker. If the store finds the chunks are not the recorded archive
    /// (`snapshot-tampered`), or unpacking fails, the workspace is removed: only a
    /// verified one is left to use.
    pub async fn restore_snapshot(
        &self,
        run_id: &str,
        mut snapshot: SnapshotReader,
    ) -> Result<(), WorkspaceError> {
        let (sender, receiver) = mpsc::channel(1);
        let workspaces = self.clone();
        let id = run_id.to_owned();
        let unpacking = tokio::task::spawn_blocking(move || {
            workspaces.restore_from(&id, ChunkReceiver::new(receiver))
        });
        // Every chunk is read, even after the unpacker has stopped (at the end of the
        // archive, or on a refusal): the digest covers them all.
        let read = loop {
            match snapshot.next_chunk().await {
                Ok(Some(chunk)) => {
                    let _unpacker_stopped = sender.send(chunk).await;
                }
                Ok(None) => break Ok(()),
                Err(error) => break Err(error),
            }
        };
        drop(sender);
        let dir = self.dir(run_id);
        let restored = read
            .map_err(WorkspaceError::from)
            .and(joined(unpacking.await, &dir));
        if restored.is_err() {
            self.remove(run_id)?;
        }
        restored
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
    let mut bytes = Vec::new();
    let archived = archive(root, limits, &mut bytes)?;
    Ok(Snapshot {
        digest: archived.digest,
        bytes,
        files: archived.files,
    })
}

/// Writes the archive [`snapshot_of`] makes to `out` as it is built, hashing it on the
/// way, and returns its sha256, size and files.
pub fn archive(
    root: &Path,
    limits: TreeLimits,
    out: impl Write,
) -> Result<Archived, WorkspaceError> {
    let tree = Tree::scan(root, limits)?;
    let mut builder = tar::Builder::new(Hashing::new(out));
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
    let hashed = builder.into_inner().map_err(io_error(root))?;
    Ok(Archived {
        digest: hex::encode(hashed.hasher.finalize()),
        size: hashed.size,
        files: tree.files(),
    })
}

/// The result of a blocking task about `path`; a panic in it goes on unwinding here.
fn joined<T>(
    result: Result<Result<T, WorkspaceError>, tokio::task::JoinError>,
    path: &Path,
) -> Result<T, WorkspaceError> {
    result.unwrap_or_else(|error| match error.try_into_panic() {
        Ok(panic) => std::panic::resume_unwind(panic),
        Err(cancelled) => Err(io_error(path)(io::Error::other(cancelled))),
    })
}

/// A writer that passes everything on and hashes (sha256) and counts it on the way.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W> Hashing<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.size += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A writer (on a blocking thread) that cuts what it is given into chunks of
/// [`SNAPSHOT_CHUNK_BYTES`] and sends each as it fills; [`ChunkSender::send_last`] sends
/// the rest. Writing fails once the receiver is gone.
struct ChunkSender {
    sender: mpsc::Sender<Vec<u8>>,
    chunk: Vec<u8>,
}

impl ChunkSender {
    fn new(sender: mpsc::Sender<Vec<u8>>) -> Self {
        Self {
            sender,
            chunk: Vec::with_capacity(SNAPSHOT_CHUNK_BYTES),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        let full = std::mem::replace(&mut self.chunk, Vec::with_capacity(SNAPSHOT_CHUNK_BYTES));
        self.sender.blocking_send(full).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the store stopped taking the snapshot",
            )
        })
    }

    /// Sends the last, short chunk, if there is one.
    fn send_last(mut self) -> io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        self.send()
    }
}

impl Write for ChunkSender {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let taken = buf.len().min(SNAPSHOT_CHUNK_BYTES - self.chunk.len());
        self.chunk.extend_from_slice(&buf[..taken]);
        if self.chunk.len() == SNAPSHOT_CHUNK_BYTES {
            self.send()?;
        }
        Ok(taken)
    }

    /// Chunk boundaries are fixed: a partial chunk waits for more or for `send_last`.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A reader (on a blocking thread) of the chunks a channel brings, in order; the end of
/// the channel is the end of the archive.
struct ChunkReceiver {
    receiver: mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl ChunkReceiver {
    fn new(receiver: mpsc::Receiver<Vec<u8>>) -> Self {
        Self {
            receiver,
            chunk: Vec::new(),
            at: 0,
        }
    }
}

impl Read for ChunkReceiver {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.receiver.blocking_recv() {
                Some(chunk) => (self.chunk, self.at) = (chunk, 0),
                None => return Ok(0),
            }
        }
        let read = buf.len().min(self.chunk.len() - self.at);
        buf[..read].copy_from_slice(&self.chunk[self.at..self.at + read]);
        self.at += read;
        Ok(read)
    }
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
            Archived {
                digest: first.digest.clone(),
                size: first.bytes.len() as u64,
                files: 2,
            }
        );

        fs::write(workspaces.dir("run-1").join("VERSION"), "1.5.0\n").expect("write");
        let changed = snapshot_of(&workspaces.dir("run-1"), ROOMY).expect("snapshot");
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
    fn the_archive_is_cut_into_full_chunks_and_a_short_last_one() {
        let temp = tempfile::tempdir().expect("tempdir");
        tree(temp.path());
        let big: Vec<u8> = (0..SNAPSHOT_CHUNK_BYTES * 2)
            .map(|i| (i % 251) as u8)
            .collect();
        fs::write(temp.path().join("big.bin"), &big).expect("write");
        let limits = TreeLimits {
            bytes: 4 << 20,
            entries: 100,
        };
        let whole = snapshot_of(temp.path(), limits).expect("snapshot");

        let (sender, mut receiver) = mpsc::channel(1);
        let root = temp.path().to_path_buf();
        let archiver = std::thread::spawn(move || {
            let mut chunks = ChunkSender::new(sender);
            let archived = archive(&root, limits, &mut chunks).expect("archive");
            chunks.send_last().expect("last chunk");
            archived
        });
        let mut chunks = Vec::new();
        while let Some(chunk) = receiver.blocking_recv() {
            chunks.push(chunk);
        }
        let archived = archiver.join().expect("archiver");

        assert_eq!(
            chunks.len(),
            3,
            "two full chunks of file data, then the rest"
        );
        let (last, full) = chunks.split_last().expect("chunks");
        assert!(full.iter().all(|c| c.len() == SNAPSHOT_CHUNK_BYTES));
        assert!(!last.is_empty() && last.len() < SNAPSHOT_CHUNK_BYTES);
        assert_eq!(chunks.concat(), whole.bytes);
        assert_eq!(archived.digest, whole.digest);
        assert_eq!(archived.size, whole.bytes.len() as u64);

        let (sender, receiver) = mpsc::channel(1);
        let feeder = std::thread::spawn(move || {
            for chunk in chunks {
                sender.blocking_send(chunk).expect("send");
            }
        });
        let workspaces = Workspaces::new(temp.path().join("ws"));
        workspaces
            .restore_from("run", ChunkReceiver::new(receiver))
            .expect("restore");
        feeder.join().expect("feeder");
        assert_eq!(
            fs::read(workspaces.dir("run").join("big.bin")).expect("read"),
            big
        );
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
