//! No-op steps per second through the orchestrator's runner against direct sandbox calls
//! in the same run, SQLite evidence on (durable before each result), for a fan-out of N
//! independent steps and a chain of N steps; printed as a Markdown table for
//! `docs/benchmarks.md`.
//!
//! ```sh
//! cargo bench -p relo-orchestrator --bench steps
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use relo_evidence::{EvidenceEvent, EvidenceRecord, EvidenceSink, Scope};
use relo_manifest::{parse_operator, parse_plugin, parse_workflow};
use relo_orchestrator::{CredentialSource, PluginCatalog, RunOutcome, RunSpec, Runner, Workspaces};
use relo_policy::{Grant, Limits, declared_capabilities};
use relo_sandbox::{Sandbox, SandboxConfig, StepContext, StepRequest};
use relo_store::{EvidenceWriter, NewApproval, NewPlugin, Store, WriterOptions};
use relo_trust::{KeyAlgorithm, PrivateKey, SignedApproval, SignedPlugin, TrustPolicy};
use tokio::task::JoinSet;

const N: usize = 200;

const CONFIG: &str = "[[trust.signers]]\nkey = \"keys/author.pub\"\nplugins = [\"bench/*\"]\n\n\
                      [[people]]\nname = \"olga\"\nkeys = [\"keys/olga.pub\"]\nroles = [\"operator\"]\n";

fn control(event: EvidenceEvent) -> EvidenceRecord {
    EvidenceRecord::new(Scope::Control, None, event)
}

/// A store holding `bench/echo`, signed and approved, and a runner over it.
async fn runner(
    home: &std::path::Path,
) -> (Arc<Runner>, Arc<Sandbox>, Arc<EvidenceWriter>, Vec<u8>) {
    std::fs::create_dir_all(home.join("keys")).expect("keys");
    let author = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    let olga = PrivateKey::generate(KeyAlgorithm::Ed25519);
    for (name, key) in [("author", &author), ("olga", &olga)] {
        std::fs::write(
            home.join(format!("keys/{name}.pub")),
            key.public_key().to_pem(),
        )
        .expect("key");
    }
    let config = parse_operator("relo.toml", CONFIG.as_bytes()).expect("config");
    let store = Store::connect(home, "sqlite://relo.db")
        .await
        .expect("store");
    let bytes = std::fs::read(relo_test_components::ECHO).expect("echo built");
    let manifest = parse_plugin(
        "relo-plugin.toml",
        b"[plugin]\nname = \"bench/echo\"\nversion = \"1.0.0\"\n",
    )
    .expect("manifest");
    let signed = SignedPlugin::sign(&bytes, &manifest, &author).expect("sign");
    let attestation = signed.envelope.to_json();
    let added = EvidenceEvent::PluginAdded {
        name: "bench/echo".into(),
        version: "1.0.0".into(),
        digest: signed.digest.clone(),
        signer_key_id: signed.key_id.clone(),
    };
    let plugin = NewPlugin {
        digest: &signed.digest,
        name: "bench/echo",
        version: "1.0.0",
        bytes: &bytes,
        attestation: &attestation,
    };
    store
        .add_plugin(&plugin, &control(added))
        .await
        .expect("add");
    let policy = TrustPolicy::load(&config, home).expect("policy");
    let verified = policy
        .verify_plugin(&bytes, attestation.as_bytes())
        .expect("verify");
    let declared = declared_capabilities(&verified.manifest, &config).expect("declared");
    let approval =
        SignedApproval::sign(&verified, declared, "olga", &olga, SystemTime::now(), None)
            .expect("approve");
    let granted = EvidenceEvent::ApprovalGranted {
        approval_id: approval.id.clone(),
        plugin: verified.reference(),
        digest: verified.digest.clone(),
        approver: "olga".into(),
        key_id: olga.key_id().to_owned(),
        expires_at: None,
    };
    let row = NewApproval {
        id: &approval.id,
        digest: &approval.digest,
        approved_by: "olga",
        document: &approval.envelope.to_json(),
        expires_at: None,
    };
    store
        .add_approval(&row, &control(granted))
        .await
        .expect("approval");
    let sandbox = Arc::new(Sandbox::new(SandboxConfig::default()).expect("sandbox"));
    let catalog = PluginCatalog::new(store.clone(), Arc::clone(&sandbox), config.clone(), home)
        .await
        .expect("catalog");
    let origin = store.evidence_origin().await.expect("origin");
    let writer = Arc::new(EvidenceWriter::spawn(
        store.clone(),
        WriterOptions {
            checkpoints: Some(relo_store::CheckpointPolicy {
                every: 100_000,
                signer: Arc::new(PrivateKey::generate(KeyAlgorithm::Ed25519)),
                key_name: origin.clone(),
                origin,
            }),
            ..WriterOptions::default()
        },
    ));
    let runner = Arc::new(Runner {
        store,
        catalog: Arc::new(catalog),
        sandbox: Arc::clone(&sandbox),
        credentials: CredentialSource::new(None, &config, BTreeMap::new()),
        evidence: Arc::clone(&writer),
        workspaces: Workspaces::new(home.join("workspaces")),
        progress: None,
        owner: "bench".into(),
        lease: Duration::from_secs(600),
        parallel: 16,
        max_active_runs: None,
    });
    (runner, sandbox, writer, bytes)
}

