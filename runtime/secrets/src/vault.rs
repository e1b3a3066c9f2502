//! Vault and OpenBao: KV v2 reads, per-step scoped tokens and a health check.
//!
//! A [`VaultProvider`] logs in once (a token, or AppRole) and reads KV v2 secrets with
//! that token. For each step the orchestrator asks it for a [`ScopedToken`]: a child
//! token whose only policy allows `read` on exactly the paths the step was granted, with
//! a TTL as long as the step may run. The step reads through that token, so even a bug in
//! relo's own checks cannot hand a step another step's secret, and the token is revoked
//! when the step ends.
//!
//! # What the provider's own token needs
//!
//! Reading: `read` on the KV v2 API paths relo reads (e.g. `kv/data/app`). Creating
//! scoped tokens, in addition:
//!
//! ```hcl
//! path "sys/policies/acl/relo-step-*"  { capabilities = ["create", "update", "delete"] }
//! path "auth/token/create"             { capabilities = ["update"] }
//! path "auth/token/revoke-accessor"    { capabilities = ["update"] }
//! path "auth/token/lookup-accessor"    { capabilities = ["update"] }  # ScopedToken::lookup only
//! ```
//!
//! It must be a service token (batch tokens cannot create children), and a child token
//! never outlives its parent: Vault caps a scoped token's TTL at the parent's remaining TTL.
//!
//! # Values
//!
//! Secret values come back as JSON inside vaultrs; relo zeroes every string of the
//! decoded answer once the field is taken out, and the field itself lives in a
//! [`SecretValue`]. The raw HTTP body buffers inside the HTTP client are not zeroed.
//! No value is ever put in an error or a log line.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rand_core::{OsRng, RngCore as _};
use serde::Deserialize;
use vaultrs::api::kv2::requests::ReadSecretRequest;
use vaultrs::api::token::requests::CreateTokenRequest;
use vaultrs::client::{Client as _, VaultClient, VaultClientSettingsBuilder};
use vaultrs::error::ClientError;
use zeroize::{Zeroize as _, Zeroizing};

use crate::{SecretError, SecretPath, SecretProvider, SecretValue};

/// How long one request to Vault may take before it counts as unavailable.
pub const VAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How relo logs in to Vault.
pub enum VaultAuth {
    /// A token given by the operator (e.g. from `RELO_VAULT_TOKEN`).
    Token(Zeroizing<String>),
    /// AppRole: `auth/<mount>/login` with a role id and a secret id.
    AppRole {
        /// The role id (not secret on its own, but not printed either).
        role_id: String,
        /// The secret id.
        secret_id: Zeroizing<String>,
        /// Where the AppRole method is mounted, usually `approle`.
        mount: String,
    },
}

impl fmt::Debug for VaultAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token(_) => f.write_str("VaultAuth::Token([REDACTED])"),
            Self::AppRole { mount, .. } => f
                .debug_struct("VaultAuth::AppRole")
                .field("mount", mount)
                .finish_non_exhaustive(),
        }
    }
}

/// What `GET /v1/sys/health` said about a server that can serve requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultHealth {
    /// The server is initialised (always true when [`VaultProvider::health`] succeeds).
    pub initialized: bool,
    /// The server is sealed (always false when [`VaultProvider::health`] succeeds).
    pub sealed: bool,
    /// The server is a standby node.
    pub standby: bool,
    /// The server's version, e.g. `2.7.2`, if it says.
    pub version: Option<String>,
}

/// The HTTP client for Vault: TLS verified against the system's roots and `ca_certs`
/// (`VAULT_CACERT`), the request timeout, and no redirect ever followed.
fn no_redirects_client(
    ca_certs: &[String],
    scheme: &str,
    timeout: Duration,
) -> Result<reqwest::Client, SecretError> {
    let mut builder = reqwest::ClientBuilder::new()
        .tls_backend_rustls()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none());
    if scheme == "http" {
        // Plain HTTP (loopback only): no certificates to load.
        builder = builder.tls_certs_only(Vec::new());
    } else {
        for path in ca_certs {
            let pem = std::fs::read(path).map_err(|e| {
                SecretError::Config(format!("cannot read the CA certificate {path}: {e}"))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| SecretError::Config(format!("the CA certificate {path}: {e}")))?;
            builder = builder.tls_certs_merge(certs);
        }
    }
    builder
        .build()
        .map_err(|e| SecretError::Config(format!("cannot set up the HTTP client for Vault: {e}")))
}

