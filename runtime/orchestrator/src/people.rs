//! Whose signatures count: the people of relo.toml, or of the store once a server
//! manages them.
//!
//! Until `relo serve` first imports `[[people]]` into the store, people, their keys and
//! their roles come from relo.toml. From then on the store is the source of truth for
//! every instance and every command on that store (DESIGN §5): [`People::policy`] asks
//! the store for the people directory's revision before each use, and reloads the
//! people only when it changed, so a revoked key or a removed role counts nowhere after
//! the change commits.

use std::sync::{Arc, Mutex, PoisonError};

use relo_manifest::Role;
use relo_store::{PeopleDirectory, PeopleTampered, Store, StoreError, check_people};
use relo_trust::{Identity, PublicKey, TrustPolicy};

/// Why the people could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeopleError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored key does not parse, or its id is not the id of the key it holds: the row
    /// was edited. No signature is checked against a directory that holds it.
    #[error(
        "the store's key {key_id} of {person} is not a valid public key with that id: {reason}"
    )]
    BadKey {
        /// The person.
        person: String,
        /// The key id the row claims.
        key_id: String,
        /// What is wrong.
        reason: String,
    },
    /// The directory holds a person, key or role that no control-chain entry explains
    /// (`people-tampered`): it was written behind relo's back. Nothing is checked
    /// against it.
    #[error(transparent)]
    Tampered(#[from] PeopleTampered),
    /// A stored role name is not a role.
    #[error("the store gives {person} the role `{role}`, which is not a role")]
    BadRole {
        /// The person.
        person: String,
        /// The stored name.
        role: String,
    },
}

/// The people a runner and a server check signatures against: relo.toml's, or the
/// store's once a server imported them. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct People {
    store: Store,
    /// The trust policy of relo.toml: its signers always, its people until the store
    /// holds them.
    configured: Arc<TrustPolicy>,
    /// The policy with the store's people, and the directory revision it was built at.
    stored: Mutex<Option<(i64, Arc<TrustPolicy>)>>,
}

impl People {
    /// People for `store`, with `configured` (loaded from relo.toml) as the signers and
    /// as the people while the store has none.
    pub fn new(store: Store, configured: TrustPolicy) -> Self {
        Self {
            store,
            configured: Arc::new(configured),
            stored: Mutex::new(None),
        }
    }

    /// The trust policy to check a signature against now: relo.toml's signers with the
    /// store's people (reloaded when the directory's revision changed), or relo.toml's
    /// policy while the store has no people directory.
    pub async fn policy(&self) -> Result<Arc<TrustPolicy>, PeopleError> {
        Ok(self.policy_at().await?.1)
    }

    /// [`People::policy`] with the directory revision it belongs to (`None`: relo.toml's
    /// people), for caches that must drop what they decided when people change.
    pub async fn policy_at(&self) -> Result<(Option<i64>, Arc<TrustPolicy>), PeopleError> {
        let Some(revision) = self.store.people_revision().await? else {
            return Ok((None, Arc::clone(&self.configured)));
        };
        if let Some((cached, policy)) = self.cached().as_ref()
            && *cached == revision
        {
            return Ok((Some(revision), Arc::clone(policy)));
        }
        let Some(directory) = self.store.people_directory().await? else {
            return Ok((None, Arc::clone(&self.configured)));
        };
        let revision = directory.revision;
        self.check_directory(&directory).await?;
        let policy = Arc::new(self.configured.with_people(identities(directory)?));
        *self.cached() = Some((revision, Arc::clone(&policy)));
        Ok((Some(revision), policy))
    }

    /// Checks `directory` against the control chain as trusted (every entry covered by
    /// a batch seal or a checkpoint): a person, key or role no entry explains is
    /// [`PeopleError::Tampered`]; evidence that is not trustworthy fails it too. Run
    /// once per directory revision (the result is cached with the policy).
    async fn check_directory(&self, directory: &PeopleDirectory) -> Result<(), PeopleError> {
        let entries = match self.store.trusted_entries().await {
            Ok(entries) => entries,
            Err(StoreError::Tampered(found)) => {
                return Err(PeopleError::Tampered(PeopleTampered {
                    person: "(every person)".into(),
                    reason: format!("the control chain cannot be trusted: {found}"),
                }));
            }
            Err(other) => return Err(other.into()),
        };
        let control: Vec<_> = entries
            .into_iter()
            .filter(|e| e.scope == relo_store::CONTROL_SCOPE)
            .collect();
        Ok(check_people(directory, &control)?)
    }

    /// The trust policy of relo.toml (its signers are always the ones that count).
    pub fn configured(&self) -> &TrustPolicy {
        &self.configured
    }

    fn cached(&self) -> std::sync::MutexGuard<'_, Option<(i64, Arc<TrustPolicy>)>> {
        self.stored.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The directory's people with their keys parsed and checked against their ids.
fn identities(directory: PeopleDirectory) -> Result<Vec<Identity>, PeopleError> {
    directory
        .people
        .into_iter()
        .map(|person| {
            let keys = person
                .keys
                .iter()
                .map(|stored| {
                    let bad = |reason: String| PeopleError::BadKey {
                        person: person.name.clone(),
                        key_id: stored.key_id.clone(),
                        reason,
                    };
                    let key = PublicKey::from_pem(&stored.public_key)
                        .map_err(|error| bad(error.to_string()))?;
                    if key.key_id() != stored.key_id {
                        return Err(bad(format!("the key's id is {}", key.key_id())));
                    }
                    Ok(key)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let roles = person
                .roles
                .iter()
                .map(|role| {
                    role.parse::<Role>().map_err(|_| PeopleError::BadRole {
                        person: person.name.clone(),
                        role: role.clone(),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Identity {
                name: person.name,
                keys,
                roles,
            })
        })
        .collect()
}
