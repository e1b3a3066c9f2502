//! The reference release (`manifests/release.yaml`) end to end through the `relo`
//! binary, with the official plugins, against the demo's stand-in forge and deploy
//! target started by the test on free loopback ports: the happy path with its approval
//! gate (the requester's own approval refused), a release commit that changes another
//! file, a message that disagrees with VERSION, a tampered plugin, a process killed
//! with SIGKILL in the middle of the deploy step and resumed, and two runs of one
//! concurrency group.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use relo_stand_ins::{Forge, Target};
use relo_test_components::plugins;
use serde_json::Value;

/// The image the release deploys.
const IMAGE_DIGEST: &str =
    "sha256:8f4b8c6e1f5a3d2c7b9e0a1f2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6e5f4";

/// The forge token, in the home's secrets file only.
const TOKEN: &str = "demo-forge-token-5b1f0c";

/// A release home and its stand-ins.
pub(crate) struct Release {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) home: PathBuf,
    pub(crate) workflow: PathBuf,
    pub(crate) forge: Forge,
    pub(crate) target: Target,
    /// The database every `relo` command uses (`RELO_DATABASE_URL`); the home's SQLite
    /// file when `None`.
    database: Option<String>,
    /// Keeps the stand-ins' runtime alive.
    _runtime: tokio::runtime::Runtime,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

impl Release {
    /// A relo home made by `relo init --from` the demo's relo.toml (endpoints bound to
    /// the stand-ins), the plugins signed by ivan and approved by olga, and a copy of
    /// the reference workflow and its sample repository to change.
    fn new() -> Self {
        Self::with_database(None)
    }

