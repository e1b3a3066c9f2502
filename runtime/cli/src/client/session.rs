//! Talking to the API as someone: a stored login (refreshed before it expires, and once
//! more when the server says it has) or an API token from `RELO_API_TOKEN`; and the
//! server's refusals as a typed error.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use reqwest::{Method, StatusCode, header};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use relo_server::{Clock, SystemClock};

use super::credentials::{CredentialStore, Login};
use super::server::{ServerUrl, http_client};

/// The environment variable holding an API token to use instead of a stored login.
pub const API_TOKEN_ENV: &str = "RELO_API_TOKEN";

/// A refusal answered by the server: its `{"error": {"code", "message", "field"}}`, the
/// status, and for 429 the seconds `Retry-After` asks to wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The HTTP status.
    pub status: u16,
    /// The stable code (`invalid-credentials`, `forbidden`, ...), or `http-STATUS` when
    /// the answer was not a relo error.
    pub code: String,
    /// The server's sentence.
    pub message: String,
    /// The input field the refusal is about, if any.
    pub field: Option<String>,
    /// Seconds to wait before trying again (429).
    pub retry_after: Option<u64>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refused ({}): {}", self.code, self.message)?;
        if let Some(field) = &self.field {
            write!(f, " (field `{field}`)")?;
        }
        if let Some(seconds) = self.retry_after {
            write!(f, "; retry after {seconds} s")?;
        }
        Ok(())
    }
}

impl std::error::Error for Refusal {}

impl Refusal {
    /// The refusal of a non-success answer: the body's error when it is relo's JSON
    /// error, else one named after the status.
    fn of(status: StatusCode, retry_after: Option<u64>, body: &[u8]) -> Refusal {
        #[derive(Deserialize)]
        struct Body {
            error: Detail,
        }
        #[derive(Deserialize)]
        struct Detail {
            code: String,
            message: String,
            #[serde(default)]
            field: Option<String>,
        }
        match serde_json::from_slice::<Body>(body) {
            Ok(Body { error }) => Refusal {
                status: status.as_u16(),
                code: error.code,
                message: error.message,
                field: error.field,
                retry_after,
            },
            Err(_) => Refusal {
                status: status.as_u16(),
                code: format!("http-{}", status.as_u16()),
                message: format!(
                    "the server answered {status} without a relo error (is the URL a relo server?)"
                ),
                field: None,
                retry_after,
            },
        }
    }
}

/// Why the session cannot act for anyone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// No stored login and no API token.
    #[error(
        "not logged in to {server}: run `relo --server {server} login --name NAME` (or set {API_TOKEN_ENV})"
    )]
    NotLoggedIn {
        /// The server.
        server: String,
    },
    /// The refresh token was refused: the stored login was deleted.
    #[error(
        "the login to {server} has ended ({code}): log in again with `relo --server {server} login --name {user}`"
    )]
    LoginEnded {
        /// The server.
        server: String,
        /// Who was logged in.
        user: String,
        /// The server's code (`refresh-token-expired`, `refresh-token-reused`, ...).
        code: String,
    },
}

/// One API request, kept so it can be sent again after a refresh.
#[derive(Debug, Clone)]
pub struct Call {
    method: Method,
    segments: Vec<String>,
    query: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    if_none_match: Option<String>,
}

impl Call {
    /// `GET` of the path made of `segments`.
    pub fn get(segments: &[&str]) -> Call {
        Call {
            method: Method::GET,
            segments: segments.iter().map(|s| (*s).to_owned()).collect(),
            query: Vec::new(),
            body: None,
            if_none_match: None,
        }
    }

    /// `POST` of `body` as JSON to the path made of `segments`.
    pub fn post(segments: &[&str], body: &serde_json::Value) -> Call {
        Call {
            method: Method::POST,
            body: Some(body.to_string().into_bytes()),
            ..Call::get(segments)
        }
    }

    /// `POST` without a body.
    pub fn post_empty(segments: &[&str]) -> Call {
        Call {
            method: Method::POST,
            ..Call::get(segments)
        }
    }

