//! Runs every file under `tests/manifests/` and compares the result with the snapshot
//! beside it (`NAME.expected`): the rendered diagnostics for an invalid file, the
//! normalised JSON for a valid one. `RELO_BLESS=1` rewrites the snapshots.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use relo_manifest::{
    Code, Document, FileKind, OperatorConfig, PluginManifest, Workflow,
    check_plugin_against_config, parse, parse_operator, parse_plugin,
};

use crate::{blessing, repo_root};

/// The kind of a corpus file, from its name: `plugin-*`, `operator-*`, or a workflow.
fn kind_of(name: &str) -> FileKind {
    if name.starts_with("plugin-") {
        FileKind::Plugin
    } else if name.starts_with("operator-") || name == "relo.toml" {
        FileKind::Operator
    } else {
        FileKind::Workflow
    }
}

/// The inputs of one corpus folder, sorted.
fn inputs(folder: &str) -> Vec<(String, Vec<u8>)> {
    let dir = repo_root().join("tests/manifests").join(folder);
    let mut out: Vec<(String, Vec<u8>)> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("the corpus is readable").path())
        .filter(|path| !path.to_string_lossy().ends_with(".expected"))
        .map(|path| {
            let name = path
                .file_name()
                .expect("the corpus is readable")
                .to_string_lossy()
                .into_owned();
            (name, fs::read(&path).expect("the corpus is readable"))
        })
        .collect();
    out.sort();
    out
}

/// Compares (or, when blessing, writes) snapshots and reports every mismatch at once.
#[derive(Default)]
struct Snapshots {
    mismatches: Vec<String>,
}

impl Snapshots {
    fn check(&mut self, folder: &str, name: &str, actual: &str) {
        let path = repo_root()
            .join("tests/manifests")
            .join(folder)
            .join(format!("{name}.expected"));
        if blessing() {
            fs::write(&path, actual).expect("the corpus is readable");
            return;
        }
        let expected = fs::read_to_string(&path).unwrap_or_default();
        if expected != actual {
            self.mismatches.push(format!(
                "--- {folder}/{name}.expected\n{expected}\n+++ actual\n{actual}"
            ));
        }
    }

    fn finish(self) {
        assert!(
            self.mismatches.is_empty(),
            "{} snapshot(s) differ; if the new output is right, run \
             `RELO_BLESS=1 cargo test -p relo-manifest --test all` and review the diff\n\n{}",
            self.mismatches.len(),
            self.mismatches.join("\n")
        );
    }
}

fn display(folder: &str, name: &str) -> String {
    format!("tests/manifests/{folder}/{name}")
}

/// The normalised form of a valid file, and a check that it reads back to the same value.
fn normalised(document: &Document) -> String {
    let json = document.to_json();
    let same = match document {
        Document::Plugin(plugin) => {
            serde_json::from_value::<PluginManifest>(json.clone())
                .expect("the normalised form reads back")
                == *plugin
        }
        Document::Workflow(workflow) => {
            serde_json::from_value::<Workflow>(json.clone())
                .expect("the normalised form reads back")
                == *workflow
        }
        Document::Operator(config) => {
            serde_json::from_value::<OperatorConfig>(json.clone())
                .expect("the normalised form reads back")
                == *config
        }
    };
    assert!(
        same,
        "the normalised form does not read back to the same value:\n{json:#}"
    );
    format!(
        "{}\n",
        serde_json::to_string_pretty(&json).expect("the corpus is readable")
    )
}

#[test]
fn valid_files_parse_to_their_normalised_snapshots() {
    let mut snapshots = Snapshots::default();
    let files = inputs("valid");
    assert!(
        files.len() >= 6,
        "the valid corpus shrank to {}",
        files.len()
    );
    for (name, bytes) in files {
        match parse(kind_of(&name), &display("valid", &name), &bytes) {
            Ok(document) => snapshots.check("valid", &name, &normalised(&document)),
            Err(problems) => panic!("{name} should be valid:\n{}", problems.render()),
        }
    }
    snapshots.finish();
}

#[test]
fn invalid_files_report_their_snapshotted_diagnostics() {
    let mut snapshots = Snapshots::default();
    let files = inputs("invalid");
    assert!(
        files.len() >= 30,
        "the invalid corpus shrank to {}",
        files.len()
    );
    for (name, bytes) in files {
        match parse(kind_of(&name), &display("invalid", &name), &bytes) {
            Ok(document) => panic!(
                "{name} should be invalid, but parsed as {:#}",
                document.to_json()
            ),
            Err(problems) => {
                assert!(!problems.is_empty());
                snapshots.check("invalid", &name, &problems.render());
            }
        }
    }
    snapshots.finish();
}

#[test]
fn plugins_are_checked_against_the_config_beside_them() {
    let folder = "against-config";
    let config_bytes = fs::read(
        repo_root()
            .join("tests/manifests")
            .join(folder)
            .join("relo.toml"),
    )
    .expect("the corpus is readable");
    let config = parse_operator(&display(folder, "relo.toml"), &config_bytes)
        .unwrap_or_else(|problems| panic!("{}", problems.render()));
    let mut snapshots = Snapshots::default();
    for (name, bytes) in inputs(folder)
        .into_iter()
        .filter(|(name, _)| name.starts_with("plugin-"))
    {
        let plugin = parse_plugin(&display(folder, &name), &bytes).unwrap_or_else(|problems| {
            panic!("{name} must be valid alone:\n{}", problems.render())
        });
        let problems = check_plugin_against_config(&plugin, &config);
        let rendered = if problems.is_empty() {
            "ok\n".to_owned()
        } else {
            problems
                .iter()
                .map(|p| p.render())
                .collect::<Vec<_>>()
                .join("\n")
        };
        snapshots.check(folder, &name, &rendered);
    }
    snapshots.finish();
}

#[test]
fn the_corpus_exercises_every_code_a_file_can_cause() {
    let mut seen = BTreeSet::new();
    for (name, bytes) in inputs("invalid") {
        if let Err(problems) = parse(kind_of(&name), &name, &bytes) {
            seen.extend(problems.items().iter().map(|p| p.code));
        }
    }
    let config = parse_operator(
        "relo.toml",
        &fs::read(repo_root().join("tests/manifests/against-config/relo.toml"))
            .expect("the corpus is readable"),
    )
    .expect("the corpus is readable");
    for (name, bytes) in inputs("against-config")
        .into_iter()
        .filter(|(name, _)| name.starts_with("plugin-"))
    {
        let plugin = parse_plugin(&name, &bytes).expect("the corpus is readable");
        seen.extend(
            check_plugin_against_config(&plugin, &config)
                .iter()
                .map(|p| p.code),
        );
    }
    // Generated at test time (robustness.rs) or only produced by the CLI.
    let elsewhere = [Code::TooLarge, Code::UnknownKind, Code::Unreadable];
    let missing: Vec<&str> = Code::ALL
        .iter()
        .filter(|code| !seen.contains(code) && !elsewhere.contains(code))
        .map(|code| code.as_str())
        .collect();
    assert!(missing.is_empty(), "no corpus file produces: {missing:?}");
}

#[test]
fn every_snapshot_has_its_input() {
    for folder in ["valid", "invalid", "against-config"] {
        let dir = repo_root().join("tests/manifests").join(folder);
        for entry in fs::read_dir(&dir).expect("the corpus is readable") {
            let path = entry.expect("the corpus is readable").path();
            let name = path.to_string_lossy().into_owned();
            if let Some(input) = name.strip_suffix(".expected") {
                assert!(Path::new(input).exists(), "{name} has no input file");
            }
        }
    }
}
