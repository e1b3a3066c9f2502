//! Validated values: each type can only hold a valid value, parses from the text a person
//! writes (`FromStr`), prints back in canonical form (`Display`), serialises as that
//! string and describes itself in the JSON Schema.

mod choice;
mod cidr;
mod duration;
mod header;
mod names;
mod reference;
mod size;
mod text;
mod url;

pub use choice::{Method, OnConflict, ParamType, Role, SecretsProvider, WorkspaceAccess};
pub use cidr::Cidr;
pub use duration::DurationSpec;
pub use header::HeaderName;
pub use names::{
    EndpointName, EnvName, KeyName, ParamName, PersonName, PluginGlob, PluginName, SecretName,
    StepId, WorkflowName,
};
pub use reference::{PluginRef, PluginVersion, SemVer, Sha256Digest};
pub use size::ByteSize;
pub use text::{KeyRef, Pattern, RelativePath, SecretPath, StoreUrl, WitnessRef};
pub use url::{BaseUrl, PortRanges, Scheme, UrlPattern};

use crate::diagnostic::Code;

/// Why a text is not a valid value of some type: a message, and a hint when there is
/// something useful to suggest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidValue {
    code: Code,
    message: String,
    hint: Option<String>,
}

impl InvalidValue {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        InvalidValue {
            code: Code::InvalidValue,
            message: message.into(),
            hint: None,
        }
    }

    #[must_use]
    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    #[must_use]
    pub(crate) fn with_code(mut self, code: Code) -> Self {
        self.code = code;
        self
    }

    /// The diagnostic code this problem is reported with (usually `invalid-value`).
    pub fn code(&self) -> Code {
        self.code
    }

    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// How to fix it, if known.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
}

/// Serialize as `Display`, deserialize through `FromStr`, and a string JSON Schema.
macro_rules! string_value {
    ($ty:ident, $description:expr $(, pattern = $pattern:expr)?) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl schemars::JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($ty).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                let schema = schemars::json_schema!({
                    "type": "string",
                    "description": $description,
                });
                $(let schema = {
                    let mut schema = schema;
                    schema.insert("pattern".into(), $pattern.into());
                    schema
                };)?
                schema
            }
        }
    };
}
pub(crate) use string_value;
