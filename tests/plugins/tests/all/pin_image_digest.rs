//! `relo/pin-image-digest`: the image pinned by digest, the rest of the file untouched.

use relo_policy::WorkspaceAccess;
use serde_json::json;

use crate::support::{Demo, IMAGE_DIGEST, Step, Workspace};

const VALUES: &str = "deploy/chart/values.yaml";
const REPOSITORY: &str = "registry.example.com/acme/checkout";

fn pin(workspace: &Workspace, digest: &str) -> Step {
    Step::new("pin-image-digest")
        .input(json!({"digest": digest}))
        .workspace(workspace)
}

#[tokio::test]
async fn the_image_is_pinned_and_every_other_byte_kept() {
    let demo = Demo::start().await;
    let workspace = Workspace::demo();
    let before = workspace.read(VALUES);
    let ran = pin(&workspace, IMAGE_DIGEST).run(&demo).await;
    let pinned = format!("{REPOSITORY}@{IMAGE_DIGEST}");
    assert_eq!(
        ran.output(),
        json!({"image": pinned, "previous": format!("{REPOSITORY}:1.4.0"), "values": VALUES})
    );
    let expected = before.replace(
        &format!("image: {REPOSITORY}:1.4.0\n"),
        &format!("image: {pinned}\n"),
    );
    assert_ne!(expected, before);
    assert_eq!(workspace.read(VALUES), expected);
    assert_eq!(ran.granted()["workspace"], "read-write");
    assert!(
        ran.granted()["egress"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );

    // A pinned image is pinned again by replacing its digest.
    let next = format!("sha256:{}", "e".repeat(64));
    let ran = pin(&workspace, &next).run(&demo).await;
    assert_eq!(ran.output()["previous"], json!(pinned));
    assert_eq!(
        workspace.read(VALUES),
        before.replace(
            &format!("image: {REPOSITORY}:1.4.0\n"),
            &format!("image: {REPOSITORY}@{next}\n"),
        )
    );
}

#[tokio::test]
async fn quoting_is_kept() {
    let demo = Demo::start().await;
    let workspace = Workspace::demo();
    workspace.write(
        VALUES,
        "replicaCount: 1\nimage: 'registry.example.com/acme/checkout:1.4.0' # the app\n",
    );
    pin(&workspace, IMAGE_DIGEST).run(&demo).await.output();
    assert_eq!(
        workspace.read(VALUES),
        format!("replicaCount: 1\nimage: '{REPOSITORY}@{IMAGE_DIGEST}' # the app\n")
    );
}

#[tokio::test]
async fn a_malformed_digest_or_a_mutable_tag_is_refused_and_nothing_is_written() {
    let demo = Demo::start().await;
    let workspace = Workspace::demo();
    let before = workspace.read(VALUES);
    for (digest, reason) in [
        (
            "latest",
            "`digest` `latest` is a tag, not a digest: a tag is mutable",
        ),
        ("1.4.0", "`digest` `1.4.0` is a tag, not a digest"),
        (
            "registry.example.com/acme/checkout:1.4.1",
            "is a tagged image reference, not a digest",
        ),
        (
            &format!("{REPOSITORY}@{IMAGE_DIGEST}"),
            "is an image reference; give only its digest",
        ),
        ("sha256:4b1a0c", "has 6 hex digits after `sha256:`, not 64"),
        (
            &IMAGE_DIGEST.to_uppercase().replace("SHA256", "sha256"),
            "has upper-case hex digits",
        ),
        (
            &format!("sha512:{}", "a".repeat(128)),
            "is a `sha512` digest; only sha256",
        ),
        ("", "`digest` is empty"),
    ] {
        let ran = pin(&workspace, digest).run(&demo).await;
        ran.assert_error("invalid-input", &[reason]);
    }
    assert_eq!(workspace.read(VALUES), before);
}

#[tokio::test]
async fn values_without_a_single_top_level_image_are_refused_naming_the_line() {
    let demo = Demo::start().await;
    let workspace = Workspace::demo();
    for (values, reason) in [
        (
            "replicaCount: 2\n",
            "`deploy/chart/values.yaml`: has no top-level `image:` to pin",
        ),
        (
            "image:\n  repository: registry.example.com/acme/checkout\n  tag: 1.4.0\n",
            "`image` on line 1 has no value on its line",
        ),
        (
            "image: a:1\nimage: b:2\n",
            "`image` is set twice, on lines 1 and 2",
        ),
        (
            "image: checkout:\n",
            "`image` on line 1: `checkout:` has an invalid tag",
        ),
    ] {
        workspace.write(VALUES, values);
        let ran = pin(&workspace, IMAGE_DIGEST).run(&demo).await;
        ran.assert_error("failed", &[reason]);
        assert_eq!(workspace.read(VALUES), values);
    }
}

/// Approved read-only: the write is refused by the host, and the step says it needs
/// the workspace read-write.
#[tokio::test]
async fn a_read_only_approval_cannot_write() {
    let demo = Demo::start().await;
    let workspace = Workspace::demo();
    let before = workspace.read(VALUES);
    let ran = pin(&workspace, IMAGE_DIGEST)
        .approve(|approved| approved.workspace = Some(WorkspaceAccess::ReadOnly))
        .run(&demo)
        .await;
    ran.assert_error(
        "failed",
        &[
            "cannot write `deploy/chart/values.yaml`",
            "needs the workspace read-write",
        ],
    );
    assert_eq!(ran.granted()["workspace"], "read-only");
    assert_eq!(workspace.read(VALUES), before);
}

#[tokio::test]
async fn a_path_outside_the_workspace_is_invalid_input() {
    let demo = Demo::start().await;
    let workspace = Workspace::demo();
    let ran = Step::new("pin-image-digest")
        .input(json!({"digest": IMAGE_DIGEST, "values": "../values.yaml"}))
        .workspace(&workspace)
        .run(&demo)
        .await;
    ran.assert_error(
        "invalid-input",
        &["`values` must be a path relative to the workspace: `../values.yaml` leaves the workspace"],
    );
}