    /// The same call with the query parameter `name=value`.
    pub fn with_query(mut self, name: &str, value: &str) -> Call {
        self.query.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The same call answered 304 Not Modified while the resource's `ETag` is `tag`.
    pub fn if_none_match(mut self, tag: &str) -> Call {
        self.if_none_match = Some(tag.to_owned());
        self
    }
}

/// A successful answer (2xx, or 304 to a conditional call).
#[derive(Debug)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The resource's `ETag`, when the server gave one.
    pub etag: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    /// The body as JSON of type `T`.
    pub fn json<T: DeserializeOwned>(&self) -> anyhow::Result<T> {
        serde_json::from_slice(&self.body).context("the server's answer is not the JSON expected")
    }
}

/// A status, and the body, of any answer.
struct Raw {
    status: StatusCode,
    retry_after: Option<u64>,
    etag: Option<String>,
    body: Vec<u8>,
}

impl Raw {
    fn refusal(&self) -> Refusal {
        Refusal::of(self.status, self.retry_after, &self.body)
    }

    fn into_answer(self) -> Result<Answer, Refusal> {
        if self.status.is_success() || self.status == StatusCode::NOT_MODIFIED {
            Ok(Answer {
                status: self.status,
                etag: self.etag,
                body: self.body,
            })
        } else {
            Err(self.refusal())
        }
    }
}

/// The token answer of login and refresh.
#[derive(Deserialize)]
struct Tokens {
    access_token: String,
    token_type: String,
    expires_in: u64,
    refresh_token: String,
}

/// Who the requests are sent as.
enum Auth {
    /// Nobody yet (login, logout).
    Anonymous,
    /// An API token: sent as is, never stored, never refreshed.
    ApiToken(String),
    /// A stored login.
    Login(Login),
}

/// A connection to one server, as someone.
pub struct Session {
    http: reqwest::Client,
    server: ServerUrl,
    credentials: CredentialStore,
    clock: Arc<dyn Clock>,
    auth: Auth,
}

impl Session {
    /// A session with `server`, trusting the CAs of `ca_cert` besides the system's,
    /// keeping logins in `credentials`, as nobody yet.
    pub fn open(
        server: ServerUrl,
        ca_cert: Option<&Path>,
        credentials: CredentialStore,
    ) -> anyhow::Result<Session> {
        let http = http_client(&server, ca_cert)?;
        Ok(Session {
            http,
            server,
            credentials,
            clock: Arc::new(SystemClock),
            auth: Auth::Anonymous,
        })
    }

