//! Hostile components against fuel, memory, stack, wall clock, output and log limits.
//! Each ends with its named limit (or trap), recorded as evidence with the usage.

use std::time::Duration;

use relo_evidence::EvidenceEvent;
use relo_policy::{LimitKind, Limits};
use relo_sandbox::StepFailure;
use serde_json::json;

use crate::support::{Ran, Step, assert_engine_still_serves};

/// Asserts the step was stopped by `kind` and that the evidence says so, with usage.
fn assert_limit(ran: &Ran, kind: LimitKind) {
    assert_eq!(ran.failure().limit(), Some(kind), "{:?}", ran.failure());
    match ran.only("limit.exceeded") {
        EvidenceEvent::LimitExceeded {
            limit,
            allowed,
            requested,
        } => {
            assert_eq!(limit, kind.code());
            // A timeout fires at its deadline, so the time used can equal the limit
            // (to the millisecond); every other limit is exceeded by a request above it.
            if kind == LimitKind::Timeout {
                assert!(requested >= allowed, "{requested} >= {allowed}");
            } else {
                assert!(requested > allowed, "{requested} > {allowed}");
            }
        }
        other => panic!("{other:?}"),
    }
    ran.assert_bracketed("limit-exceeded");
    assert!(
        ran.outcome
            .logs
            .iter()
            .any(|line| line.message.contains(kind.code())),
        "the step log names the limit: {:?}",
        ran.outcome.logs
    );
}

#[tokio::test]
pub async fn fuel_infinite_loop() {
    let limits = Limits {
        fuel: 20_000_000,
        ..Limits::default()
    };
    let ran = Step::new("fuel-infinite-loop").limits(limits).run().await;
    assert_limit(&ran, LimitKind::Fuel);
    assert_eq!(ran.outcome.usage.fuel, 20_000_000, "all fuel was used");
    assert_engine_still_serves().await;
}

#[tokio::test]
pub async fn memory_grow() {
    let limits = Limits {
        memory_bytes: 16 * 1024 * 1024,
        ..Limits::default()
    };
    let ran = Step::new("memory-grow").limits(limits).run().await;
    assert_limit(&ran, LimitKind::Memory);
    let peak = ran.outcome.usage.memory_peak_bytes;
    assert!(
        peak > 8 * 1024 * 1024 && peak <= 16 * 1024 * 1024,
        "peak {peak}"
    );
    assert_engine_still_serves().await;
}

#[tokio::test]
pub async fn stack_overflow() {
    let ran = Step::new("stack-overflow").run().await;
    match ran.failure() {
        StepFailure::Trap { message } => {
            assert!(message.contains("call stack exhausted"), "{message}");
        }
        other => panic!("expected a stack-overflow trap, got {other:?}"),
    }
    ran.assert_bracketed("trap");
    assert_engine_still_serves().await;
}

#[tokio::test]
pub async fn output_huge() {
    let limits = Limits {
        output_bytes: 1024 * 1024,
        ..Limits::default()
    };
    let ran = Step::new("output-huge")
        .input(json!({"bytes": 2 * 1024 * 1024}))
        .limits(limits)
        .run()
        .await;
    assert_limit(&ran, LimitKind::Output);
    match ran.only("step.finished") {
        EvidenceEvent::StepFinished { output_sha256, .. } => assert!(output_sha256.is_none()),
        other => panic!("{other:?}"),
    }
    assert_engine_still_serves().await;
}

#[tokio::test]
pub async fn output_within_the_limit_is_accepted() {
    let ran = Step::new("output-huge")
        .input(json!({"bytes": 1000}))
        .run()
        .await;
    assert_eq!(ran.output()["data"].as_str().map(str::len), Some(1000));
}

async fn busy_step(mode: &str) -> Ran {
    let limits = Limits {
        fuel: u64::MAX / 2,
        timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    Step::new("timeout-busy")
        .input(json!({"mode": mode}))
        .limits(limits)
        .run()
        .await
}

#[tokio::test]
pub async fn timeout_busy() {
    let ran = busy_step("spin").await;
    assert_limit(&ran, LimitKind::Timeout);
    assert!(
        ran.outcome.usage.wall_ms >= 300,
        "{}",
        ran.outcome.usage.wall_ms
    );
    assert_engine_still_serves().await;
}

#[tokio::test]
pub async fn a_step_asleep_in_the_host_is_stopped_by_the_timeout() {
    let ran = busy_step("sleep").await;
    assert_limit(&ran, LimitKind::Timeout);
    assert_engine_still_serves().await;
}

#[test]
fn a_busy_step_does_not_starve_other_steps() {
    // One thread for everything: a step that spins must still yield, so a normal step
    // started after it finishes while the spinner is still running.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let limits = Limits {
            fuel: u64::MAX / 2,
            timeout: Duration::from_secs(20),
            ..Limits::default()
        };
        let spinner = tokio::spawn(
            Step::new("timeout-busy")
                .input(json!({"mode": "spin"}))
                .limits(limits)
                .run(),
        );
        tokio::task::yield_now().await;
        assert_engine_still_serves().await;
        assert!(
            !spinner.is_finished(),
            "the spinner should still be running"
        );
        spinner.abort();
    });
}

