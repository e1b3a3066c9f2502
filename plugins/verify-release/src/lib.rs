//! `relo/verify-release`: verifies a merged release commit before anything is created.
//!
//! Input (every field but `allowed` and `forge` has a default):
//!
//! ```json
//! {"commit": "commit.json",
//!  "message_pattern": "^Release v(\\d+\\.\\d+\\.\\d+(-[0-9A-Za-z.-]+)?)$",
//!  "allowed": ["VERSION", "deploy/chart/Chart.yaml", "deploy/chart/values.yaml"],
//!  "version_file": "VERSION", "chart": "deploy/chart/Chart.yaml",
//!  "forge": "http://127.0.0.1:18081"}
//! ```
//!
//! The commit file (in the workspace) is `{"message": "...", "changed": ["path", ...]}`;
//! other keys are ignored. Checks, in order: the message matches `message_pattern`, whose
//! first group is the version; every changed path is in `allowed`; the version file,
//! the chart's `version` and `appVersion` all say that version; the forge has no tag
//! `v<version>` yet (`GET <forge>/api/tags`, a JSON array of `{"name": ...}`).
//!
//! Output: `{"version": "1.4.0", "tag": "v1.4.0", "changed": [...]}`.

use regex_lite::Regex;
use release_common::endpoint::{base_url, excerpt};
use release_common::workspace::{WorkspacePath, read_text};
use release_common::{version, yaml};
use relo_sdk::{StepContext, StepError, http, info};
use serde::{Deserialize, Serialize};

/// The message pattern of RELEASE_FLOW.md.
const DEFAULT_PATTERN: &str = r"^Release v(\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?)$";

/// What the workflow passes.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    #[serde(default = "default_commit")]
    commit: String,
    #[serde(default = "default_pattern")]
    message_pattern: String,
    allowed: Vec<String>,
    #[serde(default = "default_version_file")]
    version_file: String,
    #[serde(default = "default_chart")]
    chart: String,
    forge: String,
}

fn default_commit() -> String {
    "commit.json".to_owned()
}

fn default_pattern() -> String {
    DEFAULT_PATTERN.to_owned()
}

fn default_version_file() -> String {
    "VERSION".to_owned()
}

fn default_chart() -> String {
    "deploy/chart/Chart.yaml".to_owned()
}

/// The merged commit, as the repository state describes it.
#[derive(Deserialize)]
struct Commit {
    message: String,
    changed: Vec<String>,
}

/// One tag the forge lists.
#[derive(Deserialize)]
struct Tag {
    name: String,
}

/// What later steps read.
#[derive(Serialize)]
struct Output {
    version: String,
    tag: String,
    changed: Vec<String>,
}

#[relo_sdk::step]
fn verify(_: &StepContext, input: Input) -> Result<Output, StepError> {
    let commit_path = WorkspacePath::parse("commit", &input.commit)?;
    let version_path = WorkspacePath::parse("version_file", &input.version_file)?;
    let chart_path = WorkspacePath::parse("chart", &input.chart)?;
    let allowed = input
        .allowed
        .iter()
        .enumerate()
        .map(|(index, path)| WorkspacePath::parse(&format!("allowed[{index}]"), path))
        .collect::<Result<Vec<_>, _>>()?;
    let pattern = Regex::new(&input.message_pattern).map_err(|error| {
        StepError::invalid_input(format!("`message_pattern` is not a valid regex: {error}"))
    })?;
    if pattern.captures_len() < 2 {
        return Err(StepError::invalid_input(
            "`message_pattern` has no capture group; its first group must capture the version",
        ));
    }
    let forge = base_url("forge", &input.forge)?;

    let commit: Commit = serde_json::from_str(&read_text(&commit_path)?).map_err(|error| {
        StepError::failed(format!(
            "`{commit_path}` is not {{\"message\": \"...\", \"changed\": [paths]}}: {error}"
        ))
    })?;
    let version = message_version(&pattern, &input.message_pattern, &commit.message)?;
    check_changed(&commit.changed, &allowed)?;
    check_versions(&version, &version_path, &chart_path)?;
    let tag = format!("v{version}");
    check_tag_is_new(&forge, &tag)?;
    info!(
        "release {tag} verified: {} changed file(s), all allowed",
        commit.changed.len()
    );
    Ok(Output {
        version,
        tag,
        changed: commit.changed,
    })
}

