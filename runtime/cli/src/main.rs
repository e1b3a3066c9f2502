//! `relo`: the command line. Wiring only: each command lives in its own module; with
//! `--server URL` the commands that have a server form go to [`client`].

mod approve;
mod args;
mod client;
mod evidence;
mod home;
mod init;
mod key;
mod plan;
mod plugin;
mod run;
mod runs;
mod schema;
mod serve;
mod validate;

use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory as _, FromArgMatches as _};

use crate::args::{Args, Command};
use crate::client::Route;

fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let mut command = Args::command();
    let matches = command.get_matches_mut();
    let args =
        Args::from_arg_matches(&matches).unwrap_or_else(|error| error.format(&mut command).exit());
    let server_from_env = matches.value_source("server") == Some(ValueSource::EnvVariable);
    let outcome = match client::route(&args, server_from_env) {
        Ok(Route::Local) => local(args.command),
        Ok(Route::Remote(server)) => client::run(server, args.ca_cert.as_deref(), &args.command),
        Err(error) => Err(error),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(args::EXIT_FAILED)
        }
    }
}

/// Runs a command on this machine.
fn local(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Validate(validate) => validate::run(&validate),
        Command::Schema(schema) => schema::run(&schema),
        Command::Key(key) => key::run(&key),
        Command::Evidence(evidence) => evidence::run(&evidence),
        Command::Plugin(plugin) => plugin::run(&plugin),
        Command::Plan(plan) => plan::run(&plan),
        Command::Init(init) => init::run(&init),
        Command::Run(run) => run::run(&run),
        Command::Resume(resume) => run::resume(&resume),
        Command::Approve(approve) => approve::run(&approve),
        Command::Serve(serve) => serve::run(&serve),
        Command::Runs(runs) => runs::run(&runs),
        Command::Login(_) | Command::Logout => {
            unreachable!("client::route sends these to the server or refuses them")
        }
    }
}

/// A reader that stops early (`relo plugin inspect … | head`) closes stdout; `println!`
/// then panics with a broken pipe. That is not a failure of relo: exit quietly instead
/// of printing a panic, as other command-line tools do. Every other panic keeps the
/// default report.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}
