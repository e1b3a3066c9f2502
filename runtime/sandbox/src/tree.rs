//! A run's workspace as the host may trust it: read through directory handles only, never
//! by path, never following a link, measured before a byte of it is read.
//!
//! A step with the read-write workspace can make any tree it likes through WASI: huge or
//! sparse files, many files, symbolic links (`symlink-at` makes relative ones) and it can
//! swap a file for a link while the host looks. So [`Tree::scan`] walks from a handle on
//! the root with `openat`/`statat` relative to each directory's handle and
//! `O_NOFOLLOW`/`AT_SYMLINK_NOFOLLOW`; it counts every entry and each regular file's
//! apparent size (a sparse file counts whole) and stops with the limit `workspace` as
//! soon as either total passes its limit. [`Tree::open`] opens a file the same way, so
//! what is read is what was measured, or an error.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

use relo_policy::LimitKind;
use rustix::fs::{AtFlags, CWD, Dir, FileType, Mode, OFlags};

use crate::error::LimitExceeded;

/// Why a workspace tree could not be scanned or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    /// A directory or file could not be opened or read.
    #[error("workspace {}: {source}", path.display())]
    Io {
        /// The entry, relative to the workspace.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// An entry that is neither a directory nor a regular file.
    #[error(
        "workspace-entry-refused: {} is a {kind}; a workspace holds directories and \
         regular files only", path.display()
    )]
    Refused {
        /// The entry, relative to the workspace.
        path: PathBuf,
        /// `symbolic link`, `fifo`, `socket` or `device`.
        kind: &'static str,
    },
    /// The tree passed the workspace's byte or entry limit.
    #[error("{0}")]
    TooLarge(LimitExceeded),
}

/// What a workspace may hold: bytes of regular files (apparent sizes) and entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeLimits {
    /// The sum of the regular files' sizes.
    pub bytes: u64,
    /// Directories and files.
    pub entries: u64,
}

/// One directory or regular file of a scanned tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    /// Relative to the workspace, `/`-separated, never `..`.
    pub path: PathBuf,
    /// The size of a regular file when it was scanned; `None` for a directory.
    pub size: Option<u64>,
}

/// A workspace scanned within its limits: its entries, sorted, and a handle on its root.
#[derive(Debug)]
pub struct Tree {
    root: OwnedFd,
    entries: Vec<TreeEntry>,
    bytes: u64,
}

impl Tree {
    /// Scans the tree under `root` through handles, refusing links and special files and
    /// stopping at the first entry that takes it past `limits`.
    pub fn scan(root: &Path, limits: TreeLimits) -> Result<Tree, TreeError> {
        let handle = open_dir(CWD, root).map_err(io_at(Path::new("")))?;
        let mut scan = Scan {
            limits,
            entries: Vec::new(),
            bytes: 0,
        };
        scan.directory(&handle, Path::new(""))?;
        scan.entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(Tree {
            root: handle,
            entries: scan.entries,
            bytes: scan.bytes,
        })
    }

    /// The directories and regular files, sorted by path.
    pub fn entries(&self) -> &[TreeEntry] {
        &self.entries
    }

    /// The sum of the regular files' sizes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The regular files.
    pub fn files(&self) -> u64 {
        self.entries.iter().filter(|e| e.size.is_some()).count() as u64
    }

