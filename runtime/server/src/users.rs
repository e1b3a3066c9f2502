//! Users: their roles, creating one, and checking a password.

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::SystemTime;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use axum::http::StatusCode;
use rand_core::OsRng;
use relo_evidence::{EvidenceEvent, EvidenceRecord, Scope};
use relo_store::{NewPersonKey, NewUser, Store, StoreError};
use relo_trust::Identity;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// The shortest password [`create_user`] accepts, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// The longest password [`create_user`] accepts, in bytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The longest user name, in bytes.
pub(crate) const MAX_NAME_BYTES: usize = 64;

/// A role a user holds (DESIGN §5, `[[people]] roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Manages users and the server.
    Admin,
    /// Approves plugins and runs the orchestrator.
    Operator,
    /// Starts release runs and approves their gates.
    ReleaseManager,
    /// Uploads plugins.
    PluginAuthor,
    /// Reads runs and evidence.
    Auditor,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Operator,
        Role::ReleaseManager,
        Role::PluginAuthor,
        Role::Auditor,
    ];

    /// The role's name: `admin`, `operator`, `release-manager`, `plugin-author`,
    /// `auditor`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::ReleaseManager => "release-manager",
            Role::PluginAuthor => "plugin-author",
            Role::Auditor => "auditor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of [`Role::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown role `{0}`; the roles are admin, operator, release-manager, plugin-author and auditor"
)]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(name: &str) -> Result<Role, UnknownRole> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == name)
            .ok_or_else(|| UnknownRole(name.to_owned()))
    }
}

/// Why [`create_user`] refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UserError {
    /// The name is empty, too long, or has characters other than ASCII letters, digits,
    /// `-`, `_`, `.` and `@`.
    #[error("invalid user name `{name}`: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The password is empty.
    #[error("the password is empty")]
    EmptyPassword,
    /// The password is shorter than [`MIN_PASSWORD_CHARS`].
    #[error("the password has {got} characters; it needs at least {min}")]
    PasswordTooShort {
        /// The characters needed.
        min: usize,
        /// The characters given.
        got: usize,
    },
    /// The password is longer than [`MAX_PASSWORD_BYTES`].
    #[error("the password is longer than {max} bytes")]
    PasswordTooLong {
        /// The bytes allowed.
        max: usize,
    },
    /// A user with this name exists.
    #[error("a user named `{0}` already exists")]
    Exists(String),
    /// Hashing the password failed.
    #[error("hashing the password failed: {0}")]
    Hash(String),
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl UserError {
    /// The stable code of the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            UserError::InvalidName { .. } => "invalid-user-name",
            UserError::EmptyPassword => "password-empty",
            UserError::PasswordTooShort { .. } => "password-too-short",
            UserError::PasswordTooLong { .. } => "password-too-long",
            UserError::Exists(_) => "user-exists",
            UserError::Hash(_) | UserError::Store(_) => "internal",
        }
    }
}

impl From<UserError> for ApiError {
    fn from(err: UserError) -> ApiError {
        let code = err.code();
        match &err {
            UserError::InvalidName { .. } => {
                ApiError::bad_request(code, err.to_string()).with_field("name")
            }
            UserError::EmptyPassword
            | UserError::PasswordTooShort { .. }
            | UserError::PasswordTooLong { .. } => {
                ApiError::bad_request(code, err.to_string()).with_field("password")
            }
            UserError::Exists(_) => {
                ApiError::new(StatusCode::CONFLICT, code, err.to_string()).with_field("name")
            }
            UserError::Hash(_) | UserError::Store(_) => ApiError::internal(&err),
        }
    }
}

/// The password hash of a user who has no password yet (imported from `[[people]]`):
/// nothing verifies against it, so they cannot log in until an administrator sets one
/// (`PUT /v1/users/{name}/password`).
const NO_PASSWORD: &str = "";

/// What [`import_people`] added to the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Imported {
    /// The users created, by name.
    pub users: Vec<String>,
    /// The keys added, as (person, key id).
    pub keys: Vec<(String, String)>,
    /// Whether this import made the store the source of people.
    pub opened_directory: bool,
    /// People of relo.toml not in the store, left out because the store already was the
    /// source of people.
    pub left_out: Vec<String>,
}

