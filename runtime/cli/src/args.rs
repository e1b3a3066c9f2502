//! The command line's shape.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use relo_manifest::FileKind;

/// Exit code: a check failed or the input is invalid.
pub const EXIT_FAILED: u8 = 1;

/// Exit code: the run is waiting for approval (`relo approve`, then `relo resume`).
pub const EXIT_WAITING: u8 = 3;

const EXIT_CODES: &str = "\
Exit codes:
  0  done (the run succeeded, every file is valid)
  1  a check failed, something was refused, a run failed, or the input is invalid
  2  bad usage (wrong arguments)
  3  a run is waiting for approval";

/// relo: a release orchestrator whose steps are signed WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "relo", version, about, after_help = EXIT_CODES)]
pub struct Args {
    /// Work on this relo server instead of this machine (https://, or http:// to 127.0.0.1,
    /// ::1 or localhost): login, logout, run, approve, runs, evidence export and verify,
    /// plugin add.
    #[arg(long, global = true, env = "RELO_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// With --server: also trust the CA certificates of this PEM file (such as the
    /// development CA of `relo init --tls`, tls/ca.pem in the home).
    #[arg(long, global = true, env = "RELO_CA_CERT", value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,
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
    /// Make signing keys.
    #[command(subcommand, after_help = KEY_HELP)]
    Key(KeyCommand),
    /// Verify, checkpoint and export the evidence log; rotate its key.
    #[command(after_help = EVIDENCE_HELP)]
    Evidence(EvidenceArgs),
    /// Sign, import, review, approve, revoke and block plugins.
    #[command(after_help = PLUGIN_HELP)]
    Plugin(PluginArgs),
    /// Create a relo home: relo.toml, the keys it names, the store.
    #[command(after_help = INIT_HELP)]
    Init(InitArgs),
    /// Run a workflow on this machine.
    #[command(after_help = RUN_HELP)]
    Run(RunArgs),
    /// Continue a run that waited for approval or whose process ended.
    #[command(after_help = RESUME_HELP)]
    Resume(ResumeArgs),
    /// Approve an approval gate of a run, signed with your key.
    #[command(after_help = APPROVE_HELP)]
    Approve(ApproveArgs),
    /// Serve the HTTP API (TLS; plain HTTP on loopback only).
    #[command(after_help = SERVE_HELP)]
    Serve(ServeArgs),
    /// List runs, or show one with its steps.
    #[command(after_help = RUNS_HELP)]
    Runs(RunsArgs),
    /// Show what a workflow would run, without running anything.
    #[command(after_help = PLAN_HELP)]
    Plan(PlanArgs),
    /// Log in to a relo server (--server URL) and keep the login for the commands sent
    /// to it.
    #[command(after_help = LOGIN_HELP)]
    Login(LoginArgs),
    /// Log out of a relo server (--server URL): end the login there and forget it here.
    #[command(after_help = LOGOUT_HELP)]
    Logout,
}

const LOGIN_HELP: &str = "\
Examples:
  relo --server https://relo.example.com login --name olga          # asks for the password
  RELO_PASSWORD=... relo --server http://127.0.0.1:8080 login --name olga
  relo --server https://localhost:8443 --ca-cert .relo/tls/ca.pem login --name olga

The password is taken from RELO_PASSWORD if it is set, else asked on the terminal (not
echoed). The login's tokens are kept in credentials.json in $RELO_CONFIG_DIR, else
$XDG_CONFIG_HOME/relo, else ~/.config/relo (mode 0600), one login per server; the access
token is refreshed when it is about to expire. Instead of a login, RELO_API_TOKEN can
hold an API token (`POST /v1/tokens`); it is sent as it is and never stored. Plain
http:// is refused for any host but 127.0.0.1, ::1 and localhost.

Exit codes:
  0  logged in
  1  refused (invalid-credentials, rate-limited, ...), or the server cannot be reached
  2  bad usage (wrong arguments)";

const LOGOUT_HELP: &str = "\
Examples:
  relo --server https://relo.example.com logout

