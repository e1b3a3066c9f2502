//! The plugin manifest, `relo-plugin.toml`: who the plugin is, the resources it asks for,
//! and every capability it declares. Nothing undeclared is ever granted.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize};

use super::{
    EGRESS_BYTES_RANGE, EGRESS_REQUESTS_RANGE, FUEL_RANGE, HOST_CALLS_RANGE, MEMORY_RANGE,
    TIMEOUT_RANGE_MS, WORKSPACE_FILES_RANGE, WORKSPACE_RANGE, duration_in, no_duplicates, optional,
    size_in,
};
use crate::decode::{Cx, Decode, Path};
use crate::diagnostic::Code;
use crate::origin::Origin;
use crate::tree::{Kind, Node};
use crate::values::{
    ByteSize, DurationSpec, EnvName, HeaderName, KeyName, Method, PluginName, SecretName, SemVer,
    UrlPattern, WorkspaceAccess,
};

pub(crate) const ROOT: &[&str] = &[
    "schema_version",
    "plugin",
    "limits",
    "egress",
    "secrets",
    "filesystem",
    "signer",
    "env",
];
pub(crate) const PLUGIN: &[&str] = &["name", "version"];
pub(crate) const LIMITS: &[&str] = &[
    "fuel",
    "memory",
    "timeout",
    "egress_requests",
    "egress_bytes",
    "host_calls",
    "workspace",
    "workspace_files",
];
pub(crate) const EGRESS: &[&str] = &["url", "methods"];
pub(crate) const SECRET: &[&str] = &["inject", "reveal"];
pub(crate) const INJECT: &[&str] = &["url", "header"];
pub(crate) const FILESYSTEM: &[&str] = &["workspace"];
pub(crate) const SIGNER: &[&str] = &["keys"];

fn one() -> u32 {
    1
}

/// `relo-plugin.toml`, version 1. Written by the plugin author and signed together with
/// the component's digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "relo plugin manifest (relo-plugin.toml), version 1")]
pub struct PluginManifest {
    /// The format version; 1 when absent.
    #[serde(default = "one")]
    #[schemars(range(min = 1, max = 1))]
    pub schema_version: u32,
    /// Who the plugin is.
    pub plugin: PluginInfo,
    /// The resources the plugin asks for; the operator's ceilings cap them.
    #[serde(default, skip_serializing_if = "PluginLimits::is_empty")]
    pub limits: PluginLimits,
    /// Where the plugin may send HTTP requests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<DeclaredEgress>,
    /// The secrets the plugin uses, by logical name; the operator binds each to a path.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<SecretName, DeclaredSecret>,
    /// Access to the run's workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filesystem: Option<Filesystem>,
    /// Signing keys the plugin may ask the host to sign with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<SignerRequest>,
    /// Environment variables with fixed values; nothing comes from the host's environment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<EnvName, String>,
    #[serde(skip)]
    #[schemars(skip)]
    origin: Origin,
}

impl PluginManifest {
    /// Where this manifest was read from.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Every URL pattern the manifest declares, with its field path: egress URLs, then
    /// secret injection destinations.
    pub fn url_patterns(&self) -> Vec<(String, &UrlPattern)> {
        let mut out = Vec::new();
        for (index, egress) in self.egress.iter().enumerate() {
            out.push((format!("egress[{index}].url"), &egress.url));
        }
        for (name, secret) in &self.secrets {
            for (index, target) in secret.inject.iter().enumerate() {
                let path = Path::root()
                    .field("secrets")
                    .field(name.as_str())
                    .field("inject")
                    .index(index);
                out.push((path.as_str().to_owned(), &target.url));
            }
        }
        out
    }
}

/// `[plugin]`: the plugin's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginInfo {
    /// `namespace/name`.
    pub name: PluginName,
    /// The plugin's version.
    pub version: SemVer,
}

/// `[limits]`: what the plugin asks for. Each is optional; the operator's ceilings and
/// relo's defaults fill in the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginLimits {
    /// Fuel (roughly, wasm instructions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10_000_000_000_000u64))]
    pub fuel: Option<u64>,
    /// Linear memory, at most 4GiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<ByteSize>,
    /// Wall-clock time, at most 24h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationSpec>,
    /// Outgoing HTTP requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1_000_000))]
    pub egress_requests: Option<u64>,
    /// Bytes sent and received over HTTP.
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
}

impl PluginLimits {
    /// Whether nothing is asked for.
    pub fn is_empty(&self) -> bool {
        self == &PluginLimits::default()
    }
}

