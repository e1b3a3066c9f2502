//! From a step's `uses:` to a loaded, admitted component and its effective grant.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use relo_evidence::{EvidenceEvent, EvidenceRecord, EvidenceSink, Scope};
use relo_manifest::{OperatorConfig, PluginRef, PluginVersion};
use relo_policy::{
    Ceilings, DeclarationError, Grant, Limits, declared_capabilities, effective_grant,
    operator_ceilings,
};
use relo_sandbox::{LoadError, Plugin, Sandbox};
use relo_store::{Store, StoreError};

use crate::people::{People, PeopleError};
use relo_trust::{
    ApprovalRecord, Refusal, TrustError, TrustPolicy, VerifiedPlugin, parse_rfc3339, read_envelope,
    sha256_hex,
};

/// Why a plugin could not be admitted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The trust checks refused it; the refusal names the failed check.
    #[error("{plugin}: {refusal}")]
    Refused {
        /// `name@version` or the digest.
        plugin: String,
        /// What failed.
        refusal: Refusal,
    },
    /// `uses:` names a plugin the store does not hold.
    #[error("{0} is not in the store; import it with `relo plugin add <wasm> <attestation>`")]
    UnknownPlugin(String),
    /// The plugin's declaration cannot be resolved against the config (an unbound endpoint).
    #[error("{plugin}: {source}")]
    Declaration {
        /// `name@version`.
        plugin: String,
        /// Why.
        source: DeclarationError,
    },
    /// The trust policy's key files could not be read.
    #[error("cannot load the trust policy: {0}")]
    Policy(#[from] TrustError),
    /// The people whose approvals count could not be read.
    #[error(transparent)]
    People(#[from] PeopleError),
    /// The sandbox refused to load the component.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CatalogError {
    /// The stable code: the refusal's or load error's code, or a code of its own.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Refused { refusal, .. } => refusal.code(),
            Self::UnknownPlugin(_) => "unknown-plugin",
            Self::Declaration { .. } => "unbound-endpoint",
            Self::Policy(error) => error.code(),
            Self::Load(error) => error.code(),
            Self::Store(_) => "store",
            Self::People(_) => "people",
        }
    }
}

/// What admitting a plugin would decide, without loading it.
#[derive(Debug, Clone)]
pub struct Review {
    /// What its attestation says, verified.
    pub verified: VerifiedPlugin,
    /// The approval in force.
    pub approval_id: String,
    /// The digest that approval was made for, when inherited from a previous version.
    pub inherited_from: Option<String>,
    /// declared ∩ approved ∩ ceilings.
    pub grant: Arc<Grant>,
    /// The step's limits.
    pub limits: Limits,
}

/// A plugin cleared to run one step: the component, who signed it, the approval in
/// force and the effective grant.
#[derive(Debug, Clone)]
pub struct AdmittedPlugin {
    /// The loaded component.
    pub plugin: Arc<Plugin>,
    /// What its attestation says, verified.
    pub verified: VerifiedPlugin,
    /// The approval in force.
    pub approval_id: String,
    /// The digest that approval was made for, when it was inherited from a previous
    /// version (`auto_approve_within_previous`).
    pub inherited_from: Option<String>,
    /// declared ∩ approved ∩ ceilings.
    pub grant: Arc<Grant>,
    /// The step's limits.
    pub limits: Limits,
}

/// Verified plugins and their loaded components, by (digest, sha256 of the attestation).
type VerifiedCache = HashMap<(String, String), (VerifiedPlugin, Arc<Plugin>)>;

/// A plugin digest, its stored approvals as (id, sha256 of the document, revoked), and
/// the people directory's revision the approvals were checked at.
type AdmissionKey = (String, Vec<(String, String, bool)>, Option<i64>);

/// An admission decided for an [`AdmissionKey`]: valid until the approval expires.
struct CachedAdmission {
    approval_id: String,
    inherited_from: Option<String>,
    expires_at: Option<SystemTime>,
    grant: Arc<Grant>,
    limits: Limits,
}

/// The plugins a process may run: the store's, checked against one `relo.toml`.
pub struct PluginCatalog {
    store: Store,
    sandbox: Arc<Sandbox>,
    /// relo.toml's signers, and the people whose approvals count.
    people: Arc<People>,
    config: OperatorConfig,
    ceilings: Ceilings,
    /// Verified and loaded once per (digest, sha256 of the attestation) per process.
    verified: Mutex<VerifiedCache>,
    /// Admissions decided, by plugin digest and its stored approvals.
    admissions: Mutex<HashMap<AdmissionKey, CachedAdmission>>,
}

