//! `relo --server URL login --name NAME` and `relo --server URL logout`.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::session::{Call, Session};
use crate::args::LoginArgs;

/// The environment variable holding the password of `relo login`.
pub const PASSWORD_ENV: &str = "RELO_PASSWORD";

/// The answer of `GET /v1/me`.
#[derive(Debug, Deserialize)]
struct Me {
    name: String,
    roles: Vec<String>,
}

/// Logs in, stores the login, and prints who the server says is logged in.
pub async fn login(session: &mut Session, args: &LoginArgs) -> anyhow::Result<ExitCode> {
    let password = password(session, &args.name)?;
    session.login(&args.name, &password).await?;
    let me: Me = session.call_json(&Call::get(&["v1", "me"])).await?;
    println!(
        "logged in to {} as {} (roles: {})",
        session.server(),
        me.name,
        if me.roles.is_empty() {
            "none".to_owned()
        } else {
            me.roles.join(", ")
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// Ends the stored login on the server and forgets it.
pub async fn logout(session: &mut Session) -> anyhow::Result<ExitCode> {
    match session.logout().await? {
        Some(user) => println!("logged out of {} ({user})", session.server()),
        None => println!("not logged in to {}", session.server()),
    }
    Ok(ExitCode::SUCCESS)
}

/// `RELO_PASSWORD`, else asked on the terminal with echo off.
fn password(session: &Session, name: &str) -> anyhow::Result<Zeroizing<String>> {
    if let Some(password) = std::env::var_os(PASSWORD_ENV) {
        let Some(password) = password.to_str() else {
            bail!("{PASSWORD_ENV} is not UTF-8");
        };
        return Ok(Zeroizing::new(password.to_owned()));
    }
    // Standard input decides, as for key passphrases: a run with its input redirected
    // (CI, a pipe) never waits for a person.
    if !std::io::stdin().is_terminal() {
        bail!(
            "no password: set {PASSWORD_ENV}, or run `relo login` on a terminal to be asked for it"
        );
    }
    let password =
        rpassword::prompt_password(format!("password of {name} at {}: ", session.server()))
            .context("cannot read the password from the terminal")?;
    Ok(Zeroizing::new(password))
}
