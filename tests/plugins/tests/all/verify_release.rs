//! `relo/verify-release`: the release commit, its files, its versions and its tag.

use serde_json::{Value, json};

use crate::support::{Demo, Step, Workspace};

const ALLOWED: [&str; 3] = [
    "VERSION",
    "deploy/chart/Chart.yaml",
    "deploy/chart/values.yaml",
];

fn input(demo: &Demo) -> Value {
    json!({"allowed": ALLOWED, "forge": demo.forge.url()})
}

fn step(demo: &Demo, workspace: &Workspace) -> Step {
    Step::new("verify-release")
        .input(input(demo))
        .workspace(workspace)
}

#[tokio::test]
async fn the_sample_release_commit_is_verified() {
    let demo = Demo::start().await;
    let workspace = Workspace::demo();
    let ran = step(&demo, &workspace).run(&demo).await;
    assert_eq!(
        ran.output(),
        json!({"version": "1.4.0", "tag": "v1.4.0", "changed": ALLOWED})
    );
    assert_eq!(ran.allowed_requests(), ["GET /api/tags"]);
    let seen: Vec<String> = demo
        .forge
        .requests()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(seen, ["forge GET /api/tags authorization=no -> 200"]);
    assert_eq!(ran.granted()["workspace"], "read-only");
}

#[tokio::test]
async fn a_changed_file_outside_allowed_is_named_and_the_forge_is_not_asked() {
    let demo = Demo::start().await;
    let workspace = Workspace::demo();
    let commit = json!({
        "message": "Release v1.4.0",
        "changed": ["VERSION", "README.md", "deploy/chart/values.yaml", "src/payments.rs"],
    });
    workspace.write("commit.json", &commit.to_string());
    let ran = step(&demo, &workspace).run(&demo).await;
    let message = ran.assert_error(
        "failed",
        &[
            "changes files not in `allowed`",
            "`README.md`, `src/payments.rs`",
        ],
    );
    let named = message.rsplit_once(": ").map(|(_, list)| list);
    assert_eq!(named, Some("`README.md`, `src/payments.rs`"), "{message}");
    assert!(demo.forge.requests().is_empty());
}

#[tokio::test]
async fn a_message_that_disagrees_with_the_version_file_names_the_file() {
    let demo = Demo::start().await;
    let workspace = Workspace::demo();
    workspace.write("VERSION", "1.3.9\n");
    let ran = step(&demo, &workspace).run(&demo).await;
    let message = ran.assert_error(
        "failed",
        &[
            "the commit message says \"1.4.0\"",
            "`VERSION` says \"1.3.9\"",
        ],
    );
    assert!(
        !message.contains("Chart.yaml"),
        "the chart agrees: {message}"
    );
}

#[tokio::test]
async fn a_chart_that_disagrees_names_the_file_and_the_key() {
    let demo = Demo::start().await;
    let workspace = Workspace::demo();
    let chart = workspace
        .read("deploy/chart/Chart.yaml")
        .replace("appVersion: \"1.4.0\"", "appVersion: \"1.3.0\"");
    workspace.write("deploy/chart/Chart.yaml", &chart);
    let ran = step(&demo, &workspace).run(&demo).await;
    ran.assert_error(
        "failed",
        &["`deploy/chart/Chart.yaml` appVersion says \"1.3.0\""],
    );
}

#[tokio::test]
async fn a_tag_that_already_exists_fails() {
    let demo = Demo::with_tags(&["v1.3.0", "v1.4.0"]).await;
    let workspace = Workspace::demo();
    let ran = step(&demo, &workspace).run(&demo).await;
    ran.assert_error("failed", &["the tag v1.4.0 already exists on the forge"]);
    assert_eq!(ran.allowed_requests(), ["GET /api/tags"]);
}

