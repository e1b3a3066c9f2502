//! HTTP header names, as a secret's inject entries name the header the value goes into.

use std::fmt;
use std::str::FromStr;

use super::{InvalidValue, string_value};

/// The longest header name accepted.
const MAX_HEADER_NAME: usize = 128;

/// The header a secret is injected into when an inject entry names none.
const AUTHORIZATION: &str = "authorization";

/// The name of an HTTP request header, e.g. `authorization` or `x-api-key`: an HTTP
/// token (letters, digits and ``!#$%&'*+-.^_`|~``). Header names are case-insensitive;
/// the name is kept in lower case.
///
/// ```
/// use relo_manifest::HeaderName;
///
/// let name: HeaderName = "X-API-Key".parse().unwrap();
/// assert_eq!(name.as_str(), "x-api-key");
/// assert_eq!(HeaderName::authorization().as_str(), "authorization");
/// assert!("x-api-key: abc".parse::<HeaderName>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HeaderName(String);

impl HeaderName {
    /// `authorization`, the header an inject entry given as a bare URL means.
    pub fn authorization() -> Self {
        HeaderName(AUTHORIZATION.to_owned())
    }

    /// The name in lower case.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `c` may appear in an HTTP token (RFC 9110, section 5.6.2).
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

impl FromStr for HeaderName {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, InvalidValue> {
        if text.is_empty() {
            return Err(InvalidValue::new("the header name is empty")
                .with_hint("name the request header, e.g. `authorization`"));
        }
        if text.len() > MAX_HEADER_NAME {
            return Err(InvalidValue::new(format!(
                "the header name is longer than {MAX_HEADER_NAME} characters"
            )));
        }
        if text.chars().all(is_token_char) {
            return Ok(HeaderName(text.to_ascii_lowercase()));
        }
        let error = InvalidValue::new(format!("`{text}` is not a valid HTTP header name"));
        let name = text.split(':').next().unwrap_or_default().trim();
        if name != text && !name.is_empty() && name.chars().all(is_token_char) {
            Err(error.with_hint(format!(
                "name the header only, without its value: `{}`",
                name.to_ascii_lowercase()
            )))
        } else {
            Err(error
                .with_hint("use letters, digits, `-` and `_` (an HTTP token), e.g. `x-api-key`"))
        }
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

string_value!(
    HeaderName,
    "An HTTP request header name (case-insensitive), e.g. `authorization` or `x-api-key`.",
    pattern = "^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$"
);

crate::decode::decode_from_str!(HeaderName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_tokens_in_lower_case() {
        let name = |text: &str| text.parse::<HeaderName>().map(|name| name.0);
        assert_eq!(name("Authorization"), Ok("authorization".to_owned()));
        assert_eq!(name("X-Api-Key"), Ok("x-api-key".to_owned()));
        assert_eq!(name("private_token"), Ok("private_token".to_owned()));
        for bad in ["", "x api key", "x-key:", "é", ":authority", "a\nb"] {
            assert!(name(bad).is_err(), "{bad:?}");
        }
        assert!(name(&"x".repeat(MAX_HEADER_NAME)).is_ok());
        assert!(name(&"x".repeat(MAX_HEADER_NAME + 1)).is_err());
        let error = "Authorization: Bearer".parse::<HeaderName>().unwrap_err();
        assert_eq!(
            error.hint(),
            Some("name the header only, without its value: `authorization`")
        );
    }
}
