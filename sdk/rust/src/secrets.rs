//! Secrets the operator bound to the names the plugin declared.
//!
//! A step gets an opaque [`Secret`] handle, never the value. To use a secret toward a
//! destination, write its [placeholder](Secret::header_placeholder) as (part of) a request
//! header value: the host replaces `{{secret:NAME}}` with the value, only for the
//! destinations the grant lists for that secret. Reading the value inside the step
//! ([`Secret::reveal`]) is a separate capability the operator must approve.
//!
//! ```
//! use relo_sdk::{StepError, http, secrets};
//!
//! # fn example() -> Result<(), StepError> {
//! let token = secrets::get("forge_token")?;
//! let response = http::Request::new(http::Method::Get, "https://forge.example.com/api/tags")
//!     .header("authorization", format!("Bearer {}", token.header_placeholder()))
//!     .send()?;
//! # let _ = response;
//! # Ok(())
//! # }
//! ```
//!
//! Every refusal here is an error value the step can handle; none of them stops the step.

use std::fmt;

use crate::__private::bindings::relo::plugin::{reveal as wit_reveal, secrets as wit};
use crate::StepError;

/// Returns a handle to the secret the plugin declared under `name`.
///
/// # Errors
///
/// [`SecretError::NotDeclared`] if the manifest does not declare `name`,
/// [`SecretError::NotApproved`] if the operator did not approve it, and
/// [`SecretError::Unavailable`] if its provider cannot supply it now.
pub fn get(name: &str) -> Result<Secret, SecretError> {
    let handle = wit::get(name)?;
    Ok(Secret {
        name: name.to_owned(),
        handle,
    })
}

/// An opaque handle to a granted secret. It names the secret; it never holds the value.
pub struct Secret {
    name: String,
    handle: wit::Secret,
}

impl Secret {
    /// The logical name the plugin declared.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The text `{{secret:NAME}}` to write in a request header value.
    ///
    /// The host replaces it with the secret's value when the request goes to a
    /// destination the grant lists for this secret, and refuses the request otherwise.
    /// The step never sees the value.
    pub fn header_placeholder(&self) -> String {
        placeholder(&self.name)
    }

    /// Returns the secret's value, if the operator approved `reveal` for it.
    ///
    /// Prefer [`Secret::header_placeholder`]: a revealed value is in the step's memory.
    ///
    /// # Errors
    ///
    /// [`SecretError::NotApproved`] if reveal was not approved for this secret, and
    /// [`SecretError::Unavailable`] if its provider cannot supply it now.
    pub fn reveal(&self) -> Result<String, SecretError> {
        Ok(wit_reveal::reveal(&self.handle)?)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secret")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn placeholder(name: &str) -> String {
    format!("{{{{secret:{name}}}}}")
}

/// Why a secret is not available. The text comes from the host and says why.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SecretError {
    /// The plugin's manifest does not declare a secret of this name.
    NotDeclared(String),
    /// The secret is declared, but the operator did not approve it (or its reveal).
    NotApproved(String),
    /// The secret is granted, but its provider could not supply it now.
    Unavailable(String),
}

impl SecretError {
    /// A stable machine code: `not-declared`, `not-approved` or `unavailable`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotDeclared(_) => "not-declared",
            Self::NotApproved(_) => "not-approved",
            Self::Unavailable(_) => "unavailable",
        }
    }

    /// The host's message, without the kind.
    pub fn message(&self) -> &str {
        match self {
            Self::NotDeclared(message)
            | Self::NotApproved(message)
            | Self::Unavailable(message) => message,
        }
    }
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotDeclared(message) => write!(f, "secret not declared: {message}"),
            Self::NotApproved(message) => write!(f, "secret not approved: {message}"),
            Self::Unavailable(message) => write!(f, "secret unavailable: {message}"),
        }
    }
}

impl std::error::Error for SecretError {}

impl From<wit::Error> for SecretError {
    fn from(error: wit::Error) -> Self {
        match error {
            wit::Error::NotDeclared(message) => Self::NotDeclared(message),
            wit::Error::NotApproved(message) => Self::NotApproved(message),
            wit::Error::Unavailable(message) => Self::Unavailable(message),
        }
    }
}

impl From<SecretError> for StepError {
    fn from(error: SecretError) -> Self {
        match error {
            SecretError::NotDeclared(_) | SecretError::NotApproved(_) => {
                Self::Denied(error.to_string())
            }
            SecretError::Unavailable(_) => Self::Failed(error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholder_is_the_documented_text() {
        assert_eq!(placeholder("forge_token"), "{{secret:forge_token}}");
    }

    #[test]
    fn refusals_become_denied_and_outages_failed() {
        let denied = StepError::from(SecretError::NotApproved("forge_token".to_owned()));
        assert_eq!(
            denied,
            StepError::denied("secret not approved: forge_token")
        );
        let failed = StepError::from(SecretError::Unavailable("vault is down".to_owned()));
        assert_eq!(
            failed,
            StepError::failed("secret unavailable: vault is down")
        );
    }

    #[test]
    fn kinds_are_stable() {
        assert_eq!(
            SecretError::NotDeclared(String::new()).kind(),
            "not-declared"
        );
        assert_eq!(
            SecretError::NotApproved(String::new()).kind(),
            "not-approved"
        );
        assert_eq!(
            SecretError::Unavailable(String::new()).kind(),
            "unavailable"
        );
    }
}
