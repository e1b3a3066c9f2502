//! relo's three file formats: the plugin manifest (`relo-plugin.toml`), the workflow
//! (YAML, `apiVersion: relo.dev/v1`) and the operator config (`relo.toml`).
//!
//! Each is parsed into a located value tree first, then read into typed values while
//! every problem is collected: a file is either accepted whole or refused with **all** its
//! unknown keys, wrong types and semantic problems in one [`Diagnostics`] report (only a
//! syntax error stops early). Every [`Diagnostic`] has a stable [`Code`], the file, line,
//! column, field path, a message and often a hint; it renders like a compiler message and
//! serialises as JSON. Names, sizes, durations, URL patterns, networks and references are
//! validated newtypes, so an invalid value cannot be constructed.
//!
//! ```
//! use relo_manifest::{Code, parse_plugin, parse_workflow};
//!
//! let manifest = parse_plugin("relo-plugin.toml", br#"
//! [plugin]
//! name = "acme/publish-release"
//! version = "0.1.0"
//! [limits]
//! memory = "32MiB"
//! timeout = "10s"
//! [[egress]]
//! url = "{{ endpoints.forge }}/api/releases"
//! methods = ["POST"]
//! "#).unwrap();
//! assert_eq!(manifest.limits.memory.unwrap().bytes(), 32 << 20);
//! assert_eq!(manifest.egress[0].url.endpoint().unwrap().as_str(), "forge");
//!
//! let problems = parse_workflow("release.yaml", br#"
//! apiVersion: relo.dev/v1
//! kind: Workflow
//! name: release
//! steps:
//!   - id: a
//!     uses: acme/a@0.1.0
//!     needs: [b]
//!   - id: b
//!     uses: acme/b@0.1.0
//!     needs: [a]
//!     tiemout: 10s
//! "#).unwrap_err();
//! let codes: Vec<Code> = problems.items().iter().map(|d| d.code).collect();
//! assert_eq!(codes, [Code::Cycle, Code::UnknownField]);
//! assert!(problems.render().contains("a -> b -> a"));
//! ```

mod against;
mod decode;
mod diagnostic;
mod expr;
mod origin;
mod schema;
mod source;
mod toml;
mod tree;
pub mod v1;
mod values;
mod yaml;

use std::fmt;
use std::str::FromStr;

pub use against::check_plugin_against_config;
pub use diagnostic::{Code, Diagnostic, Diagnostics, Located};
pub use expr::{Condition, Expression, Literal, Reference, Segment, Template, TemplatePart};
pub use origin::Origin;
pub use schema::{schema, schema_file_name, schema_text};
pub use source::{MAX_DEPTH, MAX_FILE_BYTES};
pub use v1::operator::{
    AppRole, Ceilings, EvidenceConfig, OperatorConfig, Person, SecretsConfig, Signing, StoreConfig,
    Trust, TrustedSigner, VaultAuth,
};
pub use v1::plugin::{
    DeclaredEgress, DeclaredSecret, Filesystem, InjectTarget, PluginInfo, PluginLimits,
    PluginManifest, SignerRequest,
};
pub use v1::workflow::{Approval, Concurrency, Param, Step, Workflow};
pub use values::{
    BaseUrl, ByteSize, Cidr, DurationSpec, EndpointName, EnvName, HeaderName, InvalidValue,
    KeyName, KeyRef, Method, OnConflict, ParamName, ParamType, Pattern, PersonName, PluginGlob,
    PluginName, PluginRef, PluginVersion, PortRanges, RelativePath, Role, Scheme, SecretName,
    SecretPath, SecretsProvider, SemVer, Sha256Digest, StepId, StoreUrl, UrlPattern, WitnessRef,
    WorkflowName, WorkspaceAccess,
};
pub use yaml::MAX_ALIAS_NODES;

use decode::{Cx, Path};
use tree::{Kind, Node};

/// The three kinds of file relo reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// `relo-plugin.toml`.
    Plugin,
    /// A workflow, `*.yaml` / `*.yml`.
    Workflow,
    /// `relo.toml`.
    Operator,
}

impl FileKind {
    /// Every kind.
    pub const ALL: &'static [FileKind] =
        &[FileKind::Plugin, FileKind::Workflow, FileKind::Operator];

    /// `plugin`, `workflow` or `operator`.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Plugin => "plugin",
            FileKind::Workflow => "workflow",
            FileKind::Operator => "operator",
        }
    }

    /// Tells the kind of a file from its name and, for TOML, its tables: `*.yaml` and
    /// `*.yml` are workflows; `relo-plugin.toml` or a TOML file with a `[plugin]` table is
    /// a plugin manifest; `relo.toml` or a TOML file with the operator's tables
    /// (`[ceilings]`, `[endpoints]`, `[trust]`, `[[people]]`, …) is the operator config.
    pub fn detect(file_name: &str, bytes: &[u8]) -> Option<FileKind> {
        let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
        let lower = base.to_ascii_lowercase();
        if lower.ends_with(".yaml") || lower.ends_with(".yml") {
            return Some(FileKind::Workflow);
        }
        if lower == "relo-plugin.toml" {
            return Some(FileKind::Plugin);
        }
        if lower == "relo.toml" {
            return Some(FileKind::Operator);
        }
        if !lower.ends_with(".toml") {
            return None;
        }
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_FILE_BYTES)]);
        let headers: Vec<String> = text
            .lines()
            .map(str::trim_start)
            .filter(|line| line.starts_with('['))
            .map(|line| line.chars().filter(|c| !c.is_whitespace()).collect())
            .collect();
        let has = |prefixes: &[&str]| {
            headers
                .iter()
                .any(|header| prefixes.iter().any(|prefix| header.starts_with(prefix)))
        };
        if has(&["[plugin]", "[plugin."]) {
            Some(FileKind::Plugin)
        } else if has(&[
            "[ceilings",
            "[endpoints",
            "[trust",
            "[[trust.",
            "[[people",
            "[signing",
            "[evidence",
            "[store",
            "[secrets.bindings",
        ]) {
            Some(FileKind::Operator)
        } else {
            None
        }
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FileKind {
    type Err = InvalidValue;

    fn from_str(text: &str) -> Result<Self, InvalidValue> {
        match text {
            "plugin" => Ok(FileKind::Plugin),
            "workflow" => Ok(FileKind::Workflow),
            "operator" => Ok(FileKind::Operator),
            _ => Err(InvalidValue::new(format!(
                "`{text}` is not a file kind: expected plugin, workflow or operator"
            ))),
        }
    }
}

