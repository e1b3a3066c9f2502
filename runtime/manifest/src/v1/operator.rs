//! The operator's config, `relo.toml`: ceilings no manifest can widen, endpoint bindings,
//! trusted signers, people and roles, signing keys, the evidence key, secrets and store.

use std::collections::{BTreeMap, HashMap};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    EGRESS_BYTES_RANGE, EGRESS_REQUESTS_RANGE, FUEL_RANGE, HOST_CALLS_RANGE, MEMORY_RANGE,
    TIMEOUT_RANGE_MS, WORKSPACE_FILES_RANGE, WORKSPACE_RANGE, duration_in, no_duplicates, optional,
    size_in,
};
use crate::decode::{Cx, Decode, Path, suggest};
use crate::diagnostic::Code;
use crate::origin::Origin;
use crate::tree::Node;
use crate::values::{
    BaseUrl, ByteSize, Cidr, DurationSpec, EndpointName, KeyName, KeyRef, PersonName, PluginGlob,
    PluginName, Role, SecretName, SecretPath, SecretsProvider, StoreUrl, WitnessRef,
};

pub(crate) const ROOT: &[&str] = &[
    "schema_version",
    "ceilings",
    "endpoints",
    "trust",
    "people",
    "signing",
    "evidence",
    "secrets",
    "store",
];
pub(crate) const CEILINGS: &[&str] = &[
    "fuel",
    "memory",
    "timeout",
    "egress_requests",
    "egress_bytes",
    "host_calls",
    "workspace",
    "workspace_files",
    "extra_blocked_networks",
    "allowed_networks",
];
pub(crate) const TRUST: &[&str] = &["auto_approve_within_previous", "signers"];
pub(crate) const SIGNER: &[&str] = &["key", "plugins", "person", "retired"];
pub(crate) const PERSON: &[&str] = &["name", "keys", "roles"];
pub(crate) const SIGNING: &[&str] = &["keys"];
pub(crate) const EVIDENCE: &[&str] = &["signer", "witness"];
pub(crate) const SECRETS: &[&str] = &["provider", "address", "auth", "bindings"];
pub(crate) const AUTH: &[&str] = &["approle", "token_file"];
pub(crate) const APPROLE: &[&str] = &["role_id_file", "secret_id_file"];
pub(crate) const STORE: &[&str] = &["url"];

fn one() -> u32 {
    1
}

/// `relo.toml`, version 1: the operator's config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "relo operator config (relo.toml), version 1")]
pub struct OperatorConfig {
    /// The format version; 1 when absent.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 1))]
    pub schema_version: u32,
    /// Limits no plugin manifest or approval can widen.
    #[serde(default, skip_serializing_if = "Ceilings::is_empty")]
    pub ceilings: Ceilings,
    /// Where plugins' `{{ endpoints.NAME }}` point.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub endpoints: BTreeMap<EndpointName, BaseUrl>,
    /// Which signers are trusted for which plugins.
    #[serde(default, skip_serializing_if = "Trust::is_empty")]
    pub trust: Trust,
    /// People, their public keys and roles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub people: Vec<Person>,
    /// What plugins' `[signer] keys` names mean.
    #[serde(default, skip_serializing_if = "Signing::is_empty")]
    pub signing: Signing,
    /// The key that signs evidence checkpoints, and where they are witnessed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<EvidenceConfig>,
    /// Where secret values come from, and which plugin's secret is which.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<SecretsConfig>,
    /// Where state is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreConfig>,
    #[serde(skip)]
    #[schemars(skip)]
    origin: Origin,
}

impl OperatorConfig {
    /// Where this config was read from.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The person with this name.
    pub fn person(&self, name: &str) -> Option<&Person> {
        self.people
            .iter()
            .find(|person| person.name.as_str() == name)
    }

    /// The secret bindings of one plugin.
    pub fn secret_bindings(
        &self,
        plugin: &PluginName,
    ) -> Option<&BTreeMap<SecretName, SecretPath>> {
        self.secrets.as_ref()?.bindings.get(plugin)
    }
}

/// `[ceilings]`: maxima for every step, whatever its manifest asks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ceilings {
    /// Fuel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10_000_000_000_000u64))]
    pub fuel: Option<u64>,
    /// Linear memory, at most 4GiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<ByteSize>,
    /// Wall-clock time, at most 24h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationSpec>,
    /// Outgoing HTTP requests per step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1_000_000))]
    pub egress_requests: Option<u64>,
    /// HTTP bytes per step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_bytes: Option<ByteSize>,
    /// Host calls (secrets, reveal, signer, egress) the host may refuse before the step
    /// ends with the limit `host-calls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100_000))]
    pub host_calls: Option<u64>,
    /// Bytes the run's workspace may hold after a read-write step (apparent sizes), at
    /// most 16GiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<ByteSize>,
    /// Directories and files the run's workspace may hold after a read-write step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10_000_000))]
    pub workspace_files: Option<u64>,
    /// Networks blocked on top of the built-in list (loopback, private, link-local, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_blocked_networks: Vec<Cidr>,
    /// Networks let through even though the built-in list blocks them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_networks: Vec<Cidr>,
}