    /// Opens the file `entry` through handles from the root, no link followed; a reader
    /// of exactly the size it had when scanned, which fails if the file is no longer a
    /// regular file of that size.
    pub fn open(&self, entry: &TreeEntry) -> Result<impl Read, TreeError> {
        let size = entry.size.ok_or_else(|| TreeError::Refused {
            path: entry.path.clone(),
            kind: "directory",
        })?;
        let mut parent: Option<OwnedFd> = None;
        let mut components = entry.path.components().peekable();
        while let Some(component) = components.next() {
            let Component::Normal(name) = component else {
                return Err(TreeError::Io {
                    path: entry.path.clone(),
                    source: io::Error::new(io::ErrorKind::InvalidInput, "not a plain path"),
                });
            };
            let dir = parent.as_ref().unwrap_or(&self.root);
            if components.peek().is_some() {
                parent = Some(open_dir(dir, name).map_err(io_at(&entry.path))?);
                continue;
            }
            let file = rustix::fs::openat(dir, name, file_flags(), Mode::empty())
                .map_err(|e| refusal_or_io(&entry.path, e))?;
            let stat = rustix::fs::fstat(&file).map_err(|e| io_at(&entry.path)(e.into()))?;
            let kind = FileType::from_raw_mode(stat.st_mode);
            if kind != FileType::RegularFile || stat.st_size as u64 != size {
                return Err(TreeError::Io {
                    path: entry.path.clone(),
                    source: io::Error::other("the file changed after the workspace was measured"),
                });
            }
            return Ok(Exact {
                file: File::from(file).take(size),
                left: size,
                path: entry.path.clone(),
            });
        }
        Err(TreeError::Io {
            path: entry.path.clone(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "an empty path"),
        })
    }
}

/// The walk's running totals.
struct Scan {
    limits: TreeLimits,
    entries: Vec<TreeEntry>,
    bytes: u64,
}

impl Scan {
    fn directory(&mut self, dir: &OwnedFd, relative: &Path) -> Result<(), TreeError> {
        let listing = Dir::read_from(dir).map_err(|e| io_at(relative)(e.into()))?;
        for item in listing {
            let item = item.map_err(|e| io_at(relative)(e.into()))?;
            let name = item.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let name = std::ffi::OsStr::new(std::str::from_utf8(name).map_err(|_| {
                io_at(relative)(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "a file name that is not UTF-8",
                ))
            })?);
            let path = relative.join(name);
            let stat = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| io_at(&path)(e.into()))?;
            match FileType::from_raw_mode(stat.st_mode) {
                FileType::Directory => {
                    self.admit(&path, None)?;
                    let child = open_dir(dir, name).map_err(|e| refusal_or_io(&path, e))?;
                    self.directory(&child, &path)?;
                }
                FileType::RegularFile => self.admit(&path, Some(stat.st_size as u64))?,
                FileType::Symlink => return Err(refused(path, "symbolic link")),
                FileType::Fifo => return Err(refused(path, "fifo")),
                FileType::Socket => return Err(refused(path, "socket")),
                _ => return Err(refused(path, "device")),
            }
        }
        Ok(())
    }

    /// Counts one entry, failing as soon as a total passes its limit.
    fn admit(&mut self, path: &Path, size: Option<u64>) -> Result<(), TreeError> {
        let entries = self.entries.len() as u64 + 1;
        let bytes = self.bytes.saturating_add(size.unwrap_or(0));
        let over = |allowed, requested| {
            TreeError::TooLarge(LimitExceeded {
                kind: LimitKind::Workspace,
                allowed,
                requested,
            })
        };
        if entries > self.limits.entries {
            return Err(over(self.limits.entries, entries));
        }
        if bytes > self.limits.bytes {
            return Err(over(self.limits.bytes, bytes));
        }
        self.bytes = bytes;
        self.entries.push(TreeEntry {
            path: path.to_owned(),
            size,
        });
        Ok(())
    }
}

/// Reads exactly `left` bytes, failing if the file ends first.
struct Exact {
    file: io::Take<File>,
    left: u64,
    path: PathBuf,
}

impl Read for Exact {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.file.read(buf)?;
        if read == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} shrank while it was read", self.path.display()),
            ));
        }
        self.left -= read as u64;
        Ok(read)
    }
}

fn file_flags() -> OFlags {
    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK
}

fn open_dir(dir: impl std::os::fd::AsFd, name: impl rustix::path::Arg) -> io::Result<OwnedFd> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io::Error::from)
}

fn refused(path: PathBuf, kind: &'static str) -> TreeError {
    TreeError::Refused { path, kind }
}

