//! Access tokens (HS256 JWTs that live 15 minutes) and refresh tokens (32 random bytes,
//! stored only as their sha256).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64ct::{Base64UrlUnpadded, Encoding as _};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand_core::{OsRng, RngCore as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::users::Role;

/// How long an access token is accepted after it was issued.
pub const ACCESS_TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// How long a refresh token is accepted after it was issued (unless used or revoked).
pub const REFRESH_TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// What every API token starts with, so a leaked one is recognisable (and scannable).
pub(crate) const API_TOKEN_PREFIX: &str = "relo_at_";

/// The `iss` of every access token.
const ISSUER: &str = "relo";

/// The bytes of a random secret or token.
const RANDOM_LEN: usize = 32;

/// Why a secret could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The operating system's random source failed.
    #[error("the operating system's random source failed: {0}")]
    Random(#[from] rand_core::Error),
    /// A given secret is too short to sign with.
    #[error("a token signing secret needs at least {min} bytes, got {got}")]
    TooShort {
        /// The bytes needed.
        min: usize,
        /// The bytes given.
        got: usize,
    },
}

/// The HMAC key that signs and checks access tokens. Its bytes are wiped on drop and
/// never printed.
#[derive(Clone)]
pub struct JwtSecret {
    bytes: Zeroizing<Vec<u8>>,
}

impl JwtSecret {
    /// 32 bytes from the operating system's random source.
    pub fn generate() -> Result<JwtSecret, SecretError> {
        Ok(JwtSecret {
            bytes: Zeroizing::new(random_bytes()?.to_vec()),
        })
    }

    /// A secret given by the operator (shared by several instances); at least 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<JwtSecret, SecretError> {
        if bytes.len() < RANDOM_LEN {
            return Err(SecretError::TooShort {
                min: RANDOM_LEN,
                got: bytes.len(),
            });
        }
        Ok(JwtSecret {
            bytes: Zeroizing::new(bytes.to_vec()),
        })
    }
}

impl fmt::Debug for JwtSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JwtSecret(***)")
    }
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Always `relo`.
    pub iss: String,
    /// The user's name.
    pub sub: String,
    /// The user's roles when the token was issued.
    pub roles: Vec<Role>,
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
    /// Expires at, seconds since the Unix epoch; at most 15 minutes after `iat`.
    pub exp: u64,
    /// A random id of this token.
    pub jti: String,
}

/// Why an access token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AccessTokenError {
    /// Its `exp` has passed.
    #[error("the access token expired")]
    Expired,
    /// A bad signature, another algorithm, a malformed token, missing claims, or a
    /// lifetime longer than the server issues.
    #[error("the access token is invalid: {0}")]
    Invalid(String),
}

/// Issues and checks access tokens with one secret.
pub(crate) struct AccessTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for AccessTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessTokens").finish_non_exhaustive()
    }
}

impl AccessTokens {
    pub(crate) fn new(secret: &JwtSecret) -> AccessTokens {
        // HS256 only: a token whose header names any other algorithm (`none`, RS256,
        // ES256, ...) is refused before its signature is looked at. Expiry is checked
        // against the server's clock in `check`, not the system clock, with no leeway.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        AccessTokens {
            encoding: EncodingKey::from_secret(&secret.bytes),
            decoding: DecodingKey::from_secret(&secret.bytes),
            validation,
        }
    }

    /// A signed access token for `user` with `roles`, issued at `now`.
    pub(crate) fn issue(
        &self,
        user: &str,
        roles: &[Role],
        now: SystemTime,
    ) -> Result<(String, AccessClaims), IssueError> {
        let iat = unix_seconds(now);
        let claims = AccessClaims {
            iss: ISSUER.to_owned(),
            sub: user.to_owned(),
            roles: roles.to_vec(),
            iat,
            exp: iat + ACCESS_TOKEN_LIFETIME.as_secs(),
            jti: random_id()?,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok((token, claims))
    }

    /// The claims of `token` if it is an HS256 token signed with this secret, issued by
    /// relo, living at most 15 minutes, and not expired at `now`.
    pub(crate) fn check(
        &self,
        token: &str,
        now: SystemTime,
    ) -> Result<AccessClaims, AccessTokenError> {
        let data = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map_err(|err| AccessTokenError::Invalid(err.to_string()))?;
        let claims = data.claims;
        if claims.exp <= claims.iat || claims.exp - claims.iat > ACCESS_TOKEN_LIFETIME.as_secs() {
            return Err(AccessTokenError::Invalid(format!(
                "it claims to live {} s; access tokens live at most {} s",
                claims.exp.saturating_sub(claims.iat),
                ACCESS_TOKEN_LIFETIME.as_secs()
            )));
        }
        if unix_seconds(now) >= claims.exp {
            return Err(AccessTokenError::Expired);
        }
        Ok(claims)
    }
}

