//! `relo plugin ...` end to end through the binary: an author signs, an operator adds,
//! inspects, approves, diffs, revokes and blocks; tampering and self-approval are
//! refused with their codes.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

fn relo(home: &Path, args: &[&str]) -> Output {
    crate::relo_command()
        .args(args)
        .env("RELO_HOME", home)
        .env_remove("RELO_DATABASE_URL")
        .env_remove("RELO_KEY_PASSWORD")
        .output()
        .expect("relo runs")
}

fn ok(output: &Output) -> Value {
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    serde_json::from_slice(&output.stdout).expect("JSON output")
}

fn refused(output: &Output, code: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        stderr.contains(&format!("refused ({code})")),
        "{code} not in: {stderr}"
    );
}

/// The `plugin.refused` codes in the home's control scope, in order.
fn recorded_refusals(home: &Path) -> Vec<String> {
    use sqlx::Connection as _;
    let url = format!("sqlite://{}", home.join("relo.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut db = sqlx::SqliteConnection::connect(&url).await.expect("open the store");
        let bodies: Vec<String> = sqlx::query_scalar(
            "SELECT body FROM evidence_entries WHERE scope = 'control' AND kind = 'plugin.refused' ORDER BY seq",
        )
        .fetch_all(&mut db)
        .await
        .expect("query");
        bodies
            .iter()
            .map(|body| {
                let body: Value = serde_json::from_str(body).expect("JSON body");
                body["code"].as_str().expect("code").to_owned()
            })
            .collect()
    })
}

const CONFIG: &str = r#"
[[trust.signers]]
key = "keys/author.pub"
plugins = ["relo-test/*"]
person = "ivan"

[[people]]
name = "olga"
keys = ["keys/olga.pub"]
roles = ["operator"]

[[people]]
name = "ivan"
keys = ["keys/ivan.pub"]
roles = ["operator", "plugin-author"]
"#;

const MANIFEST: &str = r#"
[plugin]
name = "relo-test/echo"
version = "1.0.0"
"#;

/// A relo home with these keys (`(name, type)` under `keys/`) and [`CONFIG`], and a work
/// folder with the echo component and [`MANIFEST`]: `(dir, home, wasm, manifest)`.
fn setup(keys: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let home = dir.path().join("home");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    for (name, kind) in keys {
        let stem = home.join("keys").join(name);
        ok(&relo(
            &home,
            &[
                "key",
                "generate",
                "--type",
                kind,
                "--out",
                stem.to_str().expect("utf-8 path"),
                "--json",
            ],
        ));
    }
    std::fs::write(home.join("relo.toml"), CONFIG).expect("relo.toml");
    let wasm = work.join("echo.wasm");
    std::fs::copy(relo_test_components::ECHO, &wasm).expect("echo component");
    let manifest = work.join("relo-plugin.toml");
    std::fs::write(&manifest, MANIFEST).expect("manifest");
    (dir, home, wasm, manifest)
}

