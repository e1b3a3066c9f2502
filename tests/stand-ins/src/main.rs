//! `relo-stand-ins`: runs the offline demo's stand-in forge and deploy target on
//! loopback. They are not real services: in-memory imitations for the demo and tests.
//!
//! ```text
//! relo-stand-ins --forge 127.0.0.1:18081 --target 127.0.0.1:18082 \
//!     --token-file demo/forge-token --tag v1.3.0 --until-stdin-closes
//! ```
//!
//! Prints one banner line on stdout once both listen, then one line per request on
//! stderr; runs until killed, or with `--until-stdin-closes` until its standard input
//! closes (so a script can tie the stand-ins' lifetime to its own). Exit codes: 0 after
//! stdin closed, 1 if a stand-in cannot start or the token file cannot be read, 2 for
//! bad usage.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Parser;
use relo_stand_ins::{Forge, LABEL, Target};

/// The offline demo's stand-in forge and deploy target (not real services), on loopback.
#[derive(Parser)]
#[command(
    version,
    after_help = "Example:\n  relo-stand-ins --forge 127.0.0.1:18081 --target 127.0.0.1:18082 \
                  --token-file demo/forge-token --tag v1.3.0 --until-stdin-closes"
)]
struct Args {
    /// Where the forge listens (a loopback address).
    #[arg(long, default_value = "127.0.0.1:18081")]
    forge: SocketAddr,
    /// Where the deploy target listens (a loopback address).
    #[arg(long, default_value = "127.0.0.1:18082")]
    target: SocketAddr,
    /// A file holding the bearer token the forge requires on POSTs (surrounding
    /// whitespace is ignored).
    #[arg(long)]
    token_file: PathBuf,
    /// A tag the forge already has; repeat for several.
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Exit when standard input closes.
    #[arg(long)]
    until_stdin_closes: bool,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{LABEL}: error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let token = std::fs::read_to_string(&args.token_file)
        .with_context(|| format!("cannot read the token file {}", args.token_file.display()))?;
    let token = token.trim();
    if token.is_empty() {
        bail!("the token file {} is empty", args.token_file.display());
    }
    let forge = Forge::start(args.forge, token, args.tags)
        .await
        .with_context(|| format!("the forge cannot listen on {}", args.forge))?;
    let target = Target::start(args.target)
        .await
        .with_context(|| format!("the deploy target cannot listen on {}", args.target))?;
    forge.print_requests();
    target.print_requests();
    println!(
        "{LABEL}: forge at {}, deploy target at {}",
        forge.url(),
        target.url()
    );
    if args.until_stdin_closes {
        tokio::task::spawn_blocking(|| {
            std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink())
        })
        .await
        .context("waiting for stdin to close")?
        .context("reading stdin")?;
        eprintln!("{LABEL}: stdin closed, stopping");
    } else {
        std::future::pending::<()>().await;
    }
    Ok(())
}