/// Why a token could not be issued.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IssueError {
    #[error(transparent)]
    Random(#[from] SecretError),
    #[error("signing the access token failed: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

/// A refresh token, or the secret part of an API token: 32 random bytes, handed out as
/// unpadded base64url.
pub(crate) struct RefreshToken {
    bytes: Zeroizing<[u8; RANDOM_LEN]>,
}

impl RefreshToken {
    /// A new random token.
    pub(crate) fn generate() -> Result<RefreshToken, SecretError> {
        Ok(RefreshToken {
            bytes: Zeroizing::new(random_bytes()?),
        })
    }

    /// The token a client presented, if it has the form the server hands out.
    pub(crate) fn parse(text: &str) -> Option<RefreshToken> {
        let mut bytes = Zeroizing::new([0u8; RANDOM_LEN]);
        let decoded = Base64UrlUnpadded::decode(text, &mut bytes[..]).ok()?;
        (decoded.len() == RANDOM_LEN).then_some(RefreshToken { bytes })
    }

    /// The text handed to the client.
    pub(crate) fn encode(&self) -> String {
        Base64UrlUnpadded::encode_string(&self.bytes[..])
    }

    /// sha256 of the bytes, lowercase hex: the only form the store keeps.
    pub(crate) fn hash(&self) -> String {
        hex::encode(Sha256::digest(&self.bytes[..]))
    }
}

/// 16 random bytes as unpadded base64url: a token id or a refresh token family id.
pub(crate) fn random_id() -> Result<String, SecretError> {
    Ok(Base64UrlUnpadded::encode_string(&random_bytes()?[..16]))
}

fn random_bytes() -> Result<[u8; RANDOM_LEN], SecretError> {
    let mut bytes = [0u8; RANDOM_LEN];
    OsRng.try_fill_bytes(&mut bytes)?;
    Ok(bytes)
}

/// Whole seconds since the Unix epoch (0 before it).
fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn refresh_tokens_round_trip_and_odd_forms_are_refused() {
        let token = RefreshToken::generate().unwrap();
        let text = token.encode();
        assert_eq!(text.len(), 43);
        let parsed = RefreshToken::parse(&text).unwrap();
        assert_eq!(parsed.hash(), token.hash());
        assert_eq!(token.hash().len(), 64);
        assert!(RefreshToken::parse(&format!("{text}=")).is_none());
        assert!(RefreshToken::parse(&text[..42]).is_none());
        assert!(RefreshToken::parse(&format!("{text}AA")).is_none());
        assert!(RefreshToken::parse("").is_none());
        assert!(
            RefreshToken::parse(&text.replace(|c: char| c.is_ascii_alphabetic(), "+")).is_none()
        );
    }

    #[test]
    fn the_secret_is_not_printed_and_short_secrets_are_refused() {
        let secret = JwtSecret::from_bytes(&[7; 32]).unwrap();
        assert_eq!(format!("{secret:?}"), "JwtSecret(***)");
        assert!(matches!(
            JwtSecret::from_bytes(&[7; 31]),
            Err(SecretError::TooShort { min: 32, got: 31 })
        ));
    }

    #[test]
    fn expiry_has_no_leeway() {
        let tokens = AccessTokens::new(&JwtSecret::generate().unwrap());
        let start = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let (token, claims) = tokens.issue("olga", &[Role::Operator], start).unwrap();
        assert_eq!(claims.exp - claims.iat, 900);
        let last = start + ACCESS_TOKEN_LIFETIME - Duration::from_millis(1);
        assert_eq!(tokens.check(&token, last).unwrap(), claims);
        assert_eq!(
            tokens.check(&token, start + ACCESS_TOKEN_LIFETIME),
            Err(AccessTokenError::Expired)
        );
    }
}