    /// [`Release::new`] on the database `database` instead of the home's SQLite file.
    pub(crate) fn with_database(database: Option<String>) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let token = TOKEN;
        let loopback = "127.0.0.1:0".parse().expect("addr");
        let forge = runtime
            .block_on(Forge::start(loopback, token, ["v1.3.0"]))
            .expect("forge");
        let target = runtime.block_on(Target::start(loopback)).expect("target");
        let dir = tempfile::tempdir().expect("tempdir");
        let config = std::fs::read_to_string(repo().join("manifests/relo.toml"))
            .expect("relo.toml")
            .replace("http://127.0.0.1:18081", forge.url())
            .replace("http://127.0.0.1:18082", target.url());
        let config_path = dir.path().join("relo.toml");
        std::fs::write(&config_path, config).expect("config");
        let home = dir.path().join("home");
        let release = Self {
            workflow: dir.path().join("release.yaml"),
            home,
            forge,
            target,
            dir,
            database,
            _runtime: runtime,
        };
        ok(&release.relo(&["init", "--from", &path(&config_path), "--json"]));
        write_secrets(&release.home, token);
        std::fs::copy(repo().join("manifests/release.yaml"), &release.workflow).expect("copy");
        copy_tree(
            &repo().join("manifests/examples/release-demo"),
            &release.dir.path().join("examples/release-demo"),
        );
        for plugin in plugins::ALL {
            release.add_plugin(plugin, None);
        }
        release
    }

    /// Signs the plugin as ivan, adds it (after `tamper` changes the bytes, if given)
    /// and, if it was added, has olga approve it. Returns `plugin add`'s output.
    fn add_plugin(&self, plugin: &plugins::Plugin, tamper: Option<fn(&mut Vec<u8>)>) -> Output {
        let wasm = self.dir.path().join(format!("{}.wasm", plugin.name));
        std::fs::copy(plugin.wasm, &wasm).expect("copy the plugin");
        let key = self.home.join("keys/relo-plugins.key");
        ok(&self.relo(&[
            "plugin",
            "sign",
            &path(&wasm),
            "--manifest",
            plugin.manifest,
            "--key",
            &path(&key),
            "--json",
        ]));
        if let Some(tamper) = tamper {
            let mut bytes = std::fs::read(&wasm).expect("read");
            tamper(&mut bytes);
            std::fs::write(&wasm, bytes).expect("write");
        }
        let attestation = wasm.with_file_name(format!("{}.attestation.json", plugin.name));
        let added = self.relo(&["plugin", "add", &path(&wasm), &path(&attestation), "--json"]);
        if added.status.success() {
            let reference = format!("relo/{}@0.1.0", plugin.name);
            let olga = path(&self.home.join("keys/olga.key"));
            ok(&self.relo(&["plugin", "approve", &reference, "--key", &olga, "--json"]));
        }
        added
    }

    pub(crate) fn relo(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("relo runs")
    }

    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut command = crate::relo_command();
        command
            .args(args)
            .env("RELO_HOME", &self.home)
            .env_remove("RELO_DATABASE_URL")
            .env_remove("RELO_SERVER")
            .env_remove("RELO_KEY_PASSWORD");
        if let Some(url) = &self.database {
            command.env("RELO_DATABASE_URL", url);
        }
        command
    }

    /// The arguments of `relo run` of the release, requested by olga.
    pub(crate) fn run_args(&self) -> Vec<String> {
        let public_key = format!("public_key=@{}", path(&self.home.join("keys/release.pub")));
        [
            "run",
            &path(&self.workflow),
            "--as",
            "olga",
            "--json",
            "--param",
            &format!("image_digest={IMAGE_DIGEST}"),
            "--param",
            &public_key,
            "--param",
            &format!("forge={}", self.forge.url()),
            "--param",
            &format!("target={}", self.target.url()),
        ]
        .map(str::to_owned)
        .to_vec()
    }

    /// Runs the release; returns the exit code and the JSON result.
    fn run(&self) -> (Option<i32>, Value) {
        let args = self.run_args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = self.relo(&args);
        let result = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|_| panic!("JSON from relo run: {output:?}"));
        (output.status.code(), result)
    }

    fn sample(&self, file: &str) -> PathBuf {
        self.dir.path().join("examples/release-demo").join(file)
    }

    /// The bodies of the run's evidence entries of `kind`.
    pub(crate) fn evidence(&self, run: &str, kind: &str) -> Vec<Value> {
        let exported = self.dir.path().join(format!("{run}-{kind}.json"));
        ok(&self.relo(&[
            "evidence",
            "export",
            "--run",
            run,
            "--out",
            &path(&exported),
        ]));
        let envelope: Value =
            serde_json::from_slice(&std::fs::read(&exported).expect("export")).expect("JSON");
        let payload = decode_base64(envelope["payload"].as_str().expect("payload"));
        let statement: Value = serde_json::from_slice(&payload).expect("statement");
        statement["predicate"]["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .filter(|e| e["kind"] == kind)
            .map(|e| e["body"].clone())
            .collect()
    }

    /// The steps of `relo runs show --json`, by id: (state, attempt).
    pub(crate) fn steps(&self, run: &str) -> Vec<(String, String, i64)> {
        let shown = ok(&self.relo(&["runs", "show", run, "--json"]));
        shown["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .map(|s| {
                (
                    s["id"].as_str().expect("id").to_owned(),
                    s["state"].as_str().expect("state").to_owned(),
                    s["attempt"].as_i64().expect("attempt"),
                )
            })
            .collect()
    }
}

pub(crate) fn path(p: &Path) -> String {
    p.to_str().expect("utf-8").to_owned()
}

pub(crate) fn ok(output: &Output) -> Value {
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    serde_json::from_slice(&output.stdout).unwrap_or(Value::Null)
}