Ends the login on the server (its refresh token and every token refreshed from it) and
deletes it from credentials.json. When the server cannot be reached the login is kept,
so that the logout can be tried again.

Exit codes:
  0  logged out (or was not logged in)
  1  the server cannot be reached or refused
  2  bad usage (wrong arguments)";

/// `relo login`.
#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// The user name on the server.
    #[arg(long, value_name = "NAME")]
    pub name: String,
}

const RUNS_HELP: &str = "\
Examples:
  relo runs list
  relo runs show run-1795472000-3fa1b2c4 --json
  relo runs logs run-1795472000-3fa1b2c4 --step deploy
  relo runs cancel run-1795472000-3fa1b2c4 --as olga
  relo --server https://relo.example.com runs cancel run-1795472000-3fa1b2c4

With --server the runs are the server's, and the login says who cancels (no --as).

Exit codes:
  0  done
  1  the run is unknown, or the store cannot be read
  2  bad usage (wrong arguments)";

/// `relo runs ...`.
#[derive(Debug, clap::Args)]
pub struct RunsArgs {
    /// The relo home: relo.toml and the store.
    #[arg(
        long,
        global = true,
        env = "RELO_HOME",
        default_value = ".relo",
        value_name = "DIR"
    )]
    pub home: PathBuf,
    /// What to show.
    #[command(subcommand)]
    pub command: RunsCommand,
}

/// The runs commands.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// The newest runs, newest first.
    List {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One run: its state, root cause, steps and evidence.
    Show {
        /// The run id.
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// What a run's steps logged (redacted: secret values never reach the store).
    Logs {
        /// The run id.
        id: String,
        /// Only this step.
        #[arg(long)]
        step: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a run that has not ended: no further step starts.
    Cancel {
        /// The run id.
        id: String,
        /// Who cancels: an operator or the requester, by name (recorded). Not with
        /// --server, where the login says who. Empty when not given.
        #[arg(
            long = "as",
            value_name = "NAME",
            default_value = "",
            hide_default_value = true
        )]
        as_person: String,
    },
}

const INIT_HELP: &str = "\
Examples:
  relo init --person olga                       # a starter home in ./.relo
  relo init --home .relo-demo --from manifests/relo.toml
  relo init --tls                                # and a development CA for `relo serve`

With --from, the config is copied and every key it names that does not exist yet is
generated (people: Ed25519; plugin signers and [signing.keys]: ECDSA P-256; the evidence
key: Ed25519). Nothing existing is overwritten. In a real deployment each person makes
their own key (`relo key generate`) and hands over the public half.

Exit codes:
  0  done
  1  the home is already initialised, or the config is invalid
  2  bad usage (wrong arguments)";

/// `relo init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The relo home to create.
    #[arg(long, env = "RELO_HOME", default_value = ".relo", value_name = "DIR")]
    pub home: PathBuf,
    /// Copy this relo.toml and generate the keys it names.
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
    /// The person of a starter config (without --from).
    #[arg(long, default_value = "operator", value_name = "NAME")]
    pub person: String,
    /// Also make a development CA and a server certificate for localhost (tls/).
    #[arg(long)]
    pub tls: bool,
    /// Print what was made as JSON.
    #[arg(long)]
    pub json: bool,
}

const SERVE_HELP: &str = "\
Examples:
  relo init --tls && RELO_ADMIN_PASSWORD=... relo serve --bootstrap-admin olga \\
      --listen 0.0.0.0:8443 --tls-cert .relo/tls/server.pem --tls-key .relo/tls/server.key
  relo serve --listen 127.0.0.1:8080          # plain HTTP, loopback only, with a warning
  relo serve ... --trusted-proxy 10.0.0.0/24 --metrics-listen 127.0.0.1:9464

Prints `relo serve: listening on URL` once it accepts connections. Plain HTTP on a
non-loopback address is refused. The access token key is kept in server/jwt.secret in the
home (0600). /metrics needs an admin's or auditor's token (scope metrics.read); with
--metrics-listen it is also served without one on that loopback address. The client
address is the connection's, or, from a --trusted-proxy, the right-most address of
X-Forwarded-For that is not a trusted proxy. docs/server.md describes the API and its
authentication.

