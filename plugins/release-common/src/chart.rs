//! A chart folder's listing and digest: what `sign-artifact` signs and
//! `verify-signature` recomputes.
//!
//! The listing has one line per regular file of the folder (recursively), sorted by the
//! file's path relative to the folder (byte order, `/` between folders), in the format
//! of `sha256sum`: `<64 lowercase hex>␠␠<path>\n`. The chart digest is the SHA-256 of the
//! listing's text. So anyone can recompute it with standard tools:
//!
//! ```text
//! cd deploy/chart && find . -type f | sed 's|^\./||' | LC_ALL=C sort \
//!     | xargs sha256sum | sha256sum
//! ```
//!
//! A symbolic link or any other kind of file in the folder is refused, naming it: what
//! is signed must be exactly the files that are there.

use std::fs::{self, File};
use std::io;
use std::path::Path;

use relo_sdk::StepError;
use sha2::{Digest as _, Sha256};

use crate::digest::Sha256Digest;
use crate::workspace::{self, WorkspacePath};

/// One file of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChartFile {
    /// The path relative to the chart folder, `templates/deployment.yaml`.
    pub path: String,
    /// The file's SHA-256, 64 lowercase hex digits.
    pub sha256: String,
}

/// A chart folder's files, the listing's text and its digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChartListing {
    files: Vec<ChartFile>,
    text: String,
    digest: Sha256Digest,
}

impl ChartListing {
    /// The listing of these files, in any order.
    pub fn from_files(mut files: Vec<ChartFile>) -> Self {
        files.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        let text: String = files
            .iter()
            .map(|file| format!("{}  {}\n", file.sha256, file.path))
            .collect();
        let digest = Sha256Digest::of(text.as_bytes());
        Self {
            files,
            text,
            digest,
        }
    }

    /// Lists the chart folder `folder` of the workspace.
    ///
    /// # Errors
    ///
    /// `failed` naming the folder or file: missing, not a folder, empty, holding a
    /// symbolic link or a special file, a name that is not UTF-8 or holds a line break,
    /// or a file that cannot be read.
    pub fn read(folder: &WorkspacePath) -> Result<Self, StepError> {
        let root = folder.mounted();
        let metadata = fs::metadata(&root)
            .map_err(|error| workspace::io_failure("read the chart folder", folder, &error))?;
        if !metadata.is_dir() {
            return Err(StepError::failed(format!(
                "the chart `{folder}` is not a folder"
            )));
        }
        let mut files = Vec::new();
        walk(folder, &root, "", &mut files)?;
        if files.is_empty() {
            return Err(StepError::failed(format!(
                "the chart folder `{folder}` has no files"
            )));
        }
        Ok(Self::from_files(files))
    }

    /// Reads a listing's text, as [`ChartListing::text`] gives it.
    ///
    /// # Errors
    ///
    /// Which line is not `<64 lowercase hex>␠␠<path>`, or is out of order or repeated.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut files = Vec::new();
        for (index, line) in text.split_terminator('\n').enumerate() {
            let number = index + 1;
            let (sha256, path) = line
                .split_once("  ")
                .ok_or_else(|| format!("line {number} is not `<sha256>  <path>`"))?;
            if Sha256Digest::check(&format!("sha256:{sha256}")).is_err() {
                return Err(format!(
                    "line {number} does not start with 64 lowercase hex digits"
                ));
            }
            if path.is_empty() {
                return Err(format!("line {number} has no path"));
            }
            files.push(ChartFile {
                path: path.to_owned(),
                sha256: sha256.to_owned(),
            });
        }
        if files.is_empty() {
            return Err("the listing is empty".to_owned());
        }
        if !text.ends_with('\n') {
            return Err("the listing does not end with a line break".to_owned());
        }
        let listing = Self::from_files(files.clone());
        if listing.files != files {
            return Err("the listing is not sorted by path".to_owned());
        }
        for pair in listing.files.windows(2) {
            if let [first, second] = pair
                && first.path == second.path
            {
                return Err(format!("the listing names `{}` twice", first.path));
            }
        }
        Ok(listing)
    }

    /// The files, sorted by path.
    pub fn files(&self) -> &[ChartFile] {
        &self.files
    }

    /// The listing's text, in `sha256sum` format.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The chart digest: the SHA-256 of [`ChartListing::text`].
    pub fn digest(&self) -> &Sha256Digest {
        &self.digest
    }

    /// What changed from `earlier` to this listing, one entry per file:
    /// `modified \`a\``, `added \`b\``, `removed \`c\``, in path order.
    pub fn changes_since(&self, earlier: &ChartListing) -> Vec<String> {
        let find = |files: &[ChartFile], path: &str| {
            files
                .iter()
                .find(|file| file.path == path)
                .map(|file| file.sha256.clone())
        };
        let mut paths: Vec<&str> = self
            .files
            .iter()
            .chain(&earlier.files)
            .map(|file| file.path.as_str())
            .collect();
        paths.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        paths.dedup();
        paths
            .into_iter()
            .filter_map(
                |path| match (find(&earlier.files, path), find(&self.files, path)) {
                    (Some(before), Some(now)) if before != now => {
                        Some(format!("modified `{path}`"))
                    }
                    (None, Some(_)) => Some(format!("added `{path}`")),
                    (Some(_), None) => Some(format!("removed `{path}`")),
                    _ => None,
                },
            )
            .collect()
    }
}

