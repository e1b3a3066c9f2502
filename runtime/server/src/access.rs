//! The guard in front of every route: who the client is, whether its address is over
//! its rate limit (before any token is looked at), who the caller is (an access token or
//! an API token), whether they are over their own limit, and whether the permission
//! table lets them call the route. Every refusal is answered as JSON, counted in the
//! metrics, and appended to the control-plane audit chain (THREATS.md T6), naming the
//! user when known and never a password or a token; refusals that anyone can cause
//! without a credential (a bad token, a rate limit) are counted and sampled per client
//! ([`crate::refusals`]), so they cannot amplify writes (T2).

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use relo_evidence::{EvidenceEvent, EvidenceRecord, Scope, rfc3339_utc};
use relo_store::StoredUser;

use crate::client::ClientAddr;
use crate::error::ApiError;
use crate::permissions::{Access, Permission, roles_allow};
use crate::ratelimit::{Limit, Limited};
use crate::refusals::Tally;
use crate::routes::Route;
use crate::state::AppState;
use crate::tokens::{API_TOKEN_PREFIX, AccessTokenError, RefreshToken};
use crate::users::Role;

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An access token (a login session).
    Session,
    /// An API token, by id, limited to its scopes.
    ApiToken {
        /// The token's id.
        id: String,
        /// The permissions it was made for.
        scopes: Vec<Permission>,
    },
}

/// The authenticated caller of a request: the user, the user's current roles (read from
/// the store on every request, so a role taken away takes effect at once), and the
/// credential used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user's name.
    pub user: String,
    /// The user's roles now.
    pub roles: Vec<Role>,
    /// The credential.
    pub credential: Credential,
}

impl Principal {
    /// Whether the caller may use `permission`: one of the user's roles grants it and,
    /// for an API token, it is one of the token's scopes.
    pub fn allows(&self, permission: Permission) -> bool {
        roles_allow(&self.roles, permission)
            && match &self.credential {
                Credential::Session => true,
                Credential::ApiToken { scopes, .. } => scopes.contains(&permission),
            }
    }

    /// The key of the principal's rate-limit bucket.
    fn bucket(&self) -> String {
        match &self.credential {
            Credential::Session => format!("user:{}", self.user),
            Credential::ApiToken { id, .. } => format!("token:{id}"),
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError::internal("a handler needing a caller is on a public route"))
    }
}

/// The route and client of a request, for handlers that audit refusals themselves.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub(crate) route: &'static Route,
    pub(crate) client: ClientAddr,
}

impl Origin {
    pub(crate) fn site(&self) -> Site<'_> {
        Site {
            route: self.route,
            client: &self.client,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Origin>()
            .cloned()
            .ok_or_else(|| ApiError::internal("a request reached a handler without its guard"))
    }
}

/// Where a refusal happened, for the audit chain.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Site<'a> {
    pub(crate) route: &'a Route,
    pub(crate) client: &'a ClientAddr,
}

impl Site<'_> {
    fn route_name(&self) -> String {
        format!("{} {}", self.route.method.as_str(), self.route.path)
    }
}

/// A name as a refusal records it: what the client sent, cut to 64 bytes (no user's name
/// is longer) at a character boundary, and marked when cut, so a client cannot make the
/// evidence hold what it likes.
fn shown_name(name: &str) -> String {
    if name.len() <= crate::users::MAX_NAME_BYTES {
        return name.to_owned();
    }
    let mut end = crate::users::MAX_NAME_BYTES;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[truncated {} bytes]", &name[..end], name.len() - end)
}

/// Counts `err`, appends its `auth.refused` entry, and returns it (or `internal` when
/// the entry could not be written: a refusal is never answered unrecorded).
pub(crate) async fn refused(
    state: &AppState,
    site: Site<'_>,
    who: Option<&str>,
    detail: Option<String>,
    err: ApiError,
) -> ApiError {
    state.metrics().refusal(err.code);
    let who = who.map(shown_name);
    let who = who.as_deref();
    let event = EvidenceEvent::AuthRefused {
        who: who.map(str::to_owned),
        code: err.code.to_owned(),
        route: site.route_name(),
        client: site.client.to_string(),
        detail,
    };
    tracing::warn!(who, code = err.code, route = %site.route_name(), client = %site.client, "refused");
    match record(state, event).await {
        Ok(()) => err,
        Err(failure) => failure,
    }
}

