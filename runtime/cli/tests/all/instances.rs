//! Two `relo serve` processes on one PostgreSQL database: a run started through one is
//! visible through the other; a key an admin gives a person through one instance, and
//! the revocation of their old key through the other, decide whose gate approval counts
//! on both; the instance driving the run is killed with SIGKILL while a step waits on
//! the deploy target, and the other takes the run up once its leases run
//! out, running that step a second time and no other step again. The run's evidence
//! verifies and the release was published once.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};
use sqlx::{Connection as _, Executor as _};

use crate::release::{Release, kill, ok, poll};
use crate::serve::{Server, spawn_server};

const ADMIN_PASSWORD: &str = "a long development password";
const PASSWORD: &str = "another long password";

fn start(release: &Release) -> Server {
    let mut command = release.command(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--bootstrap-admin",
        "ada",
        "--lease-seconds",
        "3",
        "--sweep-seconds",
        "1",
        "--requests-per-minute",
        "10000",
    ]);
    command.env("RELO_ADMIN_PASSWORD", ADMIN_PASSWORD);
    spawn_server(command)
}

/// One JSON request to `url`; the status and the body.
fn request(
    url: &str,
    method: &str,
    route: &str,
    token: Option<&str>,
    body: &Value,
) -> (u16, Value) {
    let address = url.strip_prefix("http://").expect("plain HTTP on loopback");
    let mut stream = TcpStream::connect(address).expect("connect");
    let body = body.to_string();
    let auth = token.map_or_else(String::new, |t| format!("authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "{method} {route} HTTP/1.1\r\nhost: localhost\r\n{auth}content-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response[9..12].parse().expect("status");
    let payload = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(payload).unwrap_or(Value::Null))
}

/// A fresh schema of the test database, as a URL, or `None` when there is none.
fn fresh_schema() -> Option<String> {
    let base = relo_test_env::postgres_url()?;
    let name = format!("relo_cli_instances_{}", std::process::id());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut admin = sqlx::PgConnection::connect(&base).await.expect("connect");
        admin
            .execute(format!("DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}").as_str())
            .await
            .expect("schema");
        let _ = admin.close().await;
    });
    let separator = if base.contains('?') { '&' } else { '?' };
    Some(format!(
        "{base}{separator}options=-c%20search_path%3D{name}"
    ))
}

/// `relo --server URL ...` as `person`, logged in with its own config folder.
fn client(release: &Release, instance: &Server, config: &std::path::Path, args: &[&str]) -> Value {
    let mut all = vec!["--server", instance.url.as_str()];
    all.extend_from_slice(args);
    let output = release
        .command(&all)
        .env("RELO_CONFIG_DIR", config)
        .env("RELO_PASSWORD", PASSWORD)
        .output()
        .expect("relo");
    ok(&output)
}

/// Waits until `done` holds, checking every 300 ms (each check is a request to a
/// server), failing after two minutes.
fn wait_for(what: &str, done: impl FnMut() -> bool) {
    poll(
        what,
        Duration::from_millis(300),
        Duration::from_secs(120),
        done,
    );
}

fn state(release: &Release, instance: &Server, config: &std::path::Path, run: &str) -> Value {
    client(release, instance, config, &["runs", "show", run, "--json"])
}

