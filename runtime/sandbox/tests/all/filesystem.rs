//! The workspace: nothing is preopened without a grant; with one, only the workspace is
//! visible, and `..`, absolute paths and symlinks cannot leave it.

use std::path::Path;

use relo_evidence::EvidenceEvent;
use relo_policy::{Grant, WorkspaceAccess};
use serde_json::json;

use crate::support::{Ran, Step, assert_engine_still_serves};

fn granted_workspace(ran: &Ran) -> serde_json::Value {
    match ran.only("step.started") {
        EvidenceEvent::StepStarted { grant, .. } => grant["workspace"].clone(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
pub async fn fs_undeclared() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("VERSION"), "1.2.3").expect("write");
    let ran = Step::new("fs-undeclared")
        .workspace(dir.path().to_owned())
        .run()
        .await;
    let output = ran.output();
    assert!(
        output["read"].as_str().unwrap_or("").starts_with("error:"),
        "{output}"
    );
    assert!(
        output["list_root"]
            .as_str()
            .unwrap_or("")
            .starts_with("error:"),
        "{output}"
    );
    assert_eq!(granted_workspace(&ran), json!(null));
    assert_engine_still_serves().await;
}

/// A workspace with `VERSION`, beside a directory the step must never see, and a
/// symlink from inside the workspace to it.
fn workspace_with_escape_routes() -> (tempfile::TempDir, std::path::PathBuf) {
    let root = tempfile::tempdir().expect("tempdir");
    let workspace = root.path().join("workspace");
    let outside = root.path().join("outside");
    std::fs::create_dir_all(&workspace).expect("mkdir");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::fs::write(workspace.join("VERSION"), "1.2.3").expect("write");
    std::fs::write(outside.join("secret.txt"), "outside-secret").expect("write");
    std::os::unix::fs::symlink(&outside, workspace.join("link-out")).expect("symlink");
    std::os::unix::fs::symlink(outside.join("secret.txt"), workspace.join("file-link"))
        .expect("symlink");
    (root, workspace)
}

fn with_workspace(access: WorkspaceAccess) -> Grant {
    let mut grant = Grant::deny_all();
    grant.workspace = Some(access);
    grant
}

const ESCAPES: &[&str] = &[
    "/workspace/../outside/secret.txt",
    "/workspace/link-out/secret.txt",
    "/workspace/file-link",
    "/outside/secret.txt",
    "/etc/passwd",
    "/workspace/../../../../etc/passwd",
    "../outside/secret.txt",
];

#[tokio::test]
pub async fn fs_escape() {
    let (_root, workspace) = workspace_with_escape_routes();
    let mut paths = vec!["/workspace/VERSION"];
    paths.extend_from_slice(ESCAPES);
    let ran = Step::new("fs-escape")
        .input(json!({"paths": paths, "write": "/workspace/new.txt"}))
        .grant(with_workspace(WorkspaceAccess::ReadOnly))
        .workspace(workspace.clone())
        .run()
        .await;
    let output = ran.output();
    assert_eq!(
        output["reads"]["/workspace/VERSION"], "ok:1.2.3",
        "{output}"
    );
    for path in ESCAPES {
        let result = output["reads"][path].as_str().unwrap_or("");
        assert!(result.starts_with("error:"), "{path} escaped: {result}");
    }
    assert!(
        !ran.outcome
            .result
            .as_ref()
            .expect("ran")
            .contains("outside-secret")
    );
    assert!(
        output["write"].as_str().unwrap_or("").starts_with("error:"),
        "{output}"
    );
    assert!(
        !workspace.join("new.txt").exists(),
        "a read-only workspace was written"
    );
    assert_eq!(granted_workspace(&ran), json!("read-only"));
    assert_engine_still_serves().await;
}

#[tokio::test]
pub async fn a_read_write_workspace_can_be_written_and_still_not_escaped() {
    let (_root, workspace) = workspace_with_escape_routes();
    let ran = Step::new("fs-escape")
        .input(
            json!({"paths": ["/workspace/../outside/secret.txt"], "write": "/workspace/new.txt"}),
        )
        .grant(with_workspace(WorkspaceAccess::ReadWrite))
        .workspace(workspace.clone())
        .run()
        .await;
    let output = ran.output();
    assert_eq!(output["write"], "ok", "{output}");
    assert_eq!(
        std::fs::read_to_string(workspace.join("new.txt")).expect("written"),
        "written by fs-escape"
    );
    assert!(
        output["reads"]["/workspace/../outside/secret.txt"]
            .as_str()
            .unwrap_or("")
            .starts_with("error:")
    );
    let escaped = Step::new("fs-escape")
        .input(json!({"paths": [], "write": "/workspace/link-out/planted.txt"}))
        .grant(with_workspace(WorkspaceAccess::ReadWrite))
        .workspace(workspace.clone())
        .run()
        .await;
    assert!(
        escaped.output()["write"]
            .as_str()
            .unwrap_or("")
            .starts_with("error:")
    );
    let outside = workspace.parent().map(|p| p.join("outside/planted.txt"));
    assert!(
        !outside.as_deref().is_some_and(Path::exists),
        "a write escaped through a symlink"
    );
}

#[tokio::test]
pub async fn a_workspace_grant_without_a_workspace_fails_setup() {
    let ran = Step::new("fs-escape")
        .input(json!({"paths": []}))
        .grant(with_workspace(WorkspaceAccess::ReadOnly))
        .run()
        .await;
    assert_eq!(ran.failure().code(), "setup-failed");
    ran.assert_bracketed("setup-failed");
}
