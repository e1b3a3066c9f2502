//! A provider reading a local JSON file, for development only.
//!
//! The file maps paths to fields: `{"demo/forge": {"token": "…"}}`. It must not be
//! readable by group or others. It has no versions: a pinned version is refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::{SecretError, SecretPath, SecretProvider, SecretValue};

/// Secrets from a local JSON file. For development only: relo warns when it is used.
pub struct FileProvider {
    path: PathBuf,
    secrets: BTreeMap<String, BTreeMap<String, Zeroizing<String>>>,
}

impl std::fmt::Debug for FileProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileProvider")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl FileProvider {
    /// Reads `path`, refusing a file that group or others may read, and logs a warning
    /// that this provider is for development only.
    pub fn open(path: &Path) -> Result<Self, SecretError> {
        let shown = path.display();
        let metadata = std::fs::metadata(path).map_err(|e| {
            SecretError::Config(format!("cannot read the secrets file {shown}: {e}"))
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(SecretError::Config(format!(
                    "the secrets file {shown} is accessible by group or others (mode {mode:04o}); \
                     restrict it with `chmod 600 {shown}`"
                )));
            }
        }
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            SecretError::Config(format!("cannot read the secrets file {shown}: {e}"))
        })?);
        let parsed: BTreeMap<String, BTreeMap<String, String>> = serde_json::from_str(&text)
            .map_err(|e| {
                SecretError::Config(format!(
                    "the secrets file {shown} is not a JSON object of paths to fields \
                     ({{\"demo/forge\": {{\"token\": \"...\"}}}}): line {}, column {}",
                    e.line(),
                    e.column()
                ))
            })?;
        tracing::warn!(
            file = %shown,
            "secrets come from a local file: for development only, use Vault or OpenBao in production"
        );
        let secrets = parsed
            .into_iter()
            .map(|(path, fields)| {
                let fields = fields
                    .into_iter()
                    .map(|(k, v)| (k, Zeroizing::new(v)))
                    .collect();
                (path, fields)
            })
            .collect();
        Ok(Self {
            path: path.to_owned(),
            secrets,
        })
    }
}

#[async_trait::async_trait]
impl SecretProvider for FileProvider {
    async fn read(&self, path: &SecretPath) -> Result<SecretValue, SecretError> {
        let reference = path.to_string();
        if path.version().is_some() {
            return Err(SecretError::NotFound {
                reference,
                reason: "the file provider keeps no versions".to_owned(),
            });
        }
        let fields = self
            .secrets
            .get(path.path())
            .ok_or_else(|| SecretError::NotFound {
                reference: reference.clone(),
                reason: format!("{} has no path `{}`", self.path.display(), path.path()),
            })?;
        let value = fields
            .get(path.field())
            .ok_or_else(|| SecretError::NotFound {
                reference: reference.clone(),
                reason: format!("`{}` has no field `{}`", path.path(), path.field()),
            })?;
        Ok(SecretValue::new(value.as_str(), None))
    }

    fn kind(&self) -> &'static str {
        "file"
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn write(dir: &Path, mode: u32, text: &str) -> PathBuf {
        let file = dir.join("secrets.json");
        std::fs::write(&file, text).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
        file
    }

    #[tokio::test]
    async fn reads_fields_and_names_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), 0o600, r#"{"demo/forge": {"token": "s3cr3t"}}"#);
        let provider = FileProvider::open(&file).unwrap();
        let path: SecretPath = "demo/forge#token".parse().unwrap();
        assert_eq!(provider.read(&path).await.unwrap().expose(), "s3cr3t");
        for missing in ["demo/other#token", "demo/forge#nope", "demo/forge#token@2"] {
            let error = provider.read(&missing.parse().unwrap()).await.unwrap_err();
            assert_eq!(error.code(), "secret-not-found", "{missing}");
            assert!(!error.to_string().contains("s3cr3t"));
        }
    }

    #[test]
    fn refuses_a_file_others_can_read_and_bad_json() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), 0o644, r#"{"demo/forge": {"token": "s3cr3t"}}"#);
        let error = FileProvider::open(&file).unwrap_err();
        assert!(error.to_string().contains("chmod 600"), "{error}");
        let file = write(dir.path(), 0o600, "{\"demo/forge\": [1, 2]}");
        let error = FileProvider::open(&file).unwrap_err();
        assert!(error.to_string().contains("line 1"), "{error}");
    }

    #[test]
    fn a_value_never_shows_in_debug() {
        let value = SecretValue::new("s3cr3t", Some(3));
        assert!(!format!("{value:?}").contains("s3cr3t"));
    }
}
