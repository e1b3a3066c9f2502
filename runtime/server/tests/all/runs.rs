//! Workflows and runs over the API: a run starts from a request its requester signed
//! offline and runs in the background; it stops at its gate; the requester cannot
//! approve it, nor can anyone submit an approval someone else signed; another operator's
//! approval lets it finish. Requests signed by someone else, of another workflow text,
//! or repeated are refused; a requester's unended runs are limited; only the requester
//! or an operator cancels; workflows validate with line and field, and register by
//! digest.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use base64ct::{Base64, Encoding as _};
use relo_orchestrator::{GateApprovalPayload, RunRequest};
use relo_server::{Role, create_user, import_people};
use relo_trust::{PrivateKey, sha256_hex};
use serde_json::{Value, json};

use crate::support::{
    MAX_ACTIVE_RUNS, PASSWORD, TestServer, approval, attest, echo, server_tests, upload_body,
    verified,
};

const WORKFLOW: &str = "\
apiVersion: relo.dev/v1
kind: Workflow
name: hello
params:
  greeting: { type: string }
steps:
  - id: greet
    uses: relo-test/echo@1.0.0
    with: { message: \"${{ params.greeting }}\" }
  - id: approve
    needs: [greet]
    approval: { roles: [operator], quorum: 1 }
  - id: after
    needs: [approve]
    uses: relo-test/echo@1.0.0
    with: { previous: \"${{ steps.greet.outputs.echo.message }}\" }
";

/// Uploads `relo-test/echo@1.0.0` signed by paul's key as paul, approved by oscar; logs
/// in olga and oscar. Returns (olga's token, oscar's token).
async fn ready(server: &TestServer) -> (String, String) {
    for (name, role) in [("paul", Role::PluginAuthor), ("oscar", Role::Operator)] {
        create_user(&server.store, name, PASSWORD, &[role])
            .await
            .unwrap();
    }
    let wasm = echo();
    let attestation = attest(&wasm, "1.0.0", &server.keys.author);
    let paul = server.login("paul").await.access;
    let upload = upload_body(&wasm, &attestation);
    let uploaded = api(server, "POST", "/v1/plugins", Some(&paul), Some(upload)).await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.body);
    let digest = uploaded.body["digest"].as_str().unwrap().to_owned();
    let oscar = server.login("oscar").await.access;
    let approved = api(
        server,
        "POST",
        &format!("/v1/plugins/{digest}/approvals"),
        Some(&oscar),
        Some(plugin_approval(server, "oscar", &server.keys.oscar)),
    )
    .await;
    assert_eq!(approved.status, StatusCode::CREATED, "{}", approved.body);
    (server.login("olga").await.access, oscar)
}

/// One request, from the default client address.
async fn api(
    server: &TestServer,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> crate::support::Answer {
    server.call(method, path, token, body, None).await
}

/// A run request of `text` for run `run_id`, requested by `person`, signed by `key`.
fn request(run_id: &str, text: &str, person: &str, key: &PrivateKey) -> Value {
    let request = RunRequest {
        run_id: run_id.to_owned(),
        workflow: "hello".to_owned(),
        workflow_sha256: sha256_hex(text.as_bytes()),
        params: BTreeMap::from([("greeting".to_owned(), json!("hi"))]),
        requested_by: person.to_owned(),
        requested_at: relo_store::rfc3339_utc(std::time::SystemTime::now()),
    };
    serde_json::from_str(&request.sign(key).unwrap().to_json()).unwrap()
}

fn start_body(run_id: &str, person: &str, key: &PrivateKey) -> Value {
    json!({ "request": request(run_id, WORKFLOW, person, key), "workflow_text": WORKFLOW })
}

/// A gate approval of `approve` of run `run_id` by `person`, signed by `key`.
fn gate_approval(run_id: &str, person: &str, key: &PrivateKey) -> Value {
    let payload = GateApprovalPayload {
        run_id: run_id.to_owned(),
        step_id: "approve".to_owned(),
        workflow_sha256: sha256_hex(WORKFLOW.as_bytes()),
        approver: person.to_owned(),
        approved_at: relo_store::rfc3339_utc(std::time::SystemTime::now()),
    };
    serde_json::from_str(&payload.sign(key).unwrap().to_json()).unwrap()
}

/// Polls the run until its state is `state`, failing after a minute.
async fn wait_for_state(server: &TestServer, token: &str, run_id: &str, state: &str) -> Value {
    let started = Instant::now();
    loop {
        let shown = api(
            server,
            "GET",
            &format!("/v1/runs/{run_id}"),
            Some(token),
            None,
        )
        .await;
        assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
        if shown.body["state"] == state {
            return shown.body;
        }
        if started.elapsed() > Duration::from_secs(60) {
            panic!(
                "run {run_id} never reached {state}: {}\nits evidence: {:?}",
                shown.body,
                run_kinds(server, run_id).await
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts run `run_id` of [`WORKFLOW`] as olga (202) and waits until it is in `state`;
/// the run as shown then.
async fn start_as_olga(server: &TestServer, olga: &str, run_id: &str, state: &str) -> Value {
    let started = api(
        server,
        "POST",
        "/v1/runs",
        Some(olga),
        Some(start_body(run_id, "olga", &server.keys.olga)),
    )
    .await;
    assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.body);
    assert_eq!(started.body["run_id"], run_id);
    wait_for_state(server, olga, run_id, state).await
}

/// The step `id` of a shown run.
fn step<'a>(run: &'a Value, id: &str) -> &'a Value {
    run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step_id"] == id)
        .unwrap_or_else(|| panic!("no step {id} in {run}"))
}

async fn run_kinds(server: &TestServer, run_id: &str) -> Vec<String> {
    server
        .store
        .scope_entries(run_id, 0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

async fn a_signed_run_waits_at_its_gate_for_someone_else_then_finishes(server: TestServer) {
    let (olga, oscar) = ready(&server).await;
    let waiting = start_as_olga(&server, &olga, "run-1", "waiting-approval").await;
    assert_eq!(step(&waiting, "greet")["state"], "succeeded", "{waiting}");
    assert_eq!(step(&waiting, "greet")["output"]["echo"]["message"], "hi");
    assert_eq!(step(&waiting, "approve")["state"], "waiting");
    assert_eq!(waiting["workflow_sha256"], sha256_hex(WORKFLOW.as_bytes()));

    let gate = "/v1/runs/run-1/gates/approve/approvals";
    // The requester approving her own run: refused and recorded in the run's evidence.
    let own = api(
        &server,
        "POST",
        gate,
        Some(&olga),
        Some(gate_approval("run-1", "olga", &server.keys.olga)),
    )
    .await;
    own.assert_error(StatusCode::FORBIDDEN, "separation-of-duties");
    // oscar submitting an approval olga signed: refused and audited.
    let borrowed = api(
        &server,
        "POST",
        gate,
        Some(&oscar),
        Some(gate_approval("run-1", "olga", &server.keys.olga)),
    )
    .await;
    borrowed.assert_error(StatusCode::FORBIDDEN, "approver-mismatch");
    assert_eq!(
        server
            .store
            .gate_approvals("run-1", "approve")
            .await
            .unwrap()
            .len(),
        0
    );
    assert!(
        run_kinds(&server, "run-1")
            .await
            .contains(&"gate.refused".to_owned())
    );
    let metrics = server.metrics_text().await;
    assert!(
        metrics.contains("relo_denials_total{kind=\"gate.refused\"} 1\n"),
        "{metrics}"
    );
    let audited = server.audit_bodies("auth.refused").await;
    assert!(
        audited.iter().any(|b| b["code"] == "approver-mismatch"),
        "{audited:?}"
    );
    assert_eq!(
        server.get("/v1/runs/run-1", Some(&olga)).await.body["state"],
        "waiting-approval"
    );

    let approved = api(
        &server,
        "POST",
        gate,
        Some(&oscar),
        Some(gate_approval("run-1", "oscar", &server.keys.oscar)),
    )
    .await;
    assert_eq!(approved.status, StatusCode::CREATED, "{}", approved.body);
    assert_eq!(approved.body["approvals"], 1);
    assert_eq!(approved.body["quorum"], 1);
    let done = wait_for_state(&server, &olga, "run-1", "succeeded").await;
    assert_eq!(
        step(&done, "after")["output"]["echo"]["previous"],
        "hi",
        "{done}"
    );
    let kinds = run_kinds(&server, "run-1").await;
    for kind in [
        "run.started",
        "gate.waiting",
        "gate.approved",
        "run.resumed",
        "run.finished",
    ] {
        assert!(kinds.contains(&kind.to_owned()), "{kind} in {kinds:?}");
    }
    let listed = server.get("/v1/runs", Some(&olga)).await;
    assert_eq!(listed.body[0]["id"], "run-1");
    assert_eq!(listed.body[0]["state"], "succeeded");
    // An ended run takes no more approvals.
    api(
        &server,
        "POST",
        gate,
        Some(&oscar),
        Some(gate_approval("run-1", "oscar", &server.keys.oscar)),
    )
    .await
    .assert_error(StatusCode::CONFLICT, "run-ended");
}

async fn requests_of_someone_else_another_text_or_twice_are_refused(server: TestServer) {
    let (olga, oscar) = ready(&server).await;
    // oscar submitting olga's signed request.
    let stolen = api(
        &server,
        "POST",
        "/v1/runs",
        Some(&oscar),
        Some(start_body("run-s", "olga", &server.keys.olga)),
    )
    .await;
    stolen.assert_error(StatusCode::FORBIDDEN, "requester-mismatch");
    // A request naming olga but signed with oscar's key.
    let forged = api(
        &server,
        "POST",
        "/v1/runs",
        Some(&olga),
        Some(start_body("run-f", "olga", &server.keys.oscar)),
    )
    .await;
    assert_eq!(
        forged.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        forged.body
    );
    // The workflow text changed after signing.
    let edited = WORKFLOW.replace("quorum: 1", "quorum: 1 }\n#");
    let changed = api(
        &server,
        "POST",
        "/v1/runs",
        Some(&olga),
        Some(json!({
            "request": request("run-c", WORKFLOW, "olga", &server.keys.olga),
            "workflow_text": edited,
        })),
    )
    .await;
    assert_eq!(
        changed.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        changed.body
    );
    assert_eq!(changed.field(), Some("request"));
    assert!(
        server.store.runs(10).await.unwrap().is_empty(),
        "nothing stored"
    );
    // Each refusal is in the control chain, naming who and why.
    let audited: Vec<String> = server
        .audit_bodies("auth.refused")
        .await
        .iter()
        .map(|b| {
            format!(
                "{} {}",
                b["who"].as_str().unwrap_or(""),
                b["code"].as_str().unwrap_or("")
            )
        })
        .collect();
    for expected in [
        "oscar requester-mismatch",
        "olga identity-mismatch",
        "olga workflow-changed",
    ] {
        assert!(
            audited.iter().any(|a| a == expected),
            "{expected} in {audited:?}"
        );
    }

    // Registered by digest, then the same request twice.
    let registered = api(
        &server,
        "POST",
        "/v1/workflows",
        Some(&olga),
        Some(json!({ "text": WORKFLOW })),
    )
    .await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.body
    );
    let by_digest = json!({ "request": request("run-d", WORKFLOW, "olga", &server.keys.olga) });
    let first = api(
        &server,
        "POST",
        "/v1/runs",
        Some(&olga),
        Some(by_digest.clone()),
    )
    .await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    api(&server, "POST", "/v1/runs", Some(&olga), Some(by_digest))
        .await
        .assert_error(StatusCode::CONFLICT, "run-exists");
}

async fn a_requester_has_a_limited_number_of_unended_runs(server: TestServer) {
    let (olga, oscar) = ready(&server).await;
    for n in 0..MAX_ACTIVE_RUNS {
        let id = format!("run-q{n}");
        let started = api(
            &server,
            "POST",
            "/v1/runs",
            Some(&olga),
            Some(start_body(&id, "olga", &server.keys.olga)),
        )
        .await;
        assert_eq!(started.status, StatusCode::ACCEPTED, "{}", started.body);
    }
    let over = api(
        &server,
        "POST",
        "/v1/runs",
        Some(&olga),
        Some(start_body("run-over", "olga", &server.keys.olga)),
    )
    .await;
    over.assert_error(StatusCode::TOO_MANY_REQUESTS, "too-many-active-runs");
    let audited = server.audit_bodies("auth.refused").await;
    assert!(audited.iter().any(|b| b["code"] == "too-many-active-runs"));
    // Someone else is not held back by olga's runs.
    let other = api(
        &server,
        "POST",
        "/v1/runs",
        Some(&oscar),
        Some(start_body("run-oscar", "oscar", &server.keys.oscar)),
    )
    .await;
    assert_eq!(other.status, StatusCode::ACCEPTED, "{}", other.body);

    // ivan (release-manager, may start runs) cannot cancel olga's run; olga can.
    create_user(&server.store, "ivan2", PASSWORD, &[Role::ReleaseManager])
        .await
        .unwrap();
    let ivan = server.login("ivan2").await.access;
    api(&server, "POST", "/v1/runs/run-q0/cancel", Some(&ivan), None)
        .await
        .assert_error(StatusCode::FORBIDDEN, "not-your-run");
    let cancelled = api(&server, "POST", "/v1/runs/run-q0/cancel", Some(&olga), None).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    wait_for_state(&server, &olga, "run-q0", "cancelled").await;
    // A place is free again.
    let again = api(
        &server,
        "POST",
        "/v1/runs",
        Some(&olga),
        Some(start_body("run-again", "olga", &server.keys.olga)),
    )
    .await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.body);
}

/// A tar archive of one entry `name` of type `kind` (a link to `target`, or a file
/// holding `target`), its name written as given, unchecked.
fn hostile_tar(name: &[u8], kind: tar::EntryType, target: &str) -> String {
    let mut header = tar::Header::new_gnu();
    header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
    header.set_entry_type(kind);
    header.set_mode(0o644);
    let data = if kind == tar::EntryType::Symlink {
        header.set_link_name(target).unwrap();
        header.set_size(0);
        Vec::new()
    } else {
        header.set_size(target.len() as u64);
        target.as_bytes().to_vec()
    };
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, data.as_slice()).unwrap();
    Base64::encode_string(&builder.into_inner().unwrap())
}

async fn a_hostile_workspace_is_refused_before_anything_is_stored(server: TestServer) {
    let (olga, _) = ready(&server).await;
    let with_workspace = WORKFLOW.replace("name: hello\n", "name: hello\nworkspace: repo\n");
    let body = |id: &str, tar: String| {
        json!({
            "request": request(id, &with_workspace, "olga", &server.keys.olga),
            "workflow_text": with_workspace,
            "workspace_tar_base64": tar,
        })
    };
    // A symbolic link out of the workspace.
    let link = hostile_tar(b"passwd", tar::EntryType::Symlink, "/etc/passwd");
    let refused = api(
        &server,
        "POST",
        "/v1/runs",
        Some(&olga),
        Some(body("run-l", link)),
    )
    .await;
    refused.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid-workspace");
    assert_eq!(refused.field(), Some("workspace_tar_base64"));
    // Not base64, and no workspace at all.
    let garbage = api(
        &server,
        "POST",
        "/v1/runs",
        Some(&olga),
        Some(body("run-g", "%%%".into())),
    )
    .await;
    garbage.assert_error(StatusCode::BAD_REQUEST, "invalid-field");
    let missing = api(
        &server,
        "POST",
        "/v1/runs",
        Some(&olga),
        Some(json!({
            "request": request("run-m", &with_workspace, "olga", &server.keys.olga),
            "workflow_text": with_workspace,
        })),
    )
    .await;
    missing.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "workspace-missing");
    assert!(
        server.store.runs(10).await.unwrap().is_empty(),
        "nothing stored"
    );
    // A path climbing out of the workspace is refused, and written nowhere.
    let climbing = hostile_tar(b"../../outside.txt", tar::EntryType::Regular, "pwned");
    let answer = api(
        &server,
        "POST",
        "/v1/runs",
        Some(&olga),
        Some(body("run-c", climbing)),
    )
    .await;
    answer.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid-workspace");
    assert!(
        answer.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("workspace-entry-refused")),
        "{}",
        answer.body
    );
    for dir in [
        server.home().to_path_buf(),
        server.home().join("workspaces"),
    ] {
        assert!(
            !dir.join("outside.txt").exists(),
            "written in {}",
            dir.display()
        );
    }
}