impl std::fmt::Debug for PluginCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginCatalog")
            .field("store", &self.store.target())
            .finish_non_exhaustive()
    }
}

impl PluginCatalog {
    /// A catalog over `store` for the operator config `config` of the home `home` (key
    /// files are relative to it). Records a `signer.retired` control entry for each
    /// retired signer key not yet recorded.
    pub async fn new(
        store: Store,
        sandbox: Arc<Sandbox>,
        config: OperatorConfig,
        home: &Path,
    ) -> Result<Self, CatalogError> {
        let policy = TrustPolicy::load(&config, home)?;
        for key_id in policy.retired_signers() {
            store
                .record_once(&EvidenceRecord::new(
                    Scope::Control,
                    None,
                    EvidenceEvent::SignerRetired { key_id },
                ))
                .await?;
        }
        let ceilings = operator_ceilings(&config).map_err(|source| CatalogError::Declaration {
            plugin: "relo.toml [ceilings]".to_owned(),
            source,
        })?;
        Ok(Self {
            people: Arc::new(People::new(store.clone(), policy)),
            store,
            sandbox,
            config,
            ceilings,
            verified: Mutex::new(HashMap::new()),
            admissions: Mutex::new(HashMap::new()),
        })
    }

    /// The people whose signed approvals and requests count: relo.toml's, or the
    /// store's once a server imported them.
    pub fn people(&self) -> &Arc<People> {
        &self.people
    }

    /// The digest a step's `uses:` names: `name@version` through the store's index,
    /// `name@sha256:…` directly (it must be a stored plugin of that name).
    pub async fn resolve(&self, uses: &PluginRef) -> Result<String, CatalogError> {
        let name = uses.name().as_str();
        match uses.version() {
            PluginVersion::Exact(version) => self
                .store
                .plugin_digest(name, &version.to_string())
                .await?
                .ok_or_else(|| CatalogError::UnknownPlugin(format!("{name}@{version}"))),
            PluginVersion::Digest(digest) => {
                let digest = digest.as_hex();
                match self.store.plugin(digest).await? {
                    Some(plugin) if plugin.name == name => Ok(plugin.digest),
                    _ => Err(CatalogError::UnknownPlugin(format!(
                        "{name}@sha256:{digest}"
                    ))),
                }
            }
        }
    }

    /// Admits the plugin `digest` for one step, checking (in this order) that it is not
    /// blocked, that its attestation verifies against the bytes and the trust policy,
    /// and that a valid, unrevoked, unexpired approval covers it; then loads it into the
    /// sandbox. A refusal is recorded as `plugin.refused` in `scope` before it returns.
    pub async fn admit(
        &self,
        digest: &str,
        evidence: &dyn EvidenceSink,
        scope: &Scope,
    ) -> Result<AdmittedPlugin, CatalogError> {
        let result = self
            .review_inner(digest, Some((evidence, scope)))
            .await
            .map(|(review, plugin)| AdmittedPlugin {
                plugin: plugin.expect("loaded when a loader is given"),
                verified: review.verified,
                approval_id: review.approval_id,
                inherited_from: review.inherited_from,
                grant: review.grant,
                limits: review.limits,
            });
        if let Err(error) = &result
            && !matches!(
                error,
                CatalogError::Load(_)
                    | CatalogError::Store(_)
                    | CatalogError::People(PeopleError::Store(_))
            )
        {
            tracing::warn!(code = error.code(), "plugin refused: {error}");
            evidence.enqueue(EvidenceRecord::new(
                scope.clone(),
                None,
                EvidenceEvent::PluginRefused {
                    digest: digest.to_owned(),
                    code: error.code().to_owned(),
                    reason: error.to_string(),
                },
            ));
        }
        result
    }

    /// Everything [`PluginCatalog::admit`] checks, without loading the component or
    /// recording anything: what `relo plan` shows.
    pub async fn review(&self, digest: &str) -> Result<Review, CatalogError> {
        Ok(self.review_inner(digest, None).await?.0)
    }