/// Moves `[[people]]` (`people`, as relo.toml's trust policy loaded them) into the
/// store, which is the source of people from then on (DESIGN §5). Until the people
/// directory exists (the first start, or a start interrupted before it finished):
///
/// - every person who is not a user yet becomes one, with the person's roles and no
///   password (`user.imported`);
/// - each of the person's keys not stored yet is added (`key.imported`);
/// - then the people directory is opened, so every instance checks signatures against
///   the store's people, not relo.toml's.
///
/// Each addition is an `admin.action` entry by `relo.toml`. Once the directory exists
/// nothing is imported: people, roles and keys change through the API, and people of
/// relo.toml not in the store are only reported ([`Imported::left_out`]).
pub async fn import_people(store: &Store, people: &[Identity]) -> Result<Imported, UserError> {
    let mut imported = Imported::default();
    if store
        .people_revision()
        .await
        .map_err(UserError::Store)?
        .is_some()
    {
        for person in people {
            if store
                .user(&person.name)
                .await
                .map_err(UserError::Store)?
                .is_none()
            {
                imported.left_out.push(person.name.clone());
            }
        }
        return Ok(imported);
    }
    for person in people {
        let name = person.name.as_str();
        if store.user(name).await.map_err(UserError::Store)?.is_none() {
            check_name(name)?;
            let mut roles: Vec<String> = Vec::new();
            for role in &person.roles {
                if !roles.iter().any(|r| r == role.as_str()) {
                    roles.push(role.as_str().to_owned());
                }
            }
            let user = NewUser {
                name,
                password_hash: NO_PASSWORD,
                roles: &roles,
            };
            match store.create_user(&user, SystemTime::now()).await {
                Ok(()) => {
                    record_import(store, "user.imported", name, roles.join(", ")).await?;
                    tracing::info!(
                        user = name,
                        ?roles,
                        "imported a person of relo.toml as a user without a password"
                    );
                    imported.users.push(name.to_owned());
                }
                // Another instance imported them first.
                Err(StoreError::Duplicate(_)) => {}
                Err(err) => return Err(UserError::Store(err)),
            }
        }
        let stored = store.person_keys(name).await.map_err(UserError::Store)?;
        for key in &person.keys {
            if stored.iter().any(|s| s.key_id == key.key_id()) {
                continue;
            }
            let added = store
                .add_person_key(
                    &NewPersonKey {
                        user: name,
                        key_id: key.key_id(),
                        public_key: &key.to_pem(),
                        added_by: IMPORTER,
                    },
                    SystemTime::now(),
                )
                .await;
            match added {
                Ok(()) => {
                    record_import(store, "key.imported", name, key.key_id().to_owned()).await?;
                    imported
                        .keys
                        .push((name.to_owned(), key.key_id().to_owned()));
                }
                Err(StoreError::Duplicate(reason)) => {
                    tracing::warn!(person = name, "a [[people]] key was not imported: {reason}");
                }
                Err(err) => return Err(UserError::Store(err)),
            }
        }
    }
    imported.opened_directory = store
        .open_people_directory()
        .await
        .map_err(UserError::Store)?;
    Ok(imported)
}

/// Who [`import_people`]'s additions are recorded as made by.
const IMPORTER: &str = "relo.toml";

async fn record_import(
    store: &Store,
    action: &str,
    target: &str,
    detail: String,
) -> Result<(), UserError> {
    store
        .record(&EvidenceRecord::new(
            Scope::Control,
            None,
            EvidenceEvent::AdminAction {
                by: IMPORTER.to_owned(),
                action: action.to_owned(),
                target: target.to_owned(),
                detail: Some(detail),
            },
        ))
        .await
        .map_err(UserError::Store)
}

/// Sets the password of the user `name` (checked as [`create_user`] checks it) and
/// revokes every refresh token and API token of the user, at `now`; whether the user
/// exists.
pub(crate) async fn set_password(
    store: &Store,
    name: &str,
    password: &str,
    now: SystemTime,
) -> Result<bool, UserError> {
    check_password(password)?;
    let hash = hash_password(password.to_owned()).await?;
    store
        .set_user_password(name, &hash, now)
        .await
        .map_err(UserError::Store)
}

/// Creates the user `name` with `password` (hashed with argon2id, default parameters)
/// and `roles`: the bootstrap of a server's first users, and later of `relo serve`.
///
/// Refuses a name that is empty, longer than 64 bytes, or has characters other than ASCII
/// letters, digits, `-`, `_`, `.` and `@`; an empty password; a password shorter than 12
/// characters or longer than 1024 bytes; and a name already taken. The creation time
/// stored is the system clock's: it is a record, never checked.
pub async fn create_user(
    store: &Store,
    name: &str,
    password: &str,
    roles: &[Role],
) -> Result<(), UserError> {
    create_user_by(store, name, password, roles, "relo serve").await
}

