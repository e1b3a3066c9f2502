//! What one step's store holds.

use std::collections::BTreeMap;
use std::sync::Arc;

use relo_policy::Grant;
use relo_secrets::StepSecrets;
use relo_trust::Signer;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::budget::{MAX_NAME_BYTES, MAX_TEXT_BYTES, RefusedCalls};
use crate::capture::StepLog;
use crate::host::egress::EgressGate;
use crate::limiter::StepLimiter;
use crate::recorder::Recorder;
use crate::redact::Redactor;

/// The data of a step's `Store`: its grant, limits, evidence and WASI contexts.
pub(crate) struct StepState {
    pub(crate) step_id: String,
    pub(crate) grant: Arc<Grant>,
    pub(crate) recorder: Recorder,
    pub(crate) log: StepLog,
    pub(crate) table: ResourceTable,
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) egress: EgressGate,
    pub(crate) limiter: StepLimiter,
    /// Where granted secrets are read from; `None`: no provider is configured.
    pub(crate) secrets: Option<StepSecrets>,
    /// The signers of the logical key names the step may use.
    pub(crate) signers: BTreeMap<String, Arc<dyn Signer>>,
    /// The values the step touched, for redaction.
    pub(crate) redactor: Redactor,
    /// The step's refused host calls, against `[limits] host_calls`.
    pub(crate) refused: Arc<RefusedCalls>,
}

impl StepState {
    /// Counts one refused host call; past the budget, the trap that ends the step with
    /// the limit `host-calls` (the caller then records nothing for this call).
    pub(crate) fn charge_refusal(&self) -> wasmtime::Result<()> {
        self.refused.charge().map_err(wasmtime::Error::new)
    }

    /// A guest-chosen name as the host keeps it in notes and evidence: redacted, bounded.
    pub(crate) fn guest_name(&self, name: &str) -> String {
        self.redactor.shown(name.to_owned(), MAX_NAME_BYTES)
    }

    /// Longer text that carries guest-chosen parts (a refusal's reason): redacted, bounded.
    pub(crate) fn guest_text(&self, text: String) -> String {
        self.redactor.shown(text, MAX_TEXT_BYTES)
    }
}

impl WasiView for StepState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for StepState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.egress,
        }
    }
}
