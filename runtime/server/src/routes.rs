//! The one list of the API's routes: the router is built from it, and the tests check the
//! OpenAPI document against it, so the two cannot drift apart.

use axum::Json;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::{MethodFilter, MethodRouter, on};

use crate::permissions::{Access, Permission};
use crate::plugins::PLUGIN_BODY_LIMIT;
use crate::runs::RUN_BODY_LIMIT;
use crate::state::AppState;
use crate::{access, admin, auth, evidence, keys, metrics, plugins, runs};

/// An HTTP method the API serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpMethod {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// DELETE.
    Delete,
}

impl HttpMethod {
    /// `GET`, `POST`, `PUT` or `DELETE`.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Delete => "DELETE",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            HttpMethod::Get => MethodFilter::GET,
            HttpMethod::Post => MethodFilter::POST,
            HttpMethod::Put => MethodFilter::PUT,
            HttpMethod::Delete => MethodFilter::DELETE,
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
    /// Who may call it; enforced in front of the handler.
    pub access: Access,
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
    Metrics,
    ListUsers,
    CreateUser,
    SetRoles,
    SetPassword,
    DisableUser,
    ListKeys,
    AddKey,
    RevokeKey,
    CreateToken,
    ListTokens,
    RevokeToken,
    Audit,
    UploadPlugin,
    ListPlugins,
    ShowPlugin,
    ApprovePlugin,
    ListApprovals,
    BlockPlugin,
    DiffPlugin,
    RevokeApproval,
    ValidateWorkflow,
    RegisterWorkflow,
    ListWorkflows,
    ShowWorkflow,
    StartRun,
    ListRuns,
    ShowRun,
    RunLogs,
    CancelRun,
    ApproveGate,
    RunEvidence,
    VerifyEvidence,
    Checkpoints,
}

