//! `{{ endpoints.NAME }}` in URL patterns, resolved against the operator's bindings.
//!
//! Plugins name their destinations by endpoint; the operator's `[endpoints]` say where
//! each points. What an approval binds and the evidence records is the resolved URL, so a
//! changed binding no longer matches an old approval.

use std::collections::BTreeMap;

/// A URL pattern named an endpoint the operator did not bind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("endpoint `{name}` is not bound in the operator's [endpoints]")]
pub struct UnboundEndpoint {
    /// The endpoint's name.
    pub name: String,
}

/// The endpoint a pattern starts with (`{{ endpoints.forge }}/api` → `forge`), if any.
pub fn endpoint_name(pattern: &str) -> Option<&str> {
    let inner = pattern.strip_prefix("{{")?;
    let end = inner.find("}}")?;
    inner[..end]
        .trim()
        .strip_prefix("endpoints.")
        .map(str::trim)
}

/// Replaces a leading `{{ endpoints.NAME }}` with the URL the operator bound it to
/// (without its trailing slash). A pattern without one is returned as it is.
pub fn resolve(
    pattern: &str,
    endpoints: &BTreeMap<String, String>,
) -> Result<String, UnboundEndpoint> {
    let Some(name) = endpoint_name(pattern) else {
        return Ok(pattern.to_owned());
    };
    let base = endpoints.get(name).ok_or_else(|| UnboundEndpoint {
        name: name.to_owned(),
    })?;
    let rest = pattern.find("}}").map_or("", |end| &pattern[end + 2..]);
    Ok(format!("{}{rest}", base.trim_end_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints() -> BTreeMap<String, String> {
        BTreeMap::from([("forge".to_owned(), "https://forge.example.com/".to_owned())])
    }

    #[test]
    fn resolution() {
        assert_eq!(
            resolve("{{ endpoints.forge }}/api/*", &endpoints()).as_deref(),
            Ok("https://forge.example.com/api/*")
        );
        assert_eq!(
            resolve("{{endpoints.forge}}/api/tags", &endpoints()).as_deref(),
            Ok("https://forge.example.com/api/tags")
        );
        assert_eq!(
            resolve("https://x.example/a", &endpoints()).as_deref(),
            Ok("https://x.example/a")
        );
        assert_eq!(
            resolve("{{ endpoints.target }}/deploy", &endpoints()),
            Err(UnboundEndpoint {
                name: "target".into()
            })
        );
        assert_eq!(endpoint_name("{{ endpoints.forge }}/x"), Some("forge"));
        assert_eq!(endpoint_name("{{ params.forge }}/x"), None);
    }
}