/// Whether `url`'s host is this machine's loopback: `localhost`, 127.0.0.0/8 or `::1`.
fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A Vault client holding one token; the token is zeroed when the session is dropped.
pub(crate) struct Session {
    client: VaultClient,
    address: String,
}

impl Session {
    /// A client for `address` without a token yet.
    fn new(address: &str, timeout: Duration) -> Result<Self, SecretError> {
        let url = url::Url::parse(address).map_err(|e| {
            SecretError::Config(format!("the Vault address `{address}` is not a URL: {e}"))
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(SecretError::Config(format!(
                "the Vault address `{address}` must be an http:// or https:// URL with a host"
            )));
        }
        if url.scheme() == "http" && !is_loopback(&url) {
            return Err(SecretError::Insecure {
                address: address.to_owned(),
            });
        }
        install_crypto_provider();
        let settings = VaultClientSettingsBuilder::default()
            .address(url.as_str())
            .token("")
            .timeout(Some(timeout))
            .verify(true)
            .build()
            .map_err(|e| SecretError::Config(format!("the Vault client settings: {e}")))?;
        let mut client = VaultClient::new(settings).map_err(|e| {
            SecretError::Config(format!("cannot set up the HTTP client for Vault: {e}"))
        })?;
        // vaultrs's own client follows redirects, and would carry the token to wherever
        // an answer points: this one never follows one.
        let http = no_redirects_client(&client.settings.ca_certs, url.scheme(), timeout)?;
        client.http = rustify::clients::reqwest::Client::new(&client.http.base, http);
        Ok(Self {
            client,
            address: url.as_str().trim_end_matches('/').to_owned(),
        })
    }

    /// Logs in with `auth`.
    pub(crate) async fn login(
        address: &str,
        auth: VaultAuth,
        timeout: Duration,
    ) -> Result<Self, SecretError> {
        let mut session = Self::new(address, timeout)?;
        match auth {
            VaultAuth::Token(token) => session.client.set_token(&token),
            VaultAuth::AppRole {
                role_id,
                secret_id,
                mount,
            } => {
                let info =
                    vaultrs::auth::approle::login(&session.client, &mount, &role_id, &secret_id)
                        .await
                        .map_err(|e| {
                            let reference = format!("auth/{mount}/login");
                            match e {
                                // Vault answers a wrong role or secret id with 400.
                                ClientError::APIError {
                                    code: 400 | 401 | 403,
                                    ..
                                } => SecretError::Denied { reference },
                                e => session.error(e, &reference, "logging in with AppRole"),
                            }
                        })?;
                let token = Zeroizing::new(info.client_token);
                session.client.set_token(&token);
            }
        }
        Ok(session)
    }

    /// Another session on the same connection pool, holding `token`.
    fn with_token(&self, token: &str) -> Self {
        let mut settings = self.client.settings.clone();
        settings.token = token.to_owned();
        let mut middle = self.client.middle.clone();
        middle.token = token.to_owned();
        let http = rustify::clients::reqwest::Client::new(
            &self.client.http.base,
            self.client.http.http.clone(),
        );
        Self {
            client: VaultClient {
                http,
                middle,
                settings,
            },
            address: self.address.clone(),
        }
    }

    /// The error for a failed request about `reference` (a secret, a policy, a key).
    pub(crate) fn error(&self, error: ClientError, reference: &str, doing: &str) -> SecretError {
        match classify(&error, &self.address) {
            Failure::NotFound => SecretError::NotFound {
                reference: reference.to_owned(),
                reason: format!("Vault has nothing at this path ({doing})"),
            },
            Failure::Denied => SecretError::Denied {
                reference: reference.to_owned(),
            },
            Failure::Unavailable(reason) => SecretError::Unavailable {
                reason: format!("{doing}: {reason}"),
            },
        }
    }

    pub(crate) fn client(&self) -> &VaultClient {
        &self.client
    }

    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    async fn read_kv2(&self, path: &SecretPath) -> Result<SecretValue, SecretError> {
        let reference = path.to_string();
        let (mount, name) = split_kv2(path.path())?;
        let endpoint = ReadSecretRequest::builder()
            .mount(mount)
            .path(name)
            .version(path.version())
            .build()
            .map_err(|e| {
                SecretError::Config(format!("cannot build the read of {reference}: {e}"))
            })?;
        let mut answer = vaultrs::api::exec_with_result(&self.client, endpoint)
            .await
            .map_err(|e| match classify(&e, &self.address) {
                Failure::NotFound => SecretError::NotFound {
                    reason: match path.version() {
                        Some(version) => format!(
                            "no version {version} of this secret (it does not exist, or was deleted or destroyed)"
                        ),
                        None => "nothing is stored at this path (or its current version was deleted)"
                            .to_owned(),
                    },
                    reference: reference.clone(),
                },
                Failure::Denied => SecretError::Denied {
                    reference: reference.clone(),
                },
                Failure::Unavailable(reason) => SecretError::Unavailable {
                    reason: format!("reading {reference}: {reason}"),
                },
            })?;
        let version = answer.metadata.version;
        let field = take_field(&mut answer.data, path.field());
        zeroize_json(&mut answer.data);
        let value = field.map_err(|reason| SecretError::NotFound {
            reference: reference.clone(),
            reason,
        })?;
        if answer.metadata.destroyed {
            return Err(SecretError::NotFound {
                reference,
                reason: format!("version {version} was destroyed"),
            });
        }
        Ok(SecretValue::new(value.as_str(), Some(version)))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.client.settings.token.zeroize();
        self.client.middle.token.zeroize();
    }
}

/// Reads KV v2 secrets from Vault or OpenBao with one token, and creates per-step
/// [`ScopedToken`]s.
///
/// Paths are KV v2 API paths: `kv/data/app#token` reads the field `token` of the secret
/// `app` in the KV v2 engine mounted at `kv`; `@3` pins version 3.
pub struct VaultProvider {
    session: Arc<Session>,
}

impl fmt::Debug for VaultProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultProvider")
            .field("address", &self.session.address)
            .finish_non_exhaustive()
    }
}