/// [`create_user`], recorded as made by `by` (an admin through the API): the control
/// chain's `user.created` entry, with the roles, is what the people directory is
/// checked against.
pub(crate) async fn create_user_by(
    store: &Store,
    name: &str,
    password: &str,
    roles: &[Role],
    by: &str,
) -> Result<(), UserError> {
    check_name(name)?;
    check_password(password)?;
    let hash = hash_password(password.to_owned()).await?;
    let roles: Vec<String> = roles.iter().map(|r| r.as_str().to_owned()).collect();
    let user = NewUser {
        name,
        password_hash: &hash,
        roles: &roles,
    };
    match store.create_user(&user, SystemTime::now()).await {
        Ok(()) => {
            tracing::info!(user = name, roles = ?roles, by, "created a user");
        }
        Err(StoreError::Duplicate(_)) => return Err(UserError::Exists(name.to_owned())),
        Err(err) => return Err(UserError::Store(err)),
    }
    let event = EvidenceEvent::AdminAction {
        by: by.to_owned(),
        action: "user.created".to_owned(),
        target: name.to_owned(),
        detail: Some(roles.join(", ")),
    };
    store
        .record(&EvidenceRecord::new(Scope::Control, None, event))
        .await
        .map_err(UserError::Store)
}

fn check_name(name: &str) -> Result<(), UserError> {
    let invalid = |reason| UserError::InvalidName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(invalid("it is empty"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(invalid("it is longer than 64 bytes"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
    {
        return Err(invalid(
            "only ASCII letters, digits, `-`, `_`, `.` and `@` are allowed",
        ));
    }
    Ok(())
}

fn check_password(password: &str) -> Result<(), UserError> {
    if password.is_empty() {
        return Err(UserError::EmptyPassword);
    }
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(UserError::PasswordTooShort {
            min: MIN_PASSWORD_CHARS,
            got: chars,
        });
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(UserError::PasswordTooLong {
            max: MAX_PASSWORD_BYTES,
        });
    }
    Ok(())
}

/// The argon2id PHC string of `password`, with a random salt; hashed off the async
/// threads.
async fn hash_password(password: String) -> Result<String, UserError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|err| UserError::Hash(err.to_string()))
    })
    .await
    .map_err(|err| UserError::Hash(err.to_string()))?
}

/// Whether `password` matches the PHC string `stored`. With no stored hash (an unknown
/// or disabled user) a throwaway hash is checked instead, so the answer takes as long
/// either way and does not tell which names exist.
pub(crate) async fn verify_password(
    password: String,
    stored: Option<String>,
) -> Result<bool, ApiError> {
    // A user without a password is checked like an unknown one: the same work, never a
    // match.
    let stored = stored.filter(|hash| hash != NO_PASSWORD);
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let phc = match stored {
            Some(phc) => phc,
            None => throwaway_hash()?.to_owned(),
        };
        let hash = PasswordHash::new(&phc).map_err(|err| {
            ApiError::internal(format_args!("a stored password hash does not parse: {err}"))
        })?;
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok();
        Ok(known && matches)
    })
    .await
    .map_err(ApiError::internal)?
}

/// The hash checked for unknown users: of a random password, made once per process.
fn throwaway_hash() -> Result<&'static str, ApiError> {
    static HASH: OnceLock<String> = OnceLock::new();
    if let Some(hash) = HASH.get() {
        return Ok(hash);
    }
    let mut password = [0u8; 32];
    rand_core::RngCore::try_fill_bytes(&mut OsRng, &mut password).map_err(ApiError::internal)?;
    let salt = SaltString::generate(&mut OsRng);
    let hash = Argon2::default()
        .hash_password(&password, &salt)
        .map_err(ApiError::internal)?
        .to_string();
    Ok(HASH.get_or_init(|| hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            assert_eq!(
                serde_json::to_value(role).ok(),
                Some(serde_json::Value::from(role.as_str()))
            );
        }
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn names_and_passwords_are_checked() {
        assert!(check_name("olga").is_ok());
        assert!(check_name("ivan.petrov@example.com").is_ok());
        for bad in ["", "olga smith", "olga/admin", "ölga", &"a".repeat(65)] {
            assert!(
                matches!(check_name(bad), Err(UserError::InvalidName { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(check_password(""), Err(UserError::EmptyPassword)));
        assert!(matches!(
            check_password("elevenchars"),
            Err(UserError::PasswordTooShort { min: 12, got: 11 })
        ));
        // Characters, not bytes: eleven two-byte characters are too short.
        assert!(matches!(
            check_password(&"é".repeat(11)),
            Err(UserError::PasswordTooShort { got: 11, .. })
        ));
        assert!(check_password("twelve chars").is_ok());
        assert!(matches!(
            check_password(&"x".repeat(1025)),
            Err(UserError::PasswordTooLong { max: 1024 })
        ));
    }
}