fn write_secrets(home: &Path, token: &str) {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(home.join("secrets.json"))
        .expect("secrets.json");
    write!(file, r#"{{"demo/forge": {{"token": "{token}"}}}}"#).expect("write");
}

fn decode_base64(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for byte in text.bytes().filter(|b| *b != b'=') {
        let value = ALPHABET.iter().position(|a| *a == byte).expect("base64") as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

fn run_id(result: &Value) -> String {
    result["run_id"].as_str().expect("run id").to_owned()
}

/// Approves the gate as `person`.
fn approve(release: &Release, run: &str, person: &str) -> Output {
    release.relo(&[
        "approve",
        "--run",
        run,
        "--step",
        "approve-release",
        "--as",
        person,
    ])
}

#[test]
fn the_release_waits_for_a_second_person_then_tags_signs_and_deploys_the_digest() {
    let release = Release::new();
    let (code, result) = release.run();
    assert_eq!(code, Some(3), "waiting for approval: {result}");
    assert_eq!(result["outcome"], "waiting-approval");
    assert_eq!(
        result["waiting_for"],
        serde_json::json!(["approve-release"])
    );
    let run = run_id(&result);
    assert!(
        release.forge.releases().is_empty(),
        "nothing published before the gate"
    );

    // olga requested the run: as a release manager she may approve others' runs, not hers.
    let own = approve(&release, &run, "olga");
    assert_eq!(own.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&own.stderr).contains("refused (separation-of-duties)"),
        "{own:?}"
    );
    let waiting = release.relo(&["resume", &run, "--json"]);
    assert_eq!(waiting.status.code(), Some(3), "still waiting: {waiting:?}");

    ok(&approve(&release, &run, "rita"));
    let resumed = release.relo(&["resume", &run, "--json"]);
    let result = ok(&resumed);
    assert_eq!(result["outcome"], "succeeded", "{result}");

    assert!(release.forge.tags().contains(&"v1.4.0".to_owned()));
    assert_eq!(release.forge.releases().len(), 1);
    assert_eq!(
        release.target.deployed().map(|d| d.digest),
        Some(IMAGE_DIGEST.to_owned())
    );
    for (id, state, attempt) in release.steps(&run) {
        assert_eq!(state, "succeeded", "{id}");
        // A gate is claimed again each time the run is driven; plugin steps ran once.
        if id != "approve-release" {
            assert_eq!(attempt, 1, "{id} ran once");
        }
    }
    ok(&release.relo(&["evidence", "verify", "--run", &run, "--json"]));
    let refused = release.evidence(&run, "gate.refused");
    assert_eq!(refused[0]["code"], "separation-of-duties", "{refused:?}");
    let approved = release.evidence(&run, "gate.approved");
    assert_eq!(approved[0]["approver"], "rita");
    // The deploy step's webhook was not granted: denied and recorded; the step went on.
    let denied = release.evidence(&run, "egress.denied");
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert!(
        denied[0].to_string().contains("18083") || denied[0]["port"] == 18083,
        "{denied:?}"
    );
    // The token was injected, never shown.
    let injected = release.evidence(&run, "secret.injected");
    assert_eq!(injected.len(), 2, "{injected:?}");
    let logs = release.relo(&["runs", "logs", &run]);
    assert!(logs.status.success());
    assert!(!String::from_utf8_lossy(&logs.stdout).contains(TOKEN));
    // No secret at rest: not in the database, its WAL or shared memory, step outputs,
    // logs or evidence included.
    for file in ["relo.db", "relo.db-wal", "relo.db-shm"] {
        let bytes = std::fs::read(release.home.join(file)).unwrap_or_default();
        assert!(
            !bytes.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes()),
            "the forge token is in {file}"
        );
    }
    assert!(
        !release.home.join("workspaces").join(&run).exists(),
        "the workspace is removed at the end"
    );
}

#[test]
fn a_release_commit_that_changes_another_file_fails_verification_naming_it() {
    let release = Release::new();
    std::fs::write(
        release.sample("commit.json"),
        r#"{"message": "Release v1.4.0", "changed": ["VERSION", "deploy/chart/Chart.yaml", "deploy/chart/values.yaml", "src/payment.rs"]}"#,
    )
    .expect("write");
    let (code, result) = release.run();
    assert_eq!(code, Some(1), "{result}");
    let cause = result["root_cause"].as_str().expect("root cause");
    assert!(cause.starts_with("verify-release: "), "{cause}");
    assert!(cause.contains("src/payment.rs"), "{cause}");
    let run = run_id(&result);
    let states: Vec<(String, String)> = release
        .steps(&run)
        .into_iter()
        .map(|(id, state, _)| (id, state))
        .collect();
    assert!(
        states.contains(&("approve-release".into(), "skipped".into())),
        "{states:?}"
    );
    assert!(release.forge.releases().is_empty());
}

#[test]
fn a_message_that_disagrees_with_version_fails_verification() {
    let release = Release::new();
    std::fs::write(
        release.sample("commit.json"),
        r#"{"message": "Release v1.4.1", "changed": ["VERSION", "deploy/chart/Chart.yaml", "deploy/chart/values.yaml"]}"#,
    )
    .expect("write");
    let (code, result) = release.run();
    assert_eq!(code, Some(1), "{result}");
    let cause = result["root_cause"].as_str().expect("root cause");
    assert!(
        cause.contains("VERSION") && cause.contains("1.4.0"),
        "{cause}"
    );
}

#[test]
fn a_tampered_plugin_is_refused_before_anything_runs() {
    let release = Release::new();
    // A new build of verify-release whose bytes changed after ivan signed them.
    let verify = plugins::find("verify-release").expect("plugin");
    let added = release.add_plugin(
        verify,
        Some(|bytes| {
            let last = bytes.len() - 1;
            bytes[last] ^= 0x01;
        }),
    );
    assert_eq!(added.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&added.stderr).contains("refused (digest-mismatch)"),
        "{added:?}"
    );
    // The bytes in the store replaced behind relo's back: refused at the step, before
    // compiling, and recorded.
    let db = release.home.join("relo.db");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        use sqlx::Connection as _;
        let mut connection = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path(&db)))
            .await
            .expect("connect");
        let echo = std::fs::read(relo_test_components::ECHO).expect("echo");
        sqlx::query("UPDATE plugins SET bytes = $1 WHERE name = 'relo/verify-release'")
            .bind(echo)
            .execute(&mut connection)
            .await
            .expect("tamper");
    });
    let (code, result) = release.run();
    assert_eq!(code, Some(1), "{result}");
    let cause = result["root_cause"].as_str().expect("root cause");
    assert!(cause.contains("refused (digest-mismatch)"), "{cause}");
    let refusals = release.evidence(&run_id(&result), "plugin.refused");
    assert_eq!(refusals[0]["code"], "digest-mismatch", "{refusals:?}");
    assert!(
        release
            .evidence(&run_id(&result), "step.started")
            .is_empty()
    );
}