/// `[[egress]]`: one destination and the methods allowed there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclaredEgress {
    /// Where: `https://host/path`, `https://host/prefix/*` or `{{ endpoints.NAME }}/path`.
    pub url: UrlPattern,
    /// Which methods; at least one.
    pub methods: Vec<Method>,
}

/// `[secrets.NAME]`: how the plugin uses one secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclaredSecret {
    /// Destinations where the host may inject the secret (`{{secret:NAME}}`), each with
    /// the one request header it may go into; the plugin never sees the value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inject: Vec<InjectTarget>,
    /// Whether the plugin may read the value itself (a separate approval).
    #[serde(default)]
    pub reveal: bool,
}

/// One entry of a secret's `inject` list: a destination and the request header the host
/// may put the value into there. Written as `{ url = "…", header = "x-api-key" }`, or as
/// the URL alone, which means the `authorization` header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InjectTarget {
    /// Where: a URL pattern, as for egress.
    pub url: UrlPattern,
    /// The only header the value may be injected into toward `url`.
    pub header: HeaderName,
}

impl InjectTarget {
    /// `url` with the `authorization` header, as a bare URL in the list means.
    pub fn authorization(url: UrlPattern) -> Self {
        InjectTarget {
            url,
            header: HeaderName::authorization(),
        }
    }
}

/// The table form of an inject entry, as written.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct InjectTable {
    /// Where: a URL pattern, as for egress.
    url: UrlPattern,
    /// The request header the value goes into (case-insensitive).
    #[serde(default = "HeaderName::authorization")]
    header: HeaderName,
}

impl<'de> Deserialize<'de> for InjectTarget {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Url(UrlPattern),
            Table(InjectTable),
        }
        Ok(match Written::deserialize(deserializer)? {
            Written::Url(url) => InjectTarget::authorization(url),
            Written::Table(InjectTable { url, header }) => InjectTarget { url, header },
        })
    }
}

impl JsonSchema for InjectTarget {
    fn schema_name() -> Cow<'static, str> {
        "InjectTarget".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let url = generator.subschema_for::<UrlPattern>();
        let table = generator.subschema_for::<InjectTable>();
        json_schema!({
            "description": "Where the host may inject the secret, and into which request header: a URL pattern alone (the `authorization` header), or a table with `url` and `header`.",
            "anyOf": [url, table]
        })
    }
}

/// `[filesystem]`: access to the run's workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Filesystem {
    /// `read-only` or `read-write`.
    pub workspace: WorkspaceAccess,
}

/// `[signer]`: signing keys, by logical name, that the operator binds in `[signing.keys]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignerRequest {
    /// Key names.
    pub keys: Vec<KeyName>,
}

/// Reads a plugin manifest from its tree (the version is already checked).
pub(crate) fn decode(cx: &mut Cx<'_>, root: &Node, origin: Origin) -> Option<PluginManifest> {
    let table = cx.table(root, &Path::root(), "the plugin manifest", ROOT)?;
    let plugin = table
        .required(cx, "plugin")
        .and_then(|(node, path)| decode_info(cx, node, &path));
    let limits = optional(cx, table.get("limits"), decode_limits);
    let egress = optional(cx, table.get("egress"), |cx, node, path| {
        cx.list(node, path, decode_egress)
    });
    let secrets = optional(cx, table.get("secrets"), |cx, node, path| {
        cx.map(node, path, decode_secret)
    });
    let filesystem = optional(cx, table.get("filesystem"), |cx, node, path| {
        let fields = cx.table(node, path, "[filesystem]", FILESYSTEM)?;
        Some(Filesystem {
            workspace: fields.req(cx, "workspace")?,
        })
    });
    let signer = optional(cx, table.get("signer"), |cx, node, path| {
        let fields = cx.table(node, path, "[signer]", SIGNER)?;
        let (keys_node, keys_path) = fields.required(cx, "keys")?;
        no_duplicates(cx, keys_node, &keys_path, "key");
        Some(SignerRequest {
            keys: Vec::decode(cx, keys_node, &keys_path)?,
        })
    });
    let env = optional(cx, table.get("env"), |cx, node, path| {
        cx.map(node, path, |cx, node, path| match node.as_str() {
            Some(value) => Some(value.to_owned()),
            None => {
                cx.wrong_type(node, path, "a string").hint =
                    Some("environment values are fixed strings: put the value in quotes".into());
                None
            }
        })
    });
    Some(PluginManifest {
        schema_version: 1,
        plugin: plugin?,
        limits: limits.ok()?.unwrap_or_default(),
        egress: egress.ok()?.unwrap_or_default(),
        secrets: secrets.ok()?.unwrap_or_default(),
        filesystem: filesystem.ok()?,
        signer: signer.ok()?,
        env: env.ok()?.unwrap_or_default(),
        origin,
    })
}

