//! Release versions, `MAJOR.MINOR.PATCH[-PRE]`, and their tags, `v<version>`.

/// Checks a version: three numbers without leading zeros, and an optional pre-release
/// of dot-separated identifiers of `[0-9A-Za-z-]` (numeric ones without leading zeros).
/// Build metadata (`+…`) is not part of a release version here.
///
/// # Errors
///
/// Why `version` is not one.
pub fn check(version: &str) -> Result<(), String> {
    let expected = "expected MAJOR.MINOR.PATCH[-PRE]";
    let (core, pre) = match version.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (version, None),
    };
    let numeric = |part: &str| {
        !part.is_empty()
            && part.bytes().all(|b| b.is_ascii_digit())
            && (part == "0" || !part.starts_with('0'))
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() != 3 || !parts.iter().all(|part| numeric(part)) {
        return Err(format!("`{version}` is not a version; {expected}"));
    }
    if let Some(pre) = pre {
        let valid = pre.split('.').all(|id| {
            !id.is_empty()
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && (!id.bytes().all(|b| b.is_ascii_digit()) || numeric(id))
        });
        if !valid {
            return Err(format!(
                "`{version}` has an invalid pre-release `{pre}`; {expected}"
            ));
        }
    }
    Ok(())
}

/// The version of a release tag `v<version>`.
///
/// # Errors
///
/// Why `tag` is not one.
pub fn tag_version(tag: &str) -> Result<&str, String> {
    let version = tag.strip_prefix('v').ok_or_else(|| {
        format!("`{tag}` does not start with `v`; expected v<MAJOR.MINOR.PATCH[-PRE]>")
    })?;
    check(version).map_err(|why| format!("`{tag}`: {why}"))?;
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        for good in [
            "1.4.0",
            "0.0.0",
            "10.20.30",
            "1.4.0-rc.1",
            "1.0.0-alpha-beta.0",
        ] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
        for bad in [
            "1.4", "1.4.0.1", "01.4.0", "1.4.0-", "1.4.0-01", "1.4.0+b", "v1.4.0", "",
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tags() {
        assert_eq!(tag_version("v1.4.0"), Ok("1.4.0"));
        assert_eq!(
            tag_version("1.4.0"),
            Err("`1.4.0` does not start with `v`; expected v<MAJOR.MINOR.PATCH[-PRE]>".to_owned())
        );
        assert_eq!(
            tag_version("v1.4"),
            Err("`v1.4`: `1.4` is not a version; expected MAJOR.MINOR.PATCH[-PRE]".to_owned())
        );
    }
}