#[test]
fn a_run_requested_with_a_key_nobody_holds_starts_nothing() {
    let release = Release::new();
    let stem = release.dir.path().join("stranger");
    ok(&release.relo(&[
        "key",
        "generate",
        "--type",
        "ed25519",
        "--out",
        &path(&stem),
    ]));
    // Signed as olga with a key [[people]] does not list: checked as a server checks it.
    let mut args = release.run_args();
    args.extend(["--key".to_owned(), path(&stem.with_extension("key"))]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = release.relo(&args);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("refused (unknown-signer)"),
        "{output:?}"
    );
    let listed = ok(&release.relo(&["runs", "list", "--json"]));
    assert_eq!(listed, serde_json::json!([]), "no run was stored");
    // The refusal is in the control chain.
    let db = release.home.join("relo.db");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let refused: Vec<String> = runtime.block_on(async {
        use sqlx::Connection as _;
        let mut connection = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path(&db)))
            .await
            .expect("connect");
        sqlx::query_scalar("SELECT body FROM evidence_entries WHERE kind = 'auth.refused'")
            .fetch_all(&mut connection)
            .await
            .expect("query")
    });
    assert_eq!(refused.len(), 1, "{refused:?}");
    let body: Value = serde_json::from_str(&refused[0]).expect("JSON");
    assert_eq!(body["code"], "unknown-signer");
    assert_eq!(body["who"], "olga");
    assert_eq!(body["route"], "relo run");
}

