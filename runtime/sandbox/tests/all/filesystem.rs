//! The workspace: nothing is preopened without a grant; with one, only the workspace is
//! visible, and `..`, absolute paths and symlinks cannot leave it.

use std::path::Path;

use relo_evidence::EvidenceEvent;
use relo_policy::{Grant, LimitKind, Limits, WorkspaceAccess};
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

/// A read-write step writes inside the workspace and never through its links; and since
/// the workspace it leaves holds links (planted here, as a seeded folder could hold
/// them), the host refuses it after the step (`workspace-entry-refused`), naming one.
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
    assert_eq!(
        std::fs::read_to_string(workspace.join("new.txt")).expect("written"),
        "written by fs-escape"
    );
    let failure = ran.failure();
    assert_eq!(failure.code(), "workspace-entry-refused", "{failure}");
    assert!(failure.to_string().contains("symbolic link"), "{failure}");
    ran.assert_bracketed("workspace-entry-refused");
    let escaped = Step::new("fs-escape")
        .input(json!({"paths": [], "write": "/workspace/link-out/planted.txt"}))
        .grant(with_workspace(WorkspaceAccess::ReadWrite))
        .workspace(workspace.clone())
        .run()
        .await;
    assert_eq!(escaped.failure().code(), "workspace-entry-refused");
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

/// The limit that stopped `ran`, with its evidence entry.
fn workspace_limit(ran: &Ran) -> (u64, u64) {
    assert_eq!(
        ran.failure().limit(),
        Some(LimitKind::Workspace),
        "{:?}",
        ran.failure()
    );
    ran.assert_bracketed("limit-exceeded");
    match ran.only("limit.exceeded") {
        EvidenceEvent::LimitExceeded {
            limit,
            allowed,
            requested,
        } => {
            assert_eq!(limit, "workspace");
            (*allowed, *requested)
        }
        other => panic!("{other:?}"),
    }
}

/// Sparse files of 8 GiB cost the disk nothing; the host measures them by their apparent
/// size, from their handles, and stops the step without reading a byte.
#[tokio::test]
pub async fn fs_sparse_bomb() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ran = Step::new("fs-sparse-bomb")
        .grant(with_workspace(WorkspaceAccess::ReadWrite))
        .workspace(dir.path().to_owned())
        .run()
        .await;
    let (allowed, requested) = workspace_limit(&ran);
    assert_eq!(allowed, relo_policy::DEFAULT_WORKSPACE_BYTES);
    assert!(requested >= 8 << 30, "{requested}");
    assert_engine_still_serves().await;
}

/// Too many bytes, or too many files, end the step with the limit `workspace`.
#[tokio::test]
pub async fn fs_fill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ran = Step::new("fs-fill")
        .grant(with_workspace(WorkspaceAccess::ReadWrite))
        .workspace(dir.path().to_owned())
        .run()
        .await;
    let (allowed, requested) = workspace_limit(&ran);
    assert_eq!(allowed, relo_policy::DEFAULT_WORKSPACE_BYTES);
    assert!(requested > allowed);

    let dir = tempfile::tempdir().expect("tempdir");
    let ran = Step::new("fs-fill")
        .input(json!({"files": 30, "bytes": 1}))
        .limits(Limits {
            workspace_files: 20,
            ..Limits::default()
        })
        .grant(with_workspace(WorkspaceAccess::ReadWrite))
        .workspace(dir.path().to_owned())
        .run()
        .await;
    assert_eq!(workspace_limit(&ran), (20, 21));

    let dir = tempfile::tempdir().expect("tempdir");
    let within = Step::new("fs-fill")
        .input(json!({"files": 3, "bytes": 10}))
        .grant(with_workspace(WorkspaceAccess::ReadWrite))
        .workspace(dir.path().to_owned())
        .run()
        .await;
    assert_eq!(within.output()["files"], 3);
}

/// A step that leaves a link toward a file outside the workspace fails with
/// `workspace-entry-refused`; the host never reads what the link points to. (The race
/// against a snapshot, with two read-write steps in one wave, is the orchestrator's
/// test `a_link_swapped_in_during_a_snapshot_never_copies_its_target`.)
#[tokio::test]
pub async fn fs_symlink_race() {
    let root = tempfile::tempdir().expect("tempdir");
    let workspace = root.path().join("runs/run-1");
    std::fs::create_dir_all(&workspace).expect("mkdir");
    std::fs::write(root.path().join("secret"), "outside-secret").expect("write");
    let ran = Step::new("fs-symlink-race")
        .input(json!({"rounds": 50}))
        .grant(with_workspace(WorkspaceAccess::ReadWrite))
        .workspace(workspace.clone())
        .run()
        .await;
    let failure = ran.failure();
    assert_eq!(failure.code(), "workspace-entry-refused", "{failure}");
    assert!(
        failure.to_string().contains("data is a symbolic link"),
        "{failure}"
    );
    assert!(
        std::fs::symlink_metadata(workspace.join("data"))
            .expect("left behind")
            .file_type()
            .is_symlink(),
        "WASI let the step make a relative link"
    );
    assert!(!ran.evidence_text().contains("outside-secret"));
    assert_engine_still_serves().await;
}
