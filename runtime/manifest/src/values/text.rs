//! Other checked strings: key references, secret paths, regex patterns, folders, store URLs.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use super::{InvalidValue, string_value};

/// Where a signing key lives: a key file (relative to the relo home) or a Vault Transit
/// key (`vault-transit:NAME`). The key material never enters a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyRef {
    /// A key file.
    File(String),
    /// A Vault Transit key of this name.
    VaultTransit(String),
}

impl FromStr for KeyRef {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, InvalidValue> {
        if let Some(name) = text.strip_prefix("vault-transit:") {
            let ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            return if ok {
                Ok(KeyRef::VaultTransit(name.to_owned()))
            } else {
                Err(InvalidValue::new(format!(
                    "`{text}`: a Vault Transit key name is letters, digits, `-`, `_` and `.`"
                )))
            };
        }
        if text.trim().is_empty() {
            return Err(InvalidValue::new("the key path is empty"));
        }
        if let Some((scheme, _)) = text.split_once(':') {
            let looks_like_scheme = scheme.len() > 1
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if looks_like_scheme {
                return Err(InvalidValue::new(format!(
                    "`{text}`: `{scheme}:` is not a key provider relo knows"
                ))
                .with_hint("use a key file path or `vault-transit:NAME`"));
            }
        }
        Ok(KeyRef::File(text.to_owned()))
    }
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyRef::File(path) => f.write_str(path),
            KeyRef::VaultTransit(name) => write!(f, "vault-transit:{name}"),
        }
    }
}

string_value!(
    KeyRef,
    "A signing key: a key file path (relative to the relo home) or `vault-transit:NAME`."
);

/// Where evidence checkpoints are witnessed: `file:PATH`, an absolute path outside the
/// relo home (an append-only file, one signed checkpoint note per record).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WitnessRef {
    /// An append-only witness file.
    File(String),
}

impl FromStr for WitnessRef {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, InvalidValue> {
        let hint = "write `file:/ABSOLUTE/PATH`, a file outside the relo home";
        let Some(path) = text.strip_prefix("file:") else {
            return Err(InvalidValue::new(format!(
                "`{text}`: a witness is `file:PATH` (the only kind so far)"
            ))
            .with_hint(hint));
        };
        if !path.starts_with('/') || path.trim_end_matches('/').is_empty() {
            return Err(InvalidValue::new(format!(
                "`{text}`: the witness file must be an absolute path"
            ))
            .with_hint(hint));
        }
        Ok(WitnessRef::File(path.to_owned()))
    }
}

impl fmt::Display for WitnessRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WitnessRef::File(path) => write!(f, "file:{path}"),
        }
    }
}

string_value!(
    WitnessRef,
    "Where evidence checkpoints are witnessed: `file:PATH`, an absolute path outside the relo home.",
    pattern = "^file:/.+$"
);

/// Where a secret value is in the secrets provider: `PATH#FIELD` or
/// `PATH#FIELD@VERSION`, e.g. `kv/data/forge#token` or `kv/data/forge#token@3`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretPath {
    path: String,
    field: String,
    version: Option<u64>,
}

impl SecretPath {
    /// The path in the provider, e.g. `kv/data/forge`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The field of the secret at that path, e.g. `token`.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The pinned version, if any.
    pub fn version(&self) -> Option<u64> {
        self.version
    }
}

impl FromStr for SecretPath {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, InvalidValue> {
        let invalid = |reason: &str| {
            InvalidValue::new(format!("`{text}` is not a valid secret path: {reason}"))
                .with_hint("write `PATH#FIELD` or `PATH#FIELD@VERSION`, e.g. `kv/data/forge#token`")
        };
        let Some((path, rest)) = text.split_once('#') else {
            return Err(invalid("it names no field"));
        };
        let (field, version) = match rest.split_once('@') {
            Some((field, version)) => {
                let version = version
                    .parse::<u64>()
                    .ok()
                    .filter(|v| *v > 0)
                    .ok_or_else(|| invalid("the version must be a positive whole number"))?;
                (field, Some(version))
            }
            None => (rest, None),
        };
        let path_ok = !path.starts_with('/')
            && path.split('/').all(|segment| {
                !segment.is_empty()
                    && segment != ".."
                    && segment
                        .bytes()
                        .all(|b| b.is_ascii_graphic() && !b"#@?".contains(&b))
            });
        if !path_ok {
            return Err(invalid(
                "the path must be non-empty segments separated by `/`",
            ));
        }
        let field_ok = !field.is_empty()
            && field
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !field_ok {
            return Err(invalid("the field is letters, digits, `-`, `_` and `.`"));
        }
        Ok(SecretPath {
            path: path.to_owned(),
            field: field.to_owned(),
            version,
        })
    }
}

impl fmt::Display for SecretPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.path, self.field)?;
        if let Some(version) = self.version {
            write!(f, "@{version}")?;
        }
        Ok(())
    }
}

string_value!(
    SecretPath,
    "A secret in the provider: `PATH#FIELD` or `PATH#FIELD@VERSION`.",
    pattern = "^[^/#@][^#@]*#[A-Za-z0-9_.-]+(@[1-9][0-9]*)?$"
);

/// Patterns larger than this when compiled are refused.
const MAX_REGEX_BYTES: usize = 1 << 20;

/// A regular expression a string parameter must match (Rust `regex` syntax; unanchored
/// unless it says `^…$`).
#[derive(Debug, Clone)]
pub struct Pattern {
    text: String,
    regex: regex::Regex,
}

