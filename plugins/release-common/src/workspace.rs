//! The run's workspace: where it is mounted in the step, paths inside it, and reads and
//! writes whose errors name the file.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use relo_sdk::StepError;

/// Where the host mounts the run's workspace in a step whose manifest declares
/// `[filesystem] workspace = "read-only"` or `"read-write"`.
pub const MOUNT: &str = "/workspace";

/// A path relative to the workspace root: not empty, not absolute, without `..`,
/// backslashes or control characters. `.` segments and repeated slashes are dropped, so
/// `./deploy//chart` is `deploy/chart`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkspacePath(String);

impl WorkspacePath {
    /// Checks `value`, given in the input field `field`; the error names both.
    ///
    /// # Errors
    ///
    /// `invalid-input` saying what is wrong with the path.
    pub fn parse(field: &str, value: &str) -> Result<Self, StepError> {
        Self::check(value).map_err(|why| {
            StepError::invalid_input(format!(
                "`{field}` must be a path relative to the workspace: {why}"
            ))
        })
    }

    /// The same check as [`WorkspacePath::parse`], with the reason as plain text.
    ///
    /// # Errors
    ///
    /// Why `value` is not a workspace path.
    pub fn check(value: &str) -> Result<Self, String> {
        if value.is_empty() {
            return Err("it is empty".to_owned());
        }
        if value.starts_with('/') {
            return Err(format!("`{value}` is absolute"));
        }
        if value.contains('\\') {
            return Err(format!(
                "`{value}` has a backslash; separate folders with `/`"
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(format!("{value:?} has a control character"));
        }
        let mut parts = Vec::new();
        for part in value.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err(format!("`{value}` leaves the workspace with `..`")),
                part => parts.push(part),
            }
        }
        if parts.is_empty() {
            return Err(format!("`{value}` names the workspace root itself"));
        }
        Ok(Self(parts.join("/")))
    }

    /// The path as written in the workspace, `deploy/chart/values.yaml`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Where the path is inside the step: under [`MOUNT`].
    pub fn mounted(&self) -> PathBuf {
        Path::new(MOUNT).join(&self.0)
    }

    /// A path below this one: `deploy/chart` joined with `templates/a.yaml`.
    pub fn join(&self, relative: &str) -> Self {
        Self(format!("{}/{relative}", self.0))
    }
}

impl fmt::Display for WorkspacePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Reads a UTF-8 text file of the workspace.
///
/// # Errors
///
/// `failed` naming the file: missing, unreadable, or not UTF-8.
pub fn read_text(path: &WorkspacePath) -> Result<String, StepError> {
    let bytes = std::fs::read(path.mounted()).map_err(|error| io_failure("read", path, &error))?;
    String::from_utf8(bytes)
        .map_err(|error| StepError::failed(format!("`{path}` is not UTF-8 text: {error}")))
}

/// Replaces the content of a file of the workspace.
///
/// # Errors
///
/// `failed` naming the file, with a hint when the workspace is mounted read-only.
pub fn write_text(path: &WorkspacePath, text: &str) -> Result<(), StepError> {
    std::fs::write(path.mounted(), text).map_err(|error| io_failure("write", path, &error))
}

/// A `failed` error for an I/O error on `path`, saying when no workspace is mounted at
/// all (the manifest declares no `[filesystem]`, or the run has no workspace) and when
/// a write was refused (a read-only workspace).
pub fn io_failure(action: &str, path: &WorkspacePath, error: &io::Error) -> StepError {
    if !Path::new(MOUNT).is_dir() {
        return StepError::failed(format!(
            "cannot {action} `{path}`: no workspace is mounted at {MOUNT} (the plugin's \
             manifest must declare `[filesystem] workspace` and the run must have one)"
        ));
    }
    let message = match error.kind() {
        io::ErrorKind::NotFound => format!("`{path}` does not exist in the workspace"),
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
            if action == "write" =>
        {
            format!("cannot write `{path}`: {error} (the step needs the workspace read-write)")
        }
        _ => format!("cannot {action} `{path}`: {error}"),
    };
    StepError::failed(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised() {
        let path = WorkspacePath::check("./deploy//chart/").map(|p| p.0);
        assert_eq!(path.as_deref(), Ok("deploy/chart"));
        assert_eq!(
            WorkspacePath::check("VERSION").map(|p| p.mounted()),
            Ok(PathBuf::from("/workspace/VERSION"))
        );
    }

    #[test]
    fn escapes_and_oddities_are_refused_with_the_reason() {
        for (value, why) in [
            ("", "it is empty"),
            ("/etc/passwd", "`/etc/passwd` is absolute"),
            (
                "deploy/../../x",
                "`deploy/../../x` leaves the workspace with `..`",
            ),
            ("a\\b", "`a\\b` has a backslash; separate folders with `/`"),
            ("./.", "`./.` names the workspace root itself"),
            ("a\nb", "\"a\\nb\" has a control character"),
        ] {
            assert_eq!(WorkspacePath::check(value), Err(why.to_owned()), "{value}");
        }
        assert_eq!(
            WorkspacePath::parse("values", "/x"),
            Err(StepError::invalid_input(
                "`values` must be a path relative to the workspace: `/x` is absolute"
            ))
        );
    }
}