/// A parsed file of any kind.
#[derive(Debug, Clone, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "one document per file is held at a time; boxing would only add indirection"
)]
pub enum Document {
    /// A plugin manifest.
    Plugin(PluginManifest),
    /// A workflow.
    Workflow(Workflow),
    /// An operator config.
    Operator(OperatorConfig),
}

impl Document {
    /// Its kind.
    pub fn kind(&self) -> FileKind {
        match self {
            Document::Plugin(_) => FileKind::Plugin,
            Document::Workflow(_) => FileKind::Workflow,
            Document::Operator(_) => FileKind::Operator,
        }
    }

    /// The normalised form: every default filled in, every value canonical, as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        let value = match self {
            Document::Plugin(plugin) => serde_json::to_value(plugin),
            Document::Workflow(workflow) => serde_json::to_value(workflow),
            Document::Operator(config) => serde_json::to_value(config),
        };
        value.unwrap_or(serde_json::Value::Null)
    }
}

/// Parses a file of the given kind. `file` is the name used in diagnostics.
pub fn parse(kind: FileKind, file: &str, bytes: &[u8]) -> Result<Document, Diagnostics> {
    match kind {
        FileKind::Plugin => parse_plugin(file, bytes).map(Document::Plugin),
        FileKind::Workflow => parse_workflow(file, bytes).map(Document::Workflow),
        FileKind::Operator => parse_operator(file, bytes).map(Document::Operator),
    }
}

/// Parses a plugin manifest (`relo-plugin.toml`).
pub fn parse_plugin(file: &str, bytes: &[u8]) -> Result<PluginManifest, Diagnostics> {
    read(
        file,
        bytes,
        Format::Toml,
        check_toml_version,
        v1::plugin::decode,
    )
}

/// Parses a workflow (YAML).
pub fn parse_workflow(file: &str, bytes: &[u8]) -> Result<Workflow, Diagnostics> {
    read(
        file,
        bytes,
        Format::Yaml,
        v1::workflow::check_version,
        v1::workflow::decode,
    )
}

/// Parses an operator config (`relo.toml`).
pub fn parse_operator(file: &str, bytes: &[u8]) -> Result<OperatorConfig, Diagnostics> {
    read(
        file,
        bytes,
        Format::Toml,
        check_toml_version,
        v1::operator::decode,
    )
}

#[derive(Clone, Copy)]
enum Format {
    Yaml,
    Toml,
}

/// The one path every file takes: gate the bytes, build the tree, detect the version,
/// read the typed value; any problem anywhere refuses the file with every problem found.
fn read<T>(
    file: &str,
    bytes: &[u8],
    format: Format,
    version: fn(&mut Cx<'_>, &Node) -> bool,
    decode: fn(&mut Cx<'_>, &Node, Origin) -> Option<T>,
) -> Result<T, Diagnostics> {
    let (text, base) =
        source::gate(file, bytes).map_err(|problem| Diagnostics::new(file, vec![*problem]))?;
    let mut cx = Cx::new(file, text, base);
    let root = match format {
        Format::Yaml => yaml::parse(&mut cx, text),
        Format::Toml => toml::parse(&mut cx, text),
    };
    let Some(root) = root else {
        return Err(Diagnostics::new(file, cx.into_diagnostics()));
    };
    if !version(&mut cx, &root) {
        return Err(Diagnostics::new(file, cx.into_diagnostics()));
    }
    let origin = Origin::new(file, text, base, &root);
    let value = decode(&mut cx, &root, origin);
    match value {
        Some(value) if !cx.has_errors() => Ok(value),
        _ => {
            let mut problems = cx.into_diagnostics();
            if problems.is_empty() {
                problems.push(Diagnostic::whole_file(
                    Code::InvalidValue,
                    file,
                    "the file could not be read",
                ));
            }
            Err(Diagnostics::new(file, problems))
        }
    }
}

/// TOML files may say `schema_version = 1`; absent means 1.
fn check_toml_version(cx: &mut Cx<'_>, root: &Node) -> bool {
    let Some(node) = root.get("schema_version") else {
        return true;
    };
    let path = Path::root().field("schema_version");
    match node.kind {
        Kind::Int(1) => true,
        Kind::Int(other) => {
            cx.error(
                Code::UnsupportedVersion,
                node.span.clone(),
                &path,
                format!("schema_version {other} is not a version this relo reads"),
            )
            .hint = Some("this relo reads schema_version 1".into());
            false
        }
        _ => {
            cx.wrong_type(node, &path, "an integer");
            true
        }
    }
}