/// Every operation the server serves, and nothing else.
pub static ROUTES: &[Route] = &[
    Route {
        method: HttpMethod::Get,
        path: "/healthz",
        operation_id: "healthz",
        access: Access::Public,
        endpoint: Endpoint::Healthz,
    },
    Route {
        method: HttpMethod::Get,
        path: "/v1/openapi.json",
        operation_id: "openapi",
        access: Access::Public,
        endpoint: Endpoint::OpenApi,
    },
    Route {
        method: HttpMethod::Post,
        path: "/v1/auth/login",
        operation_id: "login",
        access: Access::Public,
        endpoint: Endpoint::Login,
    },
    Route {
        method: HttpMethod::Post,
        path: "/v1/auth/refresh",
        operation_id: "refresh",
        access: Access::Public,
        endpoint: Endpoint::Refresh,
    },
    Route {
        method: HttpMethod::Post,
        path: "/v1/auth/logout",
        operation_id: "logout",
        access: Access::Public,
        endpoint: Endpoint::Logout,
    },
    Route {
        method: HttpMethod::Get,
        path: "/v1/me",
        operation_id: "me",
        access: Access::Authenticated,
        endpoint: Endpoint::Me,
    },
    Route {
        method: HttpMethod::Get,
        path: "/metrics",
        operation_id: "metrics",
        access: Access::Requires(Permission::ReadMetrics),
        endpoint: Endpoint::Metrics,
    },
    Route {
        method: HttpMethod::Get,
        path: "/v1/users",
        operation_id: "listUsers",
        access: Access::Requires(Permission::ReadUsers),
        endpoint: Endpoint::ListUsers,
    },
    Route {
        method: HttpMethod::Post,
        path: "/v1/users",
        operation_id: "createUser",
        access: Access::Requires(Permission::ManageUsers),
        endpoint: Endpoint::CreateUser,
    },
    Route {
        method: HttpMethod::Put,
        path: "/v1/users/{name}/roles",
        operation_id: "setUserRoles",
        access: Access::Requires(Permission::ManageUsers),
        endpoint: Endpoint::SetRoles,
    },
    Route {
        method: HttpMethod::Put,
        path: "/v1/users/{name}/password",
        operation_id: "setUserPassword",
        access: Access::Requires(Permission::ManageUsers),
        endpoint: Endpoint::SetPassword,
    },
    Route {
        method: HttpMethod::Post,
        path: "/v1/users/{name}/disable",
        operation_id: "disableUser",
        access: Access::Requires(Permission::ManageUsers),
        endpoint: Endpoint::DisableUser,
    },
    Route {
        method: HttpMethod::Get,
        path: "/v1/users/{name}/keys",
        operation_id: "listUserKeys",
        access: Access::Requires(Permission::ReadUsers),
        endpoint: Endpoint::ListKeys,
    },
    Route {
        method: HttpMethod::Post,
        path: "/v1/users/{name}/keys",
        operation_id: "addUserKey",
        access: Access::Requires(Permission::ManageUsers),
        endpoint: Endpoint::AddKey,
    },
    Route {
        method: HttpMethod::Post,
        path: "/v1/users/{name}/keys/{key_id}/revoke",
        operation_id: "revokeUserKey",
        access: Access::Requires(Permission::ManageUsers),
        endpoint: Endpoint::RevokeKey,
    },
    Route {
        method: HttpMethod::Post,
        path: "/v1/tokens",
        operation_id: "createToken",
        access: Access::Requires(Permission::ManageOwnTokens),
        endpoint: Endpoint::CreateToken,
    },
    Route {
        method: HttpMethod::Get,
        path: "/v1/tokens",
        operation_id: "listTokens",
        access: Access::Requires(Permission::ManageOwnTokens),
        endpoint: Endpoint::ListTokens,
    },
    Route {
        method: HttpMethod::Delete,
        path: "/v1/tokens/{id}",
        operation_id: "revokeToken",
        access: Access::Requires(Permission::ManageOwnTokens),
        endpoint: Endpoint::RevokeToken,
    },
    Route {
        method: HttpMethod::Get,
        path: "/v1/audit",
        operation_id: "audit",
        access: Access::Requires(Permission::ReadAudit),
        endpoint: Endpoint::Audit,
    },
    Route {
        method: HttpMethod::Post,
        path: "/v1/plugins",
        operation_id: "uploadPlugin",
        access: Access::Requires(Permission::UploadPlugins),
        endpoint: Endpoint::UploadPlugin,
    },
    Route {
        method: HttpMethod::Get,
        path: "/v1/plugins",
        operation_id: "listPlugins",
        access: Access::Requires(Permission::ReadPlugins),
        endpoint: Endpoint::ListPlugins,
    },
    Route {
        method: HttpMethod::Get,
        path: "/v1/plugins/{digest}",
        operation_id: "showPlugin",
        access: Access::Requires(Permission::ReadPlugins),
        endpoint: Endpoint::ShowPlugin,
    },
    Route {
        method: HttpMethod::Post,
        path: "/v1/plugins/{digest}/approvals",
        operation_id: "approvePlugin",
        access: Access::Requires(Permission::ApprovePlugins),
        endpoint: Endpoint::ApprovePlugin,
    },
    Route {
        method: HttpMethod::Get,
        path: "/v1/plugins/{digest}/approvals",
        operation_id: "listApprovals",
        access: Access::Requires(Permission::ReadPlugins),
        endpoint: Endpoint::ListApprovals,
    },
    Route {
        method: HttpMethod::Get,
        path: "/v1/plugins/{digest}/diff",
        operation_id: "diffPlugin",
        access: Access::Requires(Permission::ReadPlugins),
        endpoint: Endpoint::DiffPlugin,
    },
    Route {
        method: HttpMethod::Post,
        path: "/v1/plugins/{digest}/block",
        operation_id: "blockPlugin",
        access: Access::Requires(Permission::ApprovePlugins),
        endpoint: Endpoint::BlockPlugin,
    },
    Route {
        method: HttpMethod::Post,
        path: "/v1/plugins/{digest}/approvals/{id}/revoke",
        operation_id: "revokeApproval",
        access: Access::Requires(Permission::ApprovePlugins),
        endpoint: Endpoint::RevokeApproval,
    },
    Route {
        method: HttpMethod::Post,
        path: "/v1/workflows/validate",
        operation_id: "validateWorkflow",
        access: Access::Authenticated,
        endpoint: Endpoint::ValidateWorkflow,
    },
    Route {
        method: HttpMethod::Post,
        path: "/v1/workflows",
        operation_id: "registerWorkflow",
        access: Access::Requires(Permission::RegisterWorkflows),
        endpoint: Endpoint::RegisterWorkflow,
    },
    Route {
        method: HttpMethod::Get,
        path: "/v1/workflows",
        operation_id: "listWorkflows",
        access: Access::Requires(Permission::ReadRuns),
        endpoint: Endpoint::ListWorkflows,
    },
    Route {
        method: HttpMethod::Get,
        path: "/v1/workflows/{sha256}",
        operation_id: "showWorkflow",
        access: Access::Requires(Permission::ReadRuns),
        endpoint: Endpoint::ShowWorkflow,
    },
    Route {
        method: HttpMethod::Post,
        path: "/v1/runs",
        operation_id: "startRun",
        access: Access::Requires(Permission::StartRuns),
        endpoint: Endpoint::StartRun,
    },
    Route {
        method: HttpMethod::Get,
        path: "/v1/runs",
        operation_id: "listRuns",
        access: Access::Requires(Permission::ReadRuns),
        endpoint: Endpoint::ListRuns,
    },
    Route {
        method: HttpMethod::Get,
        path: "/v1/runs/{id}",
        operation_id: "showRun",
        access: Access::Requires(Permission::ReadRuns),
        endpoint: Endpoint::ShowRun,
    },
    Route {
        method: HttpMethod::Get,
        path: "/v1/runs/{id}/logs",
        operation_id: "runLogs",
        access: Access::Requires(Permission::ReadRuns),
        endpoint: Endpoint::RunLogs,
    },
    Route {
        method: HttpMethod::Post,
        path: "/v1/runs/{id}/cancel",
        operation_id: "cancelRun",
        access: Access::Requires(Permission::StartRuns),
        endpoint: Endpoint::CancelRun,
    },
    Route {
        method: HttpMethod::Post,
        path: "/v1/runs/{id}/gates/{step}/approvals",
        operation_id: "approveGate",
        access: Access::Requires(Permission::ApproveGates),
        endpoint: Endpoint::ApproveGate,
    },
    Route {
        method: HttpMethod::Get,
        path: "/v1/runs/{id}/evidence",
        operation_id: "exportRunEvidence",
        access: Access::Requires(Permission::ReadEvidence),
        endpoint: Endpoint::RunEvidence,
    },
    Route {
        method: HttpMethod::Get,
        path: "/v1/evidence/verify",
        operation_id: "verifyEvidence",
        access: Access::Requires(Permission::ReadEvidence),
        endpoint: Endpoint::VerifyEvidence,
    },
    Route {
        method: HttpMethod::Get,
        path: "/v1/evidence/checkpoints",
        operation_id: "listCheckpoints",
        access: Access::Requires(Permission::ReadEvidence),
        endpoint: Endpoint::Checkpoints,
    },
];

