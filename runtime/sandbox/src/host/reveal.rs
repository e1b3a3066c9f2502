//! `relo:plugin/reveal`: a secret's value inside the step, only with the reveal grant.

use relo_evidence::EvidenceEvent;
use wasmtime::component::Resource;

use crate::bindings::relo::plugin::reveal::Host;
use crate::bindings::relo::plugin::secrets::Error;
use crate::host::secrets::{SecretHandle, denial_error};
use crate::state::StepState;

impl Host for StepState {
    async fn reveal(
        &mut self,
        secret: Resource<SecretHandle>,
    ) -> wasmtime::Result<Result<String, Error>> {
        let handle = self.table.get(&secret)?;
        let name = handle.name.clone();
        if let Err(denial) = self.grant.reveal(&name) {
            self.record_secret_denial(&name, denial.code(), denial.to_string())
                .await?;
            return Ok(Err(denial_error(&denial)));
        }
        let handle = self.table.get(&secret)?;
        self.recorder.record(EvidenceEvent::SecretRevealed {
            name,
            reference: handle.reference.clone(),
            version: handle.value.version(),
        });
        Ok(Ok(handle.value.expose().to_owned()))
    }
}
