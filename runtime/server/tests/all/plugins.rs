//! Plugin upload and approval over the API: verified with the trust policy before
//! anything is stored, every refusal in the control chain, and separation of duties
//! between the plugin's signer and its approver. The component is a real one
//! (`relo_test_components::ECHO`), signed at test time with keys made for the test.

use axum::http::StatusCode;
use relo_manifest::parse_plugin;
use relo_server::{Role, create_user};
use relo_trust::SignedPlugin;
use relo_trust::{KeyAlgorithm, PrivateKey};
use serde_json::json;

use crate::support::{
    NAME, PASSWORD, TestServer, approval, attest, echo, other_component, server_tests, start_time,
    upload_body, verified,
};

/// Adds paul (plugin-author) and oscar (operator) and logs everyone needed in: the
/// access tokens of paul, olga and oscar.
async fn people(server: &TestServer) -> (String, String, String) {
    create_user(&server.store, "paul", PASSWORD, &[Role::PluginAuthor])
        .await
        .unwrap();
    create_user(&server.store, "oscar", PASSWORD, &[Role::Operator])
        .await
        .unwrap();
    (
        server.login("paul").await.access,
        server.login("olga").await.access,
        server.login("oscar").await.access,
    )
}

fn approvals_path(digest: &str) -> String {
    format!("/v1/plugins/{digest}/approvals")
}

async fn refusal_codes(server: &TestServer) -> Vec<String> {
    server
        .audit_bodies("plugin.refused")
        .await
        .iter()
        .map(|body| body["code"].as_str().unwrap().to_owned())
        .collect()
}

async fn an_upload_is_verified_stored_and_idempotent(server: TestServer) {
    let (paul, olga, _) = people(&server).await;
    let wasm = echo();
    let attestation = attest(&wasm, "1.0.0", &server.keys.author);
    let body = upload_body(&wasm, &attestation);

    let first = server
        .call("POST", "/v1/plugins", Some(&paul), Some(body.clone()), None)
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let digest = relo_trust::sha256_hex(&wasm);
    assert_eq!(first.body["digest"], digest.as_str());
    assert_eq!(first.body["name"], NAME);
    assert_eq!(first.body["version"], "1.0.0");
    assert_eq!(first.body["signer_key_id"], server.keys.author.key_id());

    let again = server
        .call("POST", "/v1/plugins", Some(&paul), Some(body), None)
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body, first.body);
    assert_eq!(server.audit_bodies("plugin.added").await.len(), 1);

    // Another component under the same name@version is refused.
    let other = other_component();
    let taken = server
        .call(
            "POST",
            "/v1/plugins",
            Some(&paul),
            Some(upload_body(
                &other,
                &attest(&other, "1.0.0", &server.keys.author),
            )),
            None,
        )
        .await;
    taken.assert_error(StatusCode::CONFLICT, "version-taken");

    // Any reader sees it: the list, and the signed manifest.
    let list = server.get("/v1/plugins", Some(&olga)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let list = list.body.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["digest"], digest.as_str());
    assert!(list[0]["added_at"].is_string());
    let shown = server
        .get(&format!("/v1/plugins/sha256:{digest}"), Some(&paul))
        .await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    assert_eq!(shown.body["manifest"]["plugin"]["name"], NAME);
    assert_eq!(shown.body["signer_person"], "paul");
    assert_eq!(shown.body["approvals"], json!([]));
    let missing = server
        .get(&format!("/v1/plugins/{}", "a".repeat(64)), Some(&paul))
        .await;
    missing.assert_error(StatusCode::NOT_FOUND, "plugin-not-found");
    server.assert_audit_sound(&[PASSWORD]).await;
}

async fn a_tampered_or_untrusted_upload_is_refused_and_recorded(server: TestServer) {
    let (paul, _, _) = people(&server).await;
    let wasm = echo();
    let attestation = attest(&wasm, "1.0.0", &server.keys.author);
    let mut tampered = wasm.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    let answer = server
        .call(
            "POST",
            "/v1/plugins",
            Some(&paul),
            Some(upload_body(&tampered, &attestation)),
            None,
        )
        .await;
    answer.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "digest-mismatch");
    let refused = server.audit_bodies("plugin.refused").await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["code"], "digest-mismatch");
    assert_eq!(
        refused[0]["digest"],
        relo_trust::sha256_hex(&tampered).as_str()
    );

    let stranger = PrivateKey::generate(KeyAlgorithm::Ed25519);
    let answer = server
        .call(
            "POST",
            "/v1/plugins",
            Some(&paul),
            Some(upload_body(&wasm, &attest(&wasm, "1.0.0", &stranger))),
            None,
        )
        .await;
    answer.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "untrusted-signer");
    assert_eq!(
        refusal_codes(&server).await,
        ["digest-mismatch", "untrusted-signer"]
    );

    let not_base64 = server
        .call(
            "POST",
            "/v1/plugins",
            Some(&paul),
            Some(json!({ "wasm_base64": "not base64!", "attestation": attestation })),
            None,
        )
        .await;
    not_base64.assert_error(StatusCode::BAD_REQUEST, "invalid-field");
    assert_eq!(not_base64.field(), Some("wasm_base64"));

    assert!(server.store.plugin_index().await.unwrap().is_empty());
    assert!(server.audit_bodies("plugin.added").await.is_empty());
    server.assert_audit_sound(&[PASSWORD]).await;
}

