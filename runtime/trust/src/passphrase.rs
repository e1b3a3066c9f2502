//! Passphrases for encrypted private keys: where one comes from (`RELO_KEY_PASSWORD`, else
//! the terminal) and how one seals a key, in the format cosign writes.
//!
//! The sealed form is the JSON document of go-securesystemslib's `encrypted` package, which
//! cosign and sigstore's `cryptoutils` put inside an `ENCRYPTED SIGSTORE PRIVATE KEY` PEM:
//!
//! ```text
//! {"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"<base64, 32 bytes>"},
//!  "cipher":{"name":"nacl/secretbox","nonce":"<base64, 24 bytes>"},
//!  "ciphertext":"<base64>"}
//! ```
//!
//! The key is `scrypt(passphrase, salt, N, r, p)`, 32 bytes; the ciphertext is the NaCl
//! `crypto_secretbox` (XSalsa20-Poly1305, the 16-byte tag first) of the plaintext under
//! that key and the nonce. Base64 is standard with padding (Go's `[]byte` in JSON).

use std::ffi::OsString;
use std::fmt;
use std::io::{self, IsTerminal as _};
use std::path::Path;

use base64ct::{Base64, Encoding as _};
use crypto_secretbox::aead::{Aead as _, KeyInit as _};
use crypto_secretbox::{Key, Nonce, XSalsa20Poly1305};
use rand_core::{OsRng, RngCore as _};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::TrustError;

/// The environment variable a passphrase is taken from before asking on the terminal.
pub const KEY_PASSWORD_ENV: &str = "RELO_KEY_PASSWORD";

/// The PEM label cosign writes for an encrypted private key (relo writes it too).
pub const ENCRYPTED_KEY_PEM_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// The label older cosign versions wrote; read, never written.
pub(crate) const LEGACY_ENCRYPTED_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";

const KDF_NAME: &str = "scrypt";
const CIPHER_NAME: &str = "nacl/secretbox";
const SALT_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;

/// The parameters written: those of cosign and go-securesystemslib (about 32 MiB and a
/// tenth of a second), which every version of them reads.
const WRITE_PARAMS: ScryptParams = ScryptParams {
    n: 32_768,
    r: 8,
    p: 1,
};

/// Limits on the parameters read, so a crafted key file cannot make relo allocate
/// gigabytes or spin for minutes. cosign's three parameter sets (N = 2^15, 2^16, 2^17
/// with r = 8, p = 1) are well inside.
const MAX_LOG_N: u32 = 20;
const MAX_R: u64 = 32;
const MAX_P: u64 = 16;
const MAX_MEMORY: u64 = 256 * 1024 * 1024;
const MAX_WORK: u64 = 1 << 24;

/// A passphrase, wiped from memory when dropped; `Debug` never shows it.
///
/// [`Passphrase::for_key`] and [`Passphrase::for_new_key`] are the one place relo decides
/// where a passphrase comes from: the `RELO_KEY_PASSWORD` environment variable if it is set
/// (even to the empty string, as cosign does with `COSIGN_PASSWORD`), else a prompt on the
/// terminal with echo off. Without the variable and without a terminal on standard input,
/// they fail with [`TrustError::PassphraseRequired`] naming the variable, never block.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<Vec<u8>>);

impl Passphrase {
    /// A passphrase from bytes (UTF-8 for one a person types).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(Zeroizing::new(bytes.into()))
    }

    /// The passphrase's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Whether the passphrase is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The passphrase in `RELO_KEY_PASSWORD`, if the variable is set.
    pub fn from_env() -> Option<Self> {
        std::env::var_os(KEY_PASSWORD_ENV).map(Self::from_os_string)
    }

    /// The passphrase of the encrypted private key at `path`: `RELO_KEY_PASSWORD`, else
    /// asked once on the terminal.
    pub fn for_key(path: &Path) -> Result<Self, TrustError> {
        let what = format!("the encrypted private key {}", path.display());
        resolve(Self::from_env(), terminal(), &what, false)
    }

    /// A passphrase for a new encrypted key at `path`: `RELO_KEY_PASSWORD`, else asked
    /// twice on the terminal ([`TrustError::PassphraseMismatch`] if the two differ). An
    /// empty passphrase is refused with [`TrustError::EmptyPassphrase`].
    pub fn for_new_key(path: &Path) -> Result<Self, TrustError> {
        let what = format!("the new encrypted private key {}", path.display());
        resolve(Self::from_env(), terminal(), &what, true)
    }

    #[cfg(unix)]
    fn from_os_string(value: OsString) -> Self {
        use std::os::unix::ffi::OsStringExt as _;
        Self::new(value.into_vec())
    }

    #[cfg(not(unix))]
    fn from_os_string(value: OsString) -> Self {
        Self::new(value.to_string_lossy().into_owned().into_bytes())
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(..)")
    }
}