Exit codes:
  0  stopped
  1  cannot start (bad certificate or key, address in use, store)
  2  bad usage (wrong arguments)";

/// `relo serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8443", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// The server's certificate chain (PEM).
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The server's private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Create this admin (password in RELO_ADMIN_PASSWORD) unless the user exists.
    #[arg(long, value_name = "NAME")]
    pub bootstrap_admin: Option<String>,
    /// Authenticated requests a minute per user or API token.
    #[arg(long, default_value_t = 120, value_name = "N")]
    pub requests_per_minute: u32,
    /// Login attempts a minute per client address, and failed logins a minute per login
    /// name.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub logins_per_minute: u32,
    /// Requests a minute per client address to the routes that need a token, counted
    /// before the token is looked at [default: five times --requests-per-minute].
    #[arg(long, value_name = "N")]
    pub client_requests_per_minute: Option<u32>,
    /// A reverse proxy's network (repeatable): from a peer inside it, the client address
    /// is taken from X-Forwarded-For; from anyone else that header is ignored.
    #[arg(long = "trusted-proxy", value_name = "CIDR")]
    pub trusted_proxies: Vec<relo_manifest::Cidr>,
    /// Also serve /metrics, without authentication, on this loopback address.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Steps of one run run at once at most.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub parallel: usize,
    /// How long this instance's claim on a run or a step lasts without renewal; another
    /// instance takes over a dead instance's runs after it.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub lease_seconds: u64,
    /// How often this instance looks for runs nobody drives (their instance died).
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    pub sweep_seconds: u64,
    /// Runs one requester may have that have not ended, at most.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub max_active_runs: u32,
    /// The relo home: relo.toml and the store.
    #[arg(long, env = "RELO_HOME", default_value = ".relo", value_name = "DIR")]
    pub home: PathBuf,
}

const RESUME_HELP: &str = "\
Examples:
  relo resume run-1795472000-3fa1b2c4

The stored request is verified again (the requester's signature, and that the stored
workflow is the one signed). Finished steps are not run again; their outputs feed the
rest. Steps held by a relo process of this machine that no longer exists (killed, crashed)
are taken over at once; steps held by another instance wait for its lease to expire.
The workspace is restored from the store if this machine does not hold its newest state.

Exit codes:
  0  the run succeeded
  1  the run failed or was refused
  2  bad usage (wrong arguments)
  3  the run is (still) waiting for approval";

/// `relo resume`.
#[derive(Debug, clap::Args)]
pub struct ResumeArgs {
    /// The run id.
    pub run_id: String,
    /// Steps run at once at most.
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// The relo home: relo.toml, keys and the store.
    #[arg(long, env = "RELO_HOME", default_value = ".relo", value_name = "DIR")]
    pub home: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

const APPROVE_HELP: &str = "\
Examples:
  relo approve --run run-1795472000-3fa1b2c4 --step approve-release --as rita
  relo approve --run run-1795472000-3fa1b2c4 --step approve-release --key ~/rita.key
  relo --server https://relo.example.com approve --run run-1795472000-3fa1b2c4 \\
      --step approve-release --as rita

The approval (run, gate, workflow sha256, approver, time) is signed with the approver's
key. It is refused, and the refusal recorded in the run's evidence, when the key is not
the person's in [[people]] (missing-role if they hold none of the gate's roles,
separation-of-duties if they requested the run). The gate passes when a quorum of
distinct people approved; `relo resume RUN` continues the run. With --server the
approval is signed here, with the key of the local home, and the server checks it.

Exit codes:
  0  approved
  1  refused, or the run or step is unknown
  2  bad usage (wrong arguments)";

