//! `relo schema`: the JSON Schemas of the three formats.

use std::process::ExitCode;

use anyhow::Context;
use relo_manifest::{FileKind, schema_file_name, schema_text};

use crate::args::{EXIT_FAILED, SchemaArgs};

/// Prints one schema, writes all of them, or checks the written ones.
pub fn run(args: &SchemaArgs) -> anyhow::Result<ExitCode> {
    if let Some(dir) = &args.write {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for kind in FileKind::ALL {
            let path = dir.join(schema_file_name(*kind));
            std::fs::write(&path, schema_text(*kind))
                .with_context(|| format!("writing {}", path.display()))?;
            println!("wrote {}", path.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(dir) = &args.check {
        let mut stale = false;
        for kind in FileKind::ALL {
            let path = dir.join(schema_file_name(*kind));
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            if committed == schema_text(*kind) {
                println!("up to date: {}", path.display());
            } else {
                println!(
                    "stale: {} (run `relo schema --write {}`)",
                    path.display(),
                    dir.display()
                );
                stale = true;
            }
        }
        return Ok(if stale {
            ExitCode::from(EXIT_FAILED)
        } else {
            ExitCode::SUCCESS
        });
    }
    if let Some(kind) = args.kind {
        print!("{}", schema_text(kind.into()));
    }
    Ok(ExitCode::SUCCESS)
}
