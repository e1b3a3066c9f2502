//! The command line's shape.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use relo_manifest::FileKind;

/// Exit code: a check failed or the input is invalid.
pub const EXIT_FAILED: u8 = 1;

const EXIT_CODES: &str = "\
Exit codes:
  0  everything is valid
  1  a file is invalid (or a check failed)
  2  bad usage (wrong arguments)";

/// relo: a release orchestrator whose steps are signed WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "relo", version, about, after_help = EXIT_CODES)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check plugin manifests, workflows and operator configs, reporting every problem.
    #[command(after_help = VALIDATE_HELP)]
    Validate(ValidateArgs),
    /// Print or write the JSON Schemas of the three file formats.
    #[command(after_help = SCHEMA_HELP)]
    Schema(SchemaArgs),
}

const VALIDATE_HELP: &str = "\
Examples:
  relo validate manifests/release.yaml
  relo validate --config relo.toml plugins/*/relo-plugin.toml
  relo validate --json relo.toml release.yaml

The kind of each file is told from its name and tables: *.yaml and *.yml are workflows,
relo-plugin.toml (or a TOML file with [plugin]) is a plugin manifest, relo.toml (or a
TOML file with [ceilings], [endpoints], [trust], [[people]], ...) is the operator config.

Exit codes:
  0  every file is valid
  1  a file is invalid, unreadable or of an unknown kind
  2  bad usage (wrong arguments)";

const SCHEMA_HELP: &str = "\
Examples:
  relo schema workflow                 # print one schema
  relo schema --write docs/schema      # (re)write all three
  relo schema --check docs/schema      # exit 1 if a committed schema is stale

Exit codes:
  0  done (or, with --check, up to date)
  1  with --check, a schema is missing or stale
  2  bad usage (wrong arguments)";

/// `relo validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The files to check.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Read every file as this kind instead of telling it from the name.
    #[arg(long, value_enum)]
    pub kind: Option<Kind>,
    /// Also check plugin manifests against this operator config (endpoints, secret
    /// bindings, signing keys).
    #[arg(long, value_name = "RELO_TOML")]
    pub config: Option<PathBuf>,
    /// Print a JSON array with one result per file instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `relo schema`.
#[derive(Debug, clap::Args)]
pub struct SchemaArgs {
    /// The schema to print.
    #[arg(value_enum, required_unless_present_any = ["write", "check"])]
    pub kind: Option<Kind>,
    /// Write all three schemas into this folder.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["check", "kind"])]
    pub write: Option<PathBuf>,
    /// Compare all three schemas with the files in this folder.
    #[arg(long, value_name = "DIR", conflicts_with = "kind")]
    pub check: Option<PathBuf>,
}

/// A file kind on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// A plugin manifest (relo-plugin.toml).
    Plugin,
    /// A workflow (YAML).
    Workflow,
    /// The operator config (relo.toml).
    Operator,
}

impl From<Kind> for FileKind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Plugin => FileKind::Plugin,
            Kind::Workflow => FileKind::Workflow,
            Kind::Operator => FileKind::Operator,
        }
    }
}
