//! `relo plan WORKFLOW`: a dry run. For each step, in the waves it would run in: the
//! plugin it resolves to, who signed it, the approval in force and the effective grant
//! (resolved endpoints, secrets, limits), or why it would be refused. Nothing is
//! compiled, run or recorded.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use relo_orchestrator::{PluginCatalog, plan};
use relo_sandbox::{Sandbox, SandboxConfig};
use serde_json::{Value, json};

use crate::args::{EXIT_FAILED, PlanArgs};
use crate::home::{Home, read_parsed};
use crate::plugin::config;

/// Runs `relo plan`.
pub fn run(args: &PlanArgs) -> anyhow::Result<ExitCode> {
    let home = Home::load(&args.home)?;
    let (workflow, _) = read_parsed(&args.workflow, relo_manifest::parse_workflow)?;
    let config = config(&home)?.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let store = home.store().await?;
        // The catalog holds a sandbox for admission; `review` never loads into it.
        let sandbox = Arc::new(Sandbox::new(SandboxConfig {
            max_concurrent_steps: 1,
            ..SandboxConfig::default()
        })?);
        let catalog = PluginCatalog::new(store, sandbox, config, &home.path)
            .await
            .context("cannot load the trust policy")?;
        let waves = plan::waves(&workflow);
        let mut steps = Vec::new();
        let mut refused = 0;
        for (wave, members) in waves.iter().enumerate() {
            for step in members {
                let mut entry = json!({
                    "id": step.id.as_str(),
                    "wave": wave,
                    "needs": step.needs.iter().map(|n| n.as_str()).collect::<Vec<_>>(),
                });
                if let Some(gate) = &step.approval {
                    entry["approval_gate"] = json!({"roles": gate.roles, "quorum": gate.quorum});
                }
                if let Some(uses) = &step.uses {
                    entry["uses"] = json!(uses.to_string());
                    let reviewed = match catalog.resolve(uses).await {
                        Ok(digest) => catalog.review(&digest).await.map(|r| (digest, r)),
                        Err(error) => Err(error),
                    };
                    match reviewed {
                        Ok((digest, review)) => {
                            entry["digest"] = json!(digest);
                            entry["signer_key_id"] = json!(review.verified.signer_key_id);
                            entry["signer_person"] = json!(review.verified.signer_person);
                            entry["approval_id"] = json!(review.approval_id);
                            entry["approval_inherited_from"] = json!(review.inherited_from);
                            entry["grant"] = json!(review.grant.summary());
                            entry["limits"] = json!(review.limits);
                        }
                        Err(error) => {
                            refused += 1;
                            entry["refused"] =
                                json!({"code": error.code(), "reason": error.to_string()});
                        }
                    }
                }
                steps.push(entry);
            }
        }
        if args.json {
            let out =
                json!({"workflow": workflow.name.as_str(), "steps": steps, "refused": refused});
            println!("{}", serde_json::to_string_pretty(&out)?);
        } else {
            print_plan(workflow.name.as_str(), &steps);
        }
        Ok(if refused == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_FAILED)
        })
    })
}

fn print_plan(workflow: &str, steps: &[Value]) {
    println!("plan of {workflow} (nothing runs):");
    for step in steps {
        let id = step["id"].as_str().unwrap_or("?");
        let wave = step["wave"].as_u64().unwrap_or(0);
        if let Some(gate) = step.get("approval_gate") {
            println!(
                "  [{wave}] {id}: approval gate, {} of {}",
                gate["quorum"], gate["roles"]
            );
            continue;
        }
        let uses = step["uses"].as_str().unwrap_or("?");
        if let Some(refused) = step.get("refused") {
            println!(
                "  [{wave}] {id}: {uses} REFUSED ({}): {}",
                refused["code"].as_str().unwrap_or(""),
                refused["reason"].as_str().unwrap_or("")
            );
            continue;
        }
        println!(
            "  [{wave}] {id}: {uses} sha256:{}",
            step["digest"].as_str().unwrap_or("")
        );
        println!(
            "        signed by {}{}; approval {}",
            step["signer_key_id"].as_str().unwrap_or(""),
            step["signer_person"]
                .as_str()
                .map(|p| format!(" ({p})"))
                .unwrap_or_default(),
            step["approval_id"].as_str().unwrap_or("")
        );
        let grant = &step["grant"];
        for (what, value) in grant.as_object().into_iter().flatten() {
            if !(value.is_null()
                || value.as_array().is_some_and(Vec::is_empty)
                || value.as_object().is_some_and(|o| o.is_empty()))
            {
                println!("        {what}: {value}");
            }
        }
        let limits = &step["limits"];
        println!(
            "        limits: fuel {}, memory {} B, timeout {} ms, egress {} requests",
            limits["fuel"], limits["memory_bytes"], limits["timeout"], limits["egress_requests"]
        );
    }
}
