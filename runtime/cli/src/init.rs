//! `relo init`: a relo home ready to use: `relo.toml`, the keys it names, the store.
//!
//! With `--from FILE`, the config is copied and every key file it names that does not
//! exist yet is generated: people's keys (Ed25519), trusted plugin signers' and
//! `[signing.keys]` (ECDSA P-256, cosign-compatible) and the evidence key (Ed25519).
//! Without it, a starter config is written with one person, who signs plugins and is an
//! operator. Existing files are never overwritten. Private keys are written with mode
//! 0600; in a real deployment each person generates their own key on their own machine
//! (`relo key generate`) and hands over only the public half.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use relo_manifest::{KeyRef, parse_operator};
use relo_trust::{KeyAlgorithm, KeyPaths, generate_key_files};
use serde_json::json;

use crate::args::InitArgs;
use crate::home::{CONFIG_FILE, DEFAULT_EVIDENCE_KEY, Home};

/// Runs `relo init`.
pub fn run(args: &InitArgs) -> anyhow::Result<ExitCode> {
    let home = &args.home;
    let config_path = home.join(CONFIG_FILE);
    if config_path.exists() {
        bail!(
            "{} already exists: this home is initialised (nothing was changed)",
            config_path.display()
        );
    }
    create_private_dir(home)?;
    create_private_dir(&home.join("keys"))?;
    let text = match &args.from {
        Some(from) => std::fs::read_to_string(from)
            .with_context(|| format!("cannot read {}", from.display()))?,
        None => starter(&args.person),
    };
    let name = args
        .from
        .as_ref()
        .map_or_else(|| CONFIG_FILE.to_owned(), |p| p.display().to_string());
    let config = parse_operator(&name, text.as_bytes()).map_err(|d| {
        anyhow::anyhow!("{name} is invalid ({} problems):\n{}", d.len(), d.render())
    })?;

    // Which keys to make: (private key path in the home, algorithm).
    let mut wanted: Vec<(String, KeyAlgorithm)> = Vec::new();
    let mut want = |public: &str, algorithm: KeyAlgorithm| {
        if let Some(stem) = public.strip_suffix(".pub") {
            wanted.push((format!("{stem}.key"), algorithm));
        }
    };
    for person in &config.people {
        for key in &person.keys {
            want(key, KeyAlgorithm::Ed25519);
        }
    }
    for signer in &config.trust.signers {
        want(&signer.key, KeyAlgorithm::EcdsaP256);
    }
    let mut private_keys: Vec<(String, KeyAlgorithm)> = Vec::new();
    for key in config.signing.keys.values() {
        if let KeyRef::File(file) = key {
            private_keys.push((file.clone(), KeyAlgorithm::EcdsaP256));
        }
    }
    match config.evidence.as_ref().map(|e| &e.signer) {
        None => private_keys.push((DEFAULT_EVIDENCE_KEY.to_owned(), KeyAlgorithm::Ed25519)),
        Some(KeyRef::File(file)) => private_keys.push((file.clone(), KeyAlgorithm::Ed25519)),
        Some(KeyRef::VaultTransit(_)) => {}
    }
    wanted.extend(private_keys);

    let mut made = Vec::new();
    for (private, algorithm) in wanted {
        let private_path = home.join(&private);
        let stem = private.strip_suffix(".key").unwrap_or(&private);
        let paths = KeyPaths::new(&private_path, home.join(format!("{stem}.pub")));
        if paths.public.exists() || paths.private.exists() {
            continue;
        }
        if let Some(parent) = private_path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let key = generate_key_files(algorithm, &paths)
            .with_context(|| format!("cannot generate {}", paths.private.display()))?;
        made.push(json!({
            "private_key": private, "key_id": key.key_id, "algorithm": algorithm.as_str(),
        }));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let (target, origin, witness) = runtime.block_on(async {
        let home = Home {
            path: home.to_owned(),
            config: Some(config.clone()),
        };
        let store = home.store().await?;
        let origin = store.evidence_origin().await?;
        let target = store.target().to_owned();
        store.close().await;
        let witness = home.witness(&origin)?.path().to_owned();
        anyhow::Ok((target, origin, witness))
    })?;
    let text = match config.evidence.as_ref().and_then(|e| e.witness.as_ref()) {
        Some(_) => text,
        None => with_witness(&text, &name, config.evidence.is_some(), &witness)?,
    };
    write_new(&config_path, &text)?;
    let tls = if args.tls { Some(dev_tls(home)?) } else { None };
    if args.json {
        let out = json!({
            "home": home, "config": config_path, "keys": made, "store": target,
            "evidence_origin": origin, "witness": witness, "tls": tls,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("initialised {}", home.display());
        println!("  config   {}", config_path.display());
        for key in &made {
            println!(
                "  key      {} ({}, {})",
                key["private_key"].as_str().unwrap_or(""),
                key["algorithm"].as_str().unwrap_or(""),
                key["key_id"].as_str().unwrap_or("")
            );
        }
        println!("  store    {target}");
        println!("  evidence {origin}");
        println!("  witness  {}", witness.display());
        if let Some(tls) = &tls {
            println!(
                "  tls      {} (development CA: trust it in clients) and {} / {} for `relo serve --tls-cert --tls-key`",
                tls["ca"].as_str().unwrap_or(""),
                tls["cert"].as_str().unwrap_or(""),
                tls["key"].as_str().unwrap_or("")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `text` with `witness = "file:PATH"` in its `[evidence]` table (a new table with the
/// default signer when `has_evidence` is false), so the home keeps its witness whatever
/// the environment of later commands. Checked by parsing the result.
fn with_witness(
    text: &str,
    name: &str,
    has_evidence: bool,
    witness: &Path,
) -> anyhow::Result<String> {
    let Some(path) = witness.to_str() else {
        bail!(
            "the evidence witness path {} is not UTF-8",
            witness.display()
        );
    };
    // A JSON string is a valid TOML basic string.
    let line = format!(
        "witness = {}\n",
        serde_json::to_string(&format!("file:{path}"))?
    );
    let mut out = String::with_capacity(text.len() + line.len() + 64);
    if has_evidence {
        let mut inserted = false;
        for piece in text.split_inclusive('\n') {
            out.push_str(piece);
            let header = piece.split('#').next().unwrap_or("").trim();
            if !inserted && header == "[evidence]" {
                if !piece.ends_with('\n') {
                    out.push('\n');
                }
                out.push_str(&line);
                inserted = true;
            }
        }
        if !inserted {
            bail!(
                "{name} sets [evidence] in a form `relo init` cannot extend: add \
                 `witness = \"file:{path}\"` to it (or a witness of your choice) and run again"
            );
        }
    } else {
        out.push_str(text);
        if !text.is_empty() && !text.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!(
            "\n[evidence]\nsigner = \"{DEFAULT_EVIDENCE_KEY}\"\n{line}"
        ));
    }
    let parsed = parse_operator(name, out.as_bytes()).map_err(|d| {
        anyhow::anyhow!(
            "adding the witness to {name} made it invalid:\n{}",
            d.render()
        )
    })?;
    let added = parsed.evidence.and_then(|e| e.witness);
    if added.as_ref().map(ToString::to_string) != Some(format!("file:{path}")) {
        bail!("adding the witness to {name} did not set [evidence] witness");
    }
    Ok(out)
}

/// A development CA and a server certificate it signed for `localhost`, `127.0.0.1`
/// and `::1` (ECDSA P-256), under `tls/` in the home; the keys are written 0600. For
/// development only: a deployment uses its own CA.
fn dev_tls(home: &Path) -> anyhow::Result<serde_json::Value> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let dir = home.join("tls");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let ca_key = KeyPair::generate().context("cannot make the CA key")?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).context("the CA")?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, "relo development CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).context("cannot sign the CA")?;
    let server_key = KeyPair::generate().context("cannot make the server key")?;
    let mut server = CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])
    .context("the server certificate")?;
    server
        .distinguished_name
        .push(DnType::CommonName, "relo server (development)");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let issuer = Issuer::new(ca, ca_key);
    let server_cert = server
        .signed_by(&server_key, &issuer)
        .context("cannot sign the server certificate")?;
    let paths = [
        ("ca.pem", ca_cert.pem(), false),
        ("server.pem", server_cert.pem(), false),
        ("server.key", server_key.serialize_pem(), true),
    ];
    for (name, pem, private) in &paths {
        let path = dir.join(name);
        if *private {
            crate::serve::write_private(&path, pem.as_bytes())?;
        } else {
            write_new(&path, pem)?;
        }
    }
    Ok(json!({
        "ca": dir.join("ca.pem"), "cert": dir.join("server.pem"), "key": dir.join("server.key"),
    }))
}

/// A config with one person who signs plugins and is an operator.
fn starter(person: &str) -> String {
    format!(
        "# relo.toml: made by `relo init`. See docs/plugin-trust.md and docs/secrets.md.\n\
         [ceilings]\nfuel = 2_000_000_000\nmemory = \"256MiB\"\ntimeout = \"5m\"\n\n\
         [trust]\nauto_approve_within_previous = false\n\n\
         [[trust.signers]]\nkey = \"keys/{person}-plugins.pub\"\nplugins = [\"*/*\"]\nperson = \"{person}\"\n\n\
         [[people]]\nname = \"{person}\"\nkeys = [\"keys/{person}.pub\"]\nroles = [\"operator\", \"release-manager\"]\n\n\
         [evidence]\nsigner = \"{DEFAULT_EVIDENCE_KEY}\"\n\n\
         [store]\nurl = \"sqlite://relo.db\"\n"
    )
}

fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Creates `dir` (and missing parents) private to its owner, 0700: a home holds private
/// keys, the database and the precompiled cache. An existing folder is left as it is.
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;

    if dir.exists() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WITNESS: &str = "/state/relo/witnesses/relo.dev_evidence_x";

    fn witness_of(text: &str) -> Option<String> {
        let config = parse_operator("relo.toml", text.as_bytes()).expect("valid");
        config.evidence?.witness.map(|w| w.to_string())
    }

    #[test]
    fn the_witness_goes_into_the_evidence_table_or_a_new_one() {
        let expected = Some(format!("file:{WITNESS}"));
        let table = "[evidence] # the key\nsigner = \"keys/e.key\"\n\n[store]\nurl = \"sqlite://relo.db\"\n";
        let out = with_witness(table, "relo.toml", true, Path::new(WITNESS)).expect("added");
        assert_eq!(witness_of(&out), expected);
        assert!(out.contains("signer = \"keys/e.key\""), "{out}");

        let none = "[store]\nurl = \"sqlite://relo.db\"";
        let out = with_witness(none, "relo.toml", false, Path::new(WITNESS)).expect("added");
        assert_eq!(witness_of(&out), expected);
        assert!(
            out.contains(&format!("signer = \"{DEFAULT_EVIDENCE_KEY}\"")),
            "{out}"
        );

        let inline = "evidence = { signer = \"keys/e.key\" }\n";
        let err = with_witness(inline, "relo.toml", true, Path::new(WITNESS)).unwrap_err();
        assert!(err.to_string().contains("cannot extend"), "{err}");
    }
}
