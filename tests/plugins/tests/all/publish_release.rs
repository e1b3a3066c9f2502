//! `relo/publish-release`: the tag and the release created with a token the host
//! injects and the step never sees.

use relo_evidence::EvidenceEvent;
use serde_json::json;

use crate::support::{Demo, FORGE_TOKEN, Step};

fn publish(demo: &Demo, tag: &str) -> Step {
    Step::new("publish-release").input(json!({
        "forge": demo.forge.url(),
        "tag": tag,
        "notes": format!("Release {tag}"),
    }))
}

#[tokio::test]
async fn the_tag_and_the_release_are_created_with_the_injected_token() {
    let demo = Demo::start().await;
    let ran = publish(&demo, "v1.4.0")
        .forge_token(FORGE_TOKEN)
        .run(&demo)
        .await;
    let url = format!("{}/releases/v1.4.0", demo.forge.url());
    assert_eq!(
        ran.output(),
        json!({"tag": "v1.4.0", "release": {"id": 1, "url": url}})
    );
    assert_eq!(demo.forge.tags(), ["v1.3.0", "v1.4.0"]);
    let releases = demo.forge.releases();
    assert_eq!(releases.len(), 1);
    assert_eq!(
        (releases[0].tag.as_str(), releases[0].notes.as_str()),
        ("v1.4.0", "Release v1.4.0")
    );
    // The forge saw an Authorization header on both requests and accepted its token.
    let seen: Vec<String> = demo
        .forge
        .requests()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        seen,
        [
            "forge POST /api/tags authorization=yes -> 201",
            "forge POST /api/releases authorization=yes -> 201",
        ]
    );
    let injected: Vec<(String, String)> = ran
        .events("secret.injected")
        .into_iter()
        .map(|event| match event {
            EvidenceEvent::SecretInjected {
                name, header, path, ..
            } => (format!("{name} {header}"), path.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        injected,
        [
            (
                "forge_token authorization".to_owned(),
                "/api/tags".to_owned()
            ),
            (
                "forge_token authorization".to_owned(),
                "/api/releases".to_owned()
            ),
        ]
    );
    // The step never had the value: no reveal, and nothing it produced holds it.
    assert!(ran.events("secret.revealed").is_empty());
    assert_eq!(ran.granted()["secrets"], json!({"forge_token": false}));
    assert!(!ran.everything().contains(FORGE_TOKEN));
}

#[tokio::test]
async fn an_existing_tag_is_a_conflict_and_no_release_is_made() {
    let demo = Demo::with_tags(&["v1.3.0", "v1.4.0"]).await;
    let ran = publish(&demo, "v1.4.0")
        .forge_token(FORGE_TOKEN)
        .run(&demo)
        .await;
    ran.assert_error("failed", &["tag v1.4.0 already exists"]);
    assert_eq!(ran.allowed_requests(), ["POST /api/tags"]);
    assert!(demo.forge.releases().is_empty());
}

#[tokio::test]
async fn a_token_the_forge_refuses_names_the_secret() {
    let demo = Demo::start().await;
    let ran = publish(&demo, "v1.4.0")
        .forge_token("a-stale-token")
        .run(&demo)
        .await;
    ran.assert_error(
        "failed",
        &[
            "refused with 401",
            "did not accept the token",
            "`forge_token`",
        ],
    );
    let seen: Vec<String> = demo
        .forge
        .requests()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(seen, ["forge POST /api/tags authorization=yes -> 401"]);
    assert!(!ran.everything().contains("a-stale-token"));
}

/// Declared but not approved: the host refuses the request that would carry the
/// secret; nothing reaches the forge.
#[tokio::test]
async fn an_unapproved_secret_denies_the_request() {
    let demo = Demo::start().await;
    let ran = publish(&demo, "v1.4.0")
        .forge_token(FORGE_TOKEN)
        .approve(|approved| approved.secrets.clear())
        .run(&demo)
        .await;
    ran.assert_error(
        "denied",
        &["POST", "/api/tags", "refused by the host's egress policy"],
    );
    assert_eq!(
        ran.denied_requests(),
        [(
            "POST /api/tags".to_owned(),
            "secret-not-approved".to_owned()
        )]
    );
    assert!(demo.forge.requests().is_empty());
}

#[tokio::test]
async fn a_tag_that_is_not_v_semver_is_invalid_input() {
    let demo = Demo::start().await;
    for (tag, expected) in [
        ("1.4.0", "`tag` `1.4.0` does not start with `v`"),
        ("v1.4", "`tag` `v1.4`: `1.4` is not a version"),
        (
            "v1.4.0+build",
            "`tag` `v1.4.0+build`: `1.4.0+build` is not a version",
        ),
    ] {
        let ran = publish(&demo, tag)
            .forge_token(FORGE_TOKEN)
            .run(&demo)
            .await;
        ran.assert_error("invalid-input", &[expected]);
    }
    assert!(demo.forge.requests().is_empty());
}
