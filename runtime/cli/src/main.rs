//! `relo`: the command line. Wiring only: each command lives in its own module.

mod args;
mod evidence;
mod home;
mod key;
mod plan;
mod plugin;
mod schema;
mod validate;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Args, Command};

fn main() -> ExitCode {
    let args = Args::parse();
    let outcome = match args.command {
        Command::Validate(validate) => validate::run(&validate),
        Command::Schema(schema) => schema::run(&schema),
        Command::Key(key) => key::run(&key),
        Command::Evidence(evidence) => evidence::run(&evidence),
        Command::Plugin(plugin) => plugin::run(&plugin),
        Command::Plan(plan) => plan::run(&plan),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(args::EXIT_FAILED)
        }
    }
}
