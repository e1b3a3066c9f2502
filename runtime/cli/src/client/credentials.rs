//! The logins of `relo --server URL login`: one per server, in `credentials.json` in the
//! user's config directory.
//!
//! The directory is made 0700 and the file is only ever written as a new 0600 file that
//! replaces the old one by rename, so it is never readable by others, not even while
//! being written, and a crash leaves the old file or the new one, never half of one.
//! Writers (a login, a logout, a token refresh) hold an exclusive lock on
//! `credentials.lock` beside it: two `relo` processes refreshing at once would otherwise
//! both present one refresh token, and the server revokes a login whose refresh token is
//! presented twice.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use super::server::ServerUrl;

/// The environment variable naming the config directory (tests set it).
pub const CONFIG_DIR_ENV: &str = "RELO_CONFIG_DIR";

/// The file of logins in the config directory.
pub const CREDENTIALS_FILE: &str = "credentials.json";

/// The lock file writers hold, beside it.
const LOCK_FILE: &str = "credentials.lock";

/// How long before its expiry an access token is refreshed rather than sent.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(30);

/// The version of the file's format.
const FORMAT_VERSION: u32 = 1;

/// A login to one server: the tokens of `POST /v1/auth/login` (or of the latest
/// refresh) and who they belong to. Its `Debug` shows no token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// The user name logged in.
    pub user: String,
    /// The bearer access token.
    pub access_token: String,
    /// When the access token expires, in seconds since the Unix epoch (by this machine's
    /// clock when it was received).
    pub access_expires_at: u64,
    /// The refresh token; each refresh uses it up and gives a new one.
    pub refresh_token: String,
}

impl Login {
    /// A login from a token answer received at `now`, valid `expires_in` seconds.
    pub fn issued(
        user: &str,
        access_token: String,
        expires_in: u64,
        refresh_token: String,
        now: SystemTime,
    ) -> Login {
        Login {
            user: user.to_owned(),
            access_token,
            access_expires_at: unix_seconds(now).saturating_add(expires_in),
            refresh_token,
        }
    }

    /// Whether the access token is expired at `now` or expires within
    /// [`REFRESH_MARGIN`]: then it is refreshed before it is sent.
    pub fn needs_refresh(&self, now: SystemTime) -> bool {
        unix_seconds(now).saturating_add(REFRESH_MARGIN.as_secs()) >= self.access_expires_at
    }
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("user", &self.user)
            .field("access_expires_at", &self.access_expires_at)
            .finish_non_exhaustive()
    }
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The file's content.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    version: u32,
    /// Logins by normalised server URL.
    servers: BTreeMap<String, Login>,
}

/// The config directory holding `credentials.json`.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    dir: PathBuf,
}

/// An exclusive hold on the credentials, released when dropped.
#[derive(Debug)]
pub struct CredentialsLock {
    _file: File,
}

impl CredentialStore {
    /// `$RELO_CONFIG_DIR`, else `$XDG_CONFIG_HOME/relo`, else `~/.config/relo`.
    pub fn locate() -> anyhow::Result<CredentialStore> {
        let from_env = |name: &str| {
            std::env::var_os(name)
                .filter(|value| !value.is_empty())
                .map(PathBuf::from)
        };
        if let Some(dir) = from_env(CONFIG_DIR_ENV) {
            return Ok(CredentialStore::at(dir));
        }
        // The XDG base directory rules ignore a relative XDG_CONFIG_HOME.
        if let Some(config) = from_env("XDG_CONFIG_HOME").filter(|dir| dir.is_absolute()) {
            return Ok(CredentialStore::at(config.join("relo")));
        }
        match std::env::home_dir() {
            Some(home) if home.is_absolute() => {
                Ok(CredentialStore::at(home.join(".config").join("relo")))
            }
            _ => bail!(
                "cannot tell where to keep logins: set {CONFIG_DIR_ENV} (or XDG_CONFIG_HOME or HOME)"
            ),
        }
    }