async fn approvals_are_checked_for_role_signer_and_separation_of_duties(server: TestServer) {
    let (paul, olga, oscar) = people(&server).await;
    let wasm = echo();
    let attestation = attest(&wasm, "1.0.0", &server.keys.author);
    let uploaded = server
        .call(
            "POST",
            "/v1/plugins",
            Some(&paul),
            Some(upload_body(&wasm, &attestation)),
            None,
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.body);
    let plugin = verified(&server, &wasm, &attestation);
    let path = approvals_path(&plugin.digest);
    let by_olga = approval(&server, &plugin, "olga", &server.keys.olga, start_time());

    // A plugin author may not approve at all.
    let answer = server
        .call("POST", &path, Some(&paul), Some(by_olga.clone()), None)
        .await;
    answer.assert_error(StatusCode::FORBIDDEN, "forbidden");

    // An operator cannot submit another person's approval.
    let by_oscar = approval(&server, &plugin, "oscar", &server.keys.oscar, start_time());
    let answer = server
        .call("POST", &path, Some(&olga), Some(by_oscar), None)
        .await;
    answer.assert_error(StatusCode::FORBIDDEN, "approver-mismatch");
    let audited = server.audit_bodies("auth.refused").await;
    assert!(
        audited
            .iter()
            .any(|b| b["code"] == "approver-mismatch" && b["who"] == "olga"),
        "{audited:?}"
    );

    // An approval of another digest of the same plugin is refused, and recorded.
    let other = other_component();
    let other_plugin = verified(
        &server,
        &other,
        &attest(&other, "2.0.0", &server.keys.author),
    );
    let elsewhere = approval(
        &server,
        &other_plugin,
        "olga",
        &server.keys.olga,
        start_time(),
    );
    let answer = server
        .call("POST", &path, Some(&olga), Some(elsewhere), None)
        .await;
    answer.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "approval-digest-mismatch");
    assert_eq!(refusal_codes(&server).await, ["approval-digest-mismatch"]);

    // The operator's own approval is stored with its entry, once.
    let answer = server
        .call("POST", &path, Some(&olga), Some(by_olga.clone()), None)
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.body["approver"], "olga");
    assert_eq!(answer.body["digest"], plugin.digest.as_str());
    assert_eq!(answer.body["key_id"], server.keys.olga.key_id());
    let id = answer.body["approval_id"].as_str().unwrap().to_owned();
    let again = server
        .call("POST", &path, Some(&olga), Some(by_olga), None)
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body, answer.body);
    let granted = server.audit_bodies("approval.granted").await;
    assert_eq!(granted.len(), 1);
    assert_eq!(granted[0]["approval_id"], id.as_str());

    let listed = server.get(&path, Some(&oscar)).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let listed = listed.body.as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["approved_by"], "olga");
    assert!(listed[0]["revoked"].is_null());
    let shown = server
        .get(&format!("/v1/plugins/{}", plugin.digest), Some(&paul))
        .await;
    assert_eq!(shown.body["approvals"][0]["id"], id.as_str());
    server.assert_audit_sound(&[PASSWORD]).await;
}

async fn the_signer_of_a_plugin_cannot_approve_it(server: TestServer) {
    let (paul, olga, _) = people(&server).await;
    let wasm = echo();
    // Signed with the key [[trust.signers]] attributes to olga.
    let attestation = attest(&wasm, "1.0.0", &server.keys.olga_signing);
    let uploaded = server
        .call(
            "POST",
            "/v1/plugins",
            Some(&paul),
            Some(upload_body(&wasm, &attestation)),
            None,
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.body);
    let plugin = verified(&server, &wasm, &attestation);
    assert_eq!(plugin.signer_person.as_deref(), Some("olga"));
    let own = approval(&server, &plugin, "olga", &server.keys.olga, start_time());
    let answer = server
        .call(
            "POST",
            &approvals_path(&plugin.digest),
            Some(&olga),
            Some(own),
            None,
        )
        .await;
    answer.assert_error(StatusCode::FORBIDDEN, "separation-of-duties");
    assert_eq!(refusal_codes(&server).await, ["separation-of-duties"]);
    assert!(server.audit_bodies("approval.granted").await.is_empty());
    let listed = server
        .get(&approvals_path(&plugin.digest), Some(&olga))
        .await;
    assert_eq!(listed.body, json!([]));
    server.assert_audit_sound(&[PASSWORD]).await;
}