/// `relo approve`.
#[derive(Debug, clap::Args)]
pub struct ApproveArgs {
    /// The run.
    #[arg(long, value_name = "ID")]
    pub run: String,
    /// The approval gate's step id.
    #[arg(long, value_name = "ID")]
    pub step: String,
    /// The approver: a person in relo.toml.
    #[arg(long = "as", value_name = "NAME")]
    pub as_person: Option<String>,
    /// The approver's private key (default keys/NAME.key in the home).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// The relo home: relo.toml, keys and the store.
    #[arg(long, env = "RELO_HOME", default_value = ".relo", value_name = "DIR")]
    pub home: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

const RUN_HELP: &str = "\
Examples:
  relo run manifests/release.yaml --param image_digest=sha256:... --as ivan
  relo run release.yaml --param public_key=@keys/release.pub --as ivan --json
  relo --server https://relo.example.com run release.yaml --param image_digest=sha256:... --as ivan

The request (workflow, its sha256, parameters, requester, time) is signed with the
requester's key, which must be theirs in [[people]] (default keys/NAME.key in the home),
and stored with the run, with the workflow text. `--param NAME=@FILE` reads the value
from a file. Steps are claimed from the store with a lease and run as their needs allow;
the workflow's `workspace:` folder is copied into the run's workspace and saved into the
store after each step that may write it. A run of a busy concurrency group waits its turn
or is refused, as `on_conflict` says. At an approval gate short of its quorum the run is
persisted as waiting: approve it with `relo approve`, continue it with `relo resume`.
Each step's evidence, and the run's start and end, go to the evidence log; a checkpoint
is signed with the evidence key when the run ends or waits. At the end a table shows per
step: status, fuel, peak memory, milliseconds, egress allowed and denied, secrets used.

With --server the request is signed here, with the requester's key of the local home,
and sent with the workflow and its workspace (a tar archive) to the server, which runs
it; the run is followed until it ends or waits for approval, each step's change shown,
and a table (step, state, attempt, error) printed. --no-follow returns once the server
has accepted the run.

Exit codes:
  0  the run succeeded
  1  the run failed (the root cause is printed), was refused, or the input is invalid
  2  bad usage (wrong arguments)
  3  the run is waiting for approval";

/// `relo run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The workflow (YAML).
    pub workflow: PathBuf,
    /// A parameter, NAME=VALUE (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// The requester: a person in relo.toml.
    #[arg(long = "as", value_name = "NAME")]
    pub as_person: Option<String>,
    /// The requester's private key (default keys/NAME.key in the home).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Steps run at once at most (on this machine; a server has its own setting).
    #[arg(long, default_value_t = 4)]
    pub parallel: usize,
    /// The relo home: relo.toml, keys and the store.
    #[arg(long, env = "RELO_HOME", default_value = ".relo", value_name = "DIR")]
    pub home: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// With --server: return once the server has accepted the run, without following it.
    #[arg(long)]
    pub no_follow: bool,
}

const PLAN_HELP: &str = "\
Examples:
  relo plan manifests/release.yaml
  relo plan manifests/release.yaml --json

For each step, in the waves it would run in (a wave needs only earlier waves): the plugin
digest `uses:` resolves to through the store, the key and person that signed it, the
approval in force, and the effective grant (declared ∩ approved ∩ ceilings: resolved
egress destinations, secrets with reveal, signing keys, environment names, workspace,
networks) and limits; for an approval gate its roles and quorum. A step whose plugin
would be refused shows the refusal's code and reason. Nothing is compiled, run or
recorded.

Exit codes:
  0  every step would be admitted
  1  a step would be refused, or the input is invalid
  2  bad usage (wrong arguments)";

/// `relo plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The workflow (YAML).
    pub workflow: PathBuf,
    /// The relo home: relo.toml, keys and the store.
    #[arg(long, env = "RELO_HOME", default_value = ".relo", value_name = "DIR")]
    pub home: PathBuf,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
}

const PLUGIN_HELP: &str = "\
Examples:
  relo plugin sign target/step.wasm --manifest relo-plugin.toml --key keys/author.key
  relo plugin add target/step.wasm target/step.attestation.json
  relo plugin inspect acme/deploy@0.2.0
  relo plugin diff acme/deploy@0.2.0            # against the newest approval
  relo plugin approve acme/deploy@0.2.0 --key keys/olga.key --expires 90d
  relo plugin revoke-approval 3f2a9c1b7d4e --reason \"leaked token\" --as olga
  relo plugin block sha256:3f2a... --reason \"CVE-2026-1234\" --as olga