    /// The same session reading the time from `clock` (for tests).
    #[cfg(test)]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Session {
        self.clock = clock;
        self
    }

    /// The server.
    pub fn server(&self) -> &ServerUrl {
        &self.server
    }

    /// Acts with `RELO_API_TOKEN` if it is set, else with the stored login.
    pub fn sign_in(&mut self) -> anyhow::Result<()> {
        if let Some(token) = std::env::var(API_TOKEN_ENV)
            .ok()
            .filter(|token| !token.trim().is_empty())
        {
            self.auth = Auth::ApiToken(token.trim().to_owned());
            return Ok(());
        }
        self.sign_in_stored()
    }

    /// Acts with the stored login.
    pub fn sign_in_stored(&mut self) -> anyhow::Result<()> {
        match self.credentials.load(&self.server)? {
            Some(login) => {
                self.auth = Auth::Login(login);
                Ok(())
            }
            None => Err(SessionError::NotLoggedIn {
                server: self.server.to_string(),
            }
            .into()),
        }
    }

    /// Sends `call` as the signed-in caller and returns its successful answer; a refusal
    /// is a [`Refusal`] error. A stored login's access token is refreshed first when it
    /// expires within 30 s, and once more (with the call sent again) when the server
    /// answers `token-expired`.
    pub async fn call(&mut self, call: &Call) -> anyhow::Result<Answer> {
        if let Auth::Login(login) = &self.auth
            && login.needs_refresh(self.clock.now())
        {
            self.refresh().await?;
        }
        let raw = self.send(call, true).await?;
        if raw.status == StatusCode::UNAUTHORIZED
            && matches!(self.auth, Auth::Login(_))
            && raw.refusal().code == "token-expired"
        {
            self.refresh().await?;
            return Ok(self.send(call, true).await?.into_answer()?);
        }
        Ok(raw.into_answer()?)
    }

    /// [`Session::call`], with the answer's JSON.
    pub async fn call_json<T: DeserializeOwned>(&mut self, call: &Call) -> anyhow::Result<T> {
        self.call(call).await?.json()
    }

    /// Logs `name` in with `password`, stores the login (revoking the one it replaces)
    /// and acts with it from now on.
    pub async fn login(&mut self, name: &str, password: &str) -> anyhow::Result<Login> {
        let call = Call::post(
            &["v1", "auth", "login"],
            &json!({"name": name, "password": password}),
        );
        let answer = self.send(&call, false).await?.into_answer()?;
        let tokens: Tokens = answer.json()?;
        let login = self.stored_tokens(name, tokens)?;
        let lock = self.credentials.lock()?;
        let replaced = self.credentials.load(&self.server)?;
        self.credentials.save(&lock, &self.server, &login)?;
        drop(lock);
        self.auth = Auth::Login(login.clone());
        if let Some(replaced) = replaced {
            // The replaced login is of no more use: end it on the server too. Best
            // effort: it expires by itself otherwise.
            let _ = self
                .send(&logout_call(&replaced.refresh_token), false)
                .await;
        }
        Ok(login)
    }

    /// Revokes the stored login on the server and deletes it; who was logged in, or
    /// `None` when nobody was. When the server cannot be told, the login is kept so that
    /// the logout can be tried again.
    pub async fn logout(&mut self) -> anyhow::Result<Option<String>> {
        let lock = self.credentials.lock()?;
        let Some(login) = self.credentials.load(&self.server)? else {
            return Ok(None);
        };
        let raw = self.send(&logout_call(&login.refresh_token), false).await?;
        // 401: the server holds the login as ended already.
        if !raw.status.is_success() && raw.status != StatusCode::UNAUTHORIZED {
            return Err(raw.refusal().into());
        }
        self.credentials.remove(&lock, &self.server)?;
        self.auth = Auth::Anonymous;
        Ok(Some(login.user))
    }

    /// Trades the stored refresh token for new tokens and stores them at once (the old
    /// one is used up). Holds the credentials lock throughout, and takes over tokens
    /// another `relo` process stored meanwhile instead of presenting a used-up token.
    async fn refresh(&mut self) -> anyhow::Result<()> {
        let Auth::Login(mine) = &self.auth else {
            return Ok(());
        };
        let lock = self.credentials.lock()?;
        let Some(stored) = self.credentials.load(&self.server)? else {
            return Err(SessionError::LoginEnded {
                server: self.server.to_string(),
                user: mine.user.clone(),
                code: "logged-out".to_owned(),
            }
            .into());
        };
        if stored.refresh_token != mine.refresh_token && !stored.needs_refresh(self.clock.now()) {
            self.auth = Auth::Login(stored);
            return Ok(());
        }
        let call = Call::post(
            &["v1", "auth", "refresh"],
            &json!({"refresh_token": stored.refresh_token}),
        );
        let raw = self.send(&call, false).await?;
        if raw.status == StatusCode::UNAUTHORIZED {
            self.credentials.remove(&lock, &self.server)?;
            self.auth = Auth::Anonymous;
            return Err(SessionError::LoginEnded {
                server: self.server.to_string(),
                user: stored.user,
                code: raw.refusal().code,
            }
            .into());
        }
        let tokens: Tokens = raw.into_answer()?.json()?;
        let login = self.stored_tokens(&stored.user, tokens)?;
        self.credentials.save(&lock, &self.server, &login)?;
        self.auth = Auth::Login(login);
        Ok(())
    }

    fn stored_tokens(&self, user: &str, tokens: Tokens) -> anyhow::Result<Login> {
        if !tokens.token_type.eq_ignore_ascii_case("bearer") {
            anyhow::bail!(
                "the server issued a `{}` token; this relo only knows Bearer tokens",
                tokens.token_type
            );
        }
        Ok(Login::issued(
            user,
            tokens.access_token,
            tokens.expires_in,
            tokens.refresh_token,
            self.clock.now(),
        ))
    }

    /// Sends `call`, with the bearer token when `authenticated`, and reads the answer.
    async fn send(&self, call: &Call, authenticated: bool) -> anyhow::Result<Raw> {
        let segments: Vec<&str> = call.segments.iter().map(String::as_str).collect();
        let query: Vec<(&str, &str)> = call
            .query
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        let url = self.server.endpoint(&segments, &query);
        let mut request = self
            .http
            .request(call.method.clone(), url)
            .header(header::ACCEPT, "application/json");
        if authenticated {
            let token = match &self.auth {
                Auth::ApiToken(token) => token,
                Auth::Login(login) => &login.access_token,
                Auth::Anonymous => {
                    return Err(SessionError::NotLoggedIn {
                        server: self.server.to_string(),
                    }
                    .into());
                }
            };
            request = request.bearer_auth(token);
        }
        if let Some(body) = &call.body {
            request = request
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        if let Some(tag) = &call.if_none_match {
            request = request.header(header::IF_NONE_MATCH, tag);
        }
        let what = format!("{} {}", call.method, call.segments.join("/"));
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach {} ({what})", self.server))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse().ok());
        let etag = response
            .headers()
            .get(header::ETAG)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let body = response
            .bytes()
            .await
            .with_context(|| format!("{} broke off its answer ({what})", self.server))?
            .to_vec();
        Ok(Raw {
            status,
            retry_after,
            etag,
            body,
        })
    }
}