impl VaultProvider {
    /// Connects to the server at `address` (`https://vault.example:8200`) and logs in
    /// with `auth` (AppRole logs in now). Requests time out after [`VAULT_TIMEOUT`].
    ///
    /// TLS uses the system's trust store (and `VAULT_CACERT` if set); certificates are
    /// always verified.
    pub async fn connect(address: &str, auth: VaultAuth) -> Result<Self, SecretError> {
        Self::connect_with_timeout(address, auth, VAULT_TIMEOUT).await
    }

    /// [`VaultProvider::connect`] with another request timeout.
    pub async fn connect_with_timeout(
        address: &str,
        auth: VaultAuth,
        timeout: Duration,
    ) -> Result<Self, SecretError> {
        Ok(Self {
            session: Arc::new(Session::login(address, auth, timeout).await?),
        })
    }

    /// The server's address, without a trailing slash.
    pub fn address(&self) -> &str {
        &self.session.address
    }

    /// Asks `GET /v1/sys/health` whether the server can serve requests. Works with
    /// OpenBao's answer (vaultrs's own `sys::health` does not). A sealed or uninitialised
    /// server, or one that cannot be reached, is [`SecretError::Unavailable`].
    pub async fn health(&self) -> Result<VaultHealth, SecretError> {
        #[derive(Deserialize)]
        struct Answer {
            initialized: bool,
            sealed: bool,
            #[serde(default)]
            standby: bool,
            #[serde(default)]
            version: Option<String>,
        }

        let address = &self.session.address;
        let unavailable = |reason: String| SecretError::Unavailable {
            reason: format!("the health check of Vault at {address}: {reason}"),
        };
        let url = format!("{address}/v1/sys/health?standbyok=true&perfstandbyok=true");
        let response = self
            .session
            .client
            .http
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| unavailable(format!("cannot reach it: {}", chain(&e))))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| unavailable(format!("reading its answer failed: {}", chain(&e))))?;
        let answer: Answer = serde_json::from_slice(&body).map_err(|_| {
            unavailable(format!(
                "HTTP {status}, and the answer is not the health JSON"
            ))
        })?;
        if !answer.initialized {
            return Err(unavailable("the server is not initialised".to_owned()));
        }
        if answer.sealed {
            return Err(unavailable("the server is sealed".to_owned()));
        }
        Ok(VaultHealth {
            initialized: answer.initialized,
            sealed: answer.sealed,
            standby: answer.standby,
            version: answer.version,
        })
    }

    /// Creates a token for one step that may read exactly `paths`, for `ttl`.
    ///
    /// Writes the policy `relo-step-<label>-<random>` allowing `read` on each path's API
    /// path (a pinned version reads the same path), then creates a child of this
    /// provider's token with only that policy: no default policy, not renewable, TTL and
    /// explicit max TTL both `ttl` (whole seconds, rounded up). Paths with Vault policy
    /// wildcards (`*`, `+`) are refused, so a grant can never widen into a glob.
    ///
    /// The caller revokes it with [`ScopedToken::revoke`] when the step ends; if it does
    /// not, the token still dies after `ttl` but the policy stays behind.
    pub async fn scoped(
        &self,
        paths: &[SecretPath],
        ttl: Duration,
        label: &str,
    ) -> Result<ScopedToken, SecretError> {
        let seconds = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        if seconds == 0 {
            return Err(SecretError::Config(
                "a scoped Vault token needs a TTL of at least one second".to_owned(),
            ));
        }
        let policy_name = policy_name(label);
        let policy = scoped_policy(paths)?;
        let parent = &self.session;
        let policy_reference = format!("sys/policies/acl/{policy_name}");
        vaultrs::sys::policy::set(parent.client(), &policy_name, &policy)
            .await
            .map_err(|e| parent.error(e, &policy_reference, "writing the step's policy"))?;

        let mut request = CreateTokenRequest::builder();
        request
            .policies(vec![policy_name.clone()])
            .no_default_policy(true)
            .renewable(false)
            .ttl(format!("{seconds}s"))
            .explicit_max_ttl(format!("{seconds}s"))
            .display_name(format!("relo-step-{}", sanitize(label)));
        let info = match vaultrs::token::new(parent.client(), Some(&mut request)).await {
            Ok(info) => info,
            Err(e) => {
                let error = parent.error(e, "auth/token/create", "creating the step's token");
                delete_policy(parent, &policy_name).await;
                return Err(error);
            }
        };
        let token = Zeroizing::new(info.client_token);
        tracing::debug!(
            policy = %policy_name,
            accessor = %info.accessor,
            ttl_seconds = info.lease_duration,
            "created a scoped Vault token for a step"
        );
        Ok(ScopedToken {
            session: parent.with_token(&token),
            parent: Arc::clone(parent),
            accessor: info.accessor,
            policy: policy_name,
            ttl: Duration::from_secs(info.lease_duration),
            revoked: AtomicBool::new(false),
        })
    }
}

