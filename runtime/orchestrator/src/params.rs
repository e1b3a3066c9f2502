//! A run's parameters: the values given on the command line, checked against the
//! workflow's declarations, with defaults filled in.

use std::collections::BTreeMap;

use relo_manifest::{ParamType, Workflow};
use serde_json::Value;

/// Why the parameters of a run are not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamError {
    /// A value for a parameter the workflow does not declare.
    #[error("`{0}` is not a parameter of this workflow")]
    Unknown(String),
    /// A parameter without a default was not given.
    #[error("the parameter `{0}` is required")]
    Missing(String),
    /// A value that is not of the declared type or does not match the pattern.
    #[error("the parameter `{name}`: {reason}")]
    Invalid {
        /// The parameter.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

/// The run's parameters from `given` (name → text), typed by the workflow's declarations,
/// defaults filled in.
pub fn resolve(
    workflow: &Workflow,
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, Value>, ParamError> {
    if let Some(unknown) = given
        .keys()
        .find(|name| !workflow.params.keys().any(|p| p.as_str() == name.as_str()))
    {
        return Err(ParamError::Unknown(unknown.clone()));
    }
    let mut values = BTreeMap::new();
    for (name, param) in &workflow.params {
        let name = name.as_str();
        let invalid = |reason: String| ParamError::Invalid {
            name: name.to_owned(),
            reason,
        };
        let value = match (given.get(name), &param.default) {
            (Some(text), _) => match param.kind {
                ParamType::String => Value::String(text.clone()),
                ParamType::Number => text
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .ok_or_else(|| invalid(format!("`{text}` is not a number")))?,
                ParamType::Boolean => match text.as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => return Err(invalid(format!("`{text}` is not true or false"))),
                },
            },
            (None, Some(default)) => default.clone(),
            (None, None) => return Err(ParamError::Missing(name.to_owned())),
        };
        if let (Some(pattern), Value::String(text)) = (&param.pattern, &value)
            && !pattern.is_match(text)
        {
            return Err(invalid(format!(
                "`{text}` does not match `{}`",
                pattern.as_str()
            )));
        }
        values.insert(name.to_owned(), value);
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workflow() -> Workflow {
        let text = "apiVersion: relo.dev/v1\nkind: Workflow\nname: t\nparams:\n  \
                    version: { type: string, pattern: '^\\d+\\.\\d+\\.\\d+$' }\n  \
                    dry: { type: boolean, default: false }\n  \
                    replicas: { type: number, default: 2 }\n\
                    steps:\n  - { id: a, uses: acme/x@1.0.0 }\n";
        relo_manifest::parse_workflow("t.yaml", text.as_bytes()).unwrap()
    }

    fn given(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn values_are_typed_checked_and_defaulted() {
        let wf = workflow();
        let values = resolve(&wf, &given(&[("version", "1.2.3"), ("replicas", "3")])).unwrap();
        assert_eq!(values["version"], "1.2.3");
        assert_eq!(values["dry"], false);
        assert_eq!(values["replicas"].as_f64(), Some(3.0));
        assert_eq!(
            resolve(&wf, &given(&[])).unwrap_err(),
            ParamError::Missing("version".into())
        );
        assert_eq!(
            resolve(&wf, &given(&[("version", "1.2.3"), ("nope", "x")])).unwrap_err(),
            ParamError::Unknown("nope".into())
        );
        for bad in [("version", "v1.2"), ("dry", "yes"), ("replicas", "many")] {
            let mut pairs = vec![("version", "1.2.3")];
            pairs.retain(|(k, _)| *k != bad.0);
            pairs.push(bad);
            let error = resolve(&wf, &given(&pairs)).unwrap_err();
            assert!(
                matches!(error, ParamError::Invalid { .. }),
                "{bad:?}: {error}"
            );
        }
    }
}
