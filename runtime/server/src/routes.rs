//! The one list of the API's routes: the router is built from it, and the tests check the
//! OpenAPI document against it, so the two cannot drift apart.

use axum::Json;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{MethodFilter, MethodRouter, on};

use crate::auth;
use crate::state::AppState;

/// An HTTP method the API serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpMethod {
    /// GET.
    Get,
    /// POST.
    Post,
}

impl HttpMethod {
    /// `GET` or `POST`.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            HttpMethod::Get => MethodFilter::GET,
            HttpMethod::Post => MethodFilter::POST,
        }
    }
}

/// One operation of the API.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// The method.
    pub method: HttpMethod,
    /// The path.
    pub path: &'static str,
    /// The operation's `operationId` in the OpenAPI document.
    pub operation_id: &'static str,
    endpoint: Endpoint,
}

#[derive(Debug, Clone, Copy)]
enum Endpoint {
    Healthz,
    OpenApi,
    Login,
    Refresh,
    Logout,
    Me,
}

/// Every operation the server serves, and nothing else.
pub static ROUTES: &[Route] = &[
    Route {
        method: HttpMethod::Get,
        path: "/healthz",
        operation_id: "healthz",
        endpoint: Endpoint::Healthz,
    },
    Route {
        method: HttpMethod::Get,
        path: "/v1/openapi.json",
        operation_id: "openapi",
        endpoint: Endpoint::OpenApi,
    },
    Route {
        method: HttpMethod::Post,
        path: "/v1/auth/login",
        operation_id: "login",
        endpoint: Endpoint::Login,
    },
    Route {
        method: HttpMethod::Post,
        path: "/v1/auth/refresh",
        operation_id: "refresh",
        endpoint: Endpoint::Refresh,
    },
    Route {
        method: HttpMethod::Post,
        path: "/v1/auth/logout",
        operation_id: "logout",
        endpoint: Endpoint::Logout,
    },
    Route {
        method: HttpMethod::Get,
        path: "/v1/me",
        operation_id: "me",
        endpoint: Endpoint::Me,
    },
];

impl Route {
    /// The route's handler, answering only the route's method.
    pub(crate) fn method_router(&self) -> MethodRouter<AppState> {
        let filter = self.method.filter();
        match self.endpoint {
            Endpoint::Healthz => on(filter, healthz),
            Endpoint::OpenApi => on(filter, openapi),
            Endpoint::Login => on(filter, auth::login),
            Endpoint::Refresh => on(filter, auth::refresh),
            Endpoint::Logout => on(filter, auth::logout),
            Endpoint::Me => on(filter, auth::me),
        }
    }
}

/// The OpenAPI 3.1 document of [`ROUTES`].
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}