/// Asks on the terminal (prompt on and input from `/dev/tty`, echo off).
type Prompt<'a> = &'a mut dyn FnMut(&str) -> io::Result<String>;

/// The terminal prompt, when standard input is a terminal. Standard input decides, so a
/// run with its input redirected (CI, a pipe, `< /dev/null`) never waits for a person.
fn terminal() -> Option<impl FnMut(&str) -> io::Result<String>> {
    io::stdin()
        .is_terminal()
        .then_some(|prompt: &str| rpassword::prompt_password(prompt))
}

fn resolve(
    env: Option<Passphrase>,
    terminal: Option<impl FnMut(&str) -> io::Result<String>>,
    what: &str,
    new: bool,
) -> Result<Passphrase, TrustError> {
    let passphrase = match (env, terminal) {
        (Some(passphrase), _) => passphrase,
        (None, None) => {
            return Err(TrustError::PassphraseRequired {
                what: what.to_owned(),
            });
        }
        (None, Some(mut prompt)) => ask(&mut prompt, what, new)?,
    };
    if new && passphrase.is_empty() {
        return Err(TrustError::EmptyPassphrase);
    }
    Ok(passphrase)
}

fn ask(prompt: Prompt<'_>, what: &str, new: bool) -> Result<Passphrase, TrustError> {
    let mut read = |text: &str| {
        prompt(text)
            .map(|typed| Passphrase::new(Zeroizing::new(typed).as_bytes()))
            .map_err(|source| TrustError::PassphrasePrompt { source })
    };
    let first = read(&format!("Passphrase for {what}: "))?;
    if new {
        if first.is_empty() {
            return Err(TrustError::EmptyPassphrase);
        }
        let again = read("The same passphrase again: ")?;
        if again.as_bytes() != first.as_bytes() {
            return Err(TrustError::PassphraseMismatch);
        }
    }
    Ok(first)
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    salt: String,
}

#[derive(Clone, Copy, Serialize, Deserialize)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u64,
    r: u64,
    p: u64,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

/// Seals `plaintext` under `passphrase`: the JSON document described in the module docs,
/// with a fresh random salt and nonce.
pub(crate) fn seal(plaintext: &[u8], passphrase: &[u8]) -> Result<Vec<u8>, TrustError> {
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut salt);
    OsRng.fill_bytes(&mut nonce);
    let key = derive(passphrase, &salt, WRITE_PARAMS)?;
    let ciphertext = XSalsa20Poly1305::new(Key::from_slice(key.as_slice()))
        .encrypt(Nonce::from_slice(&nonce), plaintext)
        .map_err(|_| TrustError::MalformedEncryptedKey {
            reason: "the private key could not be encrypted".to_owned(),
        })?;
    let sealed = Sealed {
        kdf: Kdf {
            name: KDF_NAME.to_owned(),
            params: WRITE_PARAMS,
            salt: Base64::encode_string(&salt),
        },
        cipher: Cipher {
            name: CIPHER_NAME.to_owned(),
            nonce: Base64::encode_string(&nonce),
        },
        ciphertext: Base64::encode_string(&ciphertext),
    };
    Ok(serde_json::to_vec(&sealed).expect("the sealed document always serializes"))
}

