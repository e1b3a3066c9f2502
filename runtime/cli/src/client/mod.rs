//! `relo --server URL ...`: the same commands as on this machine, sent to a relo server's
//! HTTP API (docs/server.md, "The command-line client").
//!
//! [`route`] decides, before anything is read or sent, whether a command runs here or
//! on the server, and refuses a server URL that would send tokens in clear
//! ([`server::ServerUrl`]). [`run`] then signs in ([`session::Session`]: a stored login
//! refreshed as needed, or `RELO_API_TOKEN`) and runs the command. Requests and
//! approvals are signed here, with the person's key from the local home, exactly as the
//! local commands sign them: the server never sees a private key.

mod account;
mod credentials;
mod evidence;
mod plugin;
mod runs;
mod server;
mod session;

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, bail};

use crate::args::{
    Args, Command, EXIT_FAILED, EvidenceCommand, KeyCommand, PluginCommand, RunsCommand,
};

pub use server::ServerUrl;

use credentials::CredentialStore;
use session::{Refusal, Session};

/// Where a command runs.
#[derive(Debug)]
pub enum Route {
    /// On this machine.
    Local,
    /// On this server.
    Remote(ServerUrl),
}

/// What `--server` means for a command.
enum Reach {
    /// It has a form sent to the server.
    Remote,
    /// It works on local files only and reads no store (validate, key generate, ...):
    /// `RELO_SERVER` in the environment does not concern it.
    Offline(&'static str),
    /// It works on this machine's relo home and store only.
    Local(&'static str),
}

fn reach(command: &Command) -> Reach {
    match command {
        Command::Login(_)
        | Command::Logout
        | Command::Run(_)
        | Command::Approve(_)
        | Command::Runs(_) => Reach::Remote,
        Command::Evidence(evidence) => match evidence.command {
            EvidenceCommand::Export(_) | EvidenceCommand::Verify(_) => Reach::Remote,
            EvidenceCommand::Checkpoint(_) => Reach::Local("evidence checkpoint"),
            EvidenceCommand::RotateKey(_) => Reach::Local("evidence rotate-key"),
        },
        Command::Plugin(plugin) => match plugin.command {
            PluginCommand::Add(_) => Reach::Remote,
            PluginCommand::Sign(_) => Reach::Offline("plugin sign"),
            PluginCommand::New(_) => Reach::Offline("plugin new"),
            PluginCommand::Build(_) => Reach::Offline("plugin build"),
            PluginCommand::Inspect(_) => Reach::Local("plugin inspect"),
            PluginCommand::Diff(_) => Reach::Local("plugin diff"),
            PluginCommand::Approve(_) => Reach::Local("plugin approve"),
            PluginCommand::RevokeApproval(_) => Reach::Local("plugin revoke-approval"),
            PluginCommand::Block(_) => Reach::Local("plugin block"),
        },
        Command::Validate(_) => Reach::Offline("validate"),
        Command::Schema(_) => Reach::Offline("schema"),
        Command::Key(KeyCommand::Generate(_)) => Reach::Offline("key generate"),
        Command::Init(_) => Reach::Offline("init"),
        Command::Serve(_) => Reach::Offline("serve"),
        Command::Resume(_) => Reach::Local("resume"),
        Command::Plan(_) => Reach::Local("plan"),
    }
}

/// Where `args` runs. `server_from_env` tells that `--server` came from `RELO_SERVER`
/// rather than the command line: commands that read no store then run here as usual.
/// A server URL is checked here, before anything is read or sent.
pub fn route(args: &Args, server_from_env: bool) -> anyhow::Result<Route> {
    let Some(server) = &args.server else {
        return local_only(&args.command).map(|()| Route::Local);
    };
    let name = match reach(&args.command) {
        Reach::Remote => return Ok(Route::Remote(ServerUrl::parse(server)?)),
        Reach::Offline(_) if server_from_env => {
            return local_only(&args.command).map(|()| Route::Local);
        }
        Reach::Offline(name) | Reach::Local(name) => name,
    };
    if server_from_env {
        bail!(
            "`relo {name}` works on this machine's relo home only and has no form for a \
             server, but RELO_SERVER is set ({server}): unset it to run `relo {name}` here"
        )
    }
    bail!(
        "`relo {name}` works on this machine only and has no form for a server: run it \
         without --server (the commands for a server are login, logout, run, approve, runs, \
         evidence export, evidence verify and plugin add)"
    )
}

/// Checks what only the server form of a command accepts, for a command run here.
fn local_only(command: &Command) -> anyhow::Result<()> {
    match command {
        Command::Login(_) => bail!("`relo login` needs the server: relo --server URL login"),
        Command::Logout => bail!("`relo logout` needs the server: relo --server URL logout"),
        Command::Run(run) if run.no_follow => {
            bail!("--no-follow is for runs sent to a server (--server URL)")
        }
        Command::Runs(runs) => match &runs.command {
            RunsCommand::Cancel { as_person, .. } if as_person.is_empty() => bail!(
                "`relo runs cancel` needs --as NAME: who cancels (an operator or the requester)"
            ),
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

/// Runs `command` on `server`. A refusal by the server is printed as `refused (CODE):
/// MESSAGE` and exits 1.
pub fn run(
    server: ServerUrl,
    ca_cert: Option<&Path>,
    command: &Command,
) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(async {
        let credentials = CredentialStore::locate()?;
        let mut session = Session::open(server, ca_cert, credentials)?;
        match command {
            Command::Login(login) => account::login(&mut session, login).await,
            Command::Logout => account::logout(&mut session).await,
            other => {
                session.sign_in()?;
                dispatch(&mut session, other).await
            }
        }
    });
    match outcome {
        Err(error) => match error.downcast_ref::<Refusal>() {
            Some(refusal) => {
                // The refusal first, with the code a script looks for; then what was
                // being done, if the error says.
                eprintln!("{refusal}");
                let outer = error.to_string();
                if outer != refusal.to_string() {
                    eprintln!("  {outer}");
                }
                Ok(ExitCode::from(EXIT_FAILED))
            }
            None => Err(error),
        },
        ok => ok,
    }
}

async fn dispatch(session: &mut Session, command: &Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run(run) => runs::start(session, run).await,
        Command::Approve(approve) => runs::approve(session, approve).await,
        Command::Runs(runs) => runs::runs(session, &runs.command).await,
        Command::Evidence(args) => match &args.command {
            EvidenceCommand::Export(export) => evidence::export(session, export).await,
            EvidenceCommand::Verify(verify) => evidence::verify(session, verify).await,
            EvidenceCommand::Checkpoint(_) | EvidenceCommand::RotateKey(_) => {
                unreachable!("route() keeps these local")
            }
        },
        Command::Plugin(args) => match &args.command {
            PluginCommand::Add(add) => plugin::add(session, add).await,
            _ => unreachable!("route() keeps these local"),
        },
        _ => unreachable!("route() keeps these local"),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    fn routed(argv: &[&str], from_env: bool) -> anyhow::Result<Route> {
        let args = Args::try_parse_from(std::iter::once("relo").chain(argv.iter().copied()))
            .expect("valid arguments");
        route(&args, from_env)
    }

    #[test]
    fn server_commands_go_to_the_server_and_local_ones_stay_or_are_refused() {
        for argv in [
            &["--server", "https://relo.example.com", "runs", "list"][..],
            &[
                "runs",
                "show",
                "r1",
                "--server",
                "https://relo.example.com/",
            ][..],
            &[
                "--server",
                "http://127.0.0.1:8080",
                "login",
                "--name",
                "olga",
            ][..],
            &[
                "--server",
                "https://relo.example.com",
                "plugin",
                "add",
                "a.wasm",
                "a.json",
            ][..],
            &["--server", "https://relo.example.com", "evidence", "verify"][..],
        ] {
            assert!(
                matches!(routed(argv, false), Ok(Route::Remote(_))),
                "{argv:?}"
            );
        }
        let error = routed(
            &["--server", "https://relo.example.com", "resume", "r1"],
            false,
        )
        .expect_err("refused");
        assert!(
            error
                .to_string()
                .contains("`relo resume` works on this machine only")
        );
        let error = routed(
            &["--server", "https://relo.example.com", "validate", "x.yaml"],
            false,
        )
        .expect_err("refused when given on the command line");
        assert!(error.to_string().contains("`relo validate`"), "{error}");
        assert!(matches!(
            routed(
                &["--server", "https://relo.example.com", "validate", "x.yaml"],
                true
            ),
            Ok(Route::Local)
        ));
        let error = routed(
            &[
                "--server",
                "https://relo.example.com",
                "evidence",
                "checkpoint",
            ],
            true,
        )
        .expect_err("a store command is refused even from RELO_SERVER");
        assert!(error.to_string().contains("RELO_SERVER is set"), "{error}");
    }

    #[test]
    fn plain_http_off_loopback_is_refused_before_anything_runs() {
        let error = routed(
            &["--server", "http://relo.example.com", "runs", "list"],
            false,
        )
        .expect_err("refused");
        assert!(
            error
                .to_string()
                .starts_with("refusing plain http:// to relo.example.com"),
            "{error}"
        );
    }

    #[test]
    fn server_only_options_are_refused_here() {
        for (argv, says) in [
            (&["login", "--name", "olga"][..], "relo --server URL login"),
            (&["logout"][..], "relo --server URL logout"),
            (&["run", "w.yaml", "--no-follow"][..], "--no-follow"),
            (&["runs", "cancel", "r1"][..], "needs --as NAME"),
        ] {
            let error = routed(argv, false).expect_err("refused");
            assert!(error.to_string().contains(says), "{argv:?}: {error}");
        }
        assert!(matches!(
            routed(&["runs", "cancel", "r1", "--as", "olga"], false),
            Ok(Route::Local)
        ));
    }
}
