//! `relo key generate` and `relo evidence ...` against real logs.
//!
//! Evidence is written the way the orchestrator writes it, with relo-store's
//! `EvidenceWriter`, into the database the CLI then reads (a SQLite file in a temporary
//! home, or a fresh schema of the `RELO_TEST_POSTGRES_URL` database).

mod support;

mod commands;
mod crash;
mod encrypted_key;
mod state;
mod tamper;
mod vault_signer;
mod witness;
