//! `relo --server URL ...` against a `relo serve` process over TLS with the development
//! CA: login (tokens kept 0600, no password), a refresh on expiry, refusals printed with
//! their code, logout revoking the login, and URLs that would send tokens in clear
//! refused before anything is sent.

use std::net::{TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use crate::serve::{Server, spawn_server};

const PASSWORD: &str = "a long development password";

/// `relo init --tls` in `home`, then `relo serve` over TLS on a free loopback port with
/// the admin `olga`.
fn serve_tls(home: &Path) -> Server {
    let init = crate::relo_command()
        .args(["init", "--tls", "--person", "olga", "--home"])
        .arg(home)
        .output()
        .expect("relo init");
    assert!(init.status.success(), "{init:?}");
    let tls = home.join("tls");
    let mut command = crate::relo_command();
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--bootstrap-admin",
            "olga",
        ])
        .arg("--tls-cert")
        .arg(tls.join("server.pem"))
        .arg("--tls-key")
        .arg(tls.join("server.key"))
        .env("RELO_HOME", home)
        .env("RELO_ADMIN_PASSWORD", PASSWORD)
        .env_remove("RELO_DATABASE_URL")
        .env_remove("RELO_SERVER");
    spawn_server(command)
}

/// The client's surroundings: its config directory and the CA it trusts.
struct Client {
    config: PathBuf,
    ca: PathBuf,
}

impl Client {
    /// `relo --server URL --ca-cert CA ARGS` with `env` set and nothing else of relo's.
    fn relo(&self, url: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = crate::relo_command();
        command
            .args(["--server", url, "--ca-cert"])
            .arg(&self.ca)
            .args(args)
            .env("RELO_CONFIG_DIR", &self.config)
            .stdin(Stdio::null());
        for name in [
            "RELO_SERVER",
            "RELO_CA_CERT",
            "RELO_PASSWORD",
            "RELO_API_TOKEN",
            "RELO_HOME",
        ] {
            command.env_remove(name);
        }
        for (name, value) in env {
            command.env(name, value);
        }
        command.output().expect("relo runs")
    }

    fn credentials(&self) -> PathBuf {
        self.config.join("credentials.json")
    }

    fn stored(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.credentials()).expect("credentials.json");
        serde_json::from_str(&text).expect("JSON")
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn the_admin_logs_in_refreshes_is_refused_with_codes_and_logs_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let server = serve_tls(&home);
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    let client = Client {
        config: dir.path().join("config"),
        ca: home.join("tls/ca.pem"),
    };
    let url = server.url.as_str();

    // Without the development CA the server's certificate is not trusted.
    let untrusted = crate::relo_command()
        .args(["--server", url, "login", "--name", "olga"])
        .env("RELO_CONFIG_DIR", &client.config)
        .env("RELO_PASSWORD", PASSWORD)
        .env_remove("RELO_CA_CERT")
        .output()
        .expect("relo runs");
    assert_eq!(untrusted.status.code(), Some(1), "{untrusted:?}");
    assert!(
        text(&untrusted.stderr).contains("cannot reach"),
        "{}",
        text(&untrusted.stderr)
    );

    // A wrong password: the server's refusal, with its code, and exit 1.
    let refused = client.relo(
        url,
        &["login", "--name", "olga"],
        &[("RELO_PASSWORD", "not the password at all")],
    );
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(
        text(&refused.stderr).starts_with("refused (invalid-credentials): "),
        "{}",
        text(&refused.stderr)
    );
    assert!(!client.credentials().exists());

    // No password anywhere and no terminal: a clear error, nothing sent.
    let no_password = client.relo(url, &["login", "--name", "olga"], &[]);
    assert_eq!(no_password.status.code(), Some(1));
    assert!(text(&no_password.stderr).contains("set RELO_PASSWORD"));

