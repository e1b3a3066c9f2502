//! What each role may do: one table, [`PERMISSIONS`], that the router enforces on every
//! route and that `docs/permissions.md` shows (a test keeps the two equal).
//!
//! Every route of [`ROUTES`](crate::ROUTES) names its [`Access`]: public, any
//! authenticated caller, or one [`Permission`]. Adding an endpoint that needs a new power
//! is one row here and one variant of [`Permission`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::users::Role;

/// A power a role grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Permission {
    /// Create users, change their roles, disable them.
    #[serde(rename = "users.manage")]
    ManageUsers,
    /// List users and their roles.
    #[serde(rename = "users.read")]
    ReadUsers,
    /// Make, list and revoke one's own API tokens.
    #[serde(rename = "tokens.manage-own")]
    ManageOwnTokens,
    /// Read the control-plane audit chain.
    #[serde(rename = "audit.read")]
    ReadAudit,
    /// List and inspect stored plugins and their approvals.
    #[serde(rename = "plugins.read")]
    ReadPlugins,
    /// Upload a signed plugin.
    #[serde(rename = "plugins.upload")]
    UploadPlugins,
    /// Approve a plugin digest.
    #[serde(rename = "plugins.approve")]
    ApprovePlugins,
    /// Register workflows with the server.
    #[serde(rename = "workflows.register")]
    RegisterWorkflows,
    /// List and read runs, their steps and logs, and registered workflows.
    #[serde(rename = "runs.read")]
    ReadRuns,
    /// Start a run (and cancel one's own).
    #[serde(rename = "runs.start")]
    StartRuns,
    /// Approve a run's gate.
    #[serde(rename = "gates.approve")]
    ApproveGates,
    /// Read, export and verify runs' evidence.
    #[serde(rename = "evidence.read")]
    ReadEvidence,
    /// Scrape the server's metrics.
    #[serde(rename = "metrics.read")]
    ReadMetrics,
}

/// One row of the permission table.
#[derive(Debug, Clone, Copy)]
pub struct Grant {
    /// The permission.
    pub permission: Permission,
    /// The roles that hold it.
    pub roles: &'static [Role],
    /// The endpoints that need it (those not built yet are marked so).
    pub endpoints: &'static str,
}

/// The permission table: every [`Permission`], the roles holding it, and the endpoints
/// that check it. A role holds exactly the permissions of the rows naming it.
pub static PERMISSIONS: &[Grant] = &[
    Grant {
        permission: Permission::ManageUsers,
        roles: &[Role::Admin],
        endpoints: "`POST /v1/users`, `PUT /v1/users/{name}/roles`, `PUT /v1/users/{name}/password`, `POST /v1/users/{name}/disable`, `POST /v1/users/{name}/keys`, `POST /v1/users/{name}/keys/{key_id}/revoke`",
    },
    Grant {
        permission: Permission::ReadUsers,
        roles: &[Role::Admin, Role::Auditor],
        endpoints: "`GET /v1/users`, `GET /v1/users/{name}/keys`",
    },
    Grant {
        permission: Permission::ManageOwnTokens,
        roles: &[
            Role::Admin,
            Role::Operator,
            Role::ReleaseManager,
            Role::PluginAuthor,
            Role::Auditor,
        ],
        endpoints: "`POST /v1/tokens`, `GET /v1/tokens`, `DELETE /v1/tokens/{id}`",
    },
    Grant {
        permission: Permission::ReadAudit,
        roles: &[Role::Admin, Role::Operator, Role::Auditor],
        endpoints: "`GET /v1/audit`",
    },
    Grant {
        permission: Permission::ReadPlugins,
        roles: &[
            Role::Admin,
            Role::Operator,
            Role::ReleaseManager,
            Role::PluginAuthor,
            Role::Auditor,
        ],
        endpoints: "`GET /v1/plugins`, `GET /v1/plugins/{digest}`, `GET /v1/plugins/{digest}/diff`, `GET /v1/plugins/{digest}/approvals`",
    },
    Grant {
        permission: Permission::UploadPlugins,
        roles: &[Role::PluginAuthor],
        endpoints: "`POST /v1/plugins`",
    },
    Grant {
        permission: Permission::ApprovePlugins,
        roles: &[Role::Operator],
        endpoints: "`POST /v1/plugins/{digest}/approvals`, `POST /v1/plugins/{digest}/block`, `POST /v1/plugins/{digest}/approvals/{id}/revoke`",
    },
    Grant {
        permission: Permission::RegisterWorkflows,
        roles: &[Role::Operator, Role::ReleaseManager],
        endpoints: "`POST /v1/workflows`",
    },
    Grant {
        permission: Permission::ReadRuns,
        roles: &[Role::Operator, Role::ReleaseManager, Role::Auditor],
        endpoints: "`GET /v1/workflows`, `GET /v1/workflows/{sha256}`, `GET /v1/runs`, `GET /v1/runs/{id}`, `GET /v1/runs/{id}/logs`",
    },
    Grant {
        permission: Permission::StartRuns,
        roles: &[Role::Operator, Role::ReleaseManager],
        endpoints: "`POST /v1/runs`, `POST /v1/runs/{id}/cancel` (an operator cancels any run, anyone else only their own)",
    },
    Grant {
        permission: Permission::ApproveGates,
        roles: &[Role::Operator, Role::ReleaseManager],
        endpoints: "`POST /v1/runs/{id}/gates/{step}/approvals` (the gate's `roles:` and separation of duties are checked too)",
    },
    Grant {
        permission: Permission::ReadEvidence,
        roles: &[Role::Operator, Role::Auditor],
        endpoints: "`GET /v1/runs/{id}/evidence`, `GET /v1/evidence/verify`, `GET /v1/evidence/checkpoints`",
    },
    Grant {
        permission: Permission::ReadMetrics,
        roles: &[Role::Admin, Role::Auditor],
        endpoints: "`GET /metrics`",
    },
];