async fn flood(via: &str) -> Ran {
    let limits = Limits {
        log_bytes: 64 * 1024,
        ..Limits::default()
    };
    Step::new("log-flood")
        .input(json!({"via": via}))
        .limits(limits)
        .run()
        .await
}

#[tokio::test]
pub async fn log_flood() {
    let ran = flood("log").await;
    assert_limit(&ran, LimitKind::Log);
    let logged: usize = ran.outcome.logs.iter().map(|line| line.message.len()).sum();
    assert!(logged <= 64 * 1024 + 1024, "captured {logged} bytes");
    assert_engine_still_serves().await;
}

#[tokio::test]
pub async fn stdout_and_stderr_floods_hit_the_log_limit() {
    for via in ["stdout", "stderr"] {
        let ran = flood(via).await;
        assert_limit(&ran, LimitKind::Log);
        let captured = ran.outcome.stdout.len() + ran.outcome.stderr.len();
        assert!(captured <= 64 * 1024, "{via}: captured {captured} bytes");
    }
    assert_engine_still_serves().await;
}

#[tokio::test]
pub async fn trap_panic() {
    let ran = Step::new("trap-panic").run().await;
    match ran.failure() {
        StepFailure::Trap { message } => {
            assert!(
                message.contains("relo test component panicked on purpose"),
                "{message}"
            );
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    ran.assert_bracketed("trap");
    assert_engine_still_serves().await;
}

#[tokio::test]
pub async fn output_not_json() {
    let ran = Step::new("output-not-json").run().await;
    assert!(
        matches!(ran.failure(), StepFailure::InvalidOutput { .. }),
        "{:?}",
        ran.failure()
    );
    ran.assert_bracketed("invalid-output");
    assert_engine_still_serves().await;
}

#[tokio::test]
pub async fn every_step_reports_its_usage() {
    let ran = Step::new("echo").input(json!({"n": 1})).run().await;
    let usage = ran.outcome.usage;
    assert!(usage.fuel > 0);
    assert!(usage.memory_peak_bytes > 0);
    match ran.only("step.finished") {
        EvidenceEvent::StepFinished {
            usage: recorded,
            output_sha256,
            ..
        } => {
            assert_eq!(*recorded, usage);
            assert_eq!(output_sha256.as_ref().map(String::len), Some(64));
        }
        other => panic!("{other:?}"),
    }
}

/// A step that floods the host with refused calls, each under a 4 KiB name, is stopped
/// at its budget of refused host calls: the host records one denial per call within the
/// budget (each name cut to 256 bytes and marked), then the limit once with the count.
async fn host_call_flood(component: &'static str, kind: &str, budget: Option<u64>) -> Ran {
    let mut step = Step::new(component).input(json!({"calls": 100_000}));
    if let Some(host_calls) = budget {
        step = step.limits(Limits {
            host_calls,
            ..Limits::default()
        });
    }
    let ran = step.run().await;
    assert_limit(&ran, LimitKind::HostCalls);
    let allowed = budget.unwrap_or(relo_policy::DEFAULT_HOST_CALLS);
    match ran.only("limit.exceeded") {
        EvidenceEvent::LimitExceeded {
            allowed: recorded,
            requested,
            ..
        } => assert_eq!((*recorded, *requested), (allowed, allowed + 1)),
        other => panic!("{other:?}"),
    }
    let denials = ran.events(kind);
    assert_eq!(denials.len() as u64, allowed, "one entry per refused call");
    for denial in denials {
        let name = match denial {
            EvidenceEvent::SecretDenied { name, .. } => name,
            EvidenceEvent::SignerDenied { key, .. } => key,
            other => panic!("{other:?}"),
        };
        assert!(name.len() < 300, "a bounded name: {} bytes", name.len());
        assert!(name.ends_with("bytes]"), "the cut is marked: {name}");
    }
    // Each denial keeps at most a 256-byte name and a 2 KiB reason, whatever the guest
    // sent (100,000 calls of 4 KiB names would be 400 MiB).
    let size = ran.evidence_text().len();
    assert!(
        size < 4_096 * (allowed as usize + 4),
        "{size} bytes of evidence"
    );
    assert_engine_still_serves().await;
    ran
}

#[tokio::test]
pub async fn secrets_denied_flood() {
    host_call_flood("secrets-denied-flood", "secret.denied", None).await;
    host_call_flood("secrets-denied-flood", "secret.denied", Some(3)).await;
}

#[tokio::test]
pub async fn signer_denied_flood() {
    host_call_flood("signer-denied-flood", "signer.denied", None).await;
}

/// Header maps live in the host's resource table, outside the step's linear memory: a
/// step that keeps building them is stopped at the table's cap with `host-resources`.
#[tokio::test]
pub async fn egress_fields_flood() {
    let ran = Step::new("egress-fields-flood").run().await;
    assert_limit(&ran, LimitKind::HostResources);
    assert_engine_still_serves().await;
}
