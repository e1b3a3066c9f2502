//! Each plugin asks for exactly what it needs, and every manifest is valid.

use relo_policy::{WorkspaceAccess, declared_capabilities};
use serde_json::json;

const CONFIG: &str = "[endpoints]\nforge = \"http://127.0.0.1:18081\"\n\
                      target = \"http://127.0.0.1:18082\"\n";

/// `(plugin, egress rules, secrets with their inject rules, signer keys, workspace)`.
#[test]
fn every_plugin_declares_exactly_what_it_needs() {
    let config = relo_manifest::parse_operator("relo.toml", CONFIG.as_bytes())
        .unwrap_or_else(|problems| panic!("{}", problems.render()));
    let expected = [
        (
            "verify-release",
            json!(["GET http://127.0.0.1:18081/api/tags"]),
            json!({}),
            json!([]),
            Some(WorkspaceAccess::ReadOnly),
        ),
        (
            "pin-image-digest",
            json!([]),
            json!({}),
            json!([]),
            Some(WorkspaceAccess::ReadWrite),
        ),
        (
            "sign-artifact",
            json!([]),
            json!({}),
            json!(["release"]),
            Some(WorkspaceAccess::ReadOnly),
        ),
        (
            "verify-signature",
            json!([]),
            json!({}),
            json!([]),
            Some(WorkspaceAccess::ReadOnly),
        ),
        (
            "publish-release",
            json!([
                "POST http://127.0.0.1:18081/api/tags",
                "POST http://127.0.0.1:18081/api/releases",
            ]),
            json!({"forge_token": [
                "GET,HEAD,POST,PUT,PATCH,DELETE,OPTIONS http://127.0.0.1:18081/api/tags header authorization",
                "GET,HEAD,POST,PUT,PATCH,DELETE,OPTIONS http://127.0.0.1:18081/api/releases header authorization",
            ]}),
            json!([]),
            None,
        ),
        (
            "deploy",
            json!([
                "POST http://127.0.0.1:18082/api/deployments",
                "GET http://127.0.0.1:18082/api/deployments/current",
            ]),
            json!({}),
            json!([]),
            None,
        ),
    ];
    assert_eq!(expected.len(), relo_test_components::plugins::ALL.len());
    for (name, egress, secrets, keys, workspace) in expected {
        let plugin = relo_test_components::plugins::find(name).expect("plugin");
        let bytes = std::fs::read(plugin.manifest).expect("relo-plugin.toml");
        let manifest = relo_manifest::parse_plugin(plugin.manifest, &bytes)
            .unwrap_or_else(|problems| panic!("{}", problems.render()));
        assert_eq!(manifest.plugin.name.as_str(), format!("relo/{name}"));
        assert_eq!(manifest.plugin.version.to_string(), "0.1.0");
        let declared = declared_capabilities(&manifest, &config).expect("endpoints bound");
        let rules: Vec<String> = declared.egress.iter().map(ToString::to_string).collect();
        assert_eq!(json!(rules), egress, "{name}");
        let injected: serde_json::Map<String, serde_json::Value> = declared
            .secrets
            .iter()
            .map(|(secret, grant)| {
                assert!(!grant.reveal, "{name} never reads a secret's value");
                let rules: Vec<String> = grant.inject.iter().map(ToString::to_string).collect();
                (secret.clone(), json!(rules))
            })
            .collect();
        assert_eq!(serde_json::Value::Object(injected), secrets, "{name}");
        assert_eq!(json!(declared.signer_keys), keys, "{name}");
        assert_eq!(declared.workspace, workspace, "{name}");
        assert!(declared.env.is_empty(), "{name}");
    }
}
