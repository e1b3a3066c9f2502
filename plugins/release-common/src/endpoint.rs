//! Base URLs of the services a step talks to, and short excerpts of what they answer.
//!
//! The operator binds `{{ endpoints.forge }}` and `{{ endpoints.target }}` to URLs in
//! `relo.toml`, and the grant is computed from those. The step does not learn the
//! bindings: the workflow passes the same base URL as an input (`forge`, `target`), and
//! the host's egress policy refuses any request to a destination that was not granted,
//! so a wrong base URL fails as a denied request, never as traffic elsewhere.

use relo_sdk::StepError;

/// How many characters of an answer an error message quotes.
const EXCERPT: usize = 200;

/// Checks a base URL given in the input field `field`: `http://` or `https://`, a host,
/// an optional port and path, no query, fragment, user information or spaces. A
/// trailing `/` is dropped, so `base + "/api/tags"` is the URL of that path.
///
/// # Errors
///
/// `invalid-input` naming the field and what is wrong.
pub fn base_url(field: &str, value: &str) -> Result<String, StepError> {
    let invalid = |why: &str| {
        StepError::invalid_input(format!(
            "`{field}` must be an http(s) URL such as http://127.0.0.1:18081: `{value}` {why}"
        ))
    };
    let rest = value
        .strip_prefix("http://")
        .or_else(|| value.strip_prefix("https://"))
        .ok_or_else(|| invalid("does not start with http:// or https://"))?;
    if let Some(bad) = value.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(&format!("has {bad:?}")));
    }
    if value.contains(['?', '#']) {
        return Err(invalid("has a query or fragment"));
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(invalid("has no host"));
    }
    if authority.contains('@') {
        return Err(invalid("has user information; credentials go in secrets"));
    }
    Ok(value.trim_end_matches('/').to_owned())
}

/// At most 200 characters of an answer's body, on one line, for an error message.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut short: String = text
        .chars()
        .take(EXCERPT)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > EXCERPT {
        short.push('…');
    }
    short.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(
            base_url("forge", "http://127.0.0.1:18081/"),
            Ok("http://127.0.0.1:18081".to_owned())
        );
        assert_eq!(
            base_url("forge", "https://forge.example.com/git"),
            Ok("https://forge.example.com/git".to_owned())
        );
        assert_eq!(
            base_url("forge", "ftp://x"),
            Err(StepError::invalid_input(
                "`forge` must be an http(s) URL such as http://127.0.0.1:18081: `ftp://x` does \
                 not start with http:// or https://"
            ))
        );
        assert!(base_url("target", "http://").is_err());
        assert!(base_url("target", "http://u:p@host").is_err());
        assert!(base_url("target", "http://host/?q").is_err());
    }

    #[test]
    fn excerpts_are_short_and_on_one_line() {
        assert_eq!(excerpt(b"{\"error\":\n\"no\"}"), "{\"error\": \"no\"}");
        assert_eq!(excerpt("x".repeat(300).as_bytes()).chars().count(), 201);
    }
}