#[test]
fn a_second_instance_takes_over_the_runs_of_one_killed_mid_step() {
    let Some(database) = fresh_schema() else {
        return;
    };
    let release = Release::with_database(Some(database));
    let mut first = start(&release);
    let mut second = start(&release);

    // ada (the bootstrap admin) lets olga and rita in; each logs in to one instance.
    let (status, login) = request(
        &first.url,
        "POST",
        "/v1/auth/login",
        None,
        &json!({"name": "ada", "password": ADMIN_PASSWORD}),
    );
    assert_eq!(status, 200, "{login}");
    let admin = login["access_token"].as_str().expect("token").to_owned();
    // The people of relo.toml were imported as users without a password; ada sets
    // olga's and rita's through the other instance (the instances share the home, so
    // its access token key, and the database).
    for name in ["olga", "rita"] {
        let (status, body) = request(
            &second.url,
            "PUT",
            &format!("/v1/users/{name}/password"),
            Some(&admin),
            &json!({"password": PASSWORD}),
        );
        assert_eq!(status, 204, "{body}");
    }
    let olga = release.dir.path().join("olga-config");
    let rita = release.dir.path().join("rita-config");
    client(&release, &first, &olga, &["login", "--name", "olga"]);
    client(&release, &second, &rita, &["login", "--name", "rita"]);

    // olga starts the release through the first instance; it stops at the gate.
    let mut args: Vec<String> = release.run_args();
    args.push("--no-follow".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let started = client(&release, &first, &olga, &args);
    let run = started["run_id"].as_str().expect("run id").to_owned();
    wait_for("the gate", || {
        state(&release, &second, &rita, &run)["state"] == "waiting-approval"
    });

    // People live in the store: through the first instance ada gives rita a key that
    // relo.toml has never listed, and through the second revokes the one it lists.
    let stem = release.dir.path().join("rita-new");
    let generated = release
        .command(&["key", "generate", "--type", "ed25519", "--out"])
        .arg(&stem)
        .output()
        .expect("relo key generate");
    ok(&generated);
    let public_key = std::fs::read_to_string(stem.with_extension("pub")).expect("public key");
    let (status, added) = request(
        &first.url,
        "POST",
        "/v1/users/rita/keys",
        Some(&admin),
        &json!({"public_key": public_key}),
    );
    assert_eq!(status, 201, "{added}");
    let (status, keys) = request(
        &second.url,
        "GET",
        "/v1/users/rita/keys",
        Some(&admin),
        &json!({}),
    );
    assert_eq!(status, 200, "{keys}");
    let imported = keys
        .as_array()
        .expect("keys")
        .iter()
        .find(|key| key["added_by"] == "relo.toml")
        .expect("rita's key of relo.toml")["key_id"]
        .as_str()
        .expect("key id")
        .to_owned();
    let (status, body) = request(
        &second.url,
        "POST",
        &format!("/v1/users/rita/keys/{imported}/revoke"),
        Some(&admin),
        &json!({}),
    );
    assert_eq!(status, 204, "{body}");

    // rita approves with the new key through the second instance. Either instance may
    // pick the run up and drive it on; whichever does is killed while the deploy step
    // waits on the target, and the other must take it over.
    release.target.delay_deployments(Duration::from_secs(30));
    let new_key = stem.with_extension("key");
    client(
        &release,
        &second,
        &rita,
        &[
            "approve",
            "--run",
            &run,
            "--step",
            "approve-release",
            "--as",
            "rita",
            "--key",
            new_key.to_str().expect("a UTF-8 path"),
        ],
    );
    wait_for("the deploy request", || {
        release.target.deployments_received() == 1
    });
    let shown = state(&release, &first, &olga, &run);
    let driver = shown["driver"].as_str().unwrap_or_default().to_owned();
    let drives = |server: &Server| driver.ends_with(&format!(":{}", server.child.id()));
    // The survivor, and the person logged in to it, follow the run to its end.
    let (survivor, person) = if drives(&second) {
        kill(&mut second.child);
        (&first, &olga)
    } else {
        assert!(
            drives(&first),
            "one of the two instances drives the run: {shown}"
        );
        kill(&mut first.child);
        (&second, &rita)
    };

    // The survivor takes the run up after the leases run out, and finishes it.
    release.target.delay_deployments(Duration::ZERO);
    wait_for("the run to succeed", || {
        let shown = state(&release, survivor, person, &run);
        assert_ne!(shown["state"], "failed", "{shown}");
        shown["state"] == "succeeded"
    });
    let shown = state(&release, survivor, person, &run);
    assert!(
        shown["driver"].as_str() != Some(driver.as_str()),
        "the killed instance no longer drives the run: {shown}"
    );
    for (id, state, attempt) in release.steps(&run) {
        assert_eq!(state, "succeeded", "{id}");
        match id.as_str() {
            "deploy" => assert_eq!(attempt, 2, "deploy ran again after the kill"),
            "approve-release" => {}
            _ => assert_eq!(attempt, 1, "{id} ran once"),
        }
    }
    assert_eq!(release.target.deployments_received(), 2);
    assert_eq!(release.forge.releases().len(), 1, "published once");
    let approved = release.evidence(&run, "gate.approved");
    assert_eq!(approved.len(), 1, "{approved:?}");
    assert_eq!(approved[0]["approver"], "rita");
    assert_eq!(
        approved[0]["key_id"], added["key_id"],
        "signed with the key ada added"
    );
    let started = release.evidence(&run, "step.started");
    assert_eq!(
        started.len(),
        7,
        "six plugin steps, deploy twice: {started:?}"
    );
    let verdict = client(
        &release,
        survivor,
        person,
        &["evidence", "verify", "--json"],
    );
    assert_eq!(verdict["verified"], true, "{verdict}");
}