/// Waits until `done` holds, failing after a minute.
fn wait_for(what: &str, done: impl FnMut() -> bool) {
    poll(
        what,
        Duration::from_millis(50),
        Duration::from_secs(60),
        done,
    );
}

/// Checks `done` every `every` until it holds, failing after `within`.
pub(crate) fn poll(what: &str, every: Duration, within: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < within, "{what} never happened");
        std::thread::sleep(every);
    }
}

pub(crate) fn kill(child: &mut Child) {
    // SIGKILL: no chance to clean up, as in a crash.
    let status = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    child.wait().expect("reaped");
}

#[test]
fn a_run_killed_mid_deploy_resumes_without_rerunning_finished_steps() {
    let release = Release::new();
    let (_, result) = release.run();
    let run = run_id(&result);
    ok(&approve(&release, &run, "rita"));

    // The deploy target takes its time; relo is killed while the deploy step waits.
    release.target.delay_deployments(Duration::from_secs(20));
    let mut resumed = release
        .command(&["resume", &run, "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("relo resume");
    wait_for("the deploy request", || {
        release.target.deployments_received() == 1
    });
    kill(&mut resumed);
    let before = release.steps(&run);
    assert!(
        before
            .iter()
            .any(|(id, state, _)| id == "deploy" && (state == "running" || state == "claimed")),
        "{before:?}"
    );

    release.target.delay_deployments(Duration::ZERO);
    let result = ok(&release.relo(&["resume", &run, "--json"]));
    assert_eq!(result["outcome"], "succeeded", "{result}");
    for (id, state, attempt) in release.steps(&run) {
        assert_eq!(state, "succeeded", "{id}");
        match id.as_str() {
            "deploy" => assert_eq!(attempt, 2, "deploy was taken over"),
            "approve-release" => {}
            _ => assert_eq!(attempt, 1, "{id} was not run again"),
        }
    }
    assert_eq!(
        release.forge.releases().len(),
        1,
        "the release was published once"
    );
    let started: Vec<Value> = release.evidence(&run, "step.started");
    assert_eq!(
        started.len(),
        7,
        "six plugin steps, deploy twice: {started:?}"
    );
    assert_eq!(release.evidence(&run, "run.resumed").len(), 2);
    ok(&release.relo(&["evidence", "verify", "--run", &run, "--json"]));
}

#[test]
fn a_second_run_of_the_group_waits_its_turn_or_is_refused() {
    let release = Release::new();
    let (_, first) = release.run();
    let first = run_id(&first);

    // on_conflict: refuse
    let refusing = release.dir.path().join("refusing.yaml");
    let text = std::fs::read_to_string(&release.workflow)
        .expect("read")
        .replace("on_conflict: wait", "on_conflict: refuse");
    std::fs::write(&refusing, text).expect("write");
    let mut args = release.run_args();
    args[1] = path(&refusing);
    let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();
    let refused = release.relo(&args_ref);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains(&format!("busy with run {first}")),
        "{refused:?}"
    );

    // on_conflict: wait — the second run queues until the first has ended.
    let args = release.run_args();
    let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();
    let second = release
        .command(&args_ref)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("relo run");
    let queued = || {
        let listed = ok(&release.relo(&["runs", "list", "--json"]));
        listed
            .as_array()
            .expect("runs")
            .iter()
            .any(|r| r["state"] == "queued")
    };
    wait_for("the second run to queue", queued);
    ok(&approve(&release, &first, "rita"));
    let done = ok(&release.relo(&["resume", &first, "--json"]));
    assert_eq!(done["outcome"], "succeeded");

    // Its turn came after the first released v1.4.0: its own check finds the tag.
    let output = second.wait_with_output().expect("second run");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let result: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let cause = result["root_cause"].as_str().expect("root cause");
    assert!(
        cause.contains("v1.4.0") && cause.contains("exists"),
        "{cause}"
    );
}
