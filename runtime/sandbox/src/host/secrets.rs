//! `relo:plugin/secrets`: opaque handles to granted secrets.
//!
//! `get` checks the grant, then reads the value through the step's provider (for Vault,
//! with the step's own scoped token) every time it is called, so a revoked credential
//! fails the next read. The handle keeps the value on the host; the step sees only the
//! name, unless it has the reveal grant.

use relo_evidence::EvidenceEvent;
use relo_secrets::SecretValue;
use wasmtime::component::Resource;

use crate::bindings::relo::plugin::secrets::{Error, Host, HostSecret};
use crate::state::StepState;
use relo_policy::CapabilityDenial;

/// What the guest's `secret` resource stands for on the host: a granted secret's name,
/// where it came from, and its value (never given to the step without `reveal`).
pub struct SecretHandle {
    pub(crate) name: String,
    pub(crate) reference: String,
    pub(crate) value: SecretValue,
}

impl std::fmt::Debug for SecretHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretHandle")
            .field("name", &self.name)
            .field("reference", &self.reference)
            .finish_non_exhaustive()
    }
}

/// The reason given when no provider is configured.
pub(crate) const NO_PROVIDER: &str = "no secret provider is configured for this host";

/// The WIT error for a denial, with the host's reason as its text.
pub(crate) fn denial_error(denial: &CapabilityDenial) -> Error {
    let reason = denial.to_string();
    match denial {
        CapabilityDenial::SecretNotDeclared { .. } => Error::NotDeclared(reason),
        CapabilityDenial::SecretNotApproved { .. }
        | CapabilityDenial::RevealNotApproved { .. }
        | CapabilityDenial::SignerKeyNotGranted { .. }
        | CapabilityDenial::InjectionNotAllowed { .. }
        | CapabilityDenial::InjectHeaderNotGranted { .. } => Error::NotApproved(reason),
    }
}

impl StepState {
    /// Counts a refused secret or reveal request against the step's budget, then records
    /// it and notes it in the step log, with the guest-chosen name redacted and bounded.
    /// Past the budget, the trap that ends the step, and nothing recorded. (`&mut`: the
    /// future must be `Send`, and `StepState` is not `Sync`.)
    pub(crate) async fn record_secret_denial(
        &mut self,
        name: &str,
        code: &str,
        reason: String,
    ) -> wasmtime::Result<()> {
        self.charge_refusal()?;
        let (shown, reason) = (self.guest_name(name), self.guest_text(reason));
        self.log.host_note(
            "warn",
            format!("secret `{shown}` refused ({code}): {reason}"),
        );
        self.recorder.record(EvidenceEvent::SecretDenied {
            name: shown,
            reference: self
                .secrets
                .as_ref()
                .and_then(|secrets| secrets.path(name))
                .map(ToString::to_string),
            code: code.to_owned(),
            reason,
        });
        self.recorder.pace().await.map_err(wasmtime::Error::new)
    }
}

impl Host for StepState {
    async fn get(
        &mut self,
        name: String,
    ) -> wasmtime::Result<Result<Resource<SecretHandle>, Error>> {
        if let Err(denial) = self.grant.secret(&name) {
            self.record_secret_denial(&name, denial.code(), denial.to_string())
                .await?;
            return Ok(Err(denial_error(&denial)));
        }
        let Some(secrets) = self.secrets.clone() else {
            self.record_secret_denial(&name, "provider-unavailable", NO_PROVIDER.to_owned())
                .await?;
            return Ok(Err(Error::Unavailable(NO_PROVIDER.to_owned())));
        };
        let value = match secrets.read(&name).await {
            Ok(value) => value,
            Err(error) => {
                let reason = error.to_string();
                self.record_secret_denial(&name, error.code(), reason.clone())
                    .await?;
                return Ok(Err(Error::Unavailable(reason)));
            }
        };
        let reference = secrets
            .path(&name)
            .map(ToString::to_string)
            .unwrap_or_default();
        self.redactor.add(&name, value.expose());
        self.recorder.record(EvidenceEvent::SecretRead {
            name: name.clone(),
            reference: reference.clone(),
            version: value.version(),
        });
        Ok(Ok(self.table.push(SecretHandle {
            name,
            reference,
            value,
        })?))
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