/// Opens a document made by [`seal`] (or by cosign). Fields other than those described
/// are ignored, as cosign ignores them. A passphrase that does not open the box gives
/// [`TrustError::WrongPassphrase`] (without a path: the caller knows the file).
pub(crate) fn open(sealed: &[u8], passphrase: &[u8]) -> Result<Zeroizing<Vec<u8>>, TrustError> {
    let sealed: Sealed = serde_json::from_slice(sealed).map_err(|e| malformed(e.to_string()))?;
    if sealed.kdf.name != KDF_NAME {
        return Err(malformed(format!(
            "unknown key derivation {:?}; expected {KDF_NAME:?}",
            sealed.kdf.name
        )));
    }
    if sealed.cipher.name != CIPHER_NAME {
        return Err(malformed(format!(
            "unknown cipher {:?}; expected {CIPHER_NAME:?}",
            sealed.cipher.name
        )));
    }
    let salt = decode("kdf.salt", &sealed.kdf.salt)?;
    let nonce = decode("cipher.nonce", &sealed.cipher.nonce)?;
    if nonce.len() != NONCE_LEN {
        return Err(malformed(format!(
            "the nonce is {} bytes; nacl/secretbox nonces are {NONCE_LEN}",
            nonce.len()
        )));
    }
    let ciphertext = decode("ciphertext", &sealed.ciphertext)?;
    if ciphertext.len() < TAG_LEN {
        return Err(malformed(format!(
            "the ciphertext is {} bytes, shorter than the {TAG_LEN}-byte tag",
            ciphertext.len()
        )));
    }
    let key = derive(passphrase, &salt, sealed.kdf.params)?;
    XSalsa20Poly1305::new(Key::from_slice(key.as_slice()))
        .decrypt(Nonce::from_slice(&nonce), ciphertext.as_slice())
        .map(Zeroizing::new)
        .map_err(|_| TrustError::WrongPassphrase { path: None })
}

/// scrypt, after checking the parameters against relo's limits.
fn derive(
    passphrase: &[u8],
    salt: &[u8],
    params: ScryptParams,
) -> Result<Zeroizing<[u8; KEY_LEN]>, TrustError> {
    let ScryptParams { n, r, p } = params;
    let refused = || TrustError::UnsupportedKdfParameters { n, r, p };
    let within = n >= 2
        && n.is_power_of_two()
        && n.trailing_zeros() <= MAX_LOG_N
        && (1..=MAX_R).contains(&r)
        && (1..=MAX_P).contains(&p)
        && 128 * n * r <= MAX_MEMORY
        && n * r * p <= MAX_WORK;
    if !within {
        return Err(refused());
    }
    let log_n = u8::try_from(n.trailing_zeros()).map_err(|_| refused())?;
    let r32 = u32::try_from(r).map_err(|_| refused())?;
    let p32 = u32::try_from(p).map_err(|_| refused())?;
    let params = scrypt::Params::new(log_n, r32, p32, KEY_LEN).map_err(|_| refused())?;
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    scrypt::scrypt(passphrase, salt, &params, key.as_mut_slice()).map_err(|_| refused())?;
    Ok(key)
}

fn decode(field: &str, text: &str) -> Result<Vec<u8>, TrustError> {
    Base64::decode_vec(text)
        .map_err(|e| malformed(format!("{field} is not standard base64 with padding: {e}")))
}

