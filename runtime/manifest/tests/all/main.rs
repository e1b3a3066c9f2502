//! relo-manifest's integration tests: the corpus under `tests/manifests/`, the committed
//! JSON Schemas, robustness against hostile input, and the example manifests.

mod corpus;
mod examples;
mod robustness;
mod schema;

use std::path::PathBuf;

/// The repository's root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether snapshots and schemas should be rewritten instead of compared.
pub fn blessing() -> bool {
    std::env::var_os("RELO_BLESS").is_some_and(|value| value == "1")
}