impl Ceilings {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self == &Ceilings::default()
    }
}

/// `[trust]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Trust {
    /// Approve a new version automatically when it asks for no more than the approved one.
    #[serde(default)]
    pub auto_approve_within_previous: bool,
    /// Trusted signers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signers: Vec<TrustedSigner>,
}

impl Trust {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self == &Trust::default()
    }
}

/// `[[trust.signers]]`: a key trusted to publish some plugins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrustedSigner {
    /// The public key file.
    pub key: String,
    /// Plugin names (patterns) this key may publish.
    pub plugins: Vec<PluginGlob>,
    /// The person who owns the key, for separation of duties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<PersonName>,
    /// A retired key's signatures are refused from now on.
    #[serde(default)]
    pub retired: bool,
}

/// `[[people]]`: a person, their public keys and roles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Person {
    /// The person's name.
    pub name: PersonName,
    /// Public key files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    /// Roles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Role>,
}

/// `[signing]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Signing {
    /// Key name to key file or `vault-transit:NAME`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub keys: BTreeMap<KeyName, KeyRef>,
}

impl Signing {
    /// Whether no key is defined.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// `[evidence]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceConfig {
    /// The Ed25519 key that signs checkpoints.
    pub signer: KeyRef,
    /// Where every checkpoint is also appended, outside the database and the home
    /// (`file:PATH`); `relo init` writes it, and without it the default is
    /// `$XDG_STATE_HOME/relo/witnesses/<origin>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witness: Option<WitnessRef>,
}

/// `[secrets]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    /// `vault` or `file`.
    pub provider: SecretsProvider,
    /// The Vault address (required for `vault`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<BaseUrl>,
    /// How relo logs in to Vault (required for `vault`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<VaultAuth>,
    /// Per plugin, each logical secret name's path in the provider.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub bindings: BTreeMap<PluginName, BTreeMap<SecretName, SecretPath>>,
}

/// How relo logs in to Vault: `{ approle = { … } }` or `{ token_file = "…" }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum VaultAuth {
    /// AppRole login with the role and secret ids read from files.
    #[serde(rename = "approle")]
    AppRole(AppRole),
    /// A token read from a file.
    #[serde(rename = "token_file")]
    TokenFile(String),
}

/// AppRole credentials, each in a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppRole {
    /// The file holding the role id.
    pub role_id_file: String,
    /// The file holding the secret id.
    pub secret_id_file: String,
}

/// `[store]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://PATH` (relative to the relo home) or `postgres://…`.
    pub url: StoreUrl,
}