/// Adds the regular files below `dir` (whose path relative to the chart is `prefix`).
fn walk(
    folder: &WorkspacePath,
    dir: &Path,
    prefix: &str,
    files: &mut Vec<ChartFile>,
) -> Result<(), StepError> {
    let shown = |relative: &str| {
        if relative.is_empty() {
            folder.clone()
        } else {
            folder.join(relative)
        }
    };
    let entries =
        fs::read_dir(dir).map_err(|error| workspace::io_failure("list", &shown(prefix), &error))?;
    for entry in entries {
        let entry = entry.map_err(|error| workspace::io_failure("list", &shown(prefix), &error))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(StepError::failed(format!(
                "`{}` holds a file whose name is not UTF-8: {name:?}",
                shown(prefix)
            )));
        };
        let relative = if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}/{name}")
        };
        if relative.contains(['\n', '\r']) {
            return Err(StepError::failed(format!(
                "`{}` has a line break in its name; a listing cannot hold it",
                shown(&relative).as_str().escape_debug()
            )));
        }
        let kind = entry
            .file_type()
            .map_err(|error| workspace::io_failure("inspect", &shown(&relative), &error))?;
        if kind.is_symlink() {
            return Err(StepError::failed(format!(
                "`{}` is a symbolic link; a signed chart holds regular files only",
                shown(&relative)
            )));
        } else if kind.is_dir() {
            walk(folder, &entry.path(), &relative, files)?;
        } else if kind.is_file() {
            let sha256 = hash_file(&entry.path())
                .map_err(|error| workspace::io_failure("read", &shown(&relative), &error))?;
            files.push(ChartFile {
                path: relative,
                sha256,
            });
        } else {
            return Err(StepError::failed(format!(
                "`{}` is neither a regular file nor a folder",
                shown(&relative)
            )));
        }
    }
    Ok(())
}

fn hash_file(path: &Path) -> io::Result<String> {
    let mut hasher = Sha256::new();
    io::copy(&mut File::open(path)?, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, content: &[u8]) -> ChartFile {
        ChartFile {
            path: path.to_owned(),
            sha256: Sha256Digest::of(content).hex().to_owned(),
        }
    }

    #[test]
    fn the_listing_is_sorted_sha256sum_text_and_its_digest_is_of_that_text() {
        let listing = ChartListing::from_files(vec![
            file("values.yaml", b"image: x\n"),
            file("Chart.yaml", b"name: c\n"),
            file("templates/deployment.yaml", b"kind: Deployment\n"),
        ]);
        let paths: Vec<&str> = listing.files().iter().map(|f| f.path.as_str()).collect();
        // Byte order: upper case before lower case.
        assert_eq!(
            paths,
            ["Chart.yaml", "templates/deployment.yaml", "values.yaml"]
        );
        let first = listing.text().lines().next().unwrap_or_default();
        assert_eq!(
            first,
            format!("{}  Chart.yaml", Sha256Digest::of(b"name: c\n").hex())
        );
        assert_eq!(
            listing.digest(),
            &Sha256Digest::of(listing.text().as_bytes())
        );
        assert_eq!(ChartListing::parse(listing.text()), Ok(listing));
    }

    #[test]
    fn changes_name_each_file() {
        let before = ChartListing::from_files(vec![file("a", b"1"), file("b", b"2")]);
        let after = ChartListing::from_files(vec![file("a", b"1!"), file("c", b"3")]);
        assert_eq!(
            after.changes_since(&before),
            ["modified `a`", "removed `b`", "added `c`"]
        );
        assert!(after.changes_since(&after).is_empty());
    }

    #[test]
    fn a_malformed_listing_says_which_line() {
        let good = ChartListing::from_files(vec![file("a", b"1"), file("b", b"2")]);
        let swapped: String = good
            .text()
            .lines()
            .rev()
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            ChartListing::parse(&swapped),
            Err("the listing is not sorted by path".to_owned())
        );
        assert_eq!(
            ChartListing::parse("abc  a\n"),
            Err("line 1 does not start with 64 lowercase hex digits".to_owned())
        );
        assert_eq!(
            ChartListing::parse(""),
            Err("the listing is empty".to_owned())
        );
        let twice = format!("{}{}", good.text().lines().next().unwrap_or_default(), "\n").repeat(2);
        assert_eq!(
            ChartListing::parse(&twice),
            Err("the listing names `a` twice".to_owned())
        );
    }
}