    let login = client.relo(
        url,
        &["login", "--name", "olga"],
        &[("RELO_PASSWORD", PASSWORD)],
    );
    assert_eq!(login.status.code(), Some(0), "{login:?}");
    assert_eq!(
        text(&login.stdout),
        format!("logged in to {url} as olga (roles: admin)\n")
    );
    assert_eq!(mode(&client.config), 0o700);
    assert_eq!(mode(&client.credentials()), 0o600);
    let raw = std::fs::read_to_string(client.credentials()).expect("read");
    assert!(!raw.contains(PASSWORD), "the password is never stored");
    let stored = client.stored();
    let entry = &stored["servers"][url];
    assert_eq!(entry["user"], "olga");
    let first_refresh = entry["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned();
    assert!(!text(&login.stdout).contains(&first_refresh));

    // The access token is about to expire: the next command refreshes it first, and
    // the rotated pair is stored at once.
    let mut expired = stored.clone();
    expired["servers"][url]["access_expires_at"] = serde_json::json!(0);
    std::fs::write(client.credentials(), expired.to_string()).expect("write");
    let listed = client.relo(url, &["runs", "list"], &[]);
    let listed_err = text(&listed.stderr);
    // The bootstrap admin manages users and does not hold `runs.read`: `forbidden` is
    // answered after the token is authenticated, so either way the request went out as
    // the refreshed login.
    assert!(
        listed.status.code() == Some(0) && text(&listed.stdout) == "no runs yet\n"
            || listed.status.code() == Some(1) && listed_err.starts_with("refused (forbidden)"),
        "{listed:?}"
    );
    let refreshed = client.stored();
    let second_refresh = refreshed["servers"][url]["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned();
    assert_ne!(second_refresh, first_refresh, "rotated");
    assert_eq!(mode(&client.credentials()), 0o600, "rewritten private");

    // An authenticated refusal, printed with its code (`forbidden` for an admin without
    // `plugins.upload`; a role that holds it would see the component refused).
    let wasm = dir.path().join("step.wasm");
    let attestation = dir.path().join("step.attestation.json");
    std::fs::write(&wasm, b"\0asm not really").expect("write");
    std::fs::write(&attestation, "{}").expect("write");
    let wasm_arg = wasm.to_str().expect("utf-8");
    let attestation_arg = attestation.to_str().expect("utf-8");
    let upload = client.relo(url, &["plugin", "add", wasm_arg, attestation_arg], &[]);
    assert_eq!(upload.status.code(), Some(1), "{upload:?}");
    let upload_err = text(&upload.stderr);
    assert!(upload_err.starts_with("refused ("), "{upload_err}");
    assert!(
        !upload_err.contains("unauthenticated") && !upload_err.contains("token"),
        "{upload_err}"
    );

    // An API token is used instead of the login, and never stored.
    let with_token = client.relo(
        url,
        &["plugin", "add", wasm_arg, attestation_arg],
        &[("RELO_API_TOKEN", "relo_at_not-a-real-token")],
    );
    assert_eq!(with_token.status.code(), Some(1));
    assert!(
        text(&with_token.stderr).starts_with("refused (invalid-token)"),
        "{}",
        text(&with_token.stderr)
    );
    assert!(
        !std::fs::read_to_string(client.credentials())
            .expect("read")
            .contains("relo_at_")
    );

    // Options of the local form that a server does not take are refused clearly.
    let cancel = client.relo(url, &["runs", "cancel", "run-1", "--as", "olga"], &[]);
    assert_eq!(cancel.status.code(), Some(1));
    assert!(text(&cancel.stderr).contains("--as is not used with --server"));
    let resume = client.relo(url, &["resume", "run-1"], &[]);
    assert_eq!(resume.status.code(), Some(1));
    assert!(text(&resume.stderr).contains("`relo resume` works on this machine only"));

    let before_logout = std::fs::read_to_string(client.credentials()).expect("read");
    let logout = client.relo(url, &["logout"], &[]);
    assert_eq!(logout.status.code(), Some(0), "{logout:?}");
    assert_eq!(
        text(&logout.stdout),
        format!("logged out of {url} (olga)\n")
    );
    assert!(client.stored()["servers"].get(url).is_none());
    let after = client.relo(url, &["runs", "list"], &[]);
    assert_eq!(after.status.code(), Some(1));
    assert!(text(&after.stderr).contains(&format!("not logged in to {url}")));

    // The logged-out refresh token is dead on the server: a copy of the old login is
    // refused at its next refresh, and forgotten.
    let mut stale: serde_json::Value = serde_json::from_str(&before_logout).expect("JSON");
    stale["servers"][url]["access_expires_at"] = serde_json::json!(0);
    std::fs::write(client.credentials(), stale.to_string()).expect("write");
    let ended = client.relo(url, &["runs", "list"], &[]);
    assert_eq!(ended.status.code(), Some(1));
    let ended_err = text(&ended.stderr);
    assert!(ended_err.contains("has ended"), "{ended_err}");
    assert!(
        ended_err.contains(&format!("relo --server {url} login --name olga")),
        "{ended_err}"
    );
    assert!(client.stored()["servers"].get(url).is_none());
}

#[test]
fn plain_http_to_another_host_is_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = Client {
        config: dir.path().join("config"),
        ca: dir.path().join("no-ca.pem"),
    };
    // A listener on every address of this machine, named by a non-loopback one: the
    // client must refuse without connecting to it.
    let listener = TcpListener::bind("0.0.0.0:0").expect("bind");
    listener.set_nonblocking(true).expect("non-blocking");
    let port = listener.local_addr().expect("address").port();
    let outbound = UdpSocket::bind("0.0.0.0:0")
        .and_then(|socket| socket.connect("192.0.2.1:9").map(|()| socket))
        .and_then(|socket| socket.local_addr())
        .map(|address| address.ip())
        .ok()
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified());
    let mut urls = vec!["http://relo.example.com:8080".to_owned()];
    if let Some(ip) = outbound {
        urls.push(format!("http://{ip}:{port}"));
    }
    for url in &urls {
        let output = client.relo(
            url,
            &["login", "--name", "olga"],
            &[("RELO_PASSWORD", PASSWORD)],
        );
        assert_eq!(output.status.code(), Some(1), "{url}: {output:?}");
        assert!(
            text(&output.stderr).contains("refusing plain http://"),
            "{url}: {}",
            text(&output.stderr)
        );
    }
    assert!(listener.accept().is_err(), "nothing may have connected");
    assert!(!client.config.exists(), "nothing was stored either");
}
