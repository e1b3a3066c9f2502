//! `relo approve --run ID --step ID`: a person's signed approval of an approval gate.
//!
//! The approval is signed with the approver's key and checked exactly as the runner
//! will check it (the key is the approver's in `[[people]]`, the person holds one of the
//! gate's roles, the person did not request the run); a refusal is recorded in the run's
//! evidence as well as reported. An accepted approval is stored with its `gate.approved`
//! entry; `relo resume` then continues the run.

use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context as _, bail};
use relo_evidence::{EvidenceEvent, EvidenceRecord, Scope};
use relo_orchestrator::GateApprovalPayload;
use relo_store::GateApproval;
use relo_trust::sha256_hex;
use serde_json::json;

use crate::args::{ApproveArgs, EXIT_FAILED};
use crate::home::Home;
use crate::plugin::policy;
use crate::run::{people, signing_person, stored_run};

/// `person`'s approval, now, of gate `step_id` of run `run` (its id and the sha256 of its
/// workflow), signed with `signer`: the envelope JSON, as the runner checks it.
pub fn sign_gate_approval(
    signer: &dyn relo_trust::Signer,
    run: (&str, &str),
    step_id: &str,
    person: &str,
) -> anyhow::Result<String> {
    let (run_id, workflow_sha256) = run;
    let payload = GateApprovalPayload {
        run_id: run_id.to_owned(),
        step_id: step_id.to_owned(),
        workflow_sha256: workflow_sha256.to_owned(),
        approver: person.to_owned(),
        approved_at: relo_store::rfc3339_utc(SystemTime::now()),
    };
    Ok(payload
        .sign(signer)
        .context("cannot sign the approval")?
        .to_json())
}

/// Runs `relo approve`.
pub fn run(args: &ApproveArgs) -> anyhow::Result<ExitCode> {
    let home = Home::load(&args.home)?;
    let policy = policy(&home)?;
    let (signer, person) = signing_person(
        &home,
        &policy,
        args.key.as_deref(),
        args.as_person.as_deref(),
    )?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let store = home.evidence_store().await?;
        let stored = stored_run(&store, &policy, &args.run).await?;
        let (row, request, workflow) = (stored.row, stored.request, stored.workflow);
        let Some(step) = workflow.steps.iter().find(|s| s.id.as_str() == args.step) else {
            bail!("run {} has no step `{}`", row.id, args.step);
        };
        let Some(gate) = &step.approval else {
            bail!("step `{}` of run {} is not an approval gate", args.step, row.id);
        };
        let envelope = sign_gate_approval(
            &signer,
            (&row.id, &request.workflow_sha256),
            &args.step,
            &person,
        )?;
        let scope = Scope::Run(row.id.clone());
        let checked = GateApprovalPayload::check(
            &envelope,
            &*people(&store, &policy).policy().await?,
            (&row.id, &request.workflow_sha256),
            &args.step,
            gate,
            &request.requested_by,
        );
        let approver = match checked {
            Ok(approver) => approver,
            Err(refusal) => {
                let record = EvidenceRecord::new(
                    scope,
                    Some(args.step.clone()),
                    EvidenceEvent::GateRefused {
                        approver: person.clone(),
                        code: refusal.code.to_owned(),
                        reason: refusal.reason.clone(),
                    },
                );
                store.record(&record).await?;
                eprintln!("refused ({}): {}", refusal.code, refusal.reason);
                return Ok(ExitCode::from(EXIT_FAILED));
            }
        };
        let record = EvidenceRecord::new(
            scope,
            Some(args.step.clone()),
            EvidenceEvent::GateApproved {
                approver: approver.person.clone(),
                key_id: approver.key_id.clone(),
                approval_sha256: sha256_hex(envelope.as_bytes()),
            },
        );
        let stored = GateApproval {
            run_id: row.id.clone(),
            step_id: args.step.clone(),
            approver: approver.person.clone(),
            key_id: approver.key_id.clone(),
            envelope,
            approved_at: String::new(),
        };
        store
            .add_gate_approval(&stored, &record, SystemTime::now(), false)
            .await?;
        let count = store.gate_approvals(&row.id, &args.step).await?.len();
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "run_id": row.id, "step": args.step, "approver": approver.person,
                    "key_id": approver.key_id, "approvals": count, "quorum": gate.quorum,
                }))?
            );
        } else {
            println!(
                "{} approved step {} of run {} ({count} of {} needed); continue it with `relo resume {}`",
                approver.person, args.step, row.id, gate.quorum, row.id
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}
