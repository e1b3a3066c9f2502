//! Which database a relo home uses, and how its URL is read.

use std::path::{Path, PathBuf};

use crate::error::StoreError;

/// The environment variable that overrides the configured database URL.
pub const DATABASE_URL_ENV: &str = "RELO_DATABASE_URL";

/// The database used when neither the environment nor the configuration names one: a
/// SQLite file in the relo home.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://relo.db";

/// The URL that wins: a non-empty `env` value (from [`DATABASE_URL_ENV`]), else the
/// configured one (`[store] url` in `relo.toml`), else [`DEFAULT_DATABASE_URL`].
///
/// ```
/// use relo_store::effective_database_url;
///
/// assert_eq!(effective_database_url(None, None), "sqlite://relo.db");
/// assert_eq!(effective_database_url(Some("sqlite://a.db"), None), "sqlite://a.db");
/// assert_eq!(
///     effective_database_url(Some("sqlite://a.db"), Some("postgres://db/relo")),
///     "postgres://db/relo"
/// );
/// ```
pub fn effective_database_url<'a>(configured: Option<&'a str>, env: Option<&'a str>) -> &'a str {
    env.filter(|url| !url.trim().is_empty())
        .or(configured)
        .unwrap_or(DEFAULT_DATABASE_URL)
}

/// A parsed database URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DatabaseUrl {
    /// A SQLite file; relative paths are relative to the relo home.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL, passed to the driver as is.
    Postgres(String),
}

impl DatabaseUrl {
    pub(crate) fn parse(url: &str) -> Result<Self, StoreError> {
        let invalid = |reason: &str| StoreError::InvalidUrl {
            url: redact(url),
            reason: reason.to_owned(),
        };
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_owned()));
        }
        let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        else {
            return Err(invalid(
                "expected sqlite://PATH (relative to the relo home) or postgres://...",
            ));
        };
        if path.is_empty() {
            return Err(invalid("the SQLite file path is empty"));
        }
        if path.contains('?') || path == ":memory:" {
            return Err(invalid(
                "SQLite URLs take a file path only: no parameters, no in-memory database",
            ));
        }
        Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
    }

    /// The SQLite file for this URL in `home`, if it names one.
    pub(crate) fn sqlite_path(&self, home: &Path) -> Option<PathBuf> {
        match self {
            DatabaseUrl::Sqlite(path) if path.is_absolute() => Some(path.clone()),
            DatabaseUrl::Sqlite(path) => Some(home.join(path)),
            DatabaseUrl::Postgres(_) => None,
        }
    }
}

/// `url` with the password, if any, replaced by `***`, for error messages and logs.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths_are_relative_to_the_home_unless_absolute() {
        let home = Path::new("/srv/relo");
        let relative = DatabaseUrl::parse("sqlite://relo.db").expect("parses");
        assert_eq!(
            relative.sqlite_path(home),
            Some(PathBuf::from("/srv/relo/relo.db"))
        );
        let absolute = DatabaseUrl::parse("sqlite:///var/lib/relo.db").expect("parses");
        assert_eq!(
            absolute.sqlite_path(home),
            Some(PathBuf::from("/var/lib/relo.db"))
        );
        let short = DatabaseUrl::parse("sqlite:data/relo.db").expect("parses");
        assert_eq!(
            short.sqlite_path(home),
            Some(PathBuf::from("/srv/relo/data/relo.db"))
        );
    }

    #[test]
    fn postgres_urls_pass_through() {
        for url in [
            "postgres://u@h/db",
            "postgresql://u@h:5433/db?sslmode=disable",
        ] {
            assert_eq!(
                DatabaseUrl::parse(url).expect("parses"),
                DatabaseUrl::Postgres(url.to_owned())
            );
        }
    }

    #[test]
    fn other_urls_are_refused_with_the_reason() {
        for (url, reason) in [
            ("mysql://h/db", "expected sqlite://"),
            ("sqlite://", "path is empty"),
            ("sqlite::memory:", "no in-memory"),
            ("sqlite://relo.db?mode=ro", "no parameters"),
        ] {
            let err = DatabaseUrl::parse(url).expect_err(url).to_string();
            assert!(err.contains(reason), "{url}: {err}");
        }
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://relo:s3cret@db:5432/relo?x=1"),
            "postgres://relo:***@db:5432/relo?x=1"
        );
        assert_eq!(redact("postgres://relo@db/relo"), "postgres://relo@db/relo");
        let err = DatabaseUrl::parse("mongodb://u:s3cret@h/db")
            .expect_err("refused")
            .to_string();
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn the_environment_overrides_the_configuration() {
        assert_eq!(effective_database_url(None, None), DEFAULT_DATABASE_URL);
        assert_eq!(
            effective_database_url(Some("sqlite://x.db"), Some("")),
            "sqlite://x.db"
        );
        assert_eq!(
            effective_database_url(Some("sqlite://x.db"), Some("postgres://h/db")),
            "postgres://h/db"
        );
        assert_eq!(
            effective_database_url(None, Some("sqlite://y.db")),
            "sqlite://y.db"
        );
    }
}