async fn workflows_validate_with_line_and_field(server: TestServer) {
    let olga = server.login("olga").await.access;
    let bad = WORKFLOW.replace("needs: [greet]", "needs: [nowhere]");
    let verdict = api(
        &server,
        "POST",
        "/v1/workflows/validate",
        Some(&olga),
        Some(json!({ "text": bad })),
    )
    .await;
    assert_eq!(verdict.status, StatusCode::OK);
    assert_eq!(verdict.body["valid"], false);
    let problem = &verdict.body["problems"][0];
    assert_eq!(problem["line"], 11, "{problem}");
    assert!(
        problem["path"]
            .as_str()
            .unwrap()
            .starts_with("steps[1].needs"),
        "{problem}"
    );
    let good = api(
        &server,
        "POST",
        "/v1/workflows/validate",
        Some(&olga),
        Some(json!({ "text": WORKFLOW })),
    )
    .await;
    assert_eq!(good.body["valid"], true);
    assert_eq!(good.body["steps"], json!(["greet", "approve", "after"]));
    let refused = api(
        &server,
        "POST",
        "/v1/workflows",
        Some(&olga),
        Some(json!({ "text": bad })),
    )
    .await;
    refused.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid-workflow");
    assert_eq!(refused.field(), Some("text"));
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 11")
    );
}

