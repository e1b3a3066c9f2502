//! One rule for tests that need something from outside the workspace (PostgreSQL, the
//! independent verifiers, schemathesis, a registry): when it is missing the test **fails**,
//! naming what is missing and how to provide it, unless the developer asked to skip that
//! group with `RELO_SKIP_<NAME>=1`. Under `CI=true` every `RELO_SKIP_*` is ignored, so CI
//! can never pass quietly without the real service.

/// Whether this process runs under CI (`CI=true`), where nothing may be skipped.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true")
}

/// Whether `RELO_SKIP_<name>=1` asks to skip the tests that need `name` (for example
/// `POSTGRES`), and may: never under CI. Says so on stderr when it skips.
pub fn skip_requested(name: &str) -> bool {
    let variable = format!("RELO_SKIP_{name}");
    let asked = std::env::var(&variable).is_ok_and(|value| value == "1");
    if asked && under_ci() {
        eprintln!("{variable}=1 is ignored under CI=true");
        return false;
    }
    if asked {
        eprintln!("skipped: {variable}=1");
    }
    asked
}

/// A test's requirement that is not met: returns `None` when `RELO_SKIP_<name>=1` may skip
/// it, and panics otherwise with `missing` and the way to skip, so the test fails.
pub fn missing<T>(name: &str, missing: &str) -> Option<T> {
    if skip_requested(name) {
        return None;
    }
    if under_ci() {
        panic!("{missing} (CI=true: nothing may be skipped)");
    }
    panic!("{missing} (or set RELO_SKIP_{name}=1 to skip these tests)");
}

/// The value of the environment variable `variable` when it is set and not empty;
/// otherwise what [`missing`] says for the group `name`.
pub fn required_var(variable: &str, name: &str, how: &str) -> Option<String> {
    match std::env::var(variable) {
        Ok(value) if !value.is_empty() => Some(value),
        _ => missing(name, &format!("{variable} is not set: {how}")),
    }
}

/// The PostgreSQL database the tests may create schemas in: `RELO_TEST_POSTGRES_URL`
/// (which `scripts/test.sh` sets), or `None` when `RELO_SKIP_POSTGRES=1` may skip.
pub fn postgres_url() -> Option<String> {
    required_var(
        "RELO_TEST_POSTGRES_URL",
        "POSTGRES",
        "point it at a PostgreSQL database the tests may create schemas in (scripts/test.sh \
         sets postgres://postgres@127.0.0.1:5432/test and starts the server if it is down)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_variable_is_returned() {
        // PATH is set in every test process.
        assert!(required_var("PATH", "NOTHING", "set PATH").is_some());
    }

    #[test]
    #[should_panic(expected = "RELO_TEST_ENV_UNSET_VARIABLE is not set: set it")]
    fn an_unset_variable_fails_unless_skipped() {
        let _ = required_var("RELO_TEST_ENV_UNSET_VARIABLE", "NEVER_SKIPPED", "set it");
    }
}
