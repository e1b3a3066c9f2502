//! The import allowlist, checked on the raw bytes before anything is compiled.

use wasmtime::wasmparser::{Encoding, Parser, Payload};

use crate::error::LoadError;

/// Every interface a step may import, as `(package, interfaces)`.
///
/// relo's own package must match its version exactly; WASI packages match any 0.2.x
/// patch version. Anything else, `wasi:sockets` included, is refused at load.
pub const ALLOWED_INTERFACES: &[(&str, &[&str])] = &[
    (
        "relo:plugin",
        &["types", "log", "secrets", "reveal", "signer"],
    ),
    (
        "wasi:cli",
        &[
            "environment",
            "exit",
            "stdin",
            "stdout",
            "stderr",
            "terminal-input",
            "terminal-output",
            "terminal-stdin",
            "terminal-stdout",
            "terminal-stderr",
        ],
    ),
    ("wasi:io", &["error", "poll", "streams"]),
    ("wasi:clocks", &["monotonic-clock", "wall-clock"]),
    ("wasi:random", &["random", "insecure", "insecure-seed"]),
    ("wasi:filesystem", &["types", "preopens"]),
    ("wasi:http", &["types", "outgoing-handler"]),
];

const RELO_VERSION: &str = "0.1.0";

/// Checks that `bytes` are a component whose every top-level import is allowed.
///
/// Only the component's own imports matter: nested modules and components can import
/// only what the outer component gives them.
pub fn check_imports(bytes: &[u8]) -> Result<(), LoadError> {
    match component_imports(bytes)?
        .into_iter()
        .find(|name| !is_allowed(name))
    {
        Some(import) => Err(LoadError::ForbiddenImport { import }),
        None => Ok(()),
    }
}

/// The top-level imports of the component `bytes`, fully qualified
/// (`wasi:http/outgoing-handler@0.2.4`), in the order the component lists them; a core
/// module or bytes that do not parse are [`LoadError::NotAComponent`].
pub fn component_imports(bytes: &[u8]) -> Result<Vec<String>, LoadError> {
    let mut depth = 0usize;
    let mut imports = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|err| LoadError::NotAComponent(err.to_string()))?;
        match payload {
            Payload::Version { encoding, .. } if depth == 0 && encoding != Encoding::Component => {
                return Err(LoadError::NotAComponent(
                    "this is a core module; build for wasm32-wasip2 to get a component".into(),
                ));
            }
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let import = import.map_err(|err| LoadError::NotAComponent(err.to_string()))?;
                    imports.push(match import.name.version_suffix {
                        Some(version) => format!("{}@{version}", import.name.name),
                        None => import.name.name.to_owned(),
                    });
                }
            }
            _ => {}
        }
    }
    Ok(imports)
}

/// Whether one fully qualified import name (`ns:pkg/iface@version`) is allowed.
fn is_allowed(name: &str) -> bool {
    let Some((path, version)) = name.split_once('@') else {
        return false;
    };
    let Some((package, interface)) = path.split_once('/') else {
        return false;
    };
    let version_ok = if package == "relo:plugin" {
        version == RELO_VERSION
    } else {
        version
            .strip_prefix("0.2.")
            .is_some_and(|patch| !patch.is_empty() && patch.bytes().all(|b| b.is_ascii_digit()))
    };
    version_ok
        && ALLOWED_INTERFACES
            .iter()
            .any(|(allowed, interfaces)| *allowed == package && interfaces.contains(&interface))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist_table() {
        let cases = [
            ("relo:plugin/log@0.1.0", true),
            ("relo:plugin/log@0.2.0", false),
            ("relo:plugin/evil@0.1.0", false),
            ("wasi:cli/environment@0.2.4", true),
            ("wasi:cli/environment@0.2.10", true),
            ("wasi:cli/environment@0.3.0", false),
            ("wasi:cli/environment@0.2.", false),
            ("wasi:cli/environment", false),
            ("wasi:cli/run@0.2.4", false),
            ("wasi:http/outgoing-handler@0.2.0", true),
            ("wasi:http/incoming-handler@0.2.0", false),
            ("wasi:sockets/tcp@0.2.4", false),
            ("wasi:sockets/ip-name-lookup@0.2.4", false),
            ("wasi:filesystem/preopens@0.2.4", true),
            ("acme:evil/backdoor@0.2.0", false),
            ("plain-name", false),
        ];
        for (name, allowed) in cases {
            assert_eq!(is_allowed(name), allowed, "{name}");
        }
    }

    #[test]
    fn garbage_and_core_modules_are_not_components() {
        assert_eq!(
            check_imports(b"not wasm").unwrap_err().code(),
            "not-a-component"
        );
        let core_module = b"\0asm\x01\0\0\0";
        assert_eq!(
            check_imports(core_module).unwrap_err().code(),
            "not-a-component"
        );
    }
}