/// Appends `event` to the control chain, timestamped by the server's clock.
pub(crate) async fn record(state: &AppState, event: EvidenceEvent) -> Result<(), ApiError> {
    let mut record = EvidenceRecord::new(Scope::Control, None, event);
    record.time = state.clock().now();
    state
        .store()
        .record(&record)
        .await
        .map_err(ApiError::internal)
}

/// Counts `err` like [`refused`], but records it in full only when it is the first of a
/// burst of its code from this client; the others go into the burst's next
/// `auth.refusals-counted` entry.
pub(crate) async fn refused_counted(
    state: &AppState,
    site: Site<'_>,
    who: Option<&str>,
    detail: Option<String>,
    err: ApiError,
) -> ApiError {
    let now = state.clock().now();
    match state.refusals().tally(&site.client.bucket(), err.code, now) {
        Tally::First => refused(state, site, who, detail, err).await,
        Tally::Counted => {
            state.metrics().refusal(err.code);
            tracing::debug!(who, code = err.code, route = %site.route_name(), client = %site.client, "refused (counted)");
            err
        }
    }
}

/// Writes one `auth.refusals-counted` entry for each burst whose window has closed; a
/// count that cannot be written now goes into the burst's next window.
async fn write_counted_refusals(state: &AppState) {
    let now = state.clock().now();
    for summary in state.refusals().close_due(now) {
        let event = EvidenceEvent::AuthRefusalsCounted {
            client: summary.client.clone(),
            code: summary.code.to_owned(),
            count: summary.count,
            since: rfc3339_utc(summary.since),
        };
        if record(state, event).await.is_err() {
            state.refusals().restore(summary, now);
        }
    }
}

/// Takes one request from bucket `key`; over the limit, the 429 (counted, and audited as
/// a refusal counted per client).
pub(crate) async fn rate_limit(
    state: &AppState,
    site: Site<'_>,
    who: Option<&str>,
    (name, key, limit): (&str, &str, Limit),
) -> Result<(), ApiError> {
    match state.limiter().take(key, limit, state.clock().now()) {
        Ok(()) => Ok(()),
        Err(limited) => Err(over_limit(state, site, who, name, limited).await),
    }
}

/// The 429 of the limit `name`, counted and audited.
pub(crate) async fn over_limit(
    state: &AppState,
    site: Site<'_>,
    who: Option<&str>,
    name: &str,
    limited: Limited,
) -> ApiError {
    state.metrics().rate_limited(name);
    let err = ApiError::rate_limited(limited.retry_after_secs);
    refused_counted(state, site, who, Some(name.to_owned()), err).await
}

/// The middleware of every route: resolves the [`ClientAddr`], writes the refusal counts
/// that are due, enforces `route.access`, puts the client and the [`Principal`] into the
/// request, and counts the answer.
pub(crate) async fn guard(
    State((state, route)): State<(AppState, &'static Route)>,
    mut request: Request,
    next: Next,
) -> Response {
    let client = ClientAddr::resolve(
        ClientAddr::peer(request.extensions()),
        request.headers(),
        state.trusted_proxies(),
    );
    request.extensions_mut().insert(client);
    write_counted_refusals(&state).await;
    request.extensions_mut().insert(Origin { route, client });
    let site = Site {
        route,
        client: &client,
    };
    let response = match admit(&state, site, request.headers()).await {
        Ok(principal) => {
            if let Some(principal) = principal {
                request.extensions_mut().insert(principal);
            }
            next.run(request).await
        }
        Err(err) => err.into_response(),
    };
    state.metrics().request(
        route.method.as_str(),
        route.path,
        response.status().as_u16(),
    );
    response
}

async fn admit(
    state: &AppState,
    site: Site<'_>,
    headers: &HeaderMap,
) -> Result<Option<Principal>, ApiError> {
    let needed = match site.route.access {
        Access::Public => return Ok(None),
        Access::Authenticated => None,
        Access::Requires(permission) => Some(permission),
    };
    // The client's bucket first: a flood of bad tokens is refused before any of them
    // is looked up.
    let client_bucket = format!("client:{}", site.client.bucket());
    let limit = state.limits().per_client;
    rate_limit(state, site, None, ("client", &client_bucket, limit)).await?;
    let principal = match authenticate(state, headers).await {
        Ok(principal) => principal,
        Err((who, err)) if err.status == StatusCode::UNAUTHORIZED => {
            return Err(refused_counted(state, site, who.as_deref(), None, err).await);
        }
        Err((_, err)) => return Err(err),
    };
    let bucket = principal.bucket();
    let limit = state.limits().per_principal;
    rate_limit(
        state,
        site,
        Some(&principal.user),
        ("principal", &bucket, limit),
    )
    .await?;
    if let Some(permission) = needed
        && !principal.allows(permission)
    {
        let err = ApiError::forbidden(permission);
        let detail = Some(permission.as_str().to_owned());
        return Err(refused(state, site, Some(&principal.user), detail, err).await);
    }
    Ok(Some(principal))
}

/// The bearer token of `Authorization: Bearer TOKEN`.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|token| !token.is_empty())
}