    /// The config directory `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> CredentialStore {
        CredentialStore { dir: dir.into() }
    }

    /// The path of `credentials.json`.
    pub fn path(&self) -> PathBuf {
        self.dir.join(CREDENTIALS_FILE)
    }

    /// The login to `server`, if there is one.
    pub fn load(&self, server: &ServerUrl) -> anyhow::Result<Option<Login>> {
        Ok(self.read()?.servers.remove(server.as_str()))
    }

    /// Takes the exclusive lock writers hold while they read, change and write the file
    /// (and, for a refresh, while they ask the server). Blocks until it is free.
    pub fn lock(&self) -> anyhow::Result<CredentialsLock> {
        self.make_dir()?;
        let path = self.dir.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        file.lock()
            .with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(CredentialsLock { _file: file })
    }

    /// Stores `login` as the login to `server`, replacing any. The caller holds the lock.
    pub fn save(
        &self,
        _lock: &CredentialsLock,
        server: &ServerUrl,
        login: &Login,
    ) -> anyhow::Result<()> {
        let mut file = self.read()?;
        file.servers
            .insert(server.as_str().to_owned(), login.clone());
        self.write(&file)
    }

    /// Forgets the login to `server`; whether there was one. The caller holds the lock.
    pub fn remove(&self, _lock: &CredentialsLock, server: &ServerUrl) -> anyhow::Result<bool> {
        let mut file = self.read()?;
        let removed = file.servers.remove(server.as_str()).is_some();
        if removed {
            self.write(&file)?;
        }
        Ok(removed)
    }

    fn read(&self) -> anyhow::Result<CredentialsFile> {
        let path = self.path();
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(CredentialsFile::default());
            }
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read {}", path.display()));
            }
        };
        let mode = file
            .metadata()
            .with_context(|| format!("cannot read {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            bail!(
                "{} is readable or writable by others (mode {:o}): its tokens may have been \
                 seen; log out, then `chmod 600` it (or delete it) and log in again",
                path.display(),
                mode & 0o777
            );
        }
        let parsed: CredentialsFile = serde_json::from_reader(std::io::BufReader::new(file))
            .with_context(|| {
                format!(
                    "{} is not a relo credentials file; delete it and log in again",
                    path.display()
                )
            })?;
        if parsed.version != FORMAT_VERSION {
            bail!(
                "{} is of format version {}, which this relo does not know",
                path.display(),
                parsed.version
            );
        }
        Ok(parsed)
    }

    /// Writes `file` to a new 0600 file in the directory and renames it over the old.
    fn write(&self, file: &CredentialsFile) -> anyhow::Result<()> {
        self.make_dir()?;
        let path = self.path();
        let mut text = serde_json::to_vec_pretty(&CredentialsFile {
            version: FORMAT_VERSION,
            servers: file.servers.clone(),
        })?;
        text.push(b'\n');
        let mut temp = tempfile::Builder::new()
            .prefix(".credentials-")
            .suffix(".tmp")
            .permissions(std::fs::Permissions::from_mode(0o600))
            .tempfile_in(&self.dir)
            .with_context(|| format!("cannot create a file in {}", self.dir.display()))?;
        temp.write_all(&text)
            .and_then(|()| temp.as_file().sync_all())
            .with_context(|| format!("cannot write {}", temp.path().display()))?;
        temp.persist(&path)
            .with_context(|| format!("cannot replace {}", path.display()))?;
        // The rename is durable once the directory is.
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// Creates the directory (0700) if it does not exist; an existing one is left as is.
    fn make_dir(&self) -> anyhow::Result<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn server(url: &str) -> ServerUrl {
        ServerUrl::parse(url).expect("a server URL")
    }

    fn login(user: &str, refresh: &str) -> Login {
        Login {
            user: user.to_owned(),
            access_token: format!("access-of-{user}"),
            access_expires_at: 1_800_000_000,
            refresh_token: refresh.to_owned(),
        }
    }

    #[test]
    fn logins_round_trip_per_server_in_a_private_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = CredentialStore::at(dir.path().join("relo"));
        let (one, two) = (
            server("https://one.example.com/"),
            server("http://127.0.0.1:8080"),
        );
        assert_eq!(store.load(&one).expect("no file yet"), None);
        let lock = store.lock().expect("lock");
        store.save(&lock, &one, &login("olga", "r1")).expect("save");
        store.save(&lock, &two, &login("rita", "r2")).expect("save");
        drop(lock);

        let mode = |path: &Path| {
            std::fs::metadata(path)
                .expect("metadata")
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(&dir.path().join("relo")), 0o700);
        assert_eq!(mode(&store.path()), 0o600);
        // Only the file and the lock: no temporary file is left behind.
        let mut names: Vec<String> = std::fs::read_dir(dir.path().join("relo"))
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["credentials.json", "credentials.lock"]);

        assert_eq!(
            store
                .load(&server("https://ONE.example.com"))
                .expect("load"),
            Some(login("olga", "r1")),
            "found under the normalised URL"
        );
        assert_eq!(store.load(&two).expect("load"), Some(login("rita", "r2")));
        let text = std::fs::read_to_string(store.path()).expect("read");
        assert!(text.contains("\"https://one.example.com\""), "{text}");

        let lock = store.lock().expect("lock");
        assert!(store.remove(&lock, &one).expect("remove"));
        assert!(!store.remove(&lock, &one).expect("gone already"));
        assert_eq!(store.load(&one).expect("load"), None);
        assert_eq!(store.load(&two).expect("load"), Some(login("rita", "r2")));
        assert_eq!(mode(&store.path()), 0o600, "rewritten private too");
    }

    #[test]
    fn a_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = CredentialStore::at(dir.path());
        let url = server("https://relo.example.com");
        let lock = store.lock().expect("lock");
        store.save(&lock, &url, &login("olga", "r1")).expect("save");
        std::fs::set_permissions(store.path(), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
        let error = store.load(&url).expect_err("refused");
        assert!(
            error.to_string().contains("readable or writable by others"),
            "{error:#}"
        );
    }

    #[test]
    fn a_damaged_file_is_reported_without_its_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = CredentialStore::at(dir.path());
        std::fs::write(
            store.path(),
            "{\"version\": 1, \"servers\": {\"x\": \"secret-token\"}}",
        )
        .expect("write");
        std::fs::set_permissions(store.path(), std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
        let error = store
            .load(&server("https://relo.example.com"))
            .expect_err("refused");
        assert!(
            format!("{error}").contains("not a relo credentials file"),
            "{error:#}"
        );
    }

    #[test]
    fn the_debug_form_shows_no_token() {
        let text = format!("{:?}", login("olga", "refresh-secret"));
        assert!(text.contains("olga"), "{text}");
        assert!(
            !text.contains("refresh-secret") && !text.contains("access-of"),
            "{text}"
        );
    }

    #[test]
    fn a_token_is_refreshed_from_thirty_seconds_before_its_expiry() {
        let issued_at = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let login = Login::issued("olga", "a".into(), 900, "r".into(), issued_at);
        assert_eq!(login.access_expires_at, 1_800_000_900);
        let at = |seconds_after_issue: u64| issued_at + Duration::from_secs(seconds_after_issue);
        assert!(!login.needs_refresh(at(0)));
        assert!(!login.needs_refresh(at(869)));
        assert!(login.needs_refresh(at(870)), "30 s before expiry");
        assert!(login.needs_refresh(at(900)));
        assert!(login.needs_refresh(at(100_000)));
        // A clock before the epoch counts as the epoch, not as a panic.
        assert!(!login.needs_refresh(UNIX_EPOCH - Duration::from_secs(5)));
    }
}