#[test]
fn a_plugin_goes_from_signing_to_approval_to_block() {
    let (_dir, home, wasm, manifest) =
        setup(&[("author", "p256"), ("olga", "ed25519"), ("ivan", "p256")]);
    let work = wasm.parent().unwrap().to_owned();
    let path = |p: &Path| p.to_str().unwrap().to_owned();

    // The author signs; no home is needed for that.
    let author_key = path(&home.join("keys/author.key"));
    let signed = ok(&relo(
        &home,
        &[
            "plugin",
            "sign",
            &path(&wasm),
            "--manifest",
            &path(&manifest),
            "--key",
            &author_key,
            "--json",
        ],
    ));
    let digest = signed["digest"].as_str().unwrap().to_owned();
    let attestation = work.join("echo.attestation.json");
    let bundle = work.join("echo.sigstore.json");
    assert!(attestation.is_file() && bundle.is_file());

    // One flipped byte of the component: refused at import.
    let tampered = work.join("tampered.wasm");
    let mut bytes = std::fs::read(&wasm).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&tampered, bytes).unwrap();
    refused(
        &relo(
            &home,
            &["plugin", "add", &path(&tampered), &path(&attestation)],
        ),
        "digest-mismatch",
    );

    // A wider manifest beside the signed one: refused.
    let wider = work.join("wider.toml");
    std::fs::write(
        &wider,
        format!(
            "{MANIFEST}\n[[egress]]\nurl = \"https://evil.example.net/*\"\nmethods = [\"POST\"]\n"
        ),
    )
    .unwrap();
    refused(
        &relo(
            &home,
            &[
                "plugin",
                "add",
                &path(&wasm),
                &path(&attestation),
                "--manifest",
                &path(&wider),
            ],
        ),
        "manifest-mismatch",
    );

    // The bundle imports.
    let added = ok(&relo(
        &home,
        &[
            "plugin",
            "add",
            &path(&wasm),
            &path(&bundle),
            "--manifest",
            &path(&manifest),
            "--json",
        ],
    ));
    assert_eq!(added["digest"], digest.as_str());
    assert_eq!(added["signer_person"], "ivan");
    assert_eq!(added["new"], true);

    let inspected = ok(&relo(
        &home,
        &["plugin", "inspect", "relo-test/echo@1.0.0", "--json"],
    ));
    assert_eq!(inspected["name"], "relo-test/echo");
    assert_eq!(inspected["digest"], digest.as_str());
    assert_eq!(inspected["verification"]["verified"], true);
    let imports = inspected["imports"].as_array().unwrap();
    assert!(
        imports
            .iter()
            .any(|i| i.as_str().unwrap().starts_with("relo:plugin/")),
        "{imports:?}"
    );
    assert!(inspected["capabilities"]["limits"]["fuel"].is_u64());

    // Ivan signed it (his author key); he cannot approve it with his own person key.
    let ivan_key = path(&home.join("keys/ivan.key"));
    refused(
        &relo(
            &home,
            &[
                "plugin",
                "approve",
                "relo-test/echo@1.0.0",
                "--key",
                &ivan_key,
            ],
        ),
        "separation-of-duties",
    );

    assert_eq!(
        recorded_refusals(&home),
        [
            "digest-mismatch",
            "manifest-mismatch",
            "separation-of-duties"
        ],
        "every refusal is recorded in the control scope"
    );

    let olga_key = path(&home.join("keys/olga.key"));
    let out = work.join("approval.json");
    let approved = ok(&relo(
        &home,
        &[
            "plugin",
            "approve",
            &format!("sha256:{digest}"),
            "--key",
            &olga_key,
            "--expires",
            "30d",
            "--out",
            &path(&out),
            "--json",
        ],
    ));
    assert_eq!(approved["approver"], "olga");
    assert!(approved["expires_at"].as_str().unwrap().ends_with('Z'));
    assert!(out.is_file());
    let approval_id = approved["approval_id"].as_str().unwrap().to_owned();

    let diff = ok(&relo(
        &home,
        &["plugin", "diff", "relo-test/echo@1.0.0", "--json"],
    ));
    assert_eq!(diff["widens"], false);
    assert!(diff["old"].as_str().unwrap().contains(&approval_id));

    // Revoking and blocking need an operator.
    let revoke = relo(
        &home,
        &[
            "plugin",
            "revoke-approval",
            &approval_id[..16],
            "--reason",
            "test",
            "--as",
            "nobody",
        ],
    );
    assert_eq!(revoke.status.code(), Some(1));
    ok(&relo(
        &home,
        &[
            "plugin",
            "revoke-approval",
            &approval_id[..16],
            "--reason",
            "test",
            "--as",
            "olga",
            "--json",
        ],
    ));
    let blocked = ok(&relo(
        &home,
        &[
            "plugin",
            "block",
            &format!("sha256:{digest}"),
            "--reason",
            "test",
            "--as",
            "olga",
            "--json",
        ],
    ));
    assert_eq!(blocked["new"], true);
    let again = ok(&relo(
        &home,
        &[
            "plugin", "block", &digest, "--reason", "test", "--as", "olga", "--json",
        ],
    ));
    assert_eq!(again["new"], false);
}

#[test]
fn garbage_attestations_and_untrusted_signers_are_refused_at_import() {
    let (dir, home, wasm, manifest) = setup(&[
        ("author", "p256"),
        ("stranger", "p256"),
        ("olga", "ed25519"),
        ("ivan", "p256"),
    ]);
    let w = wasm.to_str().unwrap();
    let m = manifest.to_str().unwrap();
    let stranger = home.join("keys/stranger.key");
    let out = dir.path().join("stranger.json");
    ok(&relo(
        &home,
        &[
            "plugin",
            "sign",
            w,
            "--manifest",
            m,
            "--key",
            stranger.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--json",
        ],
    ));
    refused(
        &relo(&home, &["plugin", "add", w, out.to_str().unwrap()]),
        "untrusted-signer",
    );

    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{\"payload\": \"trunc").unwrap();
    refused(
        &relo(&home, &["plugin", "add", w, garbage.to_str().unwrap()]),
        "malformed-attestation",
    );
    assert_eq!(
        recorded_refusals(&home),
        ["untrusted-signer", "malformed-attestation"]
    );
}