impl Pattern {
    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `value` matches.
    pub fn is_match(&self, value: &str) -> bool {
        self.regex.is_match(value)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Pattern {}

impl Hash for Pattern {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

impl FromStr for Pattern {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, InvalidValue> {
        regex::RegexBuilder::new(text)
            .size_limit(MAX_REGEX_BYTES)
            .build()
            .map(|regex| Pattern {
                text: text.to_owned(),
                regex,
            })
            .map_err(|error| {
                let detail = error.to_string();
                let last = detail.lines().last().unwrap_or_default().trim();
                let last = last.strip_prefix("error: ").unwrap_or(last);
                InvalidValue::new(format!(
                    "`{text}` is not a valid regular expression: {last}"
                ))
            })
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

string_value!(Pattern, "A regular expression (Rust `regex` syntax).");

/// A folder relative to the workflow file: not absolute, no `..`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelativePath(String);

impl RelativePath {
    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for RelativePath {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, InvalidValue> {
        if text.trim().is_empty() {
            return Err(InvalidValue::new("the path is empty"));
        }
        if text.contains('\0') {
            return Err(InvalidValue::new("the path contains a NUL byte"));
        }
        let drive = text.len() >= 2 && text.as_bytes()[1] == b':';
        if text.starts_with(['/', '\\']) || drive {
            return Err(InvalidValue::new(format!("`{text}` is absolute"))
                .with_hint("name a folder relative to the workflow file"));
        }
        if text.split(['/', '\\']).any(|segment| segment == "..") {
            return Err(
                InvalidValue::new(format!("`{text}` leaves its folder with `..`"))
                    .with_hint("name a folder inside the workflow's folder"),
            );
        }
        Ok(RelativePath(text.to_owned()))
    }
}

impl fmt::Display for RelativePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

string_value!(RelativePath, "A relative folder without `..` segments.");

/// Where the store is: `sqlite://PATH` (relative to the relo home) or
/// `postgres://…` / `postgresql://…`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreUrl(String);

impl StoreUrl {
    /// The URL as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is an SQLite database.
    pub fn is_sqlite(&self) -> bool {
        self.0.starts_with("sqlite:")
    }
}

impl FromStr for StoreUrl {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, InvalidValue> {
        let rest = ["sqlite://", "postgres://", "postgresql://"]
            .iter()
            .find_map(|prefix| text.strip_prefix(prefix));
        match rest {
            Some(rest) if !rest.is_empty() => Ok(StoreUrl(text.to_owned())),
            _ => Err(InvalidValue::new(format!("`{text}` is not a store URL"))
                .with_hint("write `sqlite://relo.db` or `postgres://user@host/db`")),
        }
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

string_value!(
    StoreUrl,
    "The store: `sqlite://PATH` or `postgres://…`.",
    pattern = "^(sqlite|postgres|postgresql)://.+$"
);

crate::decode::decode_from_str!(
    KeyRef,
    SecretPath,
    Pattern,
    RelativePath,
    StoreUrl,
    WitnessRef
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_refs() {
        assert_eq!(
            "keys/release.key".parse(),
            Ok(KeyRef::File("keys/release.key".into()))
        );
        assert_eq!(
            "vault-transit:release".parse(),
            Ok(KeyRef::VaultTransit("release".into()))
        );
        assert!("vault-transit:".parse::<KeyRef>().is_err());
        assert!("awskms:foo".parse::<KeyRef>().is_err());
        assert!("".parse::<KeyRef>().is_err());
    }

    #[test]
    fn witness_refs() {
        assert_eq!(
            "file:/var/lib/relo/witness".parse(),
            Ok(WitnessRef::File("/var/lib/relo/witness".into()))
        );
        assert_eq!(
            WitnessRef::File("/w".into()).to_string(),
            "file:/w",
            "it prints as written"
        );
        assert!("file:relative/path".parse::<WitnessRef>().is_err());
        assert!("file:".parse::<WitnessRef>().is_err());
        assert!("file:/".parse::<WitnessRef>().is_err());
        assert!("/abs/path".parse::<WitnessRef>().is_err());
        assert!("https://witness.example".parse::<WitnessRef>().is_err());
    }

    #[test]
    fn secret_paths() {
        let path: SecretPath = "kv/data/forge#token@3".parse().unwrap();
        assert_eq!(
            (path.path(), path.field(), path.version()),
            ("kv/data/forge", "token", Some(3))
        );
        assert_eq!(path.to_string(), "kv/data/forge#token@3");
        for bad in [
            "kv/data/forge",
            "#token",
            "/kv#t",
            "kv//x#t",
            "kv#",
            "kv#t@0",
            "kv#t@x",
            "kv/../x#t",
        ] {
            assert!(bad.parse::<SecretPath>().is_err(), "{bad}");
        }
    }

    #[test]
    fn patterns_and_paths() {
        let pattern: Pattern = r"^\d+$".parse().unwrap();
        assert!(pattern.is_match("12") && !pattern.is_match("1a"));
        assert!("(".parse::<Pattern>().is_err());
        assert!("a{1000}{1000}{1000}".parse::<Pattern>().is_err());
        assert!("examples/demo".parse::<RelativePath>().is_ok());
        assert!("/etc".parse::<RelativePath>().is_err());
        assert!("a/../../b".parse::<RelativePath>().is_err());
        assert!("sqlite://relo.db".parse::<StoreUrl>().is_ok());
        assert!("mysql://x".parse::<StoreUrl>().is_err());
    }
}
