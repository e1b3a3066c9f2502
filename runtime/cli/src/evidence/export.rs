//! `relo evidence export --run ID [--out FILE]`: the run's evidence and its SLSA
//! provenance, each an in-toto Statement in a DSSE envelope signed by the evidence key.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context as _, bail};
use relo_evidence::export::{RunPacket, evidence_statement_generated_at, provenance_statement};
use relo_evidence::{EvidenceEntry, Tampering, open_checkpoint, rfc3339_utc};
use relo_trust::Signer;

use super::keyring::key_ring;
use super::verify::inclusion_proofs;
use crate::args::ExportArgs;
use crate::home::{Home, append_to_witness};

/// A run's export: the evidence and provenance statements, signed.
pub struct Exported {
    /// The evidence statement's envelope.
    pub evidence: relo_trust::Envelope,
    /// The provenance statement's envelope.
    pub provenance: relo_trust::Envelope,
    /// The run's entries.
    pub entries: usize,
    /// The size of the checkpoint they are proven against.
    pub checkpoint_size: u64,
    /// The checkpoint cut to cover the run (id and size), if the latest did not.
    pub cut: Option<(u64, u64)>,
}

/// Why a run could not be exported.
pub enum ExportFailure {
    /// The stored log fails verification: nothing is signed over it.
    Tampered(Tampering),
    /// The run has no evidence.
    NoEvidence(String),
    /// Anything else.
    Other(anyhow::Error),
}

impl From<anyhow::Error> for ExportFailure {
    fn from(error: anyhow::Error) -> Self {
        ExportFailure::Other(error)
    }
}

/// Exports one run.
pub async fn run(home: &Home, args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let signer: std::sync::Arc<dyn Signer> = home.evidence_signer()?.into();
    let store = home.sealed_store(std::sync::Arc::clone(&signer)).await?;
    let run_id = args.run.as_str();
    let exported = match export_run(home, &store, signer.as_ref(), run_id).await {
        Ok(exported) => exported,
        Err(ExportFailure::Tampered(tampering)) => {
            return super::verify::refuse_to_sign(&tampering, false);
        }
        Err(ExportFailure::NoEvidence(message)) => bail!("{message}"),
        Err(ExportFailure::Other(error)) => return Err(error),
    };
    if let Some((id, size)) = exported.cut {
        eprintln!("cut checkpoint {id} ({size} entries) to cover the run's last entry");
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{run_id}.evidence.json")));
    let provenance_out = provenance_path(&out);
    std::fs::write(&out, exported.evidence.to_json_pretty())
        .with_context(|| format!("cannot write {}", out.display()))?;
    std::fs::write(&provenance_out, exported.provenance.to_json_pretty())
        .with_context(|| format!("cannot write {}", provenance_out.display()))?;
    println!(
        "exported run {run_id}: {} entries in the checkpoint of {} entries, signed by {}",
        exported.entries,
        exported.checkpoint_size,
        signer.key_id()
    );
    println!("  evidence:   {}", out.display());
    println!("  provenance: {}", provenance_out.display());
    Ok(ExitCode::SUCCESS)
}

/// Signs the export of run `run_id` with `signer`, cutting a checkpoint that covers the
/// run first if the latest does not (never over a log that fails verification).
pub async fn export_run(
    home: &Home,
    store: &relo_store::Store,
    signer: &dyn Signer,
    run_id: &str,
) -> Result<Exported, ExportFailure> {
    let in_run = |entries: &[EvidenceEntry]| -> Vec<EvidenceEntry> {
        let mut scope: Vec<EvidenceEntry> = entries
            .iter()
            .filter(|e| e.scope == run_id)
            .cloned()
            .collect();
        scope.sort_by_key(|e| e.scope_seq);
        scope
    };
    let read_all = || async {
        anyhow::Ok(
            store
                .all_entries()
                .await
                .context("cannot read the evidence entries")?
                .iter()
                .map(|e| e.to_evidence_entry())
                .collect::<Vec<_>>(),
        )
    };
    let mut all = read_all().await?;
    let mut entries = in_run(&all);
    let Some(last_seq) = entries.iter().map(|e| e.seq).max() else {
        return Err(ExportFailure::NoEvidence(format!(
            "there is no evidence for run `{run_id}` in {} {}",
            store.backend_name(),
            store.target()
        )));
    };
    let origin = store.evidence_origin().await.map_err(anyhow::Error::from)?;
    let mut latest = store
        .latest_checkpoint()
        .await
        .map_err(anyhow::Error::from)?;
    let mut cut_now = None;
    if latest.as_ref().is_none_or(|c| c.size < last_seq) {
        if let Some(tampering) = super::verify::tampering_before_signing(home, store).await? {
            return Err(ExportFailure::Tampered(tampering));
        }
        let witness = home.witness(&origin)?;
        let cut = store
            .checkpoint(signer, &origin, &origin)
            .await
            .context("cannot cut a checkpoint covering the run")?;
        append_to_witness(&witness, &cut.note)?;
        cut_now = Some((cut.id, cut.size));
        latest = Some(cut);
        all = read_all().await?;
        entries = in_run(&all);
    }
    let Some(latest) = latest else {
        return Err(anyhow::anyhow!("no checkpoint covers the run").into());
    };
    let ring = key_ring(home, &origin)?;
    let verified = open_checkpoint(latest.note.as_bytes(), &ring, Some(&origin)).map_err(|err| {
        anyhow::anyhow!(
            "the latest checkpoint (id {}) does not verify ({}): {err}; run `relo evidence verify`",
            latest.id,
            err.code()
        )
    })?;
    let proofs = inclusion_proofs(&all, &entries, &verified).map_err(ExportFailure::Tampered)?;
    let builder_id = format!(
        "https://relo.dev/orchestrator/{}",
        origin.rsplit('/').next().unwrap_or("relo")
    );
    let packet = RunPacket {
        run_id,
        entries: &entries,
        proofs: &proofs,
        checkpoint_note: &latest.note,
        checkpoint: &verified.checkpoint,
        builder_id: &builder_id,
    };
    let now = rfc3339_utc(SystemTime::now());
    let refused = |what: &'static str| {
        move |err: relo_evidence::export::ExportError| {
            anyhow::anyhow!(
                "cannot export the {what} of run `{run_id}` ({}): {err}",
                err.code()
            )
        }
    };
    let evidence = evidence_statement_generated_at(&packet, &now).map_err(refused("evidence"))?;
    let provenance = provenance_statement(&packet).map_err(refused("provenance"))?;
    let signers: [&dyn Signer; 1] = [signer];
    Ok(Exported {
        evidence: evidence
            .sign(&signers)
            .context("cannot sign the evidence")?,
        provenance: provenance
            .sign(&signers)
            .context("cannot sign the provenance")?,
        entries: entries.len(),
        checkpoint_size: verified.checkpoint.size,
        cut: cut_now,
    })
}

/// `X.provenance.json` for `X.json`; `FILE.provenance.json` otherwise.
pub fn provenance_path(out: &std::path::Path) -> PathBuf {
    let text = out.as_os_str().to_string_lossy();
    match text.strip_suffix(".json") {
        Some(stem) => PathBuf::from(format!("{stem}.provenance.json")),
        None => PathBuf::from(format!("{text}.provenance.json")),
    }
}
