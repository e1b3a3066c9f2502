//! Values chosen from a fixed list: HTTP methods, roles, workspace access, ...

use std::fmt;
use std::str::FromStr;

use super::InvalidValue;
use crate::decode::suggest;
use crate::diagnostic::Code;

macro_rules! choice {
    (
        $(#[$doc:meta])*
        $ty:ident, $what:expr, $code:expr,
        { $($(#[$vdoc:meta])* $variant:ident = $name:expr),+ $(,)? }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $ty {
            $($(#[$vdoc])* $variant),+
        }

        impl $ty {
            /// Every value, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The value as written in a file.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl FromStr for $ty {
            type Err = InvalidValue;

            fn from_str(text: &str) -> Result<Self, InvalidValue> {
                $(if text == $name { return Ok($ty::$variant); })+
                let names = [$($name),+];
                let error = InvalidValue::new(format!(
                    "`{text}` is not a valid {}: expected one of {}",
                    $what,
                    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                ))
                .with_code($code);
                let folded = names.iter().find(|name| name.eq_ignore_ascii_case(text));
                Err(match folded {
                    Some(name) => error.with_hint(format!("write `{name}`")),
                    _ => match suggest(text, names) {
                        Some(close) => error.with_hint(format!("did you mean `{close}`?")),
                        None => error,
                    },
                })
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
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
                schemars::json_schema!({
                    "type": "string",
                    "description": concat!("A ", $what, "."),
                    "enum": [$($name),+],
                })
            }
        }

        crate::decode::decode_from_str!($ty);
    };
}

choice!(
    /// An HTTP method an egress rule allows. `CONNECT` and `TRACE` are never allowed.
    Method, "HTTP method", Code::InvalidValue,
    {
        /// `GET`
        Get = "GET",
        /// `HEAD`
        Head = "HEAD",
        /// `POST`
        Post = "POST",
        /// `PUT`
        Put = "PUT",
        /// `PATCH`
        Patch = "PATCH",
        /// `DELETE`
        Delete = "DELETE",
        /// `OPTIONS`
        Options = "OPTIONS",
    }
);

choice!(
    /// A role a person holds.
    Role, "role", Code::UnknownRole,
    {
        /// Trusts signers, approves plugins, sets ceilings.
        Operator = "operator",
        /// Approves release runs.
        ReleaseManager = "release-manager",
        /// Publishes plugins.
        PluginAuthor = "plugin-author",
        /// Reads and exports evidence.
        Auditor = "auditor",
        /// Manages people and the server.
        Admin = "admin",
    }
);

choice!(
    /// How a step sees the run's workspace.
    WorkspaceAccess, "workspace access", Code::InvalidValue,
    {
        /// The step may read the workspace.
        ReadOnly = "read-only",
        /// The step may read and write the workspace.
        ReadWrite = "read-write",
    }
);

choice!(
    /// What a run does when another run of its concurrency group is active.
    OnConflict, "conflict policy", Code::InvalidValue,
    {
        /// Wait until the other run finishes.
        Wait = "wait",
        /// Refuse to start.
        Refuse = "refuse",
    }
);

choice!(
    /// The type of a workflow parameter.
    ParamType, "parameter type", Code::InvalidValue,
    {
        /// A string.
        String = "string",
        /// A number.
        Number = "number",
        /// `true` or `false`.
        Boolean = "boolean",
    }
);

choice!(
    /// Where secret values come from.
    SecretsProvider, "secrets provider", Code::InvalidValue,
    {
        /// Vault or OpenBao.
        Vault = "vault",
        /// A local file, for development.
        File = "file",
    }
);

#[expect(
    clippy::derivable_impls,
    reason = "the enum is declared by `choice!`, which derives no `Default`"
)]
impl Default for OnConflict {
    fn default() -> Self {
        OnConflict::Wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse_and_hint() {
        assert_eq!("POST".parse::<Method>(), Ok(Method::Post));
        assert_eq!(
            "post".parse::<Method>().unwrap_err().hint(),
            Some("write `POST`")
        );
        let trace = "TRACE".parse::<Method>().unwrap_err();
        assert!(trace.message().contains("not a valid HTTP method"));
        assert_eq!(
            "release-manger".parse::<Role>().unwrap_err().hint(),
            Some("did you mean `release-manager`?")
        );
        assert_eq!(
            "root".parse::<Role>().unwrap_err().code(),
            Code::UnknownRole
        );
        assert_eq!(Role::ALL.len(), 5);
    }
}