fn logout_call(refresh_token: &str) -> Call {
    Call::post(
        &["v1", "auth", "logout"],
        &json!({"refresh_token": refresh_token}),
    )
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::{Duration, SystemTime};

    use relo_server::{AppState, JwtSecret, ManualClock, Role, app, create_user};

    use super::*;

    #[test]
    fn refusals_render_code_message_field_and_retry_after() {
        let refusal = Refusal::of(
            StatusCode::BAD_REQUEST,
            None,
            br#"{"error": {"code": "invalid-field", "message": "name: expected a string", "field": "name"}}"#,
        );
        assert_eq!(
            refusal.to_string(),
            "refused (invalid-field): name: expected a string (field `name`)"
        );
        let limited = Refusal::of(
            StatusCode::TOO_MANY_REQUESTS,
            Some(7),
            br#"{"error": {"code": "rate-limited", "message": "too many requests", "field": null}}"#,
        );
        assert_eq!(
            limited.to_string(),
            "refused (rate-limited): too many requests; retry after 7 s"
        );
        let foreign = Refusal::of(StatusCode::BAD_GATEWAY, None, b"<html>proxy error</html>");
        assert_eq!(foreign.code, "http-502");
        assert!(!foreign.to_string().contains("<html>"), "{foreign}");
    }

    const PASSWORD: &str = "a long enough test password";

    /// relo-server on a loopback port, on its own manual clock.
    struct Served {
        url: ServerUrl,
        clock: Arc<ManualClock>,
        _home: tempfile::TempDir,
    }

    async fn serve() -> Served {
        let home = tempfile::tempdir().expect("tempdir");
        let store = relo_store::Store::connect(home.path(), "sqlite://relo.db")
            .await
            .expect("store");
        create_user(&store, "olga", PASSWORD, &[Role::Admin])
            .await
            .expect("user");
        let clock = Arc::new(ManualClock::new(SystemTime::now()));
        let state = AppState::new(
            store,
            &JwtSecret::generate().expect("secret"),
            clock.clone(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let service = app(state).into_make_service_with_connect_info::<SocketAddr>();
            axum::serve(listener, service).await.expect("serve");
        });
        Served {
            url: ServerUrl::parse(&format!("http://{address}")).expect("url"),
            clock,
            _home: home,
        }
    }

    async fn me(session: &mut Session) -> anyhow::Result<String> {
        let me: serde_json::Value = session.call_json(&Call::get(&["v1", "me"])).await?;
        Ok(me["name"].as_str().unwrap_or_default().to_owned())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tokens_are_refreshed_before_expiry_and_on_token_expired_and_a_dead_login_is_forgotten()
    {
        let served = serve().await;
        let config = tempfile::tempdir().expect("tempdir");
        let credentials = CredentialStore::at(config.path());
        let client_clock = Arc::new(ManualClock::new(served.clock.now()));
        let open = || {
            Session::open(served.url.clone(), None, credentials.clone())
                .expect("session")
                .with_clock(client_clock.clone())
        };
        let stored = || credentials.load(&served.url).expect("load");

        let mut session = open();
        let login = session.login("olga", PASSWORD).await.expect("login");
        assert_eq!(stored(), Some(login.clone()));
        assert_eq!(me(&mut session).await.expect("me"), "olga");
        assert_eq!(stored(), Some(login.clone()), "nothing refreshed yet");

        // The client's clock reaches 30 s before expiry: refreshed before sending.
        client_clock.advance(Duration::from_secs(871));
        let mut session = open();
        session.sign_in_stored().expect("stored login");
        assert_eq!(me(&mut session).await.expect("me"), "olga");
        let second = stored().expect("still logged in");
        assert_ne!(second.refresh_token, login.refresh_token, "rotated");
        assert_ne!(second.access_token, login.access_token);

        // The server's clock runs ahead: its `token-expired` makes the client refresh
        // once and send the request again.
        served.clock.advance(Duration::from_secs(16 * 60));
        assert_eq!(me(&mut session).await.expect("me after refresh"), "olga");
        let third = stored().expect("still logged in");
        assert_ne!(third.refresh_token, second.refresh_token, "rotated again");

        // A process still holding the used-up second pair takes over the stored third
        // pair rather than presenting the used-up token (which would end the login).
        let mut behind = open();
        behind.auth = Auth::Login(second.clone());
        behind.refresh().await.expect("takes the stored pair");
        assert_eq!(me(&mut behind).await.expect("me"), "olga");
        assert_eq!(stored(), Some(third.clone()), "no refresh was needed");

        // Presenting a used-up refresh token ends the login on the server: the client
        // deletes it and says to log in again.
        let lock = credentials.lock().expect("lock");
        credentials
            .save(
                &lock,
                &served.url,
                &Login {
                    access_expires_at: 0,
                    ..second
                },
            )
            .expect("save");
        drop(lock);
        let mut stale = open();
        stale.sign_in_stored().expect("stored login");
        let error = me(&mut stale).await.expect_err("the login has ended");
        let ended = error
            .downcast_ref::<SessionError>()
            .expect("a session error");
        assert!(
            matches!(ended, SessionError::LoginEnded { code, .. } if code == "refresh-token-reused"),
            "{ended:?}"
        );
        assert!(error.to_string().contains("login --name olga"), "{error}");
        assert_eq!(stored(), None, "the dead login is forgotten");
        // And the family is revoked: the third pair is dead too.
        let lock = credentials.lock().expect("lock");
        credentials
            .save(
                &lock,
                &served.url,
                &Login {
                    access_expires_at: 0,
                    ..third
                },
            )
            .expect("save");
        drop(lock);
        let mut revoked = open();
        revoked.sign_in_stored().expect("stored login");
        assert!(me(&mut revoked).await.is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn logout_revokes_the_refresh_token_and_a_bad_password_is_a_refusal() {
        let served = serve().await;
        let config = tempfile::tempdir().expect("tempdir");
        let credentials = CredentialStore::at(config.path());
        let mut session =
            Session::open(served.url.clone(), None, credentials.clone()).expect("session");
        let error = session
            .login("olga", "not the password at all")
            .await
            .expect_err("refused");
        let refusal = error.downcast_ref::<Refusal>().expect("a refusal");
        assert_eq!(
            (refusal.status, refusal.code.as_str()),
            (401, "invalid-credentials")
        );
        assert_eq!(credentials.load(&served.url).expect("load"), None);

        let login = session.login("olga", PASSWORD).await.expect("login");
        assert_eq!(
            session.logout().await.expect("logout"),
            Some("olga".to_owned())
        );
        assert_eq!(credentials.load(&served.url).expect("load"), None);
        assert_eq!(session.logout().await.expect("again"), None);
        // The refresh token no longer works.
        let raw = session
            .send(
                &Call::post(
                    &["v1", "auth", "refresh"],
                    &json!({"refresh_token": login.refresh_token}),
                ),
                false,
            )
            .await
            .expect("answered");
        assert_eq!(raw.status, StatusCode::UNAUTHORIZED);
        // Without a login, nothing is sent as anyone.
        let error = session.sign_in_stored().expect_err("not logged in");
        assert!(
            error
                .to_string()
                .contains("not logged in to http://127.0.0.1:"),
            "{error}"
        );
    }
}