A refusal prints its code: unsigned, bad-signature, untrusted-signer,
signer-not-allowed-for-name, digest-mismatch, manifest-mismatch, malformed-attestation,
blocked, revoked, not-approved, approval-digest-mismatch, approval-expired,
approver-not-operator, separation-of-duties, approval-exceeds-declared.

Exit codes:
  0  done
  1  refused, or the input is invalid, or the command failed
  2  bad usage (wrong arguments)";

/// `relo plugin ...`: the relo home and the command.
#[derive(Debug, clap::Args)]
pub struct PluginArgs {
    /// The relo home: relo.toml (the trust policy), keys and the store.
    #[arg(
        long,
        global = true,
        env = "RELO_HOME",
        default_value = ".relo",
        value_name = "DIR"
    )]
    pub home: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: PluginCommand,
}

/// The plugin commands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Sign a component and its manifest: writes a DSSE attestation and a Sigstore bundle.
    #[command(after_help = "Examples:
  relo plugin sign step.wasm --manifest relo-plugin.toml --key keys/author.key
  RELO_KEY_PASSWORD=... relo plugin sign step.wasm --manifest relo-plugin.toml --key cosign.key

Writes STEM.attestation.json (a DSSE envelope around an in-toto Statement v1 whose subject
is the plugin name with the component's sha256 and whose predicate is the manifest) and
STEM.sigstore.json (the same envelope as a Sigstore bundle v0.3). No relo home is needed.")]
    Sign(PluginSignArgs),
    /// Verify a component and its attestation against relo.toml and import them.
    #[command(after_help = "Examples:
  relo plugin add step.wasm step.attestation.json
  relo plugin add step.wasm step.sigstore.json --manifest relo-plugin.toml

Checks, in order: the attestation's shape, a signature by a [[trust.signers]] key, the key
not retired, the plugin name allowed for it, the component's digest, the signed manifest
(and, with --manifest, that the file is the signed one), the component's imports.

With --server (`relo --server URL plugin add step.wasm step.attestation.json`) the
component and its attestation are uploaded and the server checks them against its
relo.toml; --manifest is for local imports only.")]
    Add(PluginAddArgs),
    /// Show what a plugin is and asks for: name, version, digest, signer, imports, capabilities.
    #[command(after_help = "Examples:
  relo plugin inspect step.wasm --attestation step.attestation.json
  relo plugin inspect step.attestation.json
  relo plugin inspect acme/deploy@0.2.0 --json")]
    Inspect(PluginInspectArgs),
    /// Compare the capabilities of two versions, or of a version and its newest approval.
    #[command(after_help = "Examples:
  relo plugin diff acme/deploy@0.1.0 acme/deploy@0.2.0
  relo plugin diff acme/deploy@0.2.0           # against the newest unrevoked approval
  relo plugin diff new.attestation.json --json")]
    Diff(PluginDiffArgs),
    /// Sign an approval of a stored plugin's capabilities (all it declares, or fewer).
    #[command(after_help = "Examples:
  relo plugin approve acme/deploy@0.2.0 --key keys/olga.key
  relo plugin approve sha256:3f2a... --key keys/olga.key --expires 30d --out approval.json
  relo plugin approve acme/deploy@0.2.0 --key keys/olga.key --capabilities narrower.json

The key must be one of a person's in [[people]] with the operator role, and that person
must not be the one [[trust.signers]] attributes the plugin's signing key to. Endpoints
are resolved now: if an [endpoints] binding changes later, the approval no longer matches.
--capabilities takes a JSON capability set (the `capabilities` of `relo plugin inspect
--json`), which may only narrow what the plugin declares.")]
    Approve(PluginApproveArgs),
    /// Revoke an approval: steps relying on it are refused from the next step on.
    #[command(name = "revoke-approval")]
    RevokeApproval(PluginRevokeArgs),
    /// Block a digest: no step runs it from the next step on, whatever its approvals.
    Block(PluginBlockArgs),
    /// Start a plugin from the relo-sdk template.
    #[command(after_help = "Examples:
  relo plugin new acme/notify-chat
  relo plugin new acme/notify-chat --dir plugins/notify-chat --sdk ../relo/sdk/rust

Writes Cargo.toml (a cdylib using relo-sdk), relo-plugin.toml (the manifest: name,
version, limits; add the capabilities the step needs) and src/lib.rs (one typed step).")]
    New(PluginNewArgs),
    /// Build a plugin crate into a component and check it as relo would at load.
    #[command(after_help = "Examples:
  relo plugin build plugins/deploy
  relo plugin build . --json

Runs `cargo build --release --target wasm32-wasip2`, finds the component, checks its
imports against what relo allows (a forbidden import is reported now, not at run time)
and prints its path and sha256. Needs `rustup target add wasm32-wasip2`.")]
    Build(PluginBuildArgs),
}

