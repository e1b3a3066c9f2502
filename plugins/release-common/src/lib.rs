//! What the official release plugins share.
//!
//! Every function here reports misuse as a [`StepError`](relo_sdk::StepError) with a
//! message that names the field, file or value at fault: `invalid-input` for input the
//! workflow passed, `failed` for a check the repository state did not pass. Nothing here
//! panics on any input.
//!
//! - [`workspace`]: paths relative to the run's workspace (mounted at `/workspace`),
//!   read and written with errors that name the file;
//! - [`digest`]: `sha256:<64 lowercase hex>` digests, and why a value is not one;
//! - [`chart`]: the deterministic listing of a chart folder and its digest;
//! - [`yaml`]: a careful reader of one top-level scalar of a YAML mapping, with the
//!   byte range of its value, so a file can be rewritten byte for byte elsewhere;
//! - [`image`]: image references, `repository[:tag][@digest]`;
//! - [`version`]: `MAJOR.MINOR.PATCH[-PRE]` versions and `v`-prefixed tags;
//! - [`endpoint`]: base URLs of the forge and the deploy target, and short excerpts of
//!   their answers for error messages.

pub mod chart;
pub mod digest;
pub mod endpoint;
pub mod image;
pub mod version;
pub mod workspace;
pub mod yaml;
