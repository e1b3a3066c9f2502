//! `relo validate FILE…`: every problem of every file, as text or JSON.

use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use relo_manifest::{
    Code, Diagnostic, Document, FileKind, MAX_FILE_BYTES, OperatorConfig,
    check_plugin_against_config, parse,
};
use serde::Serialize;

use crate::args::{EXIT_FAILED, ValidateArgs};

/// The outcome for one file.
#[derive(Debug, Serialize)]
struct FileResult {
    file: String,
    kind: Option<&'static str>,
    valid: bool,
    diagnostics: Vec<Diagnostic>,
}

/// Checks every file and prints the results; exit code 1 when any file is invalid.
pub fn run(args: &ValidateArgs) -> anyhow::Result<ExitCode> {
    let mut results = Vec::new();
    let config = match &args.config {
        None => None,
        Some(path) => {
            let (result, document) = check(path, Some(FileKind::Operator), None);
            if !result.valid {
                results.push(result);
            }
            match document {
                Some(Document::Operator(config)) => Some(config),
                _ => None,
            }
        }
    };
    for path in &args.files {
        let (result, _) = check(path, args.kind.map(FileKind::from), config.as_ref());
        results.push(result);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        print_text(&results);
    }
    Ok(if results.iter().all(|result| result.valid) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

fn print_text(results: &[FileResult]) {
    for result in results {
        if result.valid {
            println!("ok: {}", result.file);
            continue;
        }
        for diagnostic in &result.diagnostics {
            println!("{}", diagnostic.render());
        }
        let count = result.diagnostics.len();
        println!(
            "error: {} is invalid: {count} problem{}\n",
            result.file,
            if count == 1 { "" } else { "s" }
        );
    }
}

/// Reads, parses and (for a plugin with a config) cross-checks one file.
fn check(
    path: &Path,
    kind: Option<FileKind>,
    config: Option<&OperatorConfig>,
) -> (FileResult, Option<Document>) {
    let file = path.display().to_string();
    let failed = |kind: Option<FileKind>, diagnostics: Vec<Diagnostic>| FileResult {
        file: file.clone(),
        kind: kind.map(FileKind::as_str),
        valid: false,
        diagnostics,
    };
    let bytes = match read_capped(path) {
        Ok(bytes) => bytes,
        Err(error) => {
            let problem = Diagnostic::whole_file(
                Code::Unreadable,
                &file,
                format!("cannot read the file: {error}"),
            );
            return (failed(kind, vec![problem]), None);
        }
    };
    let Some(kind) = kind.or_else(|| FileKind::detect(&file, &bytes)) else {
        let problem = Diagnostic::whole_file(Code::UnknownKind, &file, "cannot tell what kind of file this is")
            .with_hint("name it *.yaml, relo-plugin.toml or relo.toml, or pass --kind plugin|workflow|operator");
        return (failed(None, vec![problem]), None);
    };
    match parse(kind, &file, &bytes) {
        Err(problems) => (failed(Some(kind), problems.into_items()), None),
        Ok(document) => {
            let problems = match (&document, config) {
                (Document::Plugin(plugin), Some(config)) => {
                    check_plugin_against_config(plugin, config)
                }
                _ => Vec::new(),
            };
            let result = FileResult {
                file,
                kind: Some(kind.as_str()),
                valid: problems.is_empty(),
                diagnostics: problems,
            };
            (result, Some(document))
        }
    }
}

/// The file's bytes, reading at most one byte past the size cap (the parser refuses
/// anything larger without looking at it).
fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    let cap = u64::try_from(MAX_FILE_BYTES)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    file.take(cap).read_to_end(&mut bytes)?;
    Ok(bytes)
}
