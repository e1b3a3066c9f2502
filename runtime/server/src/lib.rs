//! relo's HTTP API server: authentication first (THREATS.md T2).
//!
//! [`app`] builds the axum [`Router`] over an [`AppState`] (the store, the access token
//! secret, and a [`Clock`]); tests drive it with `tower::ServiceExt::oneshot` and no
//! socket. Users log in with a name and a password (argon2id) and get an access
//! token, an HS256 JWT that lives 15 minutes, and a refresh token, 32 random bytes kept in
//! the store only as their sha256, that lives 30 days and rotates on every use: presenting
//! a used or revoked refresh token revokes every token of its login. Every refusal is JSON
//! with a stable code; internal failures are logged and never described to the client.
//! `docs/server.md` describes the model and what is not built yet.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::SystemTime;
//!
//! use axum::body::Body;
//! use axum::http::{Request, StatusCode};
//! use relo_server::{AppState, JwtSecret, ManualClock, Role, app, create_user};
//! use relo_store::Store;
//! use tower::ServiceExt as _;
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! let home = tempfile::tempdir()?;
//! let store = Store::connect(home.path(), "sqlite://relo.db").await?;
//! create_user(&store, "olga", "correct horse battery", &[Role::Operator]).await?;
//!
//! let clock = Arc::new(ManualClock::new(SystemTime::now()));
//! let state = AppState::new(store, &JwtSecret::generate()?, clock);
//! let login = Request::post("/v1/auth/login")
//!     .header("content-type", "application/json")
//!     .body(Body::from(r#"{"name": "olga", "password": "correct horse battery"}"#))?;
//! let response = app(state).oneshot(login).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod access;
mod admin;
mod auth;
mod client;
mod clock;
mod context;
mod engine;
mod error;
mod evidence;
mod extract;
mod keys;
mod metrics;
mod permissions;
mod plugins;
mod ratelimit;
mod refusals;
mod routes;
mod runs;
mod state;
mod tokens;
mod users;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;

pub use access::{Credential, Principal};
pub use client::ClientAddr;
pub use clock::{Clock, ManualClock, SystemClock};
pub use context::{REQUEST_ID_HEADER, REQUEST_TIMEOUT};
pub use error::ApiError;
pub use evidence::{EvidenceService, EvidenceServiceError, ExportedRun, ServiceFuture, Verdict};
pub use extract::{ApiJson, BODY_LIMIT};
pub use metrics::{EVIDENCE_COUNTS_EVERY, MetricsListenError, check_metrics_listen, metrics_app};
pub use permissions::{
    Access, Grant, PERMISSIONS, Permission, UnknownPermission, allows, permissions_markdown,
    roles_allow,
};
pub use plugins::PLUGIN_BODY_LIMIT;
pub use ratelimit::{Limit, RateLimits};
pub use routes::{HttpMethod, OPENAPI_JSON, ROUTES, Route};
pub use runs::{MAX_RUN_WAIT_SECONDS, RUN_BODY_LIMIT};
pub use state::{AppState, MAX_HELD_READS};
pub use tokens::{
    ACCESS_TOKEN_LIFETIME, AccessClaims, JwtSecret, REFRESH_TOKEN_LIFETIME, SecretError,
};
pub use users::{
    Imported, MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS, Role, UnknownRole, UserError, create_user,
    import_people,
};

/// The API over `state`: every route of [`ROUTES`] behind the access guard (its
/// [`Access`] checked against the permission table, rate limits, refusals audited and
/// counted), JSON 404 and 405 answers for anything else, request bodies limited to
/// [`BODY_LIMIT`] bytes, and every request given an id ([`REQUEST_ID_HEADER`]), a log
/// line and a time limit.
pub fn app(state: AppState) -> Router {
    ROUTES
        .iter()
        .fold(Router::new(), |router, route| {
            router.route(route.path, route.method_router(&state))
        })
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            context::request_context,
        ))
        .with_state(state)
}

async fn not_found(axum::extract::State(state): axum::extract::State<AppState>) -> ApiError {
    state.metrics().request("*", "unmatched", 404);
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "no such route; /v1/openapi.json lists the API",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "this route does not answer this method; /v1/openapi.json lists the API",
    )
}