impl Permission {
    /// Every permission, in the table's order.
    pub const ALL: [Permission; 13] = [
        Permission::ManageUsers,
        Permission::ReadUsers,
        Permission::ManageOwnTokens,
        Permission::ReadAudit,
        Permission::ReadPlugins,
        Permission::UploadPlugins,
        Permission::ApprovePlugins,
        Permission::RegisterWorkflows,
        Permission::ReadRuns,
        Permission::StartRuns,
        Permission::ApproveGates,
        Permission::ReadEvidence,
        Permission::ReadMetrics,
    ];

    /// The permission's name: `users.manage`, `tokens.manage-own`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ManageUsers => "users.manage",
            Permission::ReadUsers => "users.read",
            Permission::ManageOwnTokens => "tokens.manage-own",
            Permission::ReadAudit => "audit.read",
            Permission::ReadPlugins => "plugins.read",
            Permission::UploadPlugins => "plugins.upload",
            Permission::ApprovePlugins => "plugins.approve",
            Permission::RegisterWorkflows => "workflows.register",
            Permission::ReadRuns => "runs.read",
            Permission::StartRuns => "runs.start",
            Permission::ApproveGates => "gates.approve",
            Permission::ReadEvidence => "evidence.read",
            Permission::ReadMetrics => "metrics.read",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A permission name that is not one of [`Permission::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown permission `{0}`; docs/permissions.md lists them")]
pub struct UnknownPermission(pub String);

impl FromStr for Permission {
    type Err = UnknownPermission;

    fn from_str(name: &str) -> Result<Permission, UnknownPermission> {
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str() == name)
            .ok_or_else(|| UnknownPermission(name.to_owned()))
    }
}

/// Whether `role` holds `permission` according to [`PERMISSIONS`].
pub fn allows(role: Role, permission: Permission) -> bool {
    PERMISSIONS
        .iter()
        .any(|grant| grant.permission == permission && grant.roles.contains(&role))
}

/// Whether any of `roles` holds `permission`.
pub fn roles_allow(roles: &[Role], permission: Permission) -> bool {
    roles.iter().any(|&role| allows(role, permission))
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without credentials (health, the document, login, refresh, logout).
    Public,
    /// Any authenticated caller, whatever their roles.
    Authenticated,
    /// An authenticated caller holding this permission.
    Requires(Permission),
}

/// The permission table as the Markdown table of `docs/permissions.md`.
pub fn permissions_markdown() -> String {
    let mut out = String::from("| permission | ");
    out.push_str(
        &Role::ALL
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(" | "),
    );
    out.push_str(" | used by |\n|---|");
    out.push_str(&"---|".repeat(Role::ALL.len()));
    out.push_str("---|\n");
    for grant in PERMISSIONS {
        out.push_str(&format!("| `{}` |", grant.permission));
        for role in Role::ALL {
            out.push_str(if grant.roles.contains(&role) {
                " yes |"
            } else {
                " |"
            });
        }
        out.push_str(&format!(" {} |\n", grant.endpoints));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_permission_has_exactly_one_row_and_names_round_trip() {
        for permission in Permission::ALL {
            let rows = PERMISSIONS
                .iter()
                .filter(|g| g.permission == permission)
                .count();
            assert_eq!(rows, 1, "{permission}");
            assert_eq!(permission.as_str().parse::<Permission>(), Ok(permission));
            assert_eq!(
                serde_json::to_value(permission).ok(),
                Some(serde_json::Value::from(permission.as_str()))
            );
        }
        assert_eq!(PERMISSIONS.len(), Permission::ALL.len());
        assert!("root".parse::<Permission>().is_err());
    }

    #[test]
    fn the_first_rows_are_as_specified() {
        assert!(allows(Role::Admin, Permission::ManageUsers));
        assert!(!allows(Role::Auditor, Permission::ManageUsers));
        assert!(allows(Role::Auditor, Permission::ReadUsers));
        assert!(!allows(Role::Operator, Permission::ReadUsers));
        for role in Role::ALL {
            assert!(allows(role, Permission::ManageOwnTokens));
        }
        assert!(allows(Role::Operator, Permission::ReadAudit));
        assert!(!allows(Role::ReleaseManager, Permission::ReadAudit));
        assert!(!roles_allow(&[], Permission::ManageOwnTokens));
    }

    #[test]
    fn docs_permissions_md_shows_the_table() {
        let doc = include_str!("../../../docs/permissions.md");
        let table = permissions_markdown();
        assert!(
            doc.contains(&table),
            "docs/permissions.md is out of date; its table must be:\n{table}"
        );
    }
}