#[async_trait::async_trait]
impl SecretProvider for VaultProvider {
    async fn read(&self, path: &SecretPath) -> Result<SecretValue, SecretError> {
        self.session.read_kv2(path).await
    }

    fn kind(&self) -> &'static str {
        "vault"
    }
}

/// A child token that may read only one step's secrets, for a limited time.
///
/// It reads like any [`SecretProvider`], with its own token only. Hand it to the step in
/// an `Arc` and keep a clone: [`ScopedToken::revoke`] when the step ends (or must stop)
/// makes every later read through it fail with [`SecretError::Denied`].
pub struct ScopedToken {
    session: Session,
    parent: Arc<Session>,
    accessor: String,
    policy: String,
    ttl: Duration,
    revoked: AtomicBool,
}

/// What Vault says about a [`ScopedToken`] now (`auth/token/lookup-accessor`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopedTokenInfo {
    /// The time it has left.
    pub ttl: Duration,
    /// The TTL it was created with.
    pub creation_ttl: Duration,
    /// Its hard limit.
    pub explicit_max_ttl: Duration,
    /// Its policies (only its own `relo-step-…` policy).
    pub policies: Vec<String>,
    /// Whether it can be renewed (never, for scoped tokens).
    pub renewable: bool,
}

impl fmt::Debug for ScopedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedToken")
            .field("accessor", &self.accessor)
            .field("policy", &self.policy)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl ScopedToken {
    /// The token's accessor: names it in evidence and logs without revealing it.
    pub fn accessor(&self) -> &str {
        &self.accessor
    }

    /// The name of the policy written for it.
    pub fn policy(&self) -> &str {
        &self.policy
    }

    /// The TTL Vault granted when creating it.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Looks the token up by its accessor, with the parent token (the scoped token has no
    /// default policy, so it cannot look itself up).
    pub async fn lookup(&self) -> Result<ScopedTokenInfo, SecretError> {
        let info = vaultrs::token::lookup_accessor(self.parent.client(), &self.accessor)
            .await
            .map_err(|e| {
                self.parent.error(
                    e,
                    "auth/token/lookup-accessor",
                    "looking up the step's token",
                )
            })?;
        Ok(ScopedTokenInfo {
            ttl: Duration::from_secs(info.ttl),
            creation_ttl: Duration::from_secs(info.creation_ttl),
            explicit_max_ttl: Duration::from_secs(info.explicit_max_ttl),
            policies: info.policies,
            renewable: info.renewable.unwrap_or(false),
        })
    }

    /// Revokes the token and deletes its policy, with the parent token. Reads through
    /// this token fail with [`SecretError::Denied`] from then on. A failure (Vault down,
    /// say) is logged, not returned: the token still expires after its TTL. Calling it
    /// again does nothing.
    ///
    /// It takes `&self`, not `self`, so it can be called while the step still holds the
    /// token in an `Arc` (to stop a running step's access).
    pub async fn revoke(&self) {
        if self.revoked.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Err(e) = vaultrs::token::revoke_accessor(self.parent.client(), &self.accessor).await
        {
            let error =
                self.parent
                    .error(e, "auth/token/revoke-accessor", "revoking the step's token");
            tracing::warn!(
                accessor = %self.accessor,
                error = %error,
                "could not revoke a scoped Vault token; it expires after its TTL"
            );
        }
        delete_policy(&self.parent, &self.policy).await;
    }
}

