//! Loading: the import allowlist refuses before compiling, digests identify components,
//! the precompiled cache is trusted only when it matches its recorded hash, and a step's
//! result is refused when its evidence cannot be stored.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use relo_evidence::{
    EvidenceError, EvidenceEvent, EvidenceRecord, EvidenceSink, MemorySink, Scope, Ticket,
};
use relo_policy::{Grant, Limits};
use relo_sandbox::{Digest, LoadError, Sandbox, SandboxConfig, StepContext, StepRequest};
use serde_json::json;

use crate::support::{SANDBOX, Step, assert_engine_still_serves, load};

fn bytes(component: &str) -> Vec<u8> {
    let path = relo_test_components::path(component).expect("known component");
    std::fs::read(path).expect("built")
}

#[tokio::test]
pub async fn sockets_import() {
    let sink = MemorySink::new();
    let err = SANDBOX
        .load(&bytes("sockets-import"), &sink, &Scope::Control)
        .expect_err("a component importing wasi:sockets must be refused");
    match &err {
        LoadError::ForbiddenImport { import } => {
            assert!(import.starts_with("wasi:sockets/"), "{import}")
        }
        other => panic!("expected forbidden-import, got {other:?}"),
    }
    assert_eq!(err.code(), "forbidden-import");
    let records = sink.records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].scope, Scope::Control);
    match &records[0].event {
        EvidenceEvent::PluginRefused {
            code,
            digest,
            reason,
        } => {
            assert_eq!(code, "forbidden-import");
            assert_eq!(digest, &Digest::of(&bytes("sockets-import")).to_hex());
            assert!(reason.contains("wasi:sockets/"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_engine_still_serves().await;
}

#[tokio::test]
pub async fn a_core_module_is_refused_as_not_a_component() {
    let sink = MemorySink::new();
    let core_module = b"\0asm\x01\0\0\0";
    let err = SANDBOX
        .load(core_module, &sink, &Scope::Control)
        .expect_err("refused");
    assert_eq!(err.code(), "not-a-component");
    assert_eq!(sink.records()[0].event.kind(), "plugin.refused");
}

#[tokio::test]
pub async fn tampered_component_bytes_have_another_digest() {
    let original = bytes("echo");
    let mut tampered = original.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0xff;
    assert_ne!(Digest::of(&original), Digest::of(&tampered));
    assert_eq!(load("echo").digest(), Digest::of(&original));
}

#[tokio::test]
pub async fn loading_twice_reuses_the_linked_component() {
    assert!(Arc::ptr_eq(&load("echo"), &load("echo")));
}

#[tokio::test]
pub async fn bench_large() {
    let ran = Step::new("bench-large").input(json!({"n": 3})).run().await;
    assert!(ran.output()["result"].is_number(), "{}", ran.output());
    assert_engine_still_serves().await;
}

fn cached_sandbox(dir: &std::path::Path) -> Sandbox {
    Sandbox::new(SandboxConfig {
        cache_dir: Some(dir.to_owned()),
        max_concurrent_steps: 2,
        ..SandboxConfig::default()
    })
    .expect("sandbox")
}

async fn echo_on(sandbox: &Sandbox) -> String {
    let plugin = sandbox
        .load(&bytes("echo"), &MemorySink::new(), &Scope::Control)
        .expect("loads");
    let outcome = sandbox
        .run(
            &plugin,
            StepRequest {
                context: StepContext {
                    run_id: "run-cache".into(),
                    step_id: "echo".into(),
                    attempt: 1,
                },
                input: "{\"cached\":true}".into(),
                grant: Arc::new(Grant::deny_all()),
                limits: Limits::default(),
                workspace: None,
                evidence: Arc::new(MemorySink::new()),
                credentials: Default::default(),
            },
        )
        .await;
    outcome.result.expect("echo succeeds")
}

fn cache_entry(dir: &std::path::Path, extension: &str) -> std::path::PathBuf {
    std::fs::read_dir(dir)
        .expect("cache dir")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|e| e == extension))
        .unwrap_or_else(|| panic!("no .{extension} in the cache"))
}

#[tokio::test]
pub async fn the_precompiled_cache_is_written_and_reused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = echo_on(&cached_sandbox(dir.path())).await;
    let code = cache_entry(dir.path(), "cwasm");
    let written = std::fs::metadata(&code)
        .expect("cached")
        .modified()
        .expect("mtime");
    let second = echo_on(&cached_sandbox(dir.path())).await;
    assert_eq!(first, second);
    let reused = std::fs::metadata(&code)
        .expect("cached")
        .modified()
        .expect("mtime");
    assert_eq!(
        written, reused,
        "a valid cache entry is loaded, not rewritten"
    );
}

#[tokio::test]
pub async fn a_tampered_cache_entry_is_recompiled_never_loaded() {
    let dir = tempfile::tempdir().expect("tempdir");
    echo_on(&cached_sandbox(dir.path())).await;
    let code = cache_entry(dir.path(), "cwasm");
    let genuine = std::fs::read(&code).expect("read");
    // Flip bytes in the middle of the compiled code: loading this would run code that
    // relo never produced.
    let mut tampered = genuine.clone();
    let middle = tampered.len() / 2;
    for byte in &mut tampered[middle..middle + 64] {
        *byte ^= 0xa5;
    }
    std::fs::write(&code, &tampered).expect("tamper");
    let output = echo_on(&cached_sandbox(dir.path())).await;
    assert!(output.contains("cached"));
    assert_eq!(
        std::fs::read(&code).expect("read"),
        genuine,
        "the entry was recompiled and rewritten"
    );
}

/// A sink that accepts records but can never make them durable.
struct BrokenStore(MemorySink);

impl EvidenceSink for BrokenStore {
    fn enqueue(&self, record: EvidenceRecord) -> Ticket {
        self.0.enqueue(record)
    }

    fn durable(
        &self,
        _ticket: Ticket,
    ) -> Pin<Box<dyn Future<Output = Result<(), EvidenceError>> + Send + '_>> {
        Box::pin(async { Err(EvidenceError::Store("disk full".into())) })
    }
}

#[tokio::test]
pub async fn a_result_whose_evidence_is_not_durable_is_refused() {
    let plugin = load("echo");
    let outcome = SANDBOX
        .run(
            &plugin,
            StepRequest {
                context: StepContext {
                    run_id: "run-broken".into(),
                    step_id: "echo".into(),
                    attempt: 1,
                },
                input: "{}".into(),
                grant: Arc::new(Grant::deny_all()),
                limits: Limits::default(),
                workspace: None,
                evidence: Arc::new(BrokenStore(MemorySink::new())),
                credentials: Default::default(),
            },
        )
        .await;
    let failure = outcome.result.expect_err("refused");
    assert_eq!(failure.code(), "evidence-unavailable");
    assert!(failure.to_string().contains("disk full"));
}
