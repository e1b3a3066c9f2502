//! relo-trust integration tests: one binary, a module per concern.

mod bundle;
mod dsse;
mod encrypted_keys;
mod interop;
mod jcs;
mod key_files;
mod keys;
mod plugin_trust;
mod statement;

use std::process::Command;

use relo_trust::{KeyAlgorithm, PrivateKey};

/// Both algorithms, for tests that must hold for each.
const ALGORITHMS: [KeyAlgorithm; 2] = [KeyAlgorithm::Ed25519, KeyAlgorithm::EcdsaP256];

fn key(algorithm: KeyAlgorithm) -> PrivateKey {
    PrivateKey::generate(algorithm)
}

/// Runs an interop script with an independent tool and returns its stdout (one line per
/// check). A tool that cannot start, or a script that exits 3 (its packages are
/// missing), fails the test with `install`, which says how to get them.
fn run_interop(mut command: Command, install: &str) -> String {
    let shown = format!(
        "{} {}",
        command.get_program().to_string_lossy(),
        command
            .get_args()
            .map(|arg| arg.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let output = match command.output() {
        Ok(output) => output,
        Err(e) => panic!("cannot run `{shown}` ({e}); {install}, or set RELO_SKIP_INTEROP=1"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() == Some(3) {
        panic!(
            "{stderr}the interop check needs its packages: {install} (or set RELO_SKIP_INTEROP=1)"
        );
    }
    println!("{stdout}");
    assert!(
        output.status.success(),
        "`{shown}` failed:\n{stdout}\n{stderr}"
    );
    stdout
}