/// `relo plugin new`.
#[derive(Debug, clap::Args)]
pub struct PluginNewArgs {
    /// The plugin's name, `namespace/name`.
    pub name: String,
    /// The folder to create (default: the name's last part).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The relo-sdk crate folder (default: the SDK of the source tree relo was built from).
    #[arg(long, value_name = "DIR")]
    pub sdk: Option<PathBuf>,
}

/// `relo plugin build`.
#[derive(Debug, clap::Args)]
pub struct PluginBuildArgs {
    /// The plugin crate's folder (with Cargo.toml and relo-plugin.toml).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Cargo's target directory (default: the crate's workspace's).
    #[arg(long, value_name = "DIR")]
    pub target_dir: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `relo plugin sign`.
#[derive(Debug, clap::Args)]
pub struct PluginSignArgs {
    /// The component (.wasm).
    pub wasm: PathBuf,
    /// The plugin manifest to sign with it.
    #[arg(long, value_name = "FILE")]
    pub manifest: PathBuf,
    /// The author's private key (PKCS#8 PEM or cosign's encrypted PEM).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// Where to write the DSSE attestation (default STEM.attestation.json).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Where to write the Sigstore bundle (default STEM.sigstore.json).
    #[arg(long, value_name = "FILE")]
    pub bundle: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `relo plugin add`.
#[derive(Debug, clap::Args)]
pub struct PluginAddArgs {
    /// The component (.wasm).
    pub wasm: PathBuf,
    /// Its attestation: a DSSE envelope or a Sigstore bundle.
    pub attestation: PathBuf,
    /// A manifest file that must be the signed one.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `relo plugin inspect`.
#[derive(Debug, clap::Args)]
pub struct PluginInspectArgs {
    /// A .wasm file, an attestation file, `name@version` or a digest in the store.
    pub target: String,
    /// The attestation of a .wasm file not in the store.
    #[arg(long, value_name = "FILE")]
    pub attestation: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `relo plugin diff`.
#[derive(Debug, clap::Args)]
pub struct PluginDiffArgs {
    /// The old version (or, alone, the new one).
    #[arg(value_name = "OLD")]
    pub first: String,
    /// The new version.
    #[arg(value_name = "NEW")]
    pub new: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `relo plugin approve`.
#[derive(Debug, clap::Args)]
pub struct PluginApproveArgs {
    /// The stored plugin: `name@version` or a digest.
    pub plugin: String,
    /// The approver's private key.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// When the approval ends: a duration (`30d`) or an RFC 3339 UTC time.
    #[arg(long, value_name = "WHEN")]
    pub expires: Option<String>,
    /// Approve this capability set (JSON) instead of everything declared.
    #[arg(long, value_name = "FILE")]
    pub capabilities: Option<PathBuf>,
    /// Also write the signed approval to FILE.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `relo plugin revoke-approval`.
#[derive(Debug, clap::Args)]
pub struct PluginRevokeArgs {
    /// The approval id (at least 12 characters of it).
    pub id: String,
    /// Why.
    #[arg(long)]
    pub reason: String,
    /// The operator revoking it (a person in relo.toml).
    #[arg(long = "as", value_name = "NAME")]
    pub as_person: String,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `relo plugin block`.
#[derive(Debug, clap::Args)]
pub struct PluginBlockArgs {
    /// The digest to block (`sha256:HEX` or `HEX`).
    pub digest: String,
    /// Why.
    #[arg(long)]
    pub reason: String,
    /// The operator blocking it (a person in relo.toml).
    #[arg(long = "as", value_name = "NAME")]
    pub as_person: String,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `relo key ...`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Generate a key pair: STEM.key (PKCS#8 PEM, mode 0600, optionally encrypted) and
    /// STEM.pub (SPKI PEM).
    #[command(after_help = KEY_GENERATE_HELP)]
    Generate(KeyGenerateArgs),
}

const KEY_HELP: &str = "\
Examples:
  relo key generate --type ed25519 --out .relo/keys/evidence

Exit codes:
  0  done
  1  the command failed
  2  bad usage (wrong arguments)";

const EVIDENCE_HELP: &str = "\
Examples:
  relo evidence checkpoint --save ~/relo-checkpoint.txt
  relo evidence verify --trusted-checkpoint ~/relo-checkpoint.txt
  relo evidence export --run run-2026-11-03-1
  relo --server https://relo.example.com evidence verify

With --server, `verify` reports the server's verdict on its log and `export` writes the
envelopes the server signed; the other evidence commands work on this machine only.

Exit codes:
  0  done (verify: the log verifies)
  1  verify found tampering, or the input is invalid, or the command failed
  2  bad usage (wrong arguments)";

const KEY_GENERATE_HELP: &str = "\
Examples:
  relo key generate --type ed25519 --out .relo/keys/evidence
  relo key generate --type p256 --out keys/acme --json
  relo key generate --type p256 --out keys/acme --encrypt    # asks for a passphrase twice

Prints the key id (the lowercase hex SHA-256 of the public key's SPKI DER). Existing
files are never overwritten.

--encrypt writes the private key encrypted with a passphrase in cosign's format
(ENCRYPTED SIGSTORE PRIVATE KEY: scrypt and NaCl secretbox), which cosign reads too. The
passphrase is taken from RELO_KEY_PASSWORD if it is set, else asked twice on the
terminal; without either the command fails. Every relo command that loads the key asks
for it the same way.

Exit codes:
  0  the key pair was written
  1  a file exists or cannot be written, or --encrypt has no passphrase
  2  bad usage (wrong arguments)";

/// `relo key generate`.
#[derive(Debug, clap::Args)]
pub struct KeyGenerateArgs {
    /// The algorithm.
    #[arg(long = "type", value_enum)]
    pub key_type: KeyType,
    /// Where to write: STEM.key and STEM.pub.
    #[arg(long, value_name = "STEM")]
    pub out: PathBuf,
    /// Encrypt the private key with a passphrase (RELO_KEY_PASSWORD, else asked twice).
    #[arg(long)]
    pub encrypt: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// A key algorithm on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyType {
    /// Ed25519 (the evidence key must be one).
    Ed25519,
    /// ECDSA P-256 with SHA-256.
    P256,
}

/// `relo evidence ...`: the relo home and the command.
#[derive(Debug, clap::Args)]
pub struct EvidenceArgs {
    /// The relo home: relo.toml, keys and the SQLite database.
    #[arg(
        long,
        global = true,
        env = "RELO_HOME",
        default_value = ".relo",
        value_name = "DIR"
    )]
    pub home: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: EvidenceCommand,
}

/// The evidence commands.
#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Recompute every chain, the Merkle tree and every checkpoint signature; name the
    /// first tampering.
    #[command(after_help = VERIFY_HELP)]
    Verify(VerifyArgs),
    /// Cut a signed checkpoint of the log now; optionally save it as a trusted checkpoint.
    #[command(after_help = CHECKPOINT_HELP)]
    Checkpoint(CheckpointArgs),
    /// Replace the evidence key; the old one is retired and keeps verifying what it signed.
    #[command(name = "rotate-key", after_help = ROTATE_HELP)]
    RotateKey(RotateKeyArgs),
    /// Export one run's evidence as signed DSSE envelopes (evidence and SLSA provenance).
    #[command(after_help = EXPORT_HELP)]
    Export(ExportArgs),
}

const VERIFY_HELP: &str = "\
Examples:
  relo evidence verify
  relo evidence verify --trusted-checkpoint ~/relo-checkpoint.txt
  relo evidence verify --run run-2026-11-03-1 --json

The store is read from --home (relo.toml's [store] url, RELO_DATABASE_URL overriding,
default sqlite://relo.db in the home). Checkpoints are checked with the evidence key's
public half (beside [evidence] signer, default keys/evidence.key) and the retired keys in
keys/evidence-retired/. A trusted checkpoint (saved with `relo evidence checkpoint --save`
outside the home) proves the log was neither rolled back nor forked since.

On tampering it prints the kind (changed, deleted, inserted, reordered, truncated,
bad-signature, checkpoint-mismatch, forked, rolled-back), the first bad entry (seq, scope,
scope_seq) and a sentence.

Exit codes:
  0  the log (or the run) verifies
  1  tampering was found, or the input is invalid (unreadable database, a trusted
     checkpoint that is not a signed note, an unknown run id, a missing key)
  2  bad usage (wrong arguments)";

const CHECKPOINT_HELP: &str = "\
Examples:
  relo evidence checkpoint
  relo evidence checkpoint --save ~/relo-checkpoint.txt

Signs the Merkle root of the whole log with the evidence key, under the store's append
lock, and stores it. --save also writes its signed note to FILE, which must be outside
the relo home: that file is the trusted checkpoint `relo evidence verify
--trusted-checkpoint` checks the log against later.

Exit codes:
  0  the checkpoint was stored (and saved)
  1  the store, the key or FILE cannot be used
  2  bad usage (wrong arguments)";

const ROTATE_HELP: &str = "\
Examples:
  relo evidence rotate-key

Cuts a last checkpoint with the current key, generates a new Ed25519 key at the same
path ([evidence] signer stays as it is), keeps the old public key in
keys/evidence-retired/<key id>.pub with the log size it may have signed up to
(keys/evidence-retired/index.json), records a `key.rotated` entry in the control scope,
and cuts a checkpoint with the new key. Checkpoints signed before keep verifying.

Exit codes:
  0  the key was rotated
  1  the store or the key cannot be used
  2  bad usage (wrong arguments)";

const EXPORT_HELP: &str = "\
Examples:
  relo evidence export --run run-2026-11-03-1
  relo evidence export --run run-2026-11-03-1 --out packet.json

Writes a DSSE envelope (signed with the evidence key) around an in-toto Statement v1 of
predicate type https://relo.dev/attestation/evidence/v1 holding the run's entries, their
inclusion proofs and the covering checkpoint, to FILE (default <run>.evidence.json); and
the SLSA provenance v1 envelope beside it, to FILE with `.provenance.json` in place of
`.json`. If entries of the run are not covered by the latest checkpoint, one is cut first.

Exit codes:
  0  both envelopes were written
  1  the run is unknown, its evidence does not verify, or a file cannot be written
  2  bad usage (wrong arguments)";

/// `relo evidence verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Verify one run's chain and its entries' inclusion in the latest checkpoint.
    #[arg(long, value_name = "ID")]
    pub run: Option<String>,
    /// A checkpoint note saved earlier (outside the home) to prove consistency with.
    #[arg(long, value_name = "FILE")]
    pub trusted_checkpoint: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `relo evidence checkpoint`.
#[derive(Debug, clap::Args)]
pub struct CheckpointArgs {
    /// Also write the signed note to FILE (outside the relo home).
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `relo evidence rotate-key`.
#[derive(Debug, clap::Args)]
pub struct RotateKeyArgs {
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `relo evidence export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The run to export.
    #[arg(long, value_name = "ID")]
    pub run: String,
    /// The evidence envelope's file; the provenance goes beside it.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
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
