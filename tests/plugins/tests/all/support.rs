//! What the plugin tests share: one sandbox, the demo's stand-ins, grants computed from
//! each plugin's manifest, a workspace copied from the sample repository state, keys and
//! secrets made at test time, and a finished step's output and evidence.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use relo_evidence::{EvidenceEvent, EvidenceRecord, MemorySink, Scope};
use relo_manifest::OperatorConfig;
use relo_policy::{Capabilities, declared_capabilities, effective_grant, operator_ceilings};
use relo_sandbox::{
    LoopbackOnly, Sandbox, SandboxConfig, StepContext, StepCredentials, StepFailure, StepOutcome,
    StepRequest,
};
use relo_secrets::{FileProvider, StepSecrets};
use relo_stand_ins::{Forge, Target};
use relo_test_components::plugins;
use relo_trust::{KeyAlgorithm, KeyFileSigner, KeyPaths, PublicKey, Signer};
use serde_json::Value;

/// The token the demo forge accepts and the step's secret provider holds.
pub const FORGE_TOKEN: &str = "forge-token-for-tests-5d0c9e";

/// One engine for the test process. Egress may reach loopback only: the second guard
/// that keeps a policy bug from sending traffic off the machine.
static SANDBOX: LazyLock<Sandbox> = LazyLock::new(|| {
    Sandbox::new(SandboxConfig {
        address_filter: Arc::new(LoopbackOnly),
        max_concurrent_steps: 16,
        ..SandboxConfig::default()
    })
    .expect("the sandbox starts")
});

/// The repository root.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tests/plugins is two levels below the root")
        .to_path_buf()
}

/// The offline demo: the stand-in forge and deploy target on free loopback ports, and
/// an operator config that binds `forge` and `target` to them and lets loopback through.
pub struct Demo {
    pub forge: Forge,
    pub target: Target,
}

impl Demo {
    /// The stand-ins, the forge already having `v1.3.0`.
    pub async fn start() -> Self {
        Self::with_tags(&["v1.3.0"]).await
    }

    /// The stand-ins, the forge already having `tags`.
    pub async fn with_tags(tags: &[&str]) -> Self {
        let loopback = "127.0.0.1:0".parse().expect("address");
        Self {
            forge: Forge::start(loopback, FORGE_TOKEN, tags.iter().copied())
                .await
                .expect("the forge starts"),
            target: Target::start(loopback).await.expect("the target starts"),
        }
    }

    /// The operator config of the demo, with the endpoints bound to these stand-ins.
    fn config(&self) -> OperatorConfig {
        let text = format!(
            "[ceilings]\nfuel = 2_000_000_000\nmemory = \"256MiB\"\ntimeout = \"5m\"\n\
             allowed_networks = [\"127.0.0.0/8\"]\n\n[endpoints]\nforge = \"{}\"\n\
             target = \"{}\"\n",
            self.forge.url(),
            self.target.url()
        );
        relo_manifest::parse_operator("relo.toml", text.as_bytes())
            .unwrap_or_else(|problems| panic!("{}", problems.render()))
    }
}

/// A copy of `manifests/examples/release-demo`, removed when dropped.
pub struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    /// A fresh copy of the sample repository state.
    pub fn demo() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        copy_dir(
            &repo_root().join("manifests/examples/release-demo"),
            dir.path(),
        );
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path().join(relative))
            .unwrap_or_else(|error| panic!("{relative}: {error}"))
    }

    pub fn write(&self, relative: &str, text: &str) {
        std::fs::write(self.path().join(relative), text)
            .unwrap_or_else(|error| panic!("{relative}: {error}"));
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("the sample repository state") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A P-256 signing key made for one test, in a key file the key-file signer loads.
pub struct SigningKey {
    _dir: tempfile::TempDir,
    pub signer: Arc<KeyFileSigner>,
}

impl SigningKey {
    pub fn generate() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let paths = KeyPaths::from_stem(dir.path().join("release"));
        relo_trust::generate_key_files(KeyAlgorithm::EcdsaP256, &paths).expect("key files");
        let signer = KeyFileSigner::load(&paths.private).expect("the key file loads");
        Self {
            _dir: dir,
            signer: Arc::new(signer),
        }
    }

    pub fn public(&self) -> &PublicKey {
        self.signer.public_key()
    }
}