fn malformed(reason: String) -> TrustError {
    TrustError::MalformedEncryptedKey { reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "reallyimportant" sealed under "supersecret" by go-securesystemslib's `Encrypt`
    /// (from its tests).
    const GO_ENCRYPT_VECTOR: &str = r#"{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"N9a7x5JFGbrtB2uBR81jPwp0eiLR4A7FV3mjVAQrg1g="},"cipher":{"name":"nacl/secretbox","nonce":"2h8HxMmgRfuYdpswZBQaU3xJ1nkA/5Ik"},"ciphertext":"SEW6sUh0jf2wfdjJGPNS9+bkk2uB+Cxamf32zR8XkQ=="}"#;

    /// Vectors from go-securesystemslib's tests of its three parameter sets (N = 2^15,
    /// 2^16, 2^17), made with its `Marshal`, so the plaintext is the JSON of the bytes
    /// "reallyimportant": a base64 string in quotes.
    const GO_MARSHAL_VECTORS: [&str; 3] = [
        r#"{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":"WO3mVvyTwJ9vwT5/Tk5OW5WPIBUofMjcpEfrLnfY4uA="},"cipher":{"name":"nacl/secretbox","nonce":"tCy7HcTFr4uxv4Nrg/DWmncuZ148U1MX"},"ciphertext":"08n43p5G5yviPEZpO7tPPF4aZQkWiWjkv4taFdhDBA0tamKH4nw="}"#,
        r#"{"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},"salt":"FhzPOt9/bJG4PTq6lQ6ecG6GzaOuOy/ynG5+yRiFlNs="},"cipher":{"name":"nacl/secretbox","nonce":"aw1ng1jHaDz/tQ7V2gR9O2+IGQ8xJEuE"},"ciphertext":"HycvuLZL4sYH0BrYTh4E/H20VtAW6u5zL5Pr+IBjYLYnCPzDkq8="}"#,
        r#"{"kdf":{"name":"scrypt","params":{"N":131072,"r":8,"p":1},"salt":"m38E3kouJTtiheLQN22NQ8DTito5hrjpUIskqcd375k="},"cipher":{"name":"nacl/secretbox","nonce":"Y6PM13yA+o44pE/W1ZBwczeGnTV/m9Zc"},"ciphertext":"6H8sqj1K6B6yDjtH5AQ6lbFigg/C2yDDJc4rYJ79w9aVPImFIPI="}"#,
    ];

    #[test]
    fn go_securesystemslib_vectors_open() {
        let plaintext = open(GO_ENCRYPT_VECTOR.as_bytes(), b"supersecret").unwrap();
        assert_eq!(plaintext.as_slice(), b"reallyimportant");
        let error = open(GO_ENCRYPT_VECTOR.as_bytes(), b"supersecreT").unwrap_err();
        assert_eq!(error.code(), "wrong-passphrase");
        for vector in GO_MARSHAL_VECTORS {
            let plaintext = open(vector.as_bytes(), b"supersecret").unwrap();
            assert_eq!(plaintext.as_slice(), br#""cmVhbGx5aW1wb3J0YW50""#);
        }
    }

    #[test]
    fn sealed_documents_have_cosigns_shape_and_open() {
        let sealed = seal(b"secret bytes", b"pw").unwrap();
        let json: serde_json::Value = serde_json::from_slice(&sealed).unwrap();
        assert_eq!(json["kdf"]["name"], "scrypt");
        assert_eq!(
            json["kdf"]["params"],
            serde_json::json!({"N": 32768, "r": 8, "p": 1})
        );
        assert_eq!(json["cipher"]["name"], "nacl/secretbox");
        let salt = Base64::decode_vec(json["kdf"]["salt"].as_str().unwrap()).unwrap();
        let nonce = Base64::decode_vec(json["cipher"]["nonce"].as_str().unwrap()).unwrap();
        let ciphertext = Base64::decode_vec(json["ciphertext"].as_str().unwrap()).unwrap();
        assert_eq!((salt.len(), nonce.len()), (32, 24));
        assert_eq!(ciphertext.len(), b"secret bytes".len() + 16);
        // Key order as Go's encoding/json writes the struct.
        let text = String::from_utf8(sealed.clone()).unwrap();
        assert!(
            text.starts_with(
                r#"{"kdf":{"name":"scrypt","params":{"N":32768,"r":8,"p":1},"salt":""#
            )
        );
        assert_eq!(open(&sealed, b"pw").unwrap().as_slice(), b"secret bytes");
        // Fresh salt and nonce every time.
        assert_ne!(seal(b"secret bytes", b"pw").unwrap(), sealed);
    }

    #[test]
    fn absurd_parameters_are_refused_before_any_work() {
        let document = |n: u64, r: u64, p: u64| {
            GO_ENCRYPT_VECTOR.replace(
                r#""N":32768,"r":8,"p":1"#,
                &format!(r#""N":{n},"r":{r},"p":{p}"#),
            )
        };
        for (n, r, p) in [
            (1 << 21, 8, 1),
            (1 << 20, 8, 1), // 1 GiB
            (1 << 40, 1, 1),
            (u64::MAX, 8, 1),
            (32_769, 8, 1),
            (30_000, 8, 1),
            (0, 8, 1),
            (1, 8, 1),
            (32_768, 0, 1),
            (32_768, 8, 0),
            (32_768, 33, 1),
            (32_768, 8, 17),
            (1 << 18, 8, 16), // 2^25 work units: too many
            (1 << 17, 1, 1),  // scrypt requires N < 2^(16 r)
        ] {
            let error = open(document(n, r, p).as_bytes(), b"supersecret").unwrap_err();
            assert_eq!(error.code(), "unsupported-kdf-parameters", "{n} {r} {p}");
            assert!(error.to_string().contains(&format!("N={n}")), "{error}");
        }
        let negative = GO_ENCRYPT_VECTOR.replace(r#""N":32768"#, r#""N":-1"#);
        let error = open(negative.as_bytes(), b"supersecret").unwrap_err();
        assert_eq!(error.code(), "malformed-encrypted-key");
    }

    #[test]
    fn malformed_documents_are_typed_errors() {
        let vector = GO_ENCRYPT_VECTOR;
        for (document, expected) in [
            ("not json".to_owned(), "expected"),
            ("{}".to_owned(), "missing field"),
            (vector.replace("\"scrypt\"", "\"pbkdf2\""), "pbkdf2"),
            (
                vector.replace("nacl/secretbox", "aes-gcm"),
                "unknown cipher",
            ),
            (
                vector.replace("2h8HxMmgRfuYdpswZBQaU3xJ1nkA/5Ik", "AAAA"),
                "nonce is 3 bytes",
            ),
            (
                vector.replace("2h8HxMmgRfuYdpswZBQaU3xJ1nkA/5Ik", "!!!"),
                "cipher.nonce",
            ),
            (
                vector.replace("SEW6sUh0jf2wfdjJGPNS9+bkk2uB+Cxamf32zR8XkQ==", "AAAA"),
                "shorter than",
            ),
        ] {
            let error = open(document.as_bytes(), b"supersecret").unwrap_err();
            assert_eq!(error.code(), "malformed-encrypted-key", "{document}");
            assert!(error.to_string().contains(expected), "{error}");
        }
    }

    fn answers(typed: &[&str]) -> impl FnMut(&str) -> io::Result<String> {
        let mut typed: Vec<String> = typed.iter().rev().map(|s| (*s).to_owned()).collect();
        move |_prompt: &str| {
            typed
                .pop()
                .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "no more input"))
        }
    }

    #[test]
    fn the_environment_wins_then_the_terminal_then_a_clear_error() {
        let none: Option<fn(&str) -> io::Result<String>> = None;
        let env = Some(Passphrase::new("from env"));
        let got = resolve(env.clone(), Some(answers(&["typed"])), "k", false).unwrap();
        assert_eq!(got.as_bytes(), b"from env");
        let got = resolve(None, Some(answers(&["typed"])), "k", false).unwrap();
        assert_eq!(got.as_bytes(), b"typed");

        let error = resolve(None, none, "the encrypted private key k.key", false).unwrap_err();
        assert_eq!(error.code(), "passphrase-required");
        let message = error.to_string();
        assert!(
            message.contains("k.key") && message.contains(KEY_PASSWORD_ENV),
            "{message}"
        );

        // An empty variable is a passphrase when reading (cosign allows empty ones), not
        // for a new key.
        let empty = Some(Passphrase::new(""));
        assert!(resolve(empty.clone(), none, "k", false).unwrap().is_empty());
        let error = resolve(empty, none, "k", true).unwrap_err();
        assert_eq!(error.code(), "empty-passphrase");
    }

    #[test]
    fn a_new_passphrase_is_asked_twice_and_must_match() {
        let got = resolve(None, Some(answers(&["pw", "pw"])), "k", true).unwrap();
        assert_eq!(got.as_bytes(), b"pw");
        let error = resolve(None, Some(answers(&["pw", "pW"])), "k", true).unwrap_err();
        assert_eq!(error.code(), "passphrase-mismatch");
        let error = resolve(None, Some(answers(&["", ""])), "k", true).unwrap_err();
        assert_eq!(error.code(), "empty-passphrase");
        let error = resolve(None, Some(answers(&["pw"])), "k", true).unwrap_err();
        assert_eq!(error.code(), "passphrase-prompt-failed");
        assert_eq!(format!("{:?}", Passphrase::new("pw")), "Passphrase(..)");
    }
}