async fn a_revoked_approval_or_a_blocked_plugin_stops_the_next_run(server: TestServer) {
    let (olga, oscar) = ready(&server).await;
    let listed = server.get("/v1/plugins", Some(&olga)).await;
    let digest = listed.body[0]["digest"].as_str().unwrap().to_owned();
    let approvals = server
        .get(&format!("/v1/plugins/{digest}/approvals"), Some(&olga))
        .await;
    let id = approvals.body[0]["id"].as_str().unwrap().to_owned();
    let reason = json!({"reason": "CVE-2026-0001 in the echo step"});
    // Only operators stop plugins; ivan (release-manager) cannot.
    let ivan = server.login("ivan").await.access;
    api(
        &server,
        "POST",
        &format!("/v1/plugins/{digest}/block"),
        Some(&ivan),
        Some(reason.clone()),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");
    let revoke = format!("/v1/plugins/{digest}/approvals/{id}/revoke");
    let revoked = api(&server, "POST", &revoke, Some(&olga), Some(reason.clone())).await;
    assert_eq!(revoked.status, StatusCode::CREATED, "{}", revoked.body);
    assert_eq!(revoked.body["by"], "olga");
    api(&server, "POST", &revoke, Some(&olga), Some(reason.clone()))
        .await
        .assert_error(StatusCode::CONFLICT, "already-revoked");
    api(
        &server,
        "POST",
        &format!("/v1/plugins/{digest}/approvals/nope/revoke"),
        Some(&olga),
        Some(reason.clone()),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "approval-not-found");

    // The next run's step is refused: its plugin has no approval that counts.
    let failed = start_as_olga(&server, &olga, "run-r", "failed").await;
    assert_eq!(step(&failed, "greet")["state"], "failed", "{failed}");
    assert!(
        step(&failed, "greet")["error"]
            .as_str()
            .unwrap()
            .starts_with("refused (revoked)"),
        "{failed}"
    );
    assert_eq!(step(&failed, "after")["state"], "skipped", "{failed}");

    let block = format!("/v1/plugins/{digest}/block");
    let blocked = api(&server, "POST", &block, Some(&oscar), Some(reason.clone())).await;
    assert_eq!(blocked.status, StatusCode::CREATED, "{}", blocked.body);
    let again = api(&server, "POST", &block, Some(&oscar), Some(reason)).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["new"], false);
    let who = |kind: &'static str| {
        let server = &server;
        async move {
            server
                .audit_bodies(kind)
                .await
                .iter()
                .map(|b| b["by"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    // The refused step is counted in /metrics, from the store (so across instances).
    let metrics = server.metrics_text().await;
    assert!(
        metrics.contains("relo_denials_total{kind=\"plugin.refused\"} 1\n"),
        "{metrics}"
    );
    assert_eq!(who("approval.revoked").await, ["olga"]);
    assert_eq!(who("plugin.blocked").await, ["oscar"], "recorded once");
}

/// An approval of the plugin [`ready`] uploads by `person`, signed by `key` now.
fn plugin_approval(server: &TestServer, person: &str, key: &PrivateKey) -> Value {
    let wasm = echo();
    let plugin = verified(server, &wasm, &attest(&wasm, "1.0.0", &server.keys.author));
    approval(server, &plugin, person, key, std::time::SystemTime::now())
}

async fn once_imported_the_stores_people_decide_whose_signatures_count(server: TestServer) {
    let (olga, oscar) = ready(&server).await;
    let ada = server.login("ada").await.access;
    import_people(&server.store, server.policy().people())
        .await
        .unwrap();
    start_as_olga(&server, &olga, "run-k", "waiting-approval").await;
    let gate = "/v1/runs/run-k/gates/approve/approvals";

    // ada revokes oscar's key (the one relo.toml lists): it counts nowhere from now on.
    let old_key = server.keys.oscar.public_key().key_id().to_owned();
    let revoke = format!("/v1/users/oscar/keys/{old_key}/revoke");
    api(&server, "POST", &revoke, Some(&olga), None)
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    let revoked = api(&server, "POST", &revoke, Some(&ada), None).await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.body);
    api(&server, "POST", &revoke, Some(&ada), None)
        .await
        .assert_error(StatusCode::NOT_FOUND, "key-not-found");
    api(
        &server,
        "POST",
        gate,
        Some(&oscar),
        Some(gate_approval("run-k", "oscar", &server.keys.oscar)),
    )
    .await
    .assert_error(StatusCode::UNPROCESSABLE_ENTITY, "unknown-signer");
    // Nor does the plugin approval it signed: a new run's step is refused.
    let failed = start_as_olga(&server, &olga, "run-k2", "failed").await;
    let error = step(&failed, "greet")["error"].as_str().unwrap().to_owned();
    assert!(error.starts_with("refused ("), "{failed}");

    // A key relo.toml has never heard of, added by ada, is oscar's from now on.
    let new_key = PrivateKey::generate(relo_trust::KeyAlgorithm::Ed25519);
    let add = json!({ "public_key": new_key.public_key().to_pem() });
    let keys = "/v1/users/oscar/keys";
    let added = api(&server, "POST", keys, Some(&ada), Some(add.clone())).await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    assert_eq!(added.body["key_id"], new_key.public_key().key_id());
    assert_eq!(added.body["added_by"], "ada");
    api(&server, "POST", keys, Some(&ada), Some(add))
        .await
        .assert_error(StatusCode::CONFLICT, "key-exists");
    let garbage = api(
        &server,
        "POST",
        keys,
        Some(&ada),
        Some(json!({ "public_key": "not a key" })),
    )
    .await;
    garbage.assert_error(StatusCode::UNPROCESSABLE_ENTITY, "invalid-key");
    assert_eq!(garbage.body["error"]["field"], "public_key");
    api(
        &server,
        "POST",
        "/v1/users/nobody/keys",
        Some(&ada),
        Some(json!({ "public_key": new_key.public_key().to_pem() })),
    )
    .await
    .assert_error(StatusCode::NOT_FOUND, "user-not-found");

    // Roles come from the store too: as a release manager oscar may call the route but
    // holds none of the gate's roles.
    let roles = "/v1/users/oscar/roles";
    let demoted = api(
        &server,
        "PUT",
        roles,
        Some(&ada),
        Some(json!({ "roles": ["release-manager"] })),
    )
    .await;
    assert_eq!(demoted.status, StatusCode::OK, "{}", demoted.body);
    api(
        &server,
        "POST",
        gate,
        Some(&oscar),
        Some(gate_approval("run-k", "oscar", &new_key)),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "missing-role");
    let restored = api(
        &server,
        "PUT",
        roles,
        Some(&ada),
        Some(json!({ "roles": ["operator"] })),
    )
    .await;
    assert_eq!(restored.status, StatusCode::OK, "{}", restored.body);

    // With the new key oscar approves the plugin again and the gate; the run finishes,
    // its runner checking both against the store's people.
    let digest = server.get("/v1/plugins", Some(&olga)).await.body[0]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let reapproved = api(
        &server,
        "POST",
        &format!("/v1/plugins/{digest}/approvals"),
        Some(&oscar),
        Some(plugin_approval(&server, "oscar", &new_key)),
    )
    .await;
    assert_eq!(
        reapproved.status,
        StatusCode::CREATED,
        "{}",
        reapproved.body
    );
    let approved = api(
        &server,
        "POST",
        gate,
        Some(&oscar),
        Some(gate_approval("run-k", "oscar", &new_key)),
    )
    .await;
    assert_eq!(approved.status, StatusCode::CREATED, "{}", approved.body);
    wait_for_state(&server, &olga, "run-k", "succeeded").await;

    let listed = server.get(keys, Some(&ada)).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let listed = listed.body.as_array().unwrap().clone();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0]["key_id"], old_key.as_str());
    assert_eq!(listed[0]["added_by"], "relo.toml");
    assert_eq!(listed[0]["revoked_by"], "ada");
    assert_eq!(listed[1]["revoked_at"], Value::Null);
    let actions: Vec<String> = server
        .audit_bodies("admin.action")
        .await
        .iter()
        .filter(|b| b["by"] == "ada")
        .map(|b| b["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        actions,
        [
            "key.revoked",
            "key.added",
            "user.roles-set",
            "user.roles-set"
        ]
    );
}

/// `GET /v1/runs/{id}` with `If-None-Match: tag`, and `?wait=` when `wait` is given.
async fn show_if_changed(
    server: &TestServer,
    token: &str,
    run_id: &str,
    tag: &str,
    wait: Option<u64>,
) -> crate::support::Answer {
    let uri = match wait {
        Some(seconds) => format!("/v1/runs/{run_id}?wait={seconds}"),
        None => format!("/v1/runs/{run_id}"),
    };
    let request = axum::http::Request::get(uri)
        .header("authorization", format!("Bearer {token}"))
        .header("if-none-match", tag)
        .body(axum::body::Body::empty())
        .unwrap();
    server.send(request).await
}

async fn a_run_is_followed_by_waiting_for_its_next_change(server: TestServer) {
    let (olga, oscar) = ready(&server).await;
    start_as_olga(&server, &olga, "run-w", "waiting-approval").await;
    // Parked: its runner lets go of it just after the state changes.
    let started = Instant::now();
    let shown = loop {
        let shown = server.get("/v1/runs/run-w", Some(&olga)).await;
        if shown.body["driver"].is_null() {
            break shown;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{}",
            shown.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let waiting = shown.body.clone();
    let tag = shown.headers["etag"].to_str().unwrap().to_owned();
    assert_eq!(tag.len(), 66, "a quoted sha256: {tag}");

    // Unchanged: 304 at once, or after the wait; `*` matches any run; another tag does not.
    let same = show_if_changed(&server, &olga, "run-w", &tag, None).await;
    assert_eq!(same.status, StatusCode::NOT_MODIFIED);
    assert_eq!(same.headers["etag"].to_str().unwrap(), tag);
    assert_eq!(same.body, Value::Null);
    let held = show_if_changed(&server, &olga, "run-w", &tag, Some(1)).await;
    assert_eq!(held.status, StatusCode::NOT_MODIFIED);
    let any = show_if_changed(&server, &olga, "run-w", "*", None).await;
    assert_eq!(any.status, StatusCode::NOT_MODIFIED);
    let other = show_if_changed(&server, &olga, "run-w", "\"0\", W/\"1\"", None).await;
    assert_eq!(other.status, StatusCode::OK);
    assert_eq!(other.body, waiting);
    let listed = format!("\"0\", W/{tag}");
    let weak = show_if_changed(&server, &olga, "run-w", &listed, None).await;
    assert_eq!(weak.status, StatusCode::NOT_MODIFIED);
    let too_long = show_if_changed(&server, &olga, "run-w", &tag, Some(26)).await;
    too_long.assert_error(StatusCode::BAD_REQUEST, "invalid-query");
    assert_eq!(too_long.body["error"]["field"], "wait");

    // A request held for the next change answers with it once the gate is approved.
    let follower = {
        let server = &server;
        let (olga, tag) = (olga.clone(), tag.clone());
        async move { show_if_changed(server, &olga, "run-w", &tag, Some(25)).await }
    };
    let approver = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        api(
            &server,
            "POST",
            "/v1/runs/run-w/gates/approve/approvals",
            Some(&oscar),
            Some(gate_approval("run-w", "oscar", &server.keys.oscar)),
        )
        .await
    };
    let (changed, approved) = tokio::join!(follower, approver);
    assert_eq!(approved.status, StatusCode::CREATED, "{}", approved.body);
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_ne!(changed.headers["etag"].to_str().unwrap(), tag);
    assert_ne!(changed.body, waiting);
    wait_for_state(&server, &olga, "run-w", "succeeded").await;
}

server_tests!(
    a_run_is_followed_by_waiting_for_its_next_change,
    once_imported_the_stores_people_decide_whose_signatures_count,
    a_signed_run_waits_at_its_gate_for_someone_else_then_finishes,
    requests_of_someone_else_another_text_or_twice_are_refused,
    a_requester_has_a_limited_number_of_unended_runs,
    workflows_validate_with_line_and_field,
    a_hostile_workspace_is_refused_before_anything_is_stored,
    a_revoked_approval_or_a_blocked_plugin_stops_the_next_run,
);