impl Drop for ScopedToken {
    fn drop(&mut self) {
        if !self.revoked.load(Ordering::SeqCst) {
            tracing::warn!(
                accessor = %self.accessor,
                policy = %self.policy,
                "a scoped Vault token was dropped without being revoked: it lives until its TTL \
                 ends and its policy stays"
            );
        }
    }
}

#[async_trait::async_trait]
impl SecretProvider for ScopedToken {
    async fn read(&self, path: &SecretPath) -> Result<SecretValue, SecretError> {
        self.session.read_kv2(path).await
    }

    fn kind(&self) -> &'static str {
        "vault"
    }
}

async fn delete_policy(session: &Session, name: &str) {
    if let Err(e) = vaultrs::sys::policy::delete(session.client(), name).await {
        let error = session.error(
            e,
            &format!("sys/policies/acl/{name}"),
            "deleting the step's policy",
        );
        tracing::warn!(policy = %name, error = %error, "could not delete a scoped token's policy");
    }
}

/// `relo-step-<label>-<16 hex>`: the label made policy-name safe, then randomness so two
/// runs of the same step never share a policy.
fn policy_name(label: &str) -> String {
    let mut random = [0_u8; 8];
    OsRng.fill_bytes(&mut random);
    format!("relo-step-{}-{}", sanitize(label), hex::encode(random))
}

/// Lowercase ASCII letters, digits, `-` and `_`; anything else becomes `-`; at most 48.
fn sanitize(label: &str) -> String {
    let cleaned: String = label
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-' | '_') => c,
            _ => '-',
        })
        .take(48)
        .collect();
    if cleaned.is_empty() {
        "step".to_owned()
    } else {
        cleaned
    }
}

/// A JSON ACL policy allowing `read` on exactly the API path of each of `paths`.
fn scoped_policy(paths: &[SecretPath]) -> Result<String, SecretError> {
    let mut api_paths = BTreeSet::new();
    for path in paths {
        let api_path = path.path();
        split_kv2(api_path)?;
        if let Some(bad) = api_path
            .chars()
            .find(|c| matches!(c, '*' | '+' | '"' | '\\') || c.is_control())
        {
            return Err(SecretError::Config(format!(
                "the secret path `{api_path}` contains `{}`, which a Vault policy would read as \
                 a wildcard or cannot hold; bind an exact path",
                bad.escape_default()
            )));
        }
        api_paths.insert(api_path);
    }
    let rules: serde_json::Map<String, serde_json::Value> = api_paths
        .into_iter()
        .map(|p| {
            (
                p.to_owned(),
                serde_json::json!({ "capabilities": ["read"] }),
            )
        })
        .collect();
    Ok(serde_json::json!({ "path": rules }).to_string())
}

/// `kv/data/app` → (`kv`, `app`): the mount before the first `/data/`, the secret after.
fn split_kv2(api_path: &str) -> Result<(&str, &str), SecretError> {
    match api_path.split_once("/data/") {
        Some((mount, name)) if !mount.is_empty() && !name.is_empty() && !name.ends_with('/') => {
            Ok((mount, name))
        }
        _ => Err(SecretError::Config(format!(
            "`{api_path}` is not a KV v2 API path: expected MOUNT/data/NAME, e.g. kv/data/app"
        ))),
    }
}