/// The version the message's first group captures.
fn message_version(pattern: &Regex, source: &str, message: &str) -> Result<String, StepError> {
    // A message read from git ends with a line break; the pattern sees the text without it.
    let message = message.trim_end_matches(['\n', '\r']);
    let captures = pattern.captures(message).ok_or_else(|| {
        StepError::failed(format!(
            "the commit message {message:?} does not match `message_pattern` `{source}`"
        ))
    })?;
    let version = captures
        .get(1)
        .map(|group| group.as_str().to_owned())
        .filter(|version| !version.is_empty())
        .ok_or_else(|| {
            StepError::failed(format!(
                "the commit message {message:?} matches `message_pattern`, but its first \
                 group captured no version"
            ))
        })?;
    version::check(&version).map_err(|why| {
        StepError::failed(format!(
            "the commit message {message:?} names a version that is not one: {why}"
        ))
    })?;
    Ok(version)
}

/// Every changed path must be allowed; the error names each one that is not.
fn check_changed(changed: &[String], allowed: &[WorkspacePath]) -> Result<(), StepError> {
    let extra: Vec<String> = changed
        .iter()
        .filter(|path| {
            !allowed
                .iter()
                .any(|allowed| allowed.as_str() == path.as_str())
        })
        .map(|path| format!("`{path}`"))
        .collect();
    if extra.is_empty() {
        return Ok(());
    }
    let allowed: Vec<&str> = allowed.iter().map(WorkspacePath::as_str).collect();
    Err(StepError::failed(format!(
        "the release commit changes {} not in `allowed` ({}): {}",
        if extra.len() == 1 { "a file" } else { "files" },
        allowed.join(", "),
        extra.join(", ")
    )))
}

/// The version file, the chart's `version` and `appVersion` must all say `version`.
fn check_versions(
    version: &str,
    version_path: &WorkspacePath,
    chart_path: &WorkspacePath,
) -> Result<(), StepError> {
    let file_version = read_text(version_path)?;
    let file_version = file_version.trim();
    if file_version.contains('\n') {
        return Err(StepError::failed(format!(
            "`{version_path}` has more than one line; expected the version alone"
        )));
    }
    let chart = read_text(chart_path)?;
    let chart_value = |key: &str| -> Result<String, StepError> {
        yaml::top_level_scalar(&chart, key)
            .map_err(|why| StepError::failed(format!("`{chart_path}`: {why}")))?
            .map(|scalar| scalar.value)
            .ok_or_else(|| StepError::failed(format!("`{chart_path}` has no top-level `{key}`")))
    };
    let said = [
        (format!("`{version_path}`"), file_version.to_owned()),
        (format!("`{chart_path}` version"), chart_value("version")?),
        (
            format!("`{chart_path}` appVersion"),
            chart_value("appVersion")?,
        ),
    ];
    let disagreeing: Vec<String> = said
        .iter()
        .filter(|(_, value)| value != version)
        .map(|(source, value)| format!("{source} says {value:?}"))
        .collect();
    if disagreeing.is_empty() {
        return Ok(());
    }
    Err(StepError::failed(format!(
        "the versions disagree: the commit message says \"{version}\", but {}",
        disagreeing.join(", ")
    )))
}

/// The forge must not have `tag` yet.
fn check_tag_is_new(forge: &str, tag: &str) -> Result<(), StepError> {
    let url = format!("{forge}/api/tags");
    let response = http::get(&url)?;
    if !response.is_success() {
        return Err(StepError::failed(format!(
            "GET {url} answered {}: {}",
            response.status,
            excerpt(&response.body)
        )));
    }
    let tags: Vec<Tag> = response.json().map_err(|error| {
        StepError::failed(format!(
            "GET {url} did not answer a JSON array of {{\"name\": ...}}: {error}"
        ))
    })?;
    if tags.iter().any(|existing| existing.name == tag) {
        return Err(StepError::failed(format!(
            "the tag {tag} already exists on the forge; a released version is never released again"
        )));
    }
    Ok(())
}