#[tokio::test]
async fn a_commit_that_is_not_a_release_fails_naming_the_pattern() {
    let demo = Demo::start().await;
    let workspace = Workspace::demo();
    let commit = json!({"message": "Fix the checkout button", "changed": ["VERSION"]});
    workspace.write("commit.json", &commit.to_string());
    let ran = step(&demo, &workspace).run(&demo).await;
    ran.assert_error(
        "failed",
        &["\"Fix the checkout button\" does not match `message_pattern`"],
    );
}

#[tokio::test]
async fn a_malformed_commit_file_is_named() {
    let demo = Demo::start().await;
    let workspace = Workspace::demo();
    workspace.write("commit.json", "{\"message\": \"Release v1.4.0\"}");
    let ran = step(&demo, &workspace).run(&demo).await;
    ran.assert_error(
        "failed",
        &["`commit.json` is not", "missing field `changed`"],
    );
    workspace.write("VERSION", "1.4.0\n");
    std::fs::remove_file(workspace.path().join("commit.json")).expect("remove");
    let ran = step(&demo, &workspace).run(&demo).await;
    ran.assert_error("failed", &["`commit.json` does not exist in the workspace"]);
}

#[tokio::test]
async fn misuse_is_invalid_input_naming_the_field() {
    let demo = Demo::start().await;
    let workspace = Workspace::demo();
    let forge = demo.forge.url();
    for (input, expected) in [
        (json!({"forge": forge}), "missing field `allowed`"),
        (
            json!({"allowed": ALLOWED, "forge": forge, "message_pattern": "(unclosed"}),
            "`message_pattern` is not a valid regex",
        ),
        (
            json!({"allowed": ALLOWED, "forge": forge, "message_pattern": "^Release v.*$"}),
            "`message_pattern` has no capture group",
        ),
        (
            json!({"allowed": ALLOWED, "forge": "forge.example.com"}),
            "`forge` must be an http(s) URL",
        ),
        (
            json!({"allowed": ["VERSION", "../../etc/passwd"], "forge": forge}),
            "`allowed[1]` must be a path relative to the workspace",
        ),
        (
            json!({"allowed": ALLOWED, "forge": forge, "commit": "/etc/passwd"}),
            "`commit` must be a path relative to the workspace: `/etc/passwd` is absolute",
        ),
        (
            json!({"allowed": ALLOWED, "forge": forge, "tag": "v1"}),
            "unknown field `tag`",
        ),
    ] {
        let ran = Step::new("verify-release")
            .input(input)
            .workspace(&workspace)
            .run(&demo)
            .await;
        ran.assert_error("invalid-input", &[expected]);
    }
    assert!(demo.forge.requests().is_empty());
}

/// The workflow passes a forge the operator did not bind: the host refuses the request
/// before it leaves, and the evidence says why.
#[tokio::test]
async fn a_forge_that_was_not_granted_is_denied() {
    let demo = Demo::start().await;
    let workspace = Workspace::demo();
    let ran = Step::new("verify-release")
        .input(json!({"allowed": ALLOWED, "forge": demo.target.url()}))
        .workspace(&workspace)
        .run(&demo)
        .await;
    ran.assert_error(
        "denied",
        &["GET", "/api/tags", "refused by the host's egress policy"],
    );
    assert_eq!(
        ran.denied_requests(),
        [(
            "GET /api/tags".to_owned(),
            "destination-not-granted".to_owned()
        )]
    );
    assert!(demo.target.requests().is_empty());
}

/// Approved without the workspace: nothing is mounted, and the step says so.
#[tokio::test]
async fn without_the_workspace_the_step_says_none_is_mounted() {
    let demo = Demo::start().await;
    let workspace = Workspace::demo();
    let ran = step(&demo, &workspace)
        .approve(|approved| approved.workspace = None)
        .run(&demo)
        .await;
    ran.assert_error("failed", &["no workspace is mounted at /workspace"]);
    assert_eq!(ran.granted()["workspace"], Value::Null);
}
