//! relo-trust integration tests: one binary, a module per concern.

mod dsse;
mod interop;
mod jcs;
mod key_files;
mod keys;
mod statement;

use relo_trust::{KeyAlgorithm, PrivateKey};

/// Both algorithms, for tests that must hold for each.
const ALGORITHMS: [KeyAlgorithm; 2] = [KeyAlgorithm::Ed25519, KeyAlgorithm::EcdsaP256];

fn key(algorithm: KeyAlgorithm) -> PrivateKey {
    PrivateKey::generate(algorithm)
}
