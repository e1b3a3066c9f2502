//! `relo/deploy`: exactly one digest deployed and confirmed; a notification that is
//! not granted is denied without stopping the step.

use relo_stand_ins::Deployment;
use serde_json::json;

use crate::support::{Demo, IMAGE_DIGEST, Step};

const REPOSITORY: &str = "registry.example.com/acme/checkout";

#[tokio::test]
async fn the_digest_is_deployed_and_confirmed() {
    let demo = Demo::start().await;
    let ran = Step::new("deploy")
        .input(json!({
            "target": demo.target.url(),
            "digest": IMAGE_DIGEST,
            "version": "1.4.0",
            "image": REPOSITORY,
        }))
        .run(&demo)
        .await;
    assert_eq!(
        ran.output(),
        json!({
            "deployed": IMAGE_DIGEST,
            "version": "1.4.0",
            "image": format!("{REPOSITORY}@{IMAGE_DIGEST}"),
            "notified": false,
        })
    );
    assert_eq!(
        demo.target.deployed(),
        Some(Deployment {
            digest: IMAGE_DIGEST.to_owned(),
            version: "1.4.0".to_owned(),
            image: Some(REPOSITORY.to_owned()),
        })
    );
    assert_eq!(
        ran.allowed_requests(),
        ["POST /api/deployments", "GET /api/deployments/current"]
    );
    assert_eq!(ran.granted()["workspace"], serde_json::Value::Null);
}

#[tokio::test]
async fn a_target_reporting_another_digest_fails_naming_both() {
    let demo = Demo::start().await;
    let reported = format!("sha256:{}", "d".repeat(64));
    demo.target.report_digest_override(Some(reported.clone()));
    let ran = Step::new("deploy")
        .input(json!({"target": demo.target.url(), "digest": IMAGE_DIGEST, "version": "1.4.0"}))
        .run(&demo)
        .await;
    ran.assert_error(
        "failed",
        &[&format!(
            "the target reports {reported} deployed, not the requested {IMAGE_DIGEST}"
        )],
    );
}

/// The demo grants no webhook: the host denies the notification, the evidence records
/// the denial, and the deployment stands.
#[tokio::test]
async fn a_notification_to_an_ungranted_url_is_denied_and_the_step_succeeds() {
    let demo = Demo::start().await;
    let hook = format!("{}/hooks/release", demo.target.url());
    let ran = Step::new("deploy")
        .input(json!({
            "target": demo.target.url(),
            "digest": IMAGE_DIGEST,
            "version": "1.4.0",
            "notify": hook,
        }))
        .run(&demo)
        .await;
    let output = ran.output();
    assert_eq!(output["deployed"], IMAGE_DIGEST);
    assert_eq!(output["notified"], false);
    let reason = output["notify_error"].as_str().expect("a reason");
    assert!(reason.starts_with("denied by the host"), "{reason}");
    assert!(reason.contains("/hooks/release"), "{reason}");
    assert_eq!(
        ran.denied_requests(),
        [(
            "POST /hooks/release".to_owned(),
            "destination-not-granted".to_owned()
        )]
    );
    assert!(
        ran.logs("warn")
            .iter()
            .any(|line| line.contains("the notification was not delivered")),
        "{:?}",
        ran.outcome.logs
    );
    assert!(
        demo.target
            .requests()
            .iter()
            .all(|request| request.path != "/hooks/release"),
        "the denied request never reached the server"
    );
    assert!(ran.outcome.result.is_ok());
}

#[tokio::test]
async fn misuse_is_invalid_input_naming_the_field() {
    let demo = Demo::start().await;
    let target = demo.target.url();
    for (input, expected) in [
        (
            json!({"target": target, "digest": "latest", "version": "1.4.0"}),
            "`digest` `latest` is a tag, not a digest",
        ),
        (
            json!({"target": target, "digest": IMAGE_DIGEST, "version": "1.4"}),
            "`version` `1.4` is not a version",
        ),
        (
            json!({"target": target, "digest": IMAGE_DIGEST, "version": "1.4.0",
                   "image": format!("{REPOSITORY}:1.4.0")}),
            "`image` `registry.example.com/acme/checkout:1.4.0` has a tag or digest",
        ),
        (
            json!({"target": "127.0.0.1:1", "digest": IMAGE_DIGEST, "version": "1.4.0"}),
            "`target` must be an http(s) URL",
        ),
        (
            json!({"target": target, "digest": IMAGE_DIGEST, "version": "1.4.0", "notify": "mailto:ops"}),
            "`notify` must be an http(s) URL",
        ),
        (
            json!({"target": target, "version": "1.4.0"}),
            "missing field `digest`",
        ),
    ] {
        let ran = Step::new("deploy").input(input).run(&demo).await;
        ran.assert_error("invalid-input", &[expected]);
    }
    assert!(demo.target.requests().is_empty());
    assert!(demo.target.deployed().is_none());
}
