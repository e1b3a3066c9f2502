//! JSON Schemas of the three formats, generated from the types. The committed copies
//! live in `docs/schema/`; `relo schema --write docs/schema` regenerates them.

use crate::FileKind;
use crate::v1::operator::OperatorConfig;
use crate::v1::plugin::PluginManifest;
use crate::v1::workflow::Workflow;

/// The JSON Schema of one file kind.
pub fn schema(kind: FileKind) -> serde_json::Value {
    let schema = match kind {
        FileKind::Plugin => schemars::schema_for!(PluginManifest),
        FileKind::Workflow => schemars::schema_for!(Workflow),
        FileKind::Operator => schemars::schema_for!(OperatorConfig),
    };
    schema.to_value()
}

/// The schema as the committed file holds it: pretty JSON and a final newline.
pub fn schema_text(kind: FileKind) -> String {
    let mut text = serde_json::to_string_pretty(&schema(kind)).unwrap_or_default();
    text.push('\n');
    text
}

/// The committed file name of a kind's schema: `plugin.schema.json`, ...
pub fn schema_file_name(kind: FileKind) -> String {
    format!("{}.schema.json", kind.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::TABLES;

    /// The decoder's list of keys per table and the schema's properties must agree, or the
    /// schema would accept what the decoder refuses (or the other way round).
    #[test]
    fn schemas_and_decoders_know_the_same_keys() {
        let mut checked = 0;
        for kind in FileKind::ALL {
            let schema = schema(*kind);
            let root_name = schema["title"].as_str().unwrap_or_default().to_owned();
            let defs = schema["$defs"].as_object().cloned().unwrap_or_default();
            for (name, keys) in TABLES {
                let definition = if defs.contains_key(*name) {
                    defs[*name].clone()
                } else if root_name.contains(match *name {
                    "PluginManifest" => "plugin manifest",
                    "Workflow" => "workflow",
                    "OperatorConfig" => "operator config",
                    _ => "\u{0}",
                }) {
                    schema.clone()
                } else {
                    continue;
                };
                let mut properties: Vec<String> = definition["properties"]
                    .as_object()
                    .map(|p| p.keys().cloned().collect())
                    .unwrap_or_default();
                properties.sort();
                let mut expected: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
                expected.sort();
                assert_eq!(properties, expected, "{name}");
                assert_eq!(
                    definition["additionalProperties"], false,
                    "{name} must deny unknown fields"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, TABLES.len());
    }
}