fn invalid_token() -> ApiError {
    ApiError::unauthorized("invalid-token", "the token is not valid")
}

/// The caller proven by the bearer token, or the refusal with the user if known.
async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Principal, (Option<String>, ApiError)> {
    let token = bearer(headers).ok_or_else(|| {
        (
            None,
            ApiError::unauthorized(
                "unauthenticated",
                "this endpoint needs a token: `Authorization: Bearer TOKEN`",
            ),
        )
    })?;
    let now = state.clock().now();
    let internal = |err: relo_store::StoreError| (None, ApiError::internal(err));
    if let Some(secret) = token.strip_prefix(API_TOKEN_PREFIX) {
        let hash = RefreshToken::parse(secret)
            .ok_or((None, invalid_token()))?
            .hash();
        let stored = state
            .store()
            .api_token_by_hash(&hash)
            .await
            .map_err(internal)?
            .ok_or((None, invalid_token()))?;
        let who = Some(stored.user.clone());
        if stored.revoked_at.is_some() {
            return Err((
                who,
                ApiError::unauthorized("token-revoked", "the API token was revoked"),
            ));
        }
        if !stored.is_live(now) {
            return Err((
                who,
                ApiError::unauthorized("token-expired", "the API token has expired"),
            ));
        }
        let user = live_user(state, &stored.user).await?;
        let scopes = stored
            .scopes
            .iter()
            .filter_map(|name| name.parse::<Permission>().ok())
            .collect();
        return Ok(Principal {
            roles: roles(&user).map_err(|err| (who, err))?,
            user: user.name,
            credential: Credential::ApiToken {
                id: stored.id,
                scopes,
            },
        });
    }
    let claims = match state.access_tokens().check(token, now) {
        Ok(claims) => claims,
        Err(AccessTokenError::Expired) => {
            return Err((
                None,
                ApiError::unauthorized(
                    "token-expired",
                    "the access token has expired; get a new one with the refresh token",
                ),
            ));
        }
        Err(AccessTokenError::Invalid(reason)) => {
            tracing::warn!(%reason, "refused an invalid access token");
            return Err((None, invalid_token()));
        }
    };
    let user = live_user(state, &claims.sub).await?;
    Ok(Principal {
        roles: roles(&user).map_err(|err| (Some(claims.sub.clone()), err))?,
        user: user.name,
        credential: Credential::Session,
    })
}

/// The user `name` if it exists and is not disabled; else `invalid-token`.
async fn live_user(state: &AppState, name: &str) -> Result<StoredUser, (Option<String>, ApiError)> {
    state
        .store()
        .user(name)
        .await
        .map_err(|err| (Some(name.to_owned()), ApiError::internal(err)))?
        .filter(|user| !user.disabled)
        .ok_or_else(|| (Some(name.to_owned()), invalid_token()))
}

/// The parsed roles of a stored user.
pub(crate) fn roles(user: &StoredUser) -> Result<Vec<Role>, ApiError> {
    user.roles
        .iter()
        .map(|name| name.parse::<Role>())
        .collect::<Result<_, _>>()
        .map_err(|err| ApiError::internal(format_args!("user {}: {err}", user.name)))
}
