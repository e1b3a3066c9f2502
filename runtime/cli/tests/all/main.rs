//! Runs the built `relo` binary: exit codes, text and JSON output, kind detection,
//! checks against a config, and the schema command; `evidence` runs `relo evidence` and
//! `relo key` against logs written with relo-store's writer, on SQLite and PostgreSQL;
//! `release` runs the reference release end to end with the official plugins; `serve`
//! runs `relo serve` over TLS and plain HTTP; `client` runs `relo --server URL ...`
//! against it.

mod client;
mod evidence;
mod instances;
mod plugin;
mod release;
mod serve;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The built `relo`, with its state folder (`XDG_STATE_HOME`, where evidence witnesses
/// go) in a temporary folder of this test binary: no test writes under the real home.
/// Witness files are named by their log's origin, so the tests' homes never collide.
fn relo_command() -> Command {
    static STATE: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let state = STATE.get_or_init(|| tempfile::tempdir().expect("a state folder"));
    let mut command = Command::new(env!("CARGO_BIN_EXE_relo"));
    command.env("XDG_STATE_HOME", state.path());
    command
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `relo` in the repository root.
fn relo(args: &[&str]) -> Output {
    relo_command()
        .args(args)
        .current_dir(repo())
        .output()
        .expect("relo runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_valid_file_prints_ok_and_exits_0() {
    let output = relo(&[
        "validate",
        "tests/manifests/valid/workflow-design-sketch.yaml",
    ]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(
        stdout(&output),
        "ok: tests/manifests/valid/workflow-design-sketch.yaml\n"
    );
}

#[test]
fn an_invalid_file_prints_every_problem_and_exits_1() {
    let output = relo(&[
        "validate",
        "tests/manifests/invalid/workflow-many-problems.yaml",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    for code in [
        "invalid-value",
        "unknown-param",
        "out-of-range",
        "unknown-step",
        "unknown-role",
        "cycle",
        "unknown-field",
        "duplicate-step-id",
    ] {
        assert!(
            text.contains(&format!("error[{code}]")),
            "{code} missing from:\n{text}"
        );
    }
    assert!(text.contains("--> tests/manifests/invalid/workflow-many-problems.yaml:16:22"));
    assert!(text.contains("is invalid: 10 problems"));
}

#[test]
fn every_invalid_corpus_file_prints_its_diagnostic() {
    let dir = repo().join("tests/manifests/invalid");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".expected") {
            continue;
        }
        let kind = if name.starts_with("plugin-") {
            "plugin"
        } else if name.starts_with("operator-") {
            "operator"
        } else {
            "workflow"
        };
        let relative = format!("tests/manifests/invalid/{name}");
        let output = relo(&["validate", "--kind", kind, &relative]);
        assert_eq!(output.status.code(), Some(1), "{name}");
        let expected = std::fs::read_to_string(dir.join(format!("{name}.expected"))).unwrap();
        let text = stdout(&output);
        assert!(
            text.starts_with(expected.trim_end()),
            "{name}:\n{text}\nexpected:\n{expected}"
        );
        checked += 1;
    }
    assert!(checked >= 30);
}

#[test]
fn json_output_is_an_array_of_results() {
    let output = relo(&[
        "validate",
        "--json",
        "tests/manifests/valid/plugin-minimal.toml",
        "tests/manifests/invalid/workflow-cycle.yaml",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let results: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["valid"], true);
    assert_eq!(results[0]["kind"], "plugin");
    assert_eq!(results[0]["diagnostics"], serde_json::json!([]));
    assert_eq!(results[1]["valid"], false);
    let cycle = &results[1]["diagnostics"][0];
    assert_eq!(cycle["code"], "cycle");
    assert_eq!(cycle["file"], "tests/manifests/invalid/workflow-cycle.yaml");
    assert_eq!(cycle["line"], 10);
    assert_eq!(cycle["column"], 13);
    assert_eq!(cycle["path"], "steps[1].needs[0]");
    assert!(
        cycle["message"]
            .as_str()
            .unwrap()
            .contains("build -> deploy -> test -> build")
    );
    assert!(cycle["hint"].is_string());
}

#[test]
fn kinds_are_told_from_names_and_tables() {
    let output = relo(&[
        "validate",
        "tests/manifests/valid/plugin-design-sketch.toml",
        "tests/manifests/valid/operator-design-sketch.toml",
        "tests/manifests/valid/workflow-expressions.yaml",
        "manifests/relo.toml",
        "manifests/release.yaml",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    let output = relo(&["validate", "--json", "README.md"]);
    assert_eq!(output.status.code(), Some(1));
    let results: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(results[0]["diagnostics"][0]["code"], "unknown-kind");
}

#[test]
fn plugins_are_checked_against_a_config() {
    let config = "tests/manifests/against-config/relo.toml";
    let bound = relo(&[
        "validate",
        "--config",
        config,
        "tests/manifests/against-config/plugin-bound.toml",
    ]);
    assert_eq!(bound.status.code(), Some(0), "{}", stdout(&bound));
    let unbound = "tests/manifests/against-config/plugin-unbound-endpoint.toml";
    let alone = relo(&["validate", "--kind", "plugin", unbound]);
    assert_eq!(
        alone.status.code(),
        Some(0),
        "unbound endpoints are fine without a config"
    );
    let against = relo(&["validate", "--kind", "plugin", "--config", config, unbound]);
    assert_eq!(against.status.code(), Some(1));
    assert!(stdout(&against).contains("error[unbound-endpoint]: endpoint `forje` is not bound"));
    let broken = relo(&[
        "validate",
        "--config",
        "tests/manifests/invalid/operator-bad-cidrs.toml",
        unbound,
    ]);
    assert_eq!(broken.status.code(), Some(1));
    assert!(stdout(&broken).contains("operator-bad-cidrs.toml is invalid"));
}

#[test]
fn unreadable_and_oversized_files_are_reported() {
    let output = relo(&["validate", "--json", "no/such/file.yaml"]);
    assert_eq!(output.status.code(), Some(1));
    let results: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(results[0]["diagnostics"][0]["code"], "unreadable");

    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.yaml");
    std::fs::write(&big, vec![b'a'; 10 * 1024 * 1024]).unwrap();
    let output = relo(&["validate", "--json", big.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let results: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(results[0]["diagnostics"][0]["code"], "too-large");
}

#[test]
fn bad_usage_exits_2() {
    for args in [
        &["validate"][..],
        &["validate", "--kind", "bogus", "x.yaml"][..],
        &["validate", "--no-such-flag", "x.yaml"][..],
        &["frobnicate"][..],
        &[][..],
    ] {
        let output = relo(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
    }
}

#[test]
fn help_shows_an_example_and_the_exit_codes() {
    let output = relo(&["validate", "--help"]);
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    assert!(text.contains("relo validate manifests/release.yaml"));
    assert!(text.contains("Exit codes:"));
    let output = relo(&["--help"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout(&output).contains("validate"));
}

#[test]
fn schemas_print_and_check() {
    let output = relo(&["schema", "workflow"]);
    assert_eq!(output.status.code(), Some(0));
    let schema: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(schema["title"].as_str().unwrap().contains("workflow"));
    let output = relo(&["schema", "--check", "docs/schema"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    let dir = tempfile::tempdir().unwrap();
    let output = relo(&["schema", "--check", dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let output = relo(&["schema", "--write", dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0));
    assert!(Path::new(&dir.path().join("operator.schema.json")).exists());
}

#[test]
fn a_reader_that_closes_stdout_early_is_not_a_panic() {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let output = relo_command()
        .args(["schema", "plugin"])
        .current_dir(repo())
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("relo runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
}
