//! A relo step that checks a release version and greets it.
//!
//! Input: `{"version": "1.2.3", "name": "relo"}` (`name` is optional).
//! Output: `{"greeting": "...", "major": 1, "minor": 2, "patch": 3, "pre_release": null}`.

use relo_sdk::{StepContext, StepError, info};
use serde::{Deserialize, Serialize};

/// What the workflow passes in `with:`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    /// The version to release, `MAJOR.MINOR.PATCH` with an optional `-pre.release`.
    version: String,
    /// Who to greet; the step's id when absent.
    name: Option<String>,
}

/// What later steps can use as `${{ steps.<id>.outputs.* }}`.
#[derive(Serialize)]
struct Output {
    greeting: String,
    major: u64,
    minor: u64,
    patch: u64,
    pre_release: Option<String>,
}

#[relo_sdk::step]
fn greet(ctx: &StepContext, input: Input) -> Result<Output, StepError> {
    let (core, pre_release) = match input.version.split_once('-') {
        Some((core, pre)) if !pre.is_empty() => (core, Some(pre.to_owned())),
        Some(_) => return Err(invalid(&input.version)),
        None => (input.version.as_str(), None),
    };
    let numbers: Vec<u64> = core
        .split('.')
        .map(|part| {
            let canonical = !part.is_empty() && (part == "0" || !part.starts_with('0'));
            canonical.then(|| part.parse().ok()).flatten()
        })
        .collect::<Option<_>>()
        .ok_or_else(|| invalid(&input.version))?;
    let [major, minor, patch] = numbers[..] else {
        return Err(invalid(&input.version));
    };
    let name = input.name.as_deref().unwrap_or(&ctx.step_id);
    info!(
        "version {} checked (attempt {})",
        input.version, ctx.attempt
    );
    Ok(Output {
        greeting: format!("hello {name}, releasing {}", input.version),
        major,
        minor,
        patch,
        pre_release,
    })
}

fn invalid(version: &str) -> StepError {
    StepError::invalid_input(format!(
        "`version` must be MAJOR.MINOR.PATCH[-PRE], got `{version}`"
    ))
}