fn workflow(chain: bool) -> (relo_manifest::Workflow, String) {
    let mut text = String::from("apiVersion: relo.dev/v1\nkind: Workflow\nname: bench\nsteps:\n");
    for i in 0..N {
        text.push_str(&format!("  - id: s{i:04}\n    uses: bench/echo@1.0.0\n"));
        if chain && i > 0 {
            text.push_str(&format!("    needs: [s{:04}]\n", i - 1));
        }
    }
    let workflow = parse_workflow("bench.yaml", text.as_bytes()).expect("workflow");
    (workflow, text)
}

/// `count` direct `Sandbox::run` calls of echo, `parallel` at a time, evidence durable.
async fn direct(
    sandbox: &Arc<Sandbox>,
    writer: &Arc<EvidenceWriter>,
    bytes: &[u8],
    parallel: bool,
) -> Duration {
    let plugin = sandbox
        .load(bytes, writer.as_ref(), &Scope::Control)
        .expect("load");
    let started = Instant::now();
    let request = |i: usize| StepRequest {
        context: StepContext {
            run_id: "direct".into(),
            step_id: format!("s{i}"),
            attempt: 1,
        },
        input: "{}".into(),
        grant: Arc::new(Grant::deny_all()),
        limits: Limits::default(),
        workspace: None,
        evidence: Arc::clone(writer) as Arc<dyn EvidenceSink>,
        credentials: Default::default(),
    };
    if parallel {
        let mut set = JoinSet::new();
        for i in 0..N {
            let (sandbox, plugin, request) = (Arc::clone(sandbox), Arc::clone(&plugin), request(i));
            set.spawn(async move { sandbox.run(&plugin, request).await.result.is_ok() });
        }
        while let Some(ok) = set.join_next().await {
            assert!(ok.expect("joined"));
        }
    } else {
        for i in 0..N {
            assert!(sandbox.run(&plugin, request(i)).await.result.is_ok());
        }
    }
    started.elapsed()
}

fn per_second(d: Duration) -> f64 {
    N as f64 / d.as_secs_f64()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let home = tempfile::tempdir().expect("home");
        let (runner, sandbox, writer, bytes) = runner(home.path()).await;
        // Warm up: compile once, prime the catalog's verification cache.
        let _ = direct(&sandbox, &writer, &bytes, false).await;
        let mut rows = Vec::new();
        for (name, chain) in [("fan-out", false), ("chain", true)] {
            let (wf, text) = workflow(chain);
            let params = BTreeMap::new();
            let mut best_runner = Duration::MAX;
            let mut best_direct = Duration::MAX;
            for round in 0..3 {
                let started = Instant::now();
                let run_id = format!("bench-{name}-{round}");
                let spec = RunSpec {
                    run_id: &run_id,
                    workflow: &wf,
                    workflow_text: &text,
                    params: &params,
                    requested_by: "olga",
                    request: "{}",
                    workspace: None,
                };
                let outcome = runner.run(&spec).await.expect("run");
                // A run that failed fast would look fast: only succeeded runs count.
                assert_eq!(outcome, RunOutcome::Succeeded, "{name}");
                best_runner = best_runner.min(started.elapsed());
                best_direct = best_direct.min(direct(&sandbox, &writer, &bytes, !chain).await);
            }
            rows.push((name, per_second(best_runner), per_second(best_direct)));
        }
        println!("| {N} no-op steps | through the runner | direct `Sandbox::run` | ratio | budget |");
        println!("|---|---|---|---|---|");
        for (name, through, direct) in rows {
            println!(
                "| {name} | {through:.0} steps/s | {direct:.0} steps/s | {:.2}× | ≥ 2,000 steps/s |",
                through / direct
            );
        }
    });
}