#[test]
fn plan_shows_each_step_s_plugin_signer_approval_and_grant_without_running() {
    let (_dir, home, wasm, manifest) =
        setup(&[("author", "p256"), ("olga", "ed25519"), ("ivan", "p256")]);
    let path = |p: &Path| p.to_str().expect("utf-8").to_owned();
    let author_key = path(&home.join("keys/author.key"));
    let signed = ok(&relo(
        &home,
        &[
            "plugin",
            "sign",
            &path(&wasm),
            "--manifest",
            &path(&manifest),
            "--key",
            &author_key,
            "--json",
        ],
    ));
    let digest = signed["digest"].as_str().expect("digest").to_owned();
    let attestation = wasm.with_file_name("echo.attestation.json");
    ok(&relo(
        &home,
        &["plugin", "add", &path(&wasm), &path(&attestation), "--json"],
    ));
    let workflow = wasm.with_file_name("release.yaml");
    std::fs::write(
        &workflow,
        "apiVersion: relo.dev/v1\nkind: Workflow\nname: release\nsteps:\n\
         \x20 - id: first\n    uses: relo-test/echo@1.0.0\n\
         \x20 - id: gate\n    needs: [first]\n    approval: { roles: [operator], quorum: 1 }\n\
         \x20 - id: last\n    needs: [gate]\n    uses: relo-test/echo@1.0.0\n",
    )
    .expect("workflow");

    // Not yet approved: the plan says so for both steps, and exits 1.
    let unapproved = relo(&home, &["plan", &path(&workflow), "--json"]);
    assert_eq!(unapproved.status.code(), Some(1), "{unapproved:?}");
    let plan: Value = serde_json::from_slice(&unapproved.stdout).expect("JSON");
    assert_eq!(plan["refused"], 2);
    assert_eq!(plan["steps"][0]["refused"]["code"], "not-approved");

    let olga_key = path(&home.join("keys/olga.key"));
    let approved = ok(&relo(
        &home,
        &[
            "plugin",
            "approve",
            "relo-test/echo@1.0.0",
            "--key",
            &olga_key,
            "--json",
        ],
    ));
    let plan = ok(&relo(&home, &["plan", &path(&workflow), "--json"]));
    assert_eq!(plan["refused"], 0);
    let steps = plan["steps"].as_array().expect("steps");
    let waves: Vec<(&str, u64)> = steps
        .iter()
        .map(|s| {
            (
                s["id"].as_str().expect("id"),
                s["wave"].as_u64().expect("wave"),
            )
        })
        .collect();
    assert_eq!(waves, [("first", 0), ("gate", 1), ("last", 2)]);
    assert_eq!(steps[0]["digest"], digest.as_str());
    assert_eq!(steps[0]["signer_person"], "ivan");
    assert_eq!(steps[0]["approval_id"], approved["approval_id"]);
    assert!(steps[0]["limits"]["fuel"].is_u64());
    assert_eq!(steps[1]["approval_gate"]["quorum"], 1);

    // The same in words.
    let text = relo(&home, &["plan", &path(&workflow)]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("approval gate"), "{text}");
    assert!(text.contains(&digest), "{text}");
}

#[test]
fn relo_run_runs_approved_plugins_with_a_signed_request_and_the_log_verifies() {
    let (_dir, home, wasm, manifest) = setup(&[
        ("author", "p256"),
        ("olga", "ed25519"),
        ("ivan", "p256"),
        ("evidence", "ed25519"),
    ]);
    let path = |p: &Path| p.to_str().expect("utf-8").to_owned();
    let author_key = path(&home.join("keys/author.key"));
    ok(&relo(
        &home,
        &[
            "plugin",
            "sign",
            &path(&wasm),
            "--manifest",
            &path(&manifest),
            "--key",
            &author_key,
            "--json",
        ],
    ));
    let attestation = wasm.with_file_name("echo.attestation.json");
    ok(&relo(
        &home,
        &["plugin", "add", &path(&wasm), &path(&attestation), "--json"],
    ));
    let olga_key = path(&home.join("keys/olga.key"));
    ok(&relo(
        &home,
        &[
            "plugin",
            "approve",
            "relo-test/echo@1.0.0",
            "--key",
            &olga_key,
            "--json",
        ],
    ));
    let workflow = wasm.with_file_name("release.yaml");
    std::fs::write(
        &workflow,
        "apiVersion: relo.dev/v1\nkind: Workflow\nname: release\n\
         params:\n  version: { type: string, pattern: '^\\d+\\.\\d+\\.\\d+$' }\nsteps:\n\
         \x20 - id: first\n    uses: relo-test/echo@1.0.0\n    with: { version: \"${{ params.version }}\" }\n\
         \x20 - id: second\n    needs: [first]\n    uses: relo-test/echo@1.0.0\n    with: { tag: \"v${{ steps.first.outputs.echo.version }}\" }\n",
    )
    .expect("workflow");

    let ran = ok(&relo(
        &home,
        &[
            "run",
            &path(&workflow),
            "--param",
            "version=1.2.3",
            "--as",
            "olga",
            "--json",
        ],
    ));
    assert_eq!(ran["outcome"], "succeeded", "{ran}");
    let second = ran["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["id"] == "second")
        .expect("second");
    assert_eq!(second["output"]["echo"]["tag"], "v1.2.3");
    ok(&relo(
        &home,
        &[
            "evidence",
            "verify",
            "--run",
            ran["run_id"].as_str().expect("id"),
            "--json",
        ],
    ));

    // A value that breaks the declared pattern, and a key that is not the requester's.
    let bad = relo(
        &home,
        &[
            "run",
            &path(&workflow),
            "--param",
            "version=latest",
            "--as",
            "olga",
        ],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("does not match"),
        "{bad:?}"
    );
    let ivan_key = path(&home.join("keys/ivan.key"));
    let impostor = relo(
        &home,
        &[
            "run",
            &path(&workflow),
            "--param",
            "version=1.2.3",
            "--as",
            "olga",
            "--key",
            &ivan_key,
        ],
    );
    assert_eq!(impostor.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&impostor.stderr).contains("is ivan's"),
        "{impostor:?}"
    );
}
