//! The committed JSON Schemas in `docs/schema/` match the types.

use relo_manifest::{FileKind, schema_file_name, schema_text};

use crate::{blessing, repo_root};

#[test]
fn committed_schemas_are_up_to_date() {
    let dir = repo_root().join("docs/schema");
    let mut stale = Vec::new();
    for kind in FileKind::ALL {
        let path = dir.join(schema_file_name(*kind));
        let expected = schema_text(*kind);
        if blessing() {
            std::fs::write(&path, &expected).unwrap();
            continue;
        }
        if std::fs::read_to_string(&path).unwrap_or_default() != expected {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale JSON Schema(s): {stale:?}; regenerate with `cargo run -p relo -- schema --write docs/schema` \
         (or `RELO_BLESS=1 cargo test -p relo-manifest --test all`) and commit the result"
    );
}

#[test]
fn schemas_describe_every_top_level_key() {
    let plugin = relo_manifest::schema(FileKind::Plugin);
    for key in [
        "plugin",
        "limits",
        "egress",
        "secrets",
        "filesystem",
        "signer",
        "env",
    ] {
        assert!(
            plugin["properties"].get(key).is_some(),
            "plugin schema lacks {key}"
        );
    }
    let workflow = relo_manifest::schema(FileKind::Workflow);
    assert_eq!(
        workflow["required"],
        serde_json::json!(["apiVersion", "kind", "name", "steps"])
    );
    let operator = relo_manifest::schema(FileKind::Operator);
    for key in [
        "ceilings",
        "endpoints",
        "trust",
        "people",
        "signing",
        "evidence",
        "secrets",
        "store",
    ] {
        assert!(
            operator["properties"].get(key).is_some(),
            "operator schema lacks {key}"
        );
    }
}
