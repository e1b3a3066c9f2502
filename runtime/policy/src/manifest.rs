//! From manifests to capabilities: what a plugin declares, with its endpoints resolved
//! against the operator's config, and the operator's ceilings.
//!
//! The result is what [`effective_grant`](crate::effective_grant) intersects; an approval
//! binds the same resolved form, so a changed endpoint binding no longer matches it.

use std::collections::BTreeMap;
use std::time::Duration;

use relo_manifest::{OperatorConfig, PluginManifest, UrlPattern};

use crate::egress::{EgressRule, Method, RuleError};
use crate::endpoints::{self, UnboundEndpoint};
use crate::grant::{Capabilities, Ceilings, InjectRule, SecretGrant, WorkspaceAccess};
use crate::limits::Limits;
use crate::net::NetworkPolicy;

/// Why a plugin's declaration could not be turned into capabilities against a config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeclarationError {
    /// A URL pattern names an endpoint the config does not bind.
    #[error(transparent)]
    UnboundEndpoint(#[from] UnboundEndpoint),
    /// A URL pattern, once resolved, is not a valid egress rule.
    #[error(transparent)]
    InvalidRule(#[from] RuleError),
    /// A method the manifest accepts is not one a rule can allow.
    #[error("method {0} cannot be granted")]
    Method(String),
    /// A network range could not be read.
    #[error("network range `{0}` is not valid")]
    Network(String),
}

fn rule(
    pattern: &UrlPattern,
    methods: &[Method],
    endpoints: &BTreeMap<String, String>,
) -> Result<EgressRule, DeclarationError> {
    let resolved = endpoints::resolve(pattern.as_str(), endpoints)?;
    Ok(EgressRule::parse(&resolved, methods)?)
}

/// What `plugin` declares, resolved against `config`'s `[endpoints]`. Limits the
/// manifest does not set keep their defaults ([`Limits::default`]).
pub fn declared_capabilities(
    plugin: &PluginManifest,
    config: &OperatorConfig,
) -> Result<Capabilities, DeclarationError> {
    let endpoints: BTreeMap<String, String> = config
        .endpoints
        .iter()
        .map(|(name, url)| (name.as_str().to_owned(), url.as_str().to_owned()))
        .collect();
    let mut egress = Vec::with_capacity(plugin.egress.len());
    for declared in &plugin.egress {
        let methods = declared
            .methods
            .iter()
            .map(|method| {
                Method::parse(method.as_str())
                    .ok_or_else(|| DeclarationError::Method(method.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        egress.push(rule(&declared.url, &methods, &endpoints)?);
    }
    let mut secrets = BTreeMap::new();
    for (name, secret) in &plugin.secrets {
        let inject = secret
            .inject
            .iter()
            .map(|target| {
                Ok(InjectRule {
                    destination: rule(&target.url, &INJECT_METHODS, &endpoints)?,
                    header: target.header.clone(),
                })
            })
            .collect::<Result<Vec<_>, DeclarationError>>()?;
        secrets.insert(
            name.as_str().to_owned(),
            SecretGrant {
                inject,
                reveal: secret.reveal,
            },
        );
    }
    let defaults = Limits::default();
    let requested = &plugin.limits;
    Ok(Capabilities {
        egress,
        secrets,
        signer_keys: plugin
            .signer
            .iter()
            .flat_map(|signer| signer.keys.iter().map(|key| key.as_str().to_owned()))
            .collect(),
        env: plugin
            .env
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), value.clone()))
            .collect(),
        workspace: plugin.filesystem.as_ref().map(|fs| match fs.workspace {
            relo_manifest::WorkspaceAccess::ReadOnly => WorkspaceAccess::ReadOnly,
            relo_manifest::WorkspaceAccess::ReadWrite => WorkspaceAccess::ReadWrite,
        }),
        limits: Limits {
            fuel: requested.fuel.unwrap_or(defaults.fuel),
            memory_bytes: requested
                .memory
                .map_or(defaults.memory_bytes, |size| size.bytes()),
            timeout: requested
                .timeout
                .map_or(defaults.timeout, |spec| spec.duration()),
            egress_requests: requested
                .egress_requests
                .unwrap_or(defaults.egress_requests),
            egress_bytes: requested
                .egress_bytes
                .map_or(defaults.egress_bytes, |size| size.bytes()),
            host_calls: requested.host_calls.unwrap_or(defaults.host_calls),
            workspace_bytes: requested
                .workspace
                .map_or(defaults.workspace_bytes, |size| size.bytes()),
            workspace_files: requested
                .workspace_files
                .unwrap_or(defaults.workspace_files),
            ..defaults
        },
    })
}

/// Secret injection applies to any request toward the destination, whatever its method.
const INJECT_METHODS: [Method; 7] = [
    Method::Get,
    Method::Head,
    Method::Post,
    Method::Put,
    Method::Patch,
    Method::Delete,
    Method::Options,
];

/// The operator's ceilings. A ceiling the config does not set does not cap anything.
pub fn operator_ceilings(config: &OperatorConfig) -> Result<Ceilings, DeclarationError> {
    let set = &config.ceilings;
    let networks = |cidrs: &[relo_manifest::Cidr]| {
        cidrs
            .iter()
            .map(|cidr| {
                cidr.to_string()
                    .parse()
                    .map_err(|_| DeclarationError::Network(cidr.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(Ceilings {
        limits: Limits {
            fuel: set.fuel.unwrap_or(u64::MAX),
            memory_bytes: set.memory.map_or(u64::MAX, |size| size.bytes()),
            table_elements: u64::MAX,
            timeout: set.timeout.map_or(Duration::MAX, |spec| spec.duration()),
            output_bytes: u64::MAX,
            log_bytes: u64::MAX,
            egress_requests: set.egress_requests.unwrap_or(u64::MAX),
            egress_bytes: set.egress_bytes.map_or(u64::MAX, |size| size.bytes()),
            host_calls: set.host_calls.unwrap_or(u64::MAX),
            workspace_bytes: set.workspace.map_or(u64::MAX, |size| size.bytes()),
            workspace_files: set.workspace_files.unwrap_or(u64::MAX),
        },
        networks: NetworkPolicy {
            extra_blocked: networks(&set.extra_blocked_networks)?,
            allowed: networks(&set.allowed_networks)?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::{EgressDecision, EgressRequest};
    use crate::grant::effective_grant;

    const PLUGIN: &str = r#"
[plugin]
name = "acme/publish-release"
version = "0.1.0"
[limits]
fuel = 500_000_000
memory = "32MiB"
timeout = "10s"
[[egress]]
url = "{{ endpoints.forge }}/api/releases"
methods = ["POST"]
[[egress]]
url = "{{ endpoints.forge }}/api/tags"
methods = ["GET", "POST"]
[secrets.forge_token]
inject = [
  "{{ endpoints.forge }}/*",
  { url = "{{ endpoints.forge }}/graphql", header = "X-API-Key" },
]
[filesystem]
workspace = "read-only"
[env]
LOG_FORMAT = "json"
"#;

    const CONFIG: &str = r#"
[ceilings]
fuel = 2_000_000_000
memory = "16MiB"
timeout = "5m"
allowed_networks = ["127.0.0.0/8"]
[endpoints]
forge = "https://forge.example.com"
"#;

    fn parsed() -> (PluginManifest, OperatorConfig) {
        let plugin = relo_manifest::parse_plugin("relo-plugin.toml", PLUGIN.as_bytes())
            .expect("valid plugin");
        let config =
            relo_manifest::parse_operator("relo.toml", CONFIG.as_bytes()).expect("valid config");
        (plugin, config)
    }

    #[test]
    fn a_plugin_resolved_against_its_config() {
        let (plugin, config) = parsed();
        let declared = declared_capabilities(&plugin, &config).expect("resolves");
        let rules: Vec<String> = declared.egress.iter().map(ToString::to_string).collect();
        assert_eq!(
            rules,
            [
                "POST https://forge.example.com:443/api/releases",
                "GET,POST https://forge.example.com:443/api/tags",
            ]
        );
        let inject = &declared.secrets["forge_token"].inject;
        let shown: Vec<String> = inject
            .iter()
            .map(|rule| {
                rule.to_string()
                    .split_once(' ')
                    .expect("methods")
                    .1
                    .to_owned()
            })
            .collect();
        assert_eq!(
            shown,
            [
                "https://forge.example.com:443/* header authorization",
                "https://forge.example.com:443/graphql header x-api-key",
            ]
        );
        assert_eq!(declared.workspace, Some(WorkspaceAccess::ReadOnly));
        assert_eq!(declared.env["LOG_FORMAT"], "json");
        assert_eq!(declared.limits.memory_bytes, 32 * 1024 * 1024);

        let ceilings = operator_ceilings(&config).expect("ceilings");
        let (grant, limits) = effective_grant(&declared, &declared, &ceilings);
        assert_eq!(
            limits.memory_bytes,
            16 * 1024 * 1024,
            "the ceiling caps the request"
        );
        assert_eq!(limits.fuel, 500_000_000, "the request is below the ceiling");
        let request = EgressRequest {
            method: "GET",
            scheme: "https",
            host: "forge.example.com",
            port: 443,
            path: "/api/tags",
            has_userinfo: false,
        };
        assert!(matches!(
            grant.egress_decision(&request),
            EgressDecision::Allowed { rule: 1 }
        ));
        assert!(
            grant
                .networks
                .check("127.0.0.1".parse().expect("ip"))
                .is_ok()
        );
    }

    #[test]
    fn an_unbound_endpoint_is_an_error_against_a_config() {
        let (plugin, _) = parsed();
        let empty = relo_manifest::parse_operator("relo.toml", b"[ceilings]\n").expect("valid");
        assert_eq!(
            declared_capabilities(&plugin, &empty),
            Err(DeclarationError::UnboundEndpoint(UnboundEndpoint {
                name: "forge".into()
            }))
        );
    }
}