impl Route {
    /// The route's handler behind the access guard, answering only the route's method.
    pub(crate) fn method_router(&'static self, state: &AppState) -> MethodRouter<AppState> {
        let filter = self.method.filter();
        let handler = match self.endpoint {
            Endpoint::Healthz => on(filter, healthz),
            Endpoint::OpenApi => on(filter, openapi),
            Endpoint::Login => on(filter, auth::login),
            Endpoint::Refresh => on(filter, auth::refresh),
            Endpoint::Logout => on(filter, auth::logout),
            Endpoint::Me => on(filter, auth::me),
            Endpoint::Metrics => on(filter, metrics::serve),
            Endpoint::ListUsers => on(filter, admin::list_users),
            Endpoint::CreateUser => on(filter, admin::create_user),
            Endpoint::SetRoles => on(filter, admin::set_roles),
            Endpoint::SetPassword => on(filter, admin::set_password),
            Endpoint::DisableUser => on(filter, admin::disable_user),
            Endpoint::ListKeys => on(filter, keys::list_keys),
            Endpoint::AddKey => on(filter, keys::add_key),
            Endpoint::RevokeKey => on(filter, keys::revoke_key),
            Endpoint::CreateToken => on(filter, admin::create_token),
            Endpoint::ListTokens => on(filter, admin::list_tokens),
            Endpoint::RevokeToken => on(filter, admin::revoke_token),
            Endpoint::Audit => on(filter, admin::audit),
            // A component is larger than any other body: only this route reads more.
            Endpoint::UploadPlugin => {
                on(filter, plugins::upload).layer(DefaultBodyLimit::max(PLUGIN_BODY_LIMIT))
            }
            Endpoint::ListPlugins => on(filter, plugins::list),
            Endpoint::ShowPlugin => on(filter, plugins::show),
            Endpoint::ApprovePlugin => on(filter, plugins::approve),
            Endpoint::ListApprovals => on(filter, plugins::list_approvals),
            Endpoint::BlockPlugin => on(filter, plugins::block),
            Endpoint::DiffPlugin => on(filter, plugins::diff),
            Endpoint::RevokeApproval => on(filter, plugins::revoke),
            Endpoint::ValidateWorkflow => on(filter, runs::validate),
            Endpoint::RegisterWorkflow => on(filter, runs::register),
            Endpoint::ListWorkflows => on(filter, runs::list_workflows),
            Endpoint::ShowWorkflow => on(filter, runs::show_workflow),
            // A run may carry its workspace: this route reads more too.
            Endpoint::StartRun => {
                on(filter, runs::start).layer(DefaultBodyLimit::max(RUN_BODY_LIMIT))
            }
            Endpoint::ListRuns => on(filter, runs::list),
            Endpoint::ShowRun => on(filter, runs::show),
            Endpoint::RunLogs => on(filter, runs::logs),
            Endpoint::CancelRun => on(filter, runs::cancel),
            Endpoint::ApproveGate => on(filter, runs::approve_gate),
            Endpoint::RunEvidence => on(filter, evidence::export),
            Endpoint::VerifyEvidence => on(filter, evidence::verify),
            Endpoint::Checkpoints => on(filter, evidence::checkpoints),
        };
        handler.route_layer(from_fn_with_state((state.clone(), self), access::guard))
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
