//! The step's context, its error type, and the glue the `#[step]` attribute calls.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::__private::{WitStepContext, WitStepError};

/// Where a step runs: which run, which step of it, and which attempt.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StepContext {
    /// The id of the run this step belongs to.
    pub run_id: String,
    /// The id of the step in its workflow.
    pub step_id: String,
    /// 1 for the first attempt, then 2, 3, ... for retries.
    pub attempt: u32,
}

impl From<WitStepContext> for StepContext {
    fn from(ctx: WitStepContext) -> Self {
        Self {
            run_id: ctx.run_id,
            step_id: ctx.step_id,
            attempt: ctx.attempt,
        }
    }
}

/// Why a step failed, as the step reports it to the host.
///
/// The errors of this crate's capabilities convert into it, so `?` works in a step: a
/// refusal (a denied request, an undeclared or unapproved secret, a key not granted)
/// becomes [`StepError::Denied`], anything else [`StepError::Failed`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StepError {
    /// The input does not fit what the step expects; the text says which field.
    InvalidInput(String),
    /// The step ran and could not do its job; the text says why.
    Failed(String),
    /// The step was refused something it needs (a destination, a secret, a key).
    Denied(String),
}

impl StepError {
    /// A [`StepError::InvalidInput`] with this message.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::InvalidInput(message.into())
    }

    /// A [`StepError::Failed`] with this message.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed(message.into())
    }

    /// A [`StepError::Denied`] with this message.
    pub fn denied(message: impl Into<String>) -> Self {
        Self::Denied(message.into())
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        match self {
            Self::InvalidInput(message) | Self::Failed(message) | Self::Denied(message) => message,
        }
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidInput(message) => write!(f, "invalid input: {message}"),
            Self::Failed(message) => write!(f, "step failed: {message}"),
            Self::Denied(message) => write!(f, "denied: {message}"),
        }
    }
}

impl std::error::Error for StepError {}

impl From<StepError> for WitStepError {
    fn from(error: StepError) -> Self {
        match error {
            StepError::InvalidInput(message) => Self::InvalidInput(message),
            StepError::Failed(message) => Self::Failed(message),
            StepError::Denied(message) => Self::Denied(message),
        }
    }
}

/// Parses the step's input JSON; serde_json's message names the field, line and column.
pub(crate) fn parse_input<I: DeserializeOwned>(input: &str) -> Result<I, StepError> {
    serde_json::from_str(input).map_err(|error| StepError::InvalidInput(error.to_string()))
}

/// Serializes the step's output to JSON.
pub(crate) fn serialize_output<O: Serialize>(output: &O) -> Result<String, StepError> {
    serde_json::to_string(output)
        .map_err(|error| StepError::Failed(format!("the output could not be serialized: {error}")))
}

/// Runs a step function for the `run` export: input JSON in, output JSON out.
#[doc(hidden)]
pub fn run_step<I, O, F>(ctx: WitStepContext, input: &str, step: F) -> Result<String, WitStepError>
where
    I: DeserializeOwned,
    O: Serialize,
    F: FnOnce(&StepContext, I) -> Result<O, StepError>,
{
    let ctx = StepContext::from(ctx);
    let result = parse_input(input)
        .and_then(|input| step(&ctx, input))
        .and_then(|output| serialize_output(&output));
    result.map_err(WitStepError::from)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Input {
        #[expect(dead_code, reason = "only parsed")]
        version: String,
    }

    fn ctx() -> WitStepContext {
        WitStepContext {
            run_id: "run-1".to_owned(),
            step_id: "greet".to_owned(),
            attempt: 2,
        }
    }

    fn invalid_input_message(input: &str) -> String {
        match parse_input::<Input>(input) {
            Err(StepError::InvalidInput(message)) => message,
            other => panic!("expected invalid input, got {other:?}"),
        }
    }

    #[test]
    fn missing_field_is_named_with_its_position() {
        assert_eq!(
            invalid_input_message("{}"),
            "missing field `version` at line 1 column 2"
        );
    }

    #[test]
    fn wrong_type_is_named_with_its_position() {
        assert_eq!(
            invalid_input_message("{\"version\": 3}"),
            "invalid type: integer `3`, expected a string at line 1 column 13"
        );
    }

    #[test]
    fn unknown_field_is_named() {
        let message = invalid_input_message("{\"version\": \"1\", \"extra\": 1}");
        assert!(message.starts_with("unknown field `extra`"), "{message}");
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        assert_eq!(
            invalid_input_message("{\n  \"version\": \"1\",\n}"),
            "trailing comma at line 3 column 1"
        );
    }

    #[test]
    fn run_step_passes_context_and_serializes_output() {
        let output = run_step(
            ctx(),
            "{\"n\": 20}",
            |ctx: &StepContext, input: serde_json::Value| {
                Ok(serde_json::json!({
                    "double": input["n"].as_u64().unwrap_or_default() * 2,
                    "run": ctx.run_id,
                    "step": ctx.step_id,
                    "attempt": ctx.attempt,
                }))
            },
        );
        assert_eq!(
            output.ok().as_deref(),
            Some("{\"attempt\":2,\"double\":40,\"run\":\"run-1\",\"step\":\"greet\"}")
        );
    }

    #[test]
    fn run_step_reports_invalid_input_without_calling_the_step() {
        let result = run_step(
            ctx(),
            "not json",
            |_: &StepContext, _: Input| -> Result<(), StepError> {
                panic!("the step must not run on invalid input")
            },
        );
        match result {
            Err(WitStepError::InvalidInput(message)) => {
                assert_eq!(message, "expected ident at line 1 column 2");
            }
            other => panic!("expected invalid input, got {other:?}"),
        }
    }

    #[test]
    fn run_step_passes_the_step_error_through() {
        let result = run_step(
            ctx(),
            "null",
            |_: &StepContext, (): ()| -> Result<(), StepError> { Err(StepError::denied("no key")) },
        );
        assert!(matches!(result, Err(WitStepError::Denied(message)) if message == "no key"));
    }

    #[test]
    fn display_names_the_kind() {
        assert_eq!(StepError::failed("boom").to_string(), "step failed: boom");
        assert_eq!(StepError::invalid_input("x").message(), "x");
    }
}
