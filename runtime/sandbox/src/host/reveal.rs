//! `relo:plugin/reveal`: a secret's value inside the step, only with the reveal grant.

use wasmtime::component::Resource;

use crate::bindings::relo::plugin::reveal::Host;
use crate::bindings::relo::plugin::secrets::Error;
use crate::host::secrets::{SecretHandle, denial_error};
use crate::state::StepState;

impl Host for StepState {
    fn reveal(
        &mut self,
        secret: Resource<SecretHandle>,
    ) -> wasmtime::Result<Result<String, Error>> {
        let name = self.table.get(&secret)?.name.clone();
        if let Err(denial) = self.grant.reveal(&name) {
            self.record_secret_denial(&name, denial.code(), denial.to_string());
            return Ok(Err(denial_error(&denial)));
        }
        let reason = "no secret provider is configured for this host".to_owned();
        self.record_secret_denial(&name, "provider-unavailable", reason.clone());
        Ok(Err(Error::Unavailable(reason)))
    }
}