    async fn review_inner(
        &self,
        digest: &str,
        loader: Option<(&dyn EvidenceSink, &Scope)>,
    ) -> Result<(Review, Option<Arc<Plugin>>), CatalogError> {
        if let Some(block) = self.store.block_of(digest).await? {
            return Err(CatalogError::Refused {
                plugin: digest.to_owned(),
                refusal: Refusal::Blocked {
                    digest: block.digest,
                    reason: format!(
                        "{} (blocked by {} at {})",
                        block.reason, block.blocked_by, block.blocked_at
                    ),
                },
            });
        }
        let (verified, plugin) = self.verified(digest, loader).await?;
        let refused = |refusal| CatalogError::Refused {
            plugin: verified.reference(),
            refusal,
        };
        // Approvals are read before every step (a revocation takes effect at once), but
        // verified again only when the stored set changed or the admitting one expired.
        let stored = self.store.approvals_of(&verified.name).await?;
        let (revision, policy) = self.people.policy_at().await?;
        let key: AdmissionKey = (
            verified.digest.clone(),
            stored
                .iter()
                .map(|a| {
                    (
                        a.id.clone(),
                        sha256_hex(a.document.as_bytes()),
                        a.revoked.is_some(),
                    )
                })
                .collect(),
            revision,
        );
        let now = SystemTime::now();
        if let Some(cached) = self.admissions().get(&key)
            && cached.expires_at.is_none_or(|at| now < at)
        {
            let review = Review {
                verified,
                approval_id: cached.approval_id.clone(),
                inherited_from: cached.inherited_from.clone(),
                grant: Arc::clone(&cached.grant),
                limits: cached.limits,
            };
            return Ok((review, plugin));
        }
        let declared =
            declared_capabilities(&verified.manifest, &self.config).map_err(|source| {
                CatalogError::Declaration {
                    plugin: verified.reference(),
                    source,
                }
            })?;
        let mut approvals = Vec::with_capacity(stored.len());
        for row in stored {
            let envelope = read_envelope(row.document.as_bytes()).map_err(refused)?;
            approvals.push(ApprovalRecord {
                id: row.id,
                digest: row.digest,
                envelope,
                revoked: row.revoked,
            });
        }
        let admission = policy
            .admit(&verified, &declared, &approvals, now)
            .map_err(refused)?;
        let (grant, limits) = effective_grant(
            &declared,
            &admission.approval.predicate.capabilities,
            &self.ceilings,
        );
        let grant = Arc::new(grant);
        self.admissions().insert(
            key,
            CachedAdmission {
                approval_id: admission.approval.id.clone(),
                inherited_from: admission.inherited_from.clone(),
                expires_at: admission
                    .approval
                    .predicate
                    .expires_at
                    .as_deref()
                    .and_then(parse_rfc3339),
                grant: Arc::clone(&grant),
                limits,
            },
        );
        let review = Review {
            verified,
            approval_id: admission.approval.id,
            inherited_from: admission.inherited_from,
            grant,
            limits,
        };
        Ok((review, plugin))
    }

    /// The verified plugin and, with a `loader`, its loaded component: from this
    /// process's cache when the stored attestation is the one verified and loaded before,
    /// else read and verified (and loaded and cached, with a loader).
    async fn verified(
        &self,
        digest: &str,
        loader: Option<(&dyn EvidenceSink, &Scope)>,
    ) -> Result<(VerifiedPlugin, Option<Arc<Plugin>>), CatalogError> {
        let unknown = || CatalogError::UnknownPlugin(digest.to_owned());
        let attestation = self
            .store
            .plugin_attestation(digest)
            .await?
            .ok_or_else(unknown)?;
        let key = (digest.to_owned(), sha256_hex(attestation.as_bytes()));
        if let Some((verified, plugin)) = self.cache().get(&key) {
            return Ok((verified.clone(), Some(Arc::clone(plugin))));
        }
        let stored = self.store.plugin(digest).await?.ok_or_else(unknown)?;
        let refused = |refusal| CatalogError::Refused {
            plugin: digest.to_owned(),
            refusal,
        };
        let verified = self
            .people
            .configured()
            .verify_plugin(&stored.bytes, stored.attestation.as_bytes())
            .map_err(refused)?;
        if verified.digest != digest {
            // The row holds another (validly signed) plugin than the one asked for.
            return Err(refused(Refusal::DigestMismatch {
                expected: digest.to_owned(),
                actual: verified.digest,
            }));
        }
        let Some((evidence, scope)) = loader else {
            return Ok((verified, None));
        };
        let plugin = self.sandbox.load(&stored.bytes, evidence, scope)?;
        let key = (digest.to_owned(), sha256_hex(stored.attestation.as_bytes()));
        self.cache()
            .insert(key, (verified.clone(), Arc::clone(&plugin)));
        Ok((verified, Some(plugin)))
    }

    fn admissions(&self) -> std::sync::MutexGuard<'_, HashMap<AdmissionKey, CachedAdmission>> {
        self.admissions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, VerifiedCache> {
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