/// Takes `field` out of a KV v2 `data` object as text. Errors say what is missing, never
/// what is there.
fn take_field(data: &mut serde_json::Value, field: &str) -> Result<Zeroizing<String>, String> {
    let fields = match data {
        serde_json::Value::Object(fields) => fields,
        serde_json::Value::Null => {
            return Err("this version was deleted".to_owned());
        }
        _ => return Err("the secret is not an object of fields".to_owned()),
    };
    match fields.get_mut(field) {
        None => Err(format!("the secret has no field `{field}`")),
        Some(serde_json::Value::String(text)) => Ok(Zeroizing::new(std::mem::take(text))),
        Some(value @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
            Ok(Zeroizing::new(value.to_string()))
        }
        Some(_) => Err(format!(
            "the field `{field}` is not text (it is null, a list or an object)"
        )),
    }
}

/// Zeroes every string in `value`, in place.
fn zeroize_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(text) => text.zeroize(),
        serde_json::Value::Array(items) => items.iter_mut().for_each(zeroize_json),
        serde_json::Value::Object(fields) => fields.values_mut().for_each(zeroize_json),
        _ => {}
    }
}

/// What a failed request means for relo.
enum Failure {
    NotFound,
    Denied,
    Unavailable(String),
}

/// Sorts a vaultrs error. Never formats a response body or a JSON error (they can hold
/// values); transport errors are formatted with their causes.
fn classify(error: &ClientError, address: &str) -> Failure {
    let by_status = |code: u16, errors: &[String]| match code {
        404 => Failure::NotFound,
        401 | 403 => Failure::Denied,
        _ => {
            let detail = if errors.is_empty() {
                String::new()
            } else {
                format!(": {}", errors.join("; "))
            };
            Failure::Unavailable(format!("Vault at {address} answered HTTP {code}{detail}"))
        }
    };
    match error {
        ClientError::APIError { code, errors } => by_status(*code, errors),
        ClientError::RestClientError { source } => {
            use rustify::errors::ClientError as Rest;
            match source {
                Rest::ServerResponseError { code, .. } => by_status(*code, &[]),
                Rest::RequestError { source, .. } => {
                    Failure::Unavailable(format!("cannot reach Vault at {address}: {source:#}"))
                }
                Rest::ResponseError { source } => Failure::Unavailable(format!(
                    "reading the answer of Vault at {address} failed: {source:#}"
                )),
                Rest::ResponseParseError { .. }
                | Rest::ResponseConversionError { .. }
                | Rest::DataParseError { .. } => Failure::Unavailable(format!(
                    "Vault at {address} sent an answer relo cannot parse"
                )),
                other => Failure::Unavailable(format!("Vault at {address}: {other}")),
            }
        }
        ClientError::JsonParseError { .. } => Failure::Unavailable(format!(
            "Vault at {address} sent an answer relo cannot parse"
        )),
        other => Failure::Unavailable(format!("Vault at {address}: {other}")),
    }
}