/// An edit that makes the approval narrower than the declaration.
type Narrowing = Box<dyn FnOnce(&mut Capabilities)>;

/// One run of a plugin: its input, the approval, the workspace and credentials.
pub struct Step {
    plugin: &'static plugins::Plugin,
    input: Value,
    narrow: Option<Narrowing>,
    workspace: Option<PathBuf>,
    credentials: StepCredentials,
}

impl Step {
    pub fn new(name: &str) -> Self {
        Self {
            plugin: plugins::find(name).unwrap_or_else(|| panic!("no plugin {name}")),
            input: Value::Object(serde_json::Map::new()),
            narrow: None,
            workspace: None,
            credentials: StepCredentials::default(),
        }
    }

    pub fn input(mut self, input: Value) -> Self {
        self.input = input;
        self
    }

    pub fn workspace(mut self, workspace: &Workspace) -> Self {
        self.workspace = Some(workspace.path().to_owned());
        self
    }

    /// Approves less than the manifest declares: `narrow` edits the approval.
    pub fn approve(mut self, narrow: impl FnOnce(&mut Capabilities) + 'static) -> Self {
        self.narrow = Some(Box::new(narrow));
        self
    }

    /// Signs with `key` for the logical key name `release`.
    pub fn signer(mut self, key: &SigningKey) -> Self {
        let signer: Arc<dyn Signer> = key.signer.clone();
        self.credentials
            .signers
            .insert("release".to_owned(), signer);
        self
    }

    /// Reads the secret `forge_token` (holding `value`) from a file provider.
    pub fn forge_token(mut self, value: &str) -> Self {
        self.credentials.secrets = Some(forge_token(value));
        self
    }

    /// Runs the step against `demo` with the grant computed from the plugin's manifest.
    pub async fn run(self, demo: &Demo) -> Ran {
        let manifest = std::fs::read(self.plugin.manifest).expect("relo-plugin.toml");
        let manifest = relo_manifest::parse_plugin(self.plugin.manifest, &manifest)
            .unwrap_or_else(|problems| panic!("{}", problems.render()));
        let config = demo.config();
        let declared = declared_capabilities(&manifest, &config).expect("endpoints bound");
        let mut approved = declared.clone();
        if let Some(narrow) = self.narrow {
            narrow(&mut approved);
        }
        let ceilings = operator_ceilings(&config).expect("ceilings");
        let (grant, limits) = effective_grant(&declared, &approved, &ceilings);

        let bytes = std::fs::read(self.plugin.wasm).expect("the plugin was built");
        let sink = Arc::new(MemorySink::new());
        let component = SANDBOX
            .load(&bytes, sink.as_ref(), &Scope::Control)
            .unwrap_or_else(|error| panic!("{} loads: {error}", self.plugin.name));
        let outcome = SANDBOX
            .run(
                &component,
                StepRequest {
                    context: StepContext {
                        run_id: "run-plugin-test".into(),
                        step_id: self.plugin.name.into(),
                        attempt: 1,
                    },
                    input: self.input.to_string(),
                    grant: Arc::new(grant),
                    limits,
                    workspace: self.workspace,
                    evidence: sink.clone(),
                    credentials: self.credentials,
                },
            )
            .await;
        Ran {
            outcome,
            evidence: sink.records(),
        }
    }
}

/// The secret `forge_token` bound to `test/forge_token#value` in a file provider.
fn forge_token(value: &str) -> StepSecrets {
    use std::os::unix::fs::PermissionsExt as _;
    // The provider reads the file when it opens; the folder may go right after.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("secrets.json");
    let json = serde_json::json!({ "test/forge_token": { "value": value } });
    std::fs::write(&file, json.to_string()).expect("secrets file");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let provider = FileProvider::open(&file).expect("file provider");
    let path = "test/forge_token#value".parse().expect("secret path");
    StepSecrets::new(
        Arc::new(provider),
        BTreeMap::from([("forge_token".to_owned(), path)]),
    )
}

