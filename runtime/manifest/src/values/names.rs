//! Names: plugin names (`namespace/name`), step ids and the other identifiers.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use super::{InvalidValue, string_value};

const MAX_NAME: usize = 64;

/// Lower-case identifiers: a letter, then letters, digits, `-` or `_`.
fn check_identifier(text: &str, what: &str) -> Result<(), InvalidValue> {
    let mut chars = text.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if text.is_empty() {
        return Err(InvalidValue::new(format!("{what} is empty")));
    }
    if text.len() > MAX_NAME {
        return Err(InvalidValue::new(format!(
            "{what} `{text}` is longer than {MAX_NAME} characters"
        )));
    }
    if first_ok && rest_ok {
        return Ok(());
    }
    let error = InvalidValue::new(format!(
        "`{text}` is not a valid {what}: use lower-case letters, digits, `-` and `_`, starting with a letter"
    ));
    let lower = text.to_ascii_lowercase();
    if lower != text && check_identifier(&lower, what).is_ok() {
        Err(error.with_hint(format!("write `{lower}`")))
    } else {
        Err(error)
    }
}

macro_rules! identifier {
    ($(#[$doc:meta])* $ty:ident, $what:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $ty(String);

        impl $ty {
            /// The name as written.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $ty {
            type Err = InvalidValue;

            fn from_str(text: &str) -> Result<Self, InvalidValue> {
                check_identifier(text, $what)?;
                Ok($ty(text.to_owned()))
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Borrow<str> for $ty {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        string_value!(
            $ty,
            concat!("A ", $what, ": lower-case letters, digits, `-` and `_`, starting with a letter."),
            pattern = "^[a-z][a-z0-9_-]{0,63}$"
        );

        crate::decode::decode_from_str!($ty);
    };
}

identifier!(
    /// The id of a step in a workflow, e.g. `verify-pr`.
    StepId,
    "step id"
);
identifier!(
    /// The name of a workflow parameter, e.g. `image_digest`.
    ParamName,
    "parameter name"
);
identifier!(
    /// The name of an endpoint the operator binds, as in `{{ endpoints.forge }}`.
    EndpointName,
    "endpoint name"
);
identifier!(
    /// The logical name of a secret a plugin declares, e.g. `forge_token`.
    SecretName,
    "secret name"
);
identifier!(
    /// The logical name of a signing key, e.g. `release`.
    KeyName,
    "key name"
);
identifier!(
    /// The name of a person in `[[people]]`, e.g. `olga`.
    PersonName,
    "person name"
);
identifier!(
    /// The name of a workflow, e.g. `release`.
    WorkflowName,
    "workflow name"
);

/// The name of an environment variable a plugin sets: `[A-Za-z_][A-Za-z0-9_]*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EnvName(String);

impl EnvName {
    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for EnvName {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, InvalidValue> {
        let mut chars = text.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if first_ok && rest_ok && text.len() <= 128 {
            Ok(EnvName(text.to_owned()))
        } else {
            Err(
                InvalidValue::new(format!("`{text}` is not a valid environment variable name"))
                    .with_hint("use letters, digits and `_`, not starting with a digit"),
            )
        }
    }
}

impl fmt::Display for EnvName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Borrow<str> for EnvName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

string_value!(
    EnvName,
    "An environment variable name.",
    pattern = "^[A-Za-z_][A-Za-z0-9_]{0,127}$"
);

/// Checks one segment of a plugin name (or glob, when `glob`).
fn check_segment(segment: &str, glob: bool) -> bool {
    let inner_ok = segment
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (glob && c == '*'));
    let ends_ok = !segment.starts_with('-') && !segment.ends_with('-');
    !segment.is_empty() && segment.len() <= MAX_NAME && inner_ok && ends_ok
}

/// A plugin's name: `namespace/name`, each part lower-case letters, digits and `-`
/// (not at either end), e.g. `acme/publish-release`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PluginName {
    text: String,
    slash: usize,
}

impl PluginName {
    /// `namespace/name`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The part before the `/`.
    pub fn namespace(&self) -> &str {
        &self.text[..self.slash]
    }

    /// The part after the `/`.
    pub fn name(&self) -> &str {
        &self.text[self.slash + 1..]
    }
}

impl FromStr for PluginName {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, InvalidValue> {
        let invalid = || {
            let error = InvalidValue::new(format!(
                "`{text}` is not a valid plugin name: expected `namespace/name` in lower-case letters, digits and `-`"
            ));
            let lower = text.to_ascii_lowercase();
            if lower != text && lower.parse::<PluginName>().is_ok() {
                error.with_hint(format!("write `{lower}`"))
            } else if !text.contains('/') {
                error.with_hint(format!("add a namespace, e.g. `acme/{text}`"))
            } else {
                error
            }
        };
        let (namespace, name) = text.split_once('/').ok_or_else(invalid)?;
        if check_segment(namespace, false) && check_segment(name, false) {
            Ok(PluginName {
                text: text.to_owned(),
                slash: namespace.len(),
            })
        } else {
            Err(invalid())
        }
    }
}

impl fmt::Display for PluginName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Borrow<str> for PluginName {
    fn borrow(&self) -> &str {
        &self.text
    }
}

string_value!(
    PluginName,
    "A plugin name: `namespace/name`.",
    pattern = "^[a-z0-9]([a-z0-9-]*[a-z0-9])?/[a-z0-9]([a-z0-9-]*[a-z0-9])?$"
);

/// A pattern over plugin names, as a trusted signer's `plugins` list uses: `acme/*`,
/// `acme/publish-*`, `*/*` or a plain name. `*` matches any run of characters within one
/// part (never across the `/`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PluginGlob(String);

impl PluginGlob {
    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `name` matches this pattern.
    pub fn matches(&self, name: &PluginName) -> bool {
        match self.0.split_once('/') {
            Some((namespace, rest)) => {
                glob_segment(namespace, name.namespace()) && glob_segment(rest, name.name())
            }
            None => false,
        }
    }
}

/// `*` matches any run of characters.
fn glob_segment(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

impl FromStr for PluginGlob {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, InvalidValue> {
        let ok = text.split_once('/').is_some_and(|(namespace, name)| {
            check_segment(namespace, true) && check_segment(name, true)
        });
        if ok {
            Ok(PluginGlob(text.to_owned()))
        } else {
            let error = InvalidValue::new(format!(
                "`{text}` is not a valid plugin pattern: expected `namespace/name`, where `*` matches any characters within a part"
            ));
            if text == "*" {
                Err(error.with_hint("write `*/*` for every plugin"))
            } else {
                Err(error)
            }
        }
    }
}

impl fmt::Display for PluginGlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

string_value!(
    PluginGlob,
    "A plugin name pattern: `namespace/name` where `*` matches any characters within a part.",
    pattern = "^[a-z0-9*-]+/[a-z0-9*-]+$"
);

crate::decode::decode_from_str!(EnvName, PluginName, PluginGlob);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_names() {
        let name: PluginName = "acme/publish-release".parse().unwrap();
        assert_eq!((name.namespace(), name.name()), ("acme", "publish-release"));
        for bad in [
            "acme", "Acme/x", "acme/-x", "acme/x/y", "/x", "acme/", "acme/x_y", "acme/é",
        ] {
            assert!(bad.parse::<PluginName>().is_err(), "{bad}");
        }
        let error = "Acme/X".parse::<PluginName>().unwrap_err();
        assert_eq!(error.hint(), Some("write `acme/x`"));
    }

    #[test]
    fn identifiers() {
        assert!("verify-pr".parse::<StepId>().is_ok());
        assert!("image_digest".parse::<ParamName>().is_ok());
        assert!("1st".parse::<StepId>().is_err());
        assert!("".parse::<StepId>().is_err());
        assert_eq!(
            "Deploy".parse::<StepId>().unwrap_err().hint(),
            Some("write `deploy`")
        );
        assert!("LOG_FORMAT".parse::<EnvName>().is_ok());
        assert!("1X".parse::<EnvName>().is_err());
    }

    #[test]
    fn plugin_globs() {
        let name: PluginName = "acme/publish-release".parse().unwrap();
        let matches = |glob: &str| glob.parse::<PluginGlob>().unwrap().matches(&name);
        assert!(matches("acme/*"));
        assert!(matches("*/*"));
        assert!(matches("acme/publish-*"));
        assert!(matches("acme/*-release"));
        assert!(matches("acme/publish-release"));
        assert!(!matches("acme/deploy-*"));
        assert!(!matches("evil/*"));
        assert!(!matches("acme/*-x-*"));
        assert!("*".parse::<PluginGlob>().is_err());
    }
}
