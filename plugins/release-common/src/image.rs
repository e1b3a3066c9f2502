//! Image references as chart values hold them: `repository[:tag][@algorithm:hex]`.

/// A parsed image reference. The repository may include a registry with a port
/// (`registry.example.com:5000/acme/checkout`); the tag is what follows the last `:`
/// after the last `/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef<'a> {
    /// `registry.example.com/acme/checkout`
    pub repository: &'a str,
    /// `1.4.0`, if the reference has a tag.
    pub tag: Option<&'a str>,
    /// `sha256:…`, if the reference has a digest.
    pub digest: Option<&'a str>,
}

impl<'a> ImageRef<'a> {
    /// Parses `reference`.
    ///
    /// # Errors
    ///
    /// Why it is not a reference: empty, spaces or quotes, an empty repository, tag or
    /// digest, or a tag with characters a tag cannot have.
    pub fn parse(reference: &'a str) -> Result<Self, String> {
        if reference.is_empty() {
            return Err("the image reference is empty".to_owned());
        }
        if let Some(bad) = reference
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\''))
        {
            return Err(format!(
                "`{reference}` has {bad:?}, which a reference cannot hold"
            ));
        }
        let (name, digest) = match reference.split_once('@') {
            Some((name, digest)) => {
                let valid = digest
                    .split_once(':')
                    .is_some_and(|(algorithm, hex)| !algorithm.is_empty() && !hex.is_empty());
                if !valid {
                    return Err(format!(
                        "`{reference}` has `@{digest}`, which is not `@<algorithm>:<hex>`"
                    ));
                }
                (name, Some(digest))
            }
            None => (reference, None),
        };
        let last_slash = name.rfind('/').map_or(0, |at| at + 1);
        let (repository, tag) = match name.rfind(':').filter(|&colon| colon >= last_slash) {
            Some(colon) => (
                name.get(..colon).unwrap_or_default(),
                Some(name.get(colon + 1..).unwrap_or_default()),
            ),
            None => (name, None),
        };
        if repository.is_empty() || repository.ends_with('/') {
            return Err(format!("`{reference}` has no repository name"));
        }
        if let Some(tag) = tag {
            let valid = !tag.is_empty()
                && tag.len() <= 128
                && !tag.starts_with(['.', '-'])
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !valid {
                return Err(format!("`{reference}` has an invalid tag `{tag}`"));
            }
        }
        Ok(Self {
            repository,
            tag,
            digest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_of_every_shape() {
        let parse = |r| ImageRef::parse(r);
        assert_eq!(
            parse("registry.example.com/acme/checkout:1.4.0"),
            Ok(ImageRef {
                repository: "registry.example.com/acme/checkout",
                tag: Some("1.4.0"),
                digest: None
            })
        );
        assert_eq!(
            parse("registry.example.com:5000/acme/checkout@sha256:ab"),
            Ok(ImageRef {
                repository: "registry.example.com:5000/acme/checkout",
                tag: None,
                digest: Some("sha256:ab")
            })
        );
        assert_eq!(
            parse("checkout:1.4.0@sha256:ab").map(|r| (r.repository, r.tag)),
            Ok(("checkout", Some("1.4.0")))
        );
        assert_eq!(parse("checkout").map(|r| r.tag), Ok(None));
    }

    #[test]
    fn malformed_references_say_why() {
        assert_eq!(
            ImageRef::parse("repo:"),
            Err("`repo:` has an invalid tag ``".to_owned())
        );
        assert_eq!(
            ImageRef::parse(":1.0"),
            Err("`:1.0` has no repository name".to_owned())
        );
        assert_eq!(
            ImageRef::parse("repo@latest"),
            Err("`repo@latest` has `@latest`, which is not `@<algorithm>:<hex>`".to_owned())
        );
        assert!(ImageRef::parse("a b").is_err());
    }
}