async fn the_uploader_of_a_plugin_cannot_approve_it(server: TestServer) {
    let (paul, _, oscar) = people(&server).await;
    // oscar is an operator who also publishes plugins.
    let ada = server.login("ada").await.access;
    let roles = server
        .call(
            "PUT",
            "/v1/users/oscar/roles",
            Some(&ada),
            Some(json!({"roles": ["operator", "plugin-author"]})),
            None,
        )
        .await;
    assert_eq!(roles.status, StatusCode::OK, "{}", roles.body);
    let wasm = echo();
    let attestation = attest(&wasm, "1.0.0", &server.keys.author);
    let uploaded = server
        .call(
            "POST",
            "/v1/plugins",
            Some(&oscar),
            Some(upload_body(&wasm, &attestation)),
            None,
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.body);
    // paul uploading the same digest later does not make him its uploader.
    let again = server
        .call(
            "POST",
            "/v1/plugins",
            Some(&paul),
            Some(upload_body(&wasm, &attestation)),
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    let plugin = verified(&server, &wasm, &attestation);
    let own = approval(&server, &plugin, "oscar", &server.keys.oscar, start_time());
    let answer = server
        .call(
            "POST",
            &approvals_path(&plugin.digest),
            Some(&oscar),
            Some(own),
            None,
        )
        .await;
    answer.assert_error(StatusCode::FORBIDDEN, "separation-of-duties");
    assert!(server.audit_bodies("approval.granted").await.is_empty());
    let refused = server.audit_bodies("auth.refused").await;
    assert!(
        refused.iter().any(|b| b["code"] == "separation-of-duties"),
        "{refused:?}"
    );
    server.assert_audit_sound(&[PASSWORD]).await;
}

async fn a_new_version_is_compared_with_the_approved_one(server: TestServer) {
    let (paul, olga, oscar) = people(&server).await;
    let old = echo();
    let old_attestation = attest(&old, "1.0.0", &server.keys.author);
    let uploaded = server
        .call(
            "POST",
            "/v1/plugins",
            Some(&paul),
            Some(upload_body(&old, &old_attestation)),
            None,
        )
        .await;
    let old_digest = uploaded.body["digest"].as_str().unwrap().to_owned();
    let diff_path = |digest: &str| format!("/v1/plugins/{digest}/diff");
    // Nothing approved yet: nothing to compare with but another version.
    server
        .get(&diff_path(&old_digest), Some(&olga))
        .await
        .assert_error(StatusCode::NOT_FOUND, "no-approval");
    let plugin = verified(&server, &old, &old_attestation);
    let approved = server
        .call(
            "POST",
            &approvals_path(&old_digest),
            Some(&oscar),
            Some(approval(
                &server,
                &plugin,
                "oscar",
                &server.keys.oscar,
                start_time(),
            )),
            None,
        )
        .await;
    assert_eq!(approved.status, StatusCode::CREATED, "{}", approved.body);

    // 1.1.0 also wants to write the workspace.
    let new = other_component();
    let manifest = parse_plugin(
        "relo-plugin.toml",
        format!("[plugin]\nname = \"{NAME}\"\nversion = \"1.1.0\"\n\n[filesystem]\nworkspace = \"read-write\"\n")
            .as_bytes(),
    )
    .unwrap();
    let new_attestation = SignedPlugin::sign(&new, &manifest, &server.keys.author)
        .unwrap()
        .envelope
        .to_json();
    let uploaded = server
        .call(
            "POST",
            "/v1/plugins",
            Some(&paul),
            Some(upload_body(&new, &new_attestation)),
            None,
        )
        .await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.body);
    let new_digest = uploaded.body["digest"].as_str().unwrap().to_owned();
    let diff = server.get(&diff_path(&new_digest), Some(&olga)).await;
    assert_eq!(diff.status, StatusCode::OK, "{}", diff.body);
    assert_eq!(diff.body["widens"], true, "{}", diff.body);
    assert_eq!(diff.body["new"], format!("{NAME}@1.1.0"));
    assert!(diff.body["old"].as_str().unwrap().contains("by oscar"));
    assert!(!diff.body["changes"].as_array().unwrap().is_empty());
    // Against the old version's declaration, by digest; against itself, nothing.
    let against = server
        .get(
            &format!("{}?against={old_digest}", diff_path(&new_digest)),
            Some(&olga),
        )
        .await;
    assert_eq!(against.body["widens"], true, "{}", against.body);
    let same = server
        .get(
            &format!("{}?against={new_digest}", diff_path(&new_digest)),
            Some(&olga),
        )
        .await;
    assert_eq!(same.body["widens"], false, "{}", same.body);
    assert_eq!(same.body["changes"], json!([]));
    server
        .get(
            &format!("{}?against=nothex", diff_path(&new_digest)),
            Some(&olga),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST, "invalid-field");
}

server_tests!(
    a_new_version_is_compared_with_the_approved_one,
    the_uploader_of_a_plugin_cannot_approve_it,
    an_upload_is_verified_stored_and_idempotent,
    a_tampered_or_untrusted_upload_is_refused_and_recorded,
    approvals_are_checked_for_role_signer_and_separation_of_duties,
    the_signer_of_a_plugin_cannot_approve_it,
);