fn decode_info(cx: &mut Cx<'_>, node: &Node, path: &Path) -> Option<PluginInfo> {
    let fields = cx.table(node, path, "[plugin]", PLUGIN)?;
    let name = fields.req(cx, "name");
    let version = fields.req(cx, "version");
    Some(PluginInfo {
        name: name?,
        version: version?,
    })
}

fn decode_limits(cx: &mut Cx<'_>, node: &Node, path: &Path) -> Option<PluginLimits> {
    let fields = cx.table(node, path, "[limits]", LIMITS)?;
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
    Some(PluginLimits {
        fuel: fuel.ok()?,
        memory: memory.ok()?,
        timeout: timeout.ok()?,
        egress_requests: egress_requests.ok()?,
        egress_bytes: egress_bytes.ok()?,
        host_calls: host_calls.ok()?,
        workspace: workspace.ok()?,
        workspace_files: workspace_files.ok()?,
    })
}

fn decode_egress(cx: &mut Cx<'_>, node: &Node, path: &Path) -> Option<DeclaredEgress> {
    let fields = cx.table(node, path, "an [[egress]] entry", EGRESS)?;
    let url = fields.req(cx, "url");
    let methods = fields.required(cx, "methods").and_then(|(node, path)| {
        no_duplicates(cx, node, &path, "method");
        let methods: Vec<Method> = Vec::decode(cx, node, &path)?;
        if methods.is_empty() {
            cx.error(
                Code::InvalidValue,
                node.span.clone(),
                &path,
                "an egress entry allows no methods",
            )
            .hint = Some("list at least one, e.g. `methods = [\"GET\"]`".into());
            return None;
        }
        Some(methods)
    });
    Some(DeclaredEgress {
        url: url?,
        methods: methods?,
    })
}

fn decode_secret(cx: &mut Cx<'_>, node: &Node, path: &Path) -> Option<DeclaredSecret> {
    let fields = cx.table(node, path, "a [secrets.NAME] table", SECRET)?;
    let inject = optional(cx, fields.get("inject"), |cx, node, path| {
        cx.list(node, path, decode_inject)
    });
    let reveal = fields.opt::<bool>(cx, "reveal");
    let secret = DeclaredSecret {
        inject: inject.ok()?.unwrap_or_default(),
        reveal: reveal.ok()?.unwrap_or(false),
    };
    if secret.inject.is_empty() && !secret.reveal {
        cx.error(
            Code::InvalidValue,
            fields.header_span(),
            path,
            "the secret is neither injected nor revealed, so the plugin could not use it",
        )
        .hint = Some("list destinations in `inject`, or set `reveal = true`".into());
        return None;
    }
    Some(secret)
}

/// One inject entry: a URL pattern (the `authorization` header), or `{ url, header }`.
fn decode_inject(cx: &mut Cx<'_>, node: &Node, path: &Path) -> Option<InjectTarget> {
    match node.kind {
        Kind::Str(_) => cx.parsed(node, path).map(InjectTarget::authorization),
        Kind::Map(_) => {
            let fields = cx.table(node, path, "an inject entry", INJECT)?;
            let url = fields.req(cx, "url");
            let header = fields.opt::<HeaderName>(cx, "header");
            Some(InjectTarget {
                url: url?,
                header: header.ok()?.unwrap_or_else(HeaderName::authorization),
            })
        }
        _ => {
            cx.wrong_type(
                node,
                path,
                "a URL pattern, or a table with `url` and `header`",
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inject_targets_deserialize_from_either_form() {
        let targets: Vec<InjectTarget> = serde_json::from_str(
            r#"["https://a.example/*", {"url": "https://b.example/", "header": "X-Key"},
               {"url": "https://c.example/"}]"#,
        )
        .expect("valid");
        let headers: Vec<&str> = targets.iter().map(|t| t.header.as_str()).collect();
        assert_eq!(headers, ["authorization", "x-key", "authorization"]);
        assert_eq!(targets[1].url.as_str(), "https://b.example/");
        for bad in [
            r#"[{"url": "https://b.example/", "header": "x key"}]"#,
            r#"[{"url": "https://b.example/", "headers": "x-key"}]"#,
            r#"[{"header": "x-key"}]"#,
        ] {
            assert!(
                serde_json::from_str::<Vec<InjectTarget>>(bad).is_err(),
                "{bad}"
            );
        }
    }
}