/// A finished step and the evidence it produced.
pub struct Ran {
    pub outcome: StepOutcome,
    pub evidence: Vec<EvidenceRecord>,
}

impl Ran {
    /// The output JSON; panics with the failure and the logs if the step failed.
    pub fn output(&self) -> Value {
        match &self.outcome.result {
            Ok(json) => serde_json::from_str(json).expect("output is JSON"),
            Err(failure) => panic!("step failed: {failure}; logs: {:#?}", self.outcome.logs),
        }
    }

    /// The step's own error, `(kind, message)`; panics on success or another failure.
    pub fn error(&self) -> (&str, &str) {
        match &self.outcome.result {
            Err(StepFailure::StepError { kind, message }) => (kind, message),
            Err(other) => panic!("expected the step's own error, got {other:?}"),
            Ok(json) => panic!("step succeeded unexpectedly with {json}"),
        }
    }

    /// Asserts the step failed with `kind` and a message containing each of `parts`;
    /// returns the message.
    pub fn assert_error(&self, kind: &str, parts: &[&str]) -> String {
        let (found, message) = self.error();
        assert_eq!(found, kind, "{message}");
        for part in parts {
            assert!(message.contains(part), "`{part}` is not in: {message}");
        }
        let finished = match self.evidence.last().map(|record| &record.event) {
            Some(EvidenceEvent::StepFinished { outcome, .. }) => outcome.clone(),
            other => panic!("the evidence does not end with step.finished: {other:?}"),
        };
        assert_eq!(finished, "step-error");
        message.to_owned()
    }

    /// Every event of `kind`, in order.
    pub fn events(&self, kind: &str) -> Vec<&EvidenceEvent> {
        self.evidence
            .iter()
            .map(|record| &record.event)
            .filter(|event| event.kind() == kind)
            .collect()
    }

    /// The grant the step started with, as the evidence records it.
    pub fn granted(&self) -> Value {
        match self.events("step.started").first() {
            Some(EvidenceEvent::StepStarted { grant, .. }) => grant.clone(),
            other => panic!("no step.started: {other:?}"),
        }
    }

    /// `METHOD path` of every request the host allowed.
    pub fn allowed_requests(&self) -> Vec<String> {
        self.events("egress.allowed")
            .into_iter()
            .map(|event| match event {
                EvidenceEvent::EgressAllowed { method, path, .. } => format!("{method} {path}"),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    /// `(METHOD path, code)` of every request the host denied.
    pub fn denied_requests(&self) -> Vec<(String, String)> {
        self.events("egress.denied")
            .into_iter()
            .map(|event| match event {
                EvidenceEvent::EgressDenied {
                    method, path, code, ..
                } => (format!("{method} {path}"), code.clone()),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    /// Everything the host kept of the step as text: output or failure, logs, stdout,
    /// stderr and evidence, to search for what must never be there.
    pub fn everything(&self) -> String {
        let result = match &self.outcome.result {
            Ok(output) => output.clone(),
            Err(failure) => failure.to_string(),
        };
        let logs: Vec<&str> = self
            .outcome
            .logs
            .iter()
            .map(|line| line.message.as_str())
            .collect();
        format!(
            "{result}\n{}\n{}\n{}\n{}",
            logs.join("\n"),
            String::from_utf8_lossy(&self.outcome.stdout),
            String::from_utf8_lossy(&self.outcome.stderr),
            serde_json::to_string(&self.evidence).expect("evidence serialises")
        )
    }

    /// The log lines of `level`.
    pub fn logs(&self, level: &str) -> Vec<&str> {
        self.outcome
            .logs
            .iter()
            .filter(|line| line.level == level)
            .map(|line| line.message.as_str())
            .collect()
    }
}

/// A digest that is not the sample's, for the image.
pub const IMAGE_DIGEST: &str =
    "sha256:4b1a0c6f2e9d8c7b6a5f4e3d2c1b0a99887766554433221100ffeeddccbbaa99";
