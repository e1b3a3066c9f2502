//! `relo --server URL evidence export | verify`: the server's evidence log.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use relo_trust::Envelope;
use serde::Deserialize;
use serde_json::Value;

use super::session::{Call, Session};
use crate::args::{EXIT_FAILED, ExportArgs, VerifyArgs};
use crate::evidence::provenance_path;

/// The answer to `GET /v1/evidence/verify`.
#[derive(Debug, Deserialize)]
struct Verdict {
    verified: bool,
    entries: u64,
    #[serde(default)]
    problems: Vec<String>,
}

/// Writes the run's evidence envelope to `--out` (default `RUN.evidence.json`) and its
/// provenance envelope beside it, as the local `relo evidence export` does.
pub async fn export(session: &mut Session, args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let exported: Value = session
        .call_json(&Call::get(&["v1", "runs", &args.run, "evidence"]))
        .await?;
    let envelope = |what: &str| -> anyhow::Result<Envelope> {
        let text = serde_json::to_string(&exported[what])?;
        Envelope::from_json(text.as_bytes())
            .map_err(|error| anyhow::anyhow!("the server's {what} is not a DSSE envelope: {error}"))
    };
    let (evidence, provenance) = (envelope("evidence")?, envelope("provenance")?);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.evidence.json", args.run)));
    let provenance_out = provenance_path(&out);
    std::fs::write(&out, evidence.to_json_pretty())
        .with_context(|| format!("cannot write {}", out.display()))?;
    std::fs::write(&provenance_out, provenance.to_json_pretty())
        .with_context(|| format!("cannot write {}", provenance_out.display()))?;
    println!("exported run {} from {}", args.run, session.server());
    println!("  evidence:   {}", out.display());
    println!("  provenance: {}", provenance_out.display());
    Ok(ExitCode::SUCCESS)
}

/// Prints the server's verdict on its log; exits 1 unless it verifies.
pub async fn verify(session: &mut Session, args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    if args.run.is_some() || args.trusted_checkpoint.is_some() {
        bail!(
            "with --server, `relo evidence verify` asks the server to verify its whole log; \
             --run and --trusted-checkpoint are for a log on this machine (export the run's \
             evidence with `relo --server URL evidence export --run ID` to check it here)"
        );
    }
    let answer: Value = session
        .call_json(&Call::get(&["v1", "evidence", "verify"]))
        .await?;
    let verdict: Verdict = serde_json::from_value(answer.clone())
        .context("the server's answer is not the verdict expected")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else if verdict.verified {
        println!(
            "ok: the evidence log of {} verifies ({} entries)",
            session.server(),
            verdict.entries
        );
    } else {
        println!(
            "NOT VERIFIED: the evidence log of {} ({} entries)",
            session.server(),
            verdict.entries
        );
        for problem in &verdict.problems {
            println!("  {problem}");
        }
    }
    Ok(if verdict.verified {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn the_provenance_goes_where_the_local_export_puts_it() {
        assert_eq!(
            provenance_path(Path::new("out/run-1.evidence.json")),
            PathBuf::from("out/run-1.evidence.provenance.json")
        );
        assert_eq!(
            provenance_path(Path::new("packet")),
            PathBuf::from("packet.provenance.json")
        );
    }
}
