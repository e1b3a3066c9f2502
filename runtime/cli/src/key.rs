//! `relo key generate [--encrypt]`.

use std::process::ExitCode;

use anyhow::Context as _;
use relo_trust::{
    KeyAlgorithm, KeyPaths, Passphrase, generate_encrypted_key_files, generate_key_files,
};

use crate::args::{KeyCommand, KeyType};

/// Runs a `relo key` command.
pub fn run(command: &KeyCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeyCommand::Generate(args) => {
            let algorithm = match args.key_type {
                KeyType::Ed25519 => KeyAlgorithm::Ed25519,
                KeyType::P256 => KeyAlgorithm::EcdsaP256,
            };
            let paths = KeyPaths::from_stem(&args.out);
            let key = if args.encrypt {
                generate_encrypted_key_files(algorithm, &paths, || {
                    Passphrase::for_new_key(&paths.private)
                })
            } else {
                generate_key_files(algorithm, &paths)
            }
            .with_context(|| format!("cannot generate {}", paths.private.display()))?;
            if args.json {
                let json = serde_json::json!({
                    "key_id": key.key_id,
                    "algorithm": key.algorithm.as_str(),
                    "private_key": key.paths.private,
                    "public_key": key.paths.public,
                    "encrypted": args.encrypt,
                });
                println!("{}", serde_json::to_string_pretty(&json)?);
            } else {
                println!("{}", key.key_id);
                eprintln!(
                    "wrote {} (private, {}mode 0600) and {} ({})",
                    key.paths.private.display(),
                    if args.encrypt { "encrypted, " } else { "" },
                    key.paths.public.display(),
                    key.algorithm
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
