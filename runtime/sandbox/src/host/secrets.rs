//! `relo:plugin/secrets`: opaque handles to granted secrets.
//!
//! A handle carries only the logical name. No secret provider is wired in yet (the
//! secrets issue adds Vault/OpenBao), so a granted secret yields a handle whose value
//! is `unavailable` when revealed.

use relo_evidence::EvidenceEvent;
use wasmtime::component::Resource;

use crate::bindings::relo::plugin::secrets::{Error, Host, HostSecret};
use crate::state::StepState;
use relo_policy::CapabilityDenial;

/// What the guest's `secret` resource stands for on the host: a granted secret's name.
#[derive(Debug)]
pub struct SecretHandle {
    pub(crate) name: String,
}

/// The WIT error for a denial, with the host's reason as its text.
pub(crate) fn denial_error(denial: &CapabilityDenial) -> Error {
    let reason = denial.to_string();
    match denial {
        CapabilityDenial::SecretNotDeclared { .. } => Error::NotDeclared(reason),
        CapabilityDenial::SecretNotApproved { .. }
        | CapabilityDenial::RevealNotApproved { .. }
        | CapabilityDenial::SignerKeyNotGranted { .. } => Error::NotApproved(reason),
    }
}

impl StepState {
    /// Records a refused secret or reveal request and notes it in the step log.
    pub(crate) fn record_secret_denial(&self, name: &str, code: &str, reason: String) {
        self.log.host_note(
            "warn",
            format!("secret `{name}` refused ({code}): {reason}"),
        );
        self.recorder.record(EvidenceEvent::SecretDenied {
            name: name.to_owned(),
            code: code.to_owned(),
            reason,
        });
    }
}

impl Host for StepState {
    fn get(&mut self, name: String) -> wasmtime::Result<Result<Resource<SecretHandle>, Error>> {
        if let Err(denial) = self.grant.secret(&name) {
            self.record_secret_denial(&name, denial.code(), denial.to_string());
            return Ok(Err(denial_error(&denial)));
        }
        self.recorder
            .record(EvidenceEvent::SecretRead { name: name.clone() });
        Ok(Ok(self.table.push(SecretHandle { name })?))
    }
}

impl HostSecret for StepState {
    fn name(&mut self, secret: Resource<SecretHandle>) -> wasmtime::Result<String> {
        Ok(self.table.get(&secret)?.name.clone())
    }

    fn drop(&mut self, secret: Resource<SecretHandle>) -> wasmtime::Result<()> {
        self.table.delete(secret)?;
        Ok(())
    }
}
