//! `relo plugin new NAME` and `relo plugin build [DIR]`: start a plugin from the SDK's
//! template, and build one into a component that relo would load.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context as _, bail};
use relo_trust::sha256_hex;
use serde_json::{Value, json};

use crate::args::{PluginBuildArgs, PluginNewArgs};
use crate::plugin::read_manifest;

/// The SDK template, embedded so `relo plugin new` works from any folder.
const TEMPLATE_LIB: &str = include_str!("../../../../sdk/rust/template/src/lib.rs");
const TEMPLATE_MANIFEST: &str = include_str!("../../../../sdk/rust/template/relo-plugin.toml");
const TEMPLATE_CARGO: &str = include_str!("../../../../sdk/rust/template/Cargo.toml");
/// The template's package name and plugin name, replaced by the new ones.
const TEMPLATE_PACKAGE: &str = "greet-release";
const TEMPLATE_PLUGIN: &str = "example/greet-release";
/// Where the SDK of this relo's source tree is, the default `relo-sdk` path.
const SDK_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../sdk/rust");

const GUEST_TARGET: &str = "wasm32-wasip2";

/// Runs `relo plugin new`.
pub fn new(args: &PluginNewArgs) -> anyhow::Result<ExitCode> {
    let name: relo_manifest::PluginName = args.name.parse().map_err(|e| {
        anyhow::anyhow!("`{}` is not a plugin name (namespace/name): {e}", args.name)
    })?;
    let package = name
        .as_str()
        .rsplit('/')
        .next()
        .unwrap_or(name.as_str())
        .to_owned();
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(&package));
    if dir.exists() {
        bail!("{} already exists; nothing was written", dir.display());
    }
    let sdk = match &args.sdk {
        Some(sdk) => sdk.clone(),
        None => PathBuf::from(SDK_DIR),
    };
    let sdk = std::fs::canonicalize(&sdk).with_context(|| {
        format!(
            "the relo-sdk folder {} does not exist (pass --sdk PATH)",
            sdk.display()
        )
    })?;
    let cargo = TEMPLATE_CARGO
        .replace(
            &format!("name = \"{TEMPLATE_PACKAGE}\""),
            &format!("name = \"{package}\""),
        )
        .replace(
            "relo-sdk = { path = \"../\" }",
            &format!("relo-sdk = {{ path = {:?} }}", sdk.display().to_string()),
        );
    let manifest = TEMPLATE_MANIFEST.replace(TEMPLATE_PLUGIN, name.as_str());
    std::fs::create_dir_all(dir.join("src"))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    for (file, text) in [
        ("Cargo.toml", cargo.as_str()),
        ("relo-plugin.toml", manifest.as_str()),
        ("src/lib.rs", TEMPLATE_LIB),
    ] {
        std::fs::write(dir.join(file), text)
            .with_context(|| format!("cannot write {}", dir.join(file).display()))?;
    }
    println!(
        "created {} ({name}), a step from the relo-sdk template",
        dir.display()
    );
    println!(
        "  edit src/lib.rs and relo-plugin.toml, then: relo plugin build {}",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Runs `relo plugin build`.
pub fn build(args: &PluginBuildArgs) -> anyhow::Result<ExitCode> {
    let dir = &args.dir;
    let manifest_path = dir.join("relo-plugin.toml");
    let manifest = read_manifest(&manifest_path)?;
    let cargo_toml = dir.join("Cargo.toml");
    if !cargo_toml.is_file() {
        bail!("{} has no Cargo.toml", dir.display());
    }
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .args([
            "build",
            "--release",
            "--target",
            GUEST_TARGET,
            "--message-format=json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(&cargo_toml)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(target_dir) = &args.target_dir {
        command.arg("--target-dir").arg(target_dir);
    }
    let output = command
        .output()
        .context("cannot run cargo (is the Rust toolchain installed?)")?;
    if !output.status.success() {
        bail!(
            "cargo build failed for {} (is the target installed? `rustup target add {GUEST_TARGET}`)",
            dir.display()
        );
    }
    let wasm = built_component(&output.stdout, &cargo_toml)?;
    let bytes = std::fs::read(&wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
    // What relo would refuse at load is refused here, before anyone signs it.
    relo_sandbox::check_imports(&bytes)
        .map_err(|e| anyhow::anyhow!("{} would be refused at load: {e}", wasm.display()))?;
    let digest = sha256_hex(&bytes);
    if args.json {
        let out = json!({
            "plugin": manifest.plugin.name.as_str(), "version": manifest.plugin.version.to_string(),
            "wasm": wasm, "manifest": manifest_path, "sha256": digest, "bytes": bytes.len(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("{}", wasm.display());
        eprintln!(
            "built {}@{} ({} bytes, sha256 {digest}); sign it with `relo plugin sign {} --manifest {} --key KEY`",
            manifest.plugin.name,
            manifest.plugin.version,
            bytes.len(),
            wasm.display(),
            manifest_path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The `.wasm` of the package at `cargo_toml`, from cargo's JSON messages.
fn built_component(messages: &[u8], cargo_toml: &Path) -> anyhow::Result<PathBuf> {
    let wanted = std::fs::canonicalize(cargo_toml)
        .with_context(|| format!("cannot resolve {}", cargo_toml.display()))?;
    for line in String::from_utf8_lossy(messages).lines() {
        let Ok(message) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact"
            || message["manifest_path"].as_str().map(PathBuf::from) != Some(wanted.clone())
        {
            continue;
        }
        let is_cdylib = message["target"]["crate_types"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|k| k == "cdylib"));
        if let Some(wasm) = message["filenames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .find(|f| f.ends_with(".wasm"))
            && is_cdylib
        {
            return Ok(PathBuf::from(wasm));
        }
    }
    bail!(
        "cargo built no component for {}: the package needs `[lib] crate-type = [\"cdylib\"]`",
        cargo_toml.display()
    )
}