/// Reads the operator config from its tree (the version is already checked).
pub(crate) fn decode(cx: &mut Cx<'_>, root: &Node, origin: Origin) -> Option<OperatorConfig> {
    let table = cx.table(root, &Path::root(), "the operator config", ROOT)?;
    let ceilings = optional(cx, table.get("ceilings"), decode_ceilings);
    let endpoints = optional(cx, table.get("endpoints"), |cx, node, path| {
        cx.map::<EndpointName, BaseUrl>(node, path, BaseUrl::decode)
    });
    let people = optional(cx, table.get("people"), decode_people);
    let known_people: Vec<String> = table
        .get("people")
        .and_then(|(node, _)| match &node.kind {
            crate::tree::Kind::Seq(items) => Some(
                items
                    .iter()
                    .filter_map(|item| item.get("name").and_then(Node::as_str).map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        })
        .unwrap_or_default();
    let trust = optional(cx, table.get("trust"), |cx, node, path| {
        decode_trust(cx, node, path, &known_people)
    });
    let signing = optional(cx, table.get("signing"), |cx, node, path| {
        let fields = cx.table(node, path, "[signing]", SIGNING)?;
        let keys = optional(cx, fields.get("keys"), |cx, node, path| {
            cx.map::<KeyName, KeyRef>(node, path, KeyRef::decode)
        });
        Some(Signing {
            keys: keys.ok()?.unwrap_or_default(),
        })
    });
    let evidence = optional(cx, table.get("evidence"), |cx, node, path| {
        let fields = cx.table(node, path, "[evidence]", EVIDENCE)?;
        let signer = fields.req(cx, "signer");
        let witness = fields.opt::<WitnessRef>(cx, "witness");
        Some(EvidenceConfig {
            signer: signer?,
            witness: witness.ok()?,
        })
    });
    let secrets = optional(cx, table.get("secrets"), decode_secrets);
    let store = optional(cx, table.get("store"), |cx, node, path| {
        let fields = cx.table(node, path, "[store]", STORE)?;
        Some(StoreConfig {
            url: fields.req(cx, "url")?,
        })
    });
    Some(OperatorConfig {
        schema_version: 1,
        ceilings: ceilings.ok()?.unwrap_or_default(),
        endpoints: endpoints.ok()?.unwrap_or_default(),
        trust: trust.ok()?.unwrap_or_default(),
        people: people.ok()?.unwrap_or_default(),
        signing: signing.ok()?.unwrap_or_default(),
        evidence: evidence.ok()?,
        secrets: secrets.ok()?,
        store: store.ok()?,
        origin,
    })
}

fn decode_ceilings(cx: &mut Cx<'_>, node: &Node, path: &Path) -> Option<Ceilings> {
    let fields = cx.table(node, path, "[ceilings]", CEILINGS)?;
    let fuel = optional(cx, fields.get("fuel"), |cx, node, path| {
        cx.uint(node, path, FUEL_RANGE)
    });
    let memory = optional(cx, fields.get("memory"), |cx, node, path| {
        size_in(cx, node, path, MEMORY_RANGE)
    });
    let timeout = optional(cx, fields.get("timeout"), |cx, node, path| {
        duration_in(cx, node, path, TIMEOUT_RANGE_MS)
    });
    let egress_requests = optional(cx, fields.get("egress_requests"), |cx, node, path| {
        cx.uint(node, path, EGRESS_REQUESTS_RANGE)
    });
    let egress_bytes = optional(cx, fields.get("egress_bytes"), |cx, node, path| {
        size_in(cx, node, path, EGRESS_BYTES_RANGE)
    });
    let host_calls = optional(cx, fields.get("host_calls"), |cx, node, path| {
        cx.uint(node, path, HOST_CALLS_RANGE)
    });
    let workspace = optional(cx, fields.get("workspace"), |cx, node, path| {
        size_in(cx, node, path, WORKSPACE_RANGE)
    });
    let workspace_files = optional(cx, fields.get("workspace_files"), |cx, node, path| {
        cx.uint(node, path, WORKSPACE_FILES_RANGE)
    });
    let extra_blocked_networks = fields.opt::<Vec<Cidr>>(cx, "extra_blocked_networks");
    let allowed_networks = fields.opt::<Vec<Cidr>>(cx, "allowed_networks");
    Some(Ceilings {
        fuel: fuel.ok()?,
        memory: memory.ok()?,
        timeout: timeout.ok()?,
        egress_requests: egress_requests.ok()?,
        egress_bytes: egress_bytes.ok()?,
        host_calls: host_calls.ok()?,
        workspace: workspace.ok()?,
        workspace_files: workspace_files.ok()?,
        extra_blocked_networks: extra_blocked_networks.ok()?.unwrap_or_default(),
        allowed_networks: allowed_networks.ok()?.unwrap_or_default(),
    })
}

fn key_file(cx: &mut Cx<'_>, node: &Node, path: &Path) -> Option<String> {
    let text = cx.string(node, path)?;
    if text.trim().is_empty() {
        cx.error(
            Code::InvalidValue,
            node.span.clone(),
            path,
            "the key file path is empty",
        );
        return None;
    }
    Some(text.to_owned())
}

fn decode_trust(cx: &mut Cx<'_>, node: &Node, path: &Path, people: &[String]) -> Option<Trust> {
    let fields = cx.table(node, path, "[trust]", TRUST)?;
    let auto = fields.opt::<bool>(cx, "auto_approve_within_previous");
    let signers = optional(cx, fields.get("signers"), |cx, node, path| {
        cx.list(node, path, |cx, node, path| {
            let fields = cx.table(node, path, "a [[trust.signers]] entry", SIGNER)?;
            let key = fields
                .required(cx, "key")
                .and_then(|(node, path)| key_file(cx, node, &path));
            let plugins = fields.required(cx, "plugins").and_then(|(node, path)| {
                let plugins: Vec<PluginGlob> = Vec::decode(cx, node, &path)?;
                if plugins.is_empty() {
                    cx.error(
                        Code::InvalidValue,
                        node.span.clone(),
                        &path,
                        "the signer may publish no plugins",
                    )
                    .hint =
                        Some("list the names it may publish, e.g. `plugins = [\"acme/*\"]`".into());
                    return None;
                }
                Some(plugins)
            });
            let person = optional(cx, fields.get("person"), |cx, node, path| {
                let person = PersonName::decode(cx, node, path)?;
                if people.iter().any(|known| known == person.as_str()) {
                    return Some(person);
                }
                let diagnostic = cx.error(
                    Code::UnknownPerson,
                    node.span.clone(),
                    path,
                    format!("`{person}` is not one of the [[people]]"),
                );
                diagnostic.hint = Some(
                    match suggest(person.as_str(), people.iter().map(String::as_str)) {
                        Some(close) => format!("did you mean `{close}`?"),
                        None => "add the person under [[people]]".into(),
                    },
                );
                None
            });
            let retired = fields.opt::<bool>(cx, "retired");
            Some(TrustedSigner {
                key: key?,
                plugins: plugins?,
                person: person.ok()?,
                retired: retired.ok()?.unwrap_or(false),
            })
        })
    });
    Some(Trust {
        auto_approve_within_previous: auto.ok()?.unwrap_or(false),
        signers: signers.ok()?.unwrap_or_default(),
    })
}

fn decode_people(cx: &mut Cx<'_>, node: &Node, path: &Path) -> Option<Vec<Person>> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut index = 0usize;
    cx.list(node, path, |cx, node, path| {
        let this = index;
        index += 1;
        let fields = cx.table(node, path, "a [[people]] entry", PERSON)?;
        let name = fields.required(cx, "name").and_then(|(node, path)| {
            let name = PersonName::decode(cx, node, &path)?;
            if let Some(first) = seen.get(name.as_str()) {
                cx.error(
                    Code::DuplicatePerson,
                    node.span.clone(),
                    &path,
                    format!("`{name}` is already people[{first}]"),
                )
                .hint = Some("list each person once, with all their keys and roles".into());
                return None;
            }
            seen.insert(name.as_str().to_owned(), this);
            Some(name)
        });
        let keys = optional(cx, fields.get("keys"), |cx, node, path| {
            cx.list(node, path, key_file)
        });
        let roles = optional(cx, fields.get("roles"), |cx, node, path| {
            no_duplicates(cx, node, path, "role");
            Vec::<Role>::decode(cx, node, path)
        });
        Some(Person {
            name: name?,
            keys: keys.ok()?.unwrap_or_default(),
            roles: roles.ok()?.unwrap_or_default(),
        })
    })
}

fn decode_secrets(cx: &mut Cx<'_>, node: &Node, path: &Path) -> Option<SecretsConfig> {
    let fields = cx.table(node, path, "[secrets]", SECRETS)?;
    let provider = fields.req::<SecretsProvider>(cx, "provider");
    let address = fields.opt::<BaseUrl>(cx, "address");
    let auth = optional(cx, fields.get("auth"), decode_auth);
    let bindings = optional(cx, fields.get("bindings"), |cx, node, path| {
        cx.map::<PluginName, BTreeMap<SecretName, SecretPath>>(node, path, |cx, node, path| {
            cx.map::<SecretName, SecretPath>(node, path, SecretPath::decode)
        })
    });
    match provider {
        Some(SecretsProvider::Vault) => {
            for field in ["address", "auth"] {
                if fields.get(field).is_none() {
                    cx.error(
                        Code::MissingField,
                        fields.header_span(),
                        path,
                        format!(
                            "missing field `{field}` in [secrets]: the vault provider needs it"
                        ),
                    );
                }
            }
        }
        Some(SecretsProvider::File) => {
            for field in ["address", "auth"] {
                if let Some((node, field_path)) = fields.get(field) {
                    cx.error(
                        Code::ConflictingFields,
                        node.span.clone(),
                        &field_path,
                        format!(
                            "`{field}` is for the vault provider; the file provider takes none"
                        ),
                    );
                }
            }
        }
        None => {}
    }
    Some(SecretsConfig {
        provider: provider?,
        address: address.ok()?,
        auth: auth.ok()?,
        bindings: bindings.ok()?.unwrap_or_default(),
    })
}

fn decode_auth(cx: &mut Cx<'_>, node: &Node, path: &Path) -> Option<VaultAuth> {
    let fields = cx.table(node, path, "`auth`", AUTH)?;
    match (fields.get("approle"), fields.get("token_file")) {
        (Some((node, path)), None) => {
            let approle = cx.table(node, &path, "`approle`", APPROLE)?;
            let role_id_file = approle.req::<String>(cx, "role_id_file");
            let secret_id_file = approle.req::<String>(cx, "secret_id_file");
            Some(VaultAuth::AppRole(AppRole {
                role_id_file: role_id_file?,
                secret_id_file: secret_id_file?,
            }))
        }
        (None, Some((node, path))) => String::decode(cx, node, &path).map(VaultAuth::TokenFile),
        (Some(_), Some((node, path))) => {
            cx.error(
                Code::ConflictingFields,
                node.span.clone(),
                &path,
                "`auth` takes one of `approle` or `token_file`, not both",
            );
            None
        }
        (None, None) => {
            if fields.node().entries().is_some_and(<[_]>::is_empty) {
                cx.error(
                    Code::MissingField,
                    fields.header_span(),
                    path,
                    "`auth` needs `approle = { role_id_file, secret_id_file }` or `token_file`",
                );
            }
            None
        }
    }
}