/// An error and its causes, `a: b: c`.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// vaultrs's HTTP client is built with rustls but without a bundled crypto provider (so
/// neither OpenSSL nor aws-lc is compiled in): install ring's, which the rest of relo
/// uses, unless the process already chose one.
fn install_crypto_provider() {
    let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> SecretPath {
        text.parse().unwrap()
    }

    #[test]
    fn kv2_paths_split_at_the_first_data_segment() {
        assert_eq!(split_kv2("kv/data/app").unwrap(), ("kv", "app"));
        assert_eq!(split_kv2("team/kv/data/a/b").unwrap(), ("team/kv", "a/b"));
        for bad in ["kv/app", "kv/data/", "/data/app", "kv/metadata/app"] {
            assert_eq!(
                split_kv2(bad).unwrap_err().code(),
                "provider-config",
                "{bad}"
            );
        }
    }

    #[test]
    fn the_scoped_policy_reads_exactly_the_granted_paths() {
        let policy = scoped_policy(&[
            path("kv/data/b#x"),
            path("kv/data/a#y@2"),
            path("kv/data/a#z"),
        ])
        .unwrap();
        assert_eq!(
            policy,
            r#"{"path":{"kv/data/a":{"capabilities":["read"]},"kv/data/b":{"capabilities":["read"]}}}"#
        );
        assert_eq!(scoped_policy(&[]).unwrap(), r#"{"path":{}}"#);
    }

    #[test]
    fn wildcards_and_quotes_never_reach_a_policy() {
        for bad in [
            "kv/data/*#f",
            "kv/data/a+b#f",
            "kv/data/a\"b#f",
            "kv/data/a\\b#f",
        ] {
            let error = scoped_policy(&[path(bad)]).unwrap_err();
            assert_eq!(error.code(), "provider-config", "{bad}");
        }
    }

    #[test]
    fn policy_names_are_safe_and_unique() {
        let a = policy_name("Sign Release/№1");
        let b = policy_name("Sign Release/№1");
        assert!(a.starts_with("relo-step-sign-release--1-"), "{a}");
        assert_ne!(a, b);
        assert!(policy_name("").starts_with("relo-step-step-"));
    }

    #[test]
    fn fields_are_taken_and_the_rest_is_zeroed() {
        let mut data = serde_json::json!({"token": "s3cr3t", "other": ["x"], "n": 7});
        assert_eq!(take_field(&mut data, "token").unwrap().as_str(), "s3cr3t");
        assert_eq!(take_field(&mut data, "n").unwrap().as_str(), "7");
        let missing = take_field(&mut data, "nope").unwrap_err();
        assert_eq!(missing, "the secret has no field `nope`");
        zeroize_json(&mut data);
        assert_eq!(data["other"][0], "");
        assert!(take_field(&mut serde_json::Value::Null, "token").is_err());
    }

    #[test]
    fn auth_debug_never_shows_credentials() {
        let token = VaultAuth::Token(Zeroizing::new("hvs.secret".to_owned()));
        let approle = VaultAuth::AppRole {
            role_id: "role-123".to_owned(),
            secret_id: Zeroizing::new("sid-456".to_owned()),
            mount: "approle".to_owned(),
        };
        let shown = format!("{token:?} {approle:?}");
        for secret in ["hvs.secret", "role-123", "sid-456"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn plain_http_is_for_loopback_only() {
        for remote in [
            "http://vault.example:8200",
            "http://10.0.0.8:8200",
            "http://[2001:db8::1]:8200",
            "http://127.0.0.1.example:8200",
        ] {
            let error = Session::new(remote, VAULT_TIMEOUT).err().unwrap();
            assert_eq!(error.code(), "vault-insecure", "{remote}");
        }
        for local in [
            "http://127.0.0.1:8200",
            "http://127.1.2.3:8200",
            "http://[::1]:8200",
            "http://LOCALHOST:8200",
            "https://vault.example:8200",
        ] {
            assert!(Session::new(local, VAULT_TIMEOUT).is_ok(), "{local}");
        }
    }

    /// A Vault that answers with a redirect does not get the token carried elsewhere:
    /// the redirect is not followed, and the read fails.
    #[tokio::test]
    async fn a_redirect_is_never_followed_with_the_token() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

        let elsewhere = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = elsewhere.local_addr().unwrap();
        let reached = Arc::new(AtomicBool::new(false));
        let seen = Arc::clone(&reached);
        tokio::spawn(async move {
            if elsewhere.accept().await.is_ok() {
                seen.store(true, Ordering::SeqCst);
            }
        });
        let vault = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", vault.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = vault.accept().await {
                let mut buf = [0_u8; 4096];
                let _ = socket.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://{target}/v1/kv/data/app\r\n\
                     content-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        let token = VaultAuth::Token(Zeroizing::new("hvs.secret".to_owned()));
        let provider = VaultProvider::connect(&address, token).await.unwrap();
        let path: SecretPath = "kv/data/app#token".parse().unwrap();
        let error = provider
            .read(&path)
            .await
            .expect_err("a redirect is not an answer");
        assert_eq!(error.code(), "provider-unavailable", "{error}");
        assert!(!reached.load(Ordering::SeqCst), "the redirect was followed");
    }

    #[test]
    fn bad_addresses_are_config_errors_not_panics() {
        for bad in ["", "vault:8200", "ftp://vault", "http://"] {
            let error = Session::new(bad, VAULT_TIMEOUT).err().unwrap();
            assert_eq!(error.code(), "provider-config", "{bad}");
        }
    }
}