/// A link met where a directory or file was expected (`ELOOP` under `O_NOFOLLOW`, or
/// `ENOTDIR` for a link swapped in for a directory) is a refusal; anything else is I/O.
fn refusal_or_io(path: &Path, error: impl Into<io::Error>) -> TreeError {
    let error = error.into();
    match error.raw_os_error() {
        Some(code) if code == rustix::io::Errno::LOOP.raw_os_error() => {
            refused(path.to_owned(), "symbolic link")
        }
        _ => io_at(path)(error),
    }
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> TreeError + '_ {
    move |source| TreeError::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOMY: TreeLimits = TreeLimits {
        bytes: 1 << 20,
        entries: 100,
    };

    #[test]
    fn a_tree_is_listed_sorted_and_read_exactly() {
        let temp = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(temp.path().join("b/c")).expect("mkdir");
        std::fs::write(temp.path().join("b/c/file"), "contents").expect("write");
        std::fs::write(temp.path().join("a"), "x").expect("write");
        let tree = Tree::scan(temp.path(), ROOMY).expect("scan");
        let paths: Vec<_> = tree.entries().iter().map(|e| e.path.clone()).collect();
        assert_eq!(paths, ["a", "b", "b/c", "b/c/file"].map(PathBuf::from));
        assert_eq!((tree.bytes(), tree.files()), (9, 2));
        let mut text = String::new();
        tree.open(&tree.entries()[3])
            .expect("open")
            .read_to_string(&mut text)
            .expect("read");
        assert_eq!(text, "contents");
    }

    #[test]
    fn a_sparse_file_counts_by_its_apparent_size_and_nothing_is_read() {
        let temp = tempfile::tempdir().expect("tempdir");
        let file = File::create(temp.path().join("sparse")).expect("create");
        file.set_len(8 << 30).expect("8 GiB, sparse");
        let error = Tree::scan(temp.path(), ROOMY).expect_err("too large");
        assert!(
            matches!(error, TreeError::TooLarge(limit)
                if limit.kind == LimitKind::Workspace && limit.requested == 8 << 30),
            "{error:?}"
        );
    }

    #[test]
    fn too_many_entries_stop_the_walk() {
        let temp = tempfile::tempdir().expect("tempdir");
        for n in 0..5 {
            std::fs::write(temp.path().join(n.to_string()), "").expect("write");
        }
        let limits = TreeLimits {
            bytes: 1 << 20,
            entries: 4,
        };
        let error = Tree::scan(temp.path(), limits).expect_err("too many");
        assert!(matches!(error, TreeError::TooLarge(limit) if limit.requested == 5));
    }

    #[test]
    fn links_and_special_files_are_refused_not_followed() {
        let temp = tempfile::tempdir().expect("tempdir");
        std::fs::write(temp.path().join("secret"), "outside").expect("write");
        let root = temp.path().join("ws");
        std::fs::create_dir(&root).expect("mkdir");
        std::os::unix::fs::symlink("../secret", root.join("link")).expect("symlink");
        let error = Tree::scan(&root, ROOMY).expect_err("refused");
        assert!(
            matches!(&error, TreeError::Refused { path, kind: "symbolic link" }
                if path == Path::new("link")),
            "{error:?}"
        );

        // A file measured, then swapped for a link before it is read: refused.
        std::fs::remove_file(root.join("link")).expect("rm");
        std::fs::write(root.join("data"), "outside").expect("write");
        let tree = Tree::scan(&root, ROOMY).expect("scan");
        std::fs::remove_file(root.join("data")).expect("rm");
        std::os::unix::fs::symlink("../secret", root.join("data")).expect("symlink");
        let error = tree.open(&tree.entries()[0]).err().expect("refused");
        assert!(
            matches!(
                &error,
                TreeError::Refused {
                    kind: "symbolic link",
                    ..
                }
            ),
            "{error:?}"
        );
    }
}
