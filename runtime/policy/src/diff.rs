//! What changes between two capability sets: the diff an operator reviews before
//! approving a new version of a plugin.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::grant::{Capabilities, Rule, WorkspaceAccess};

/// How one capability changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// Asked for and not there before.
    Added,
    /// There before and no longer asked for.
    Removed,
    /// Asks for more than before (a wider rule, reveal, read-write, a higher limit).
    Widened,
    /// Asks for less than before.
    Narrowed,
}

/// One line of a diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// How it changed.
    pub kind: ChangeKind,
    /// Which capability (`egress`, `secret forge_token`, `limit memory_bytes`, ...).
    pub capability: String,
    /// What it was, if it existed.
    pub before: Option<String>,
    /// What it is, if it exists.
    pub after: Option<String>,
}

/// The changes from one capability set to another.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilityDiff {
    /// Every change, egress first, then secrets, signer keys, env, workspace, limits.
    pub changes: Vec<Change>,
}

impl CapabilityDiff {
    /// The changes from `old` to `new`.
    pub fn between(old: &Capabilities, new: &Capabilities) -> Self {
        let mut diff = Self::default();
        diff.rules("egress", &old.egress, &new.egress);
        for (name, secret) in &new.secrets {
            let capability = format!("secret {name}");
            match old.secrets.get(name) {
                None => {
                    diff.push(
                        ChangeKind::Added,
                        &capability,
                        None,
                        Some(reveal_text(secret.reveal)),
                    );
                    diff.rules(&format!("{capability} inject"), &[], &secret.inject);
                }
                Some(before) => {
                    if secret.reveal != before.reveal {
                        let kind = if secret.reveal {
                            ChangeKind::Widened
                        } else {
                            ChangeKind::Narrowed
                        };
                        diff.push(
                            kind,
                            &capability,
                            Some(reveal_text(before.reveal)),
                            Some(reveal_text(secret.reveal)),
                        );
                    }
                    diff.rules(
                        &format!("{capability} inject"),
                        &before.inject,
                        &secret.inject,
                    );
                }
            }
        }
        for (name, secret) in &old.secrets {
            if !new.secrets.contains_key(name) {
                diff.push(
                    ChangeKind::Removed,
                    &format!("secret {name}"),
                    Some(reveal_text(secret.reveal)),
                    None,
                );
            }
        }
        for key in new.signer_keys.difference(&old.signer_keys) {
            diff.push(
                ChangeKind::Added,
                &format!("signer key {key}"),
                None,
                Some(key.clone()),
            );
        }
        for key in old.signer_keys.difference(&new.signer_keys) {
            diff.push(
                ChangeKind::Removed,
                &format!("signer key {key}"),
                Some(key.clone()),
                None,
            );
        }
        for (name, value) in &new.env {
            match old.env.get(name) {
                None => diff.push(
                    ChangeKind::Added,
                    &format!("env {name}"),
                    None,
                    Some(value.clone()),
                ),
                Some(before) if before != value => diff.push(
                    ChangeKind::Widened,
                    &format!("env {name}"),
                    Some(before.clone()),
                    Some(value.clone()),
                ),
                Some(_) => {}
            }
        }
        for (name, value) in &old.env {
            if !new.env.contains_key(name) {
                diff.push(
                    ChangeKind::Removed,
                    &format!("env {name}"),
                    Some(value.clone()),
                    None,
                );
            }
        }
        let workspace_kind = match (old.workspace, new.workspace) {
            (None, Some(_)) => Some(ChangeKind::Added),
            (Some(_), None) => Some(ChangeKind::Removed),
            (Some(WorkspaceAccess::ReadOnly), Some(WorkspaceAccess::ReadWrite)) => {
                Some(ChangeKind::Widened)
            }
            (Some(WorkspaceAccess::ReadWrite), Some(WorkspaceAccess::ReadOnly)) => {
                Some(ChangeKind::Narrowed)
            }
            _ => None,
        };
        if let Some(kind) = workspace_kind {
            diff.push(
                kind,
                "workspace",
                old.workspace.map(workspace_text),
                new.workspace.map(workspace_text),
            );
        }
        let (a, b) = (&old.limits, &new.limits);
        let limits: [(&str, u64, u64); 11] = [
            ("fuel", a.fuel, b.fuel),
            ("memory_bytes", a.memory_bytes, b.memory_bytes),
            ("table_elements", a.table_elements, b.table_elements),
            ("timeout_ms", millis(a.timeout), millis(b.timeout)),
            ("output_bytes", a.output_bytes, b.output_bytes),
            ("log_bytes", a.log_bytes, b.log_bytes),
            ("egress_requests", a.egress_requests, b.egress_requests),
            ("egress_bytes", a.egress_bytes, b.egress_bytes),
            ("host_calls", a.host_calls, b.host_calls),
            ("workspace_bytes", a.workspace_bytes, b.workspace_bytes),
            ("workspace_files", a.workspace_files, b.workspace_files),
        ];
        for (name, before, after) in limits {
            if before != after {
                let kind = if after > before {
                    ChangeKind::Widened
                } else {
                    ChangeKind::Narrowed
                };
                diff.push(
                    kind,
                    &format!("limit {name}"),
                    Some(before.to_string()),
                    Some(after.to_string()),
                );
            }
        }
        diff
    }

    /// Whether the new set asks for anything the old one did not: it needs approval.
    pub fn widens(&self) -> bool {
        self.changes
            .iter()
            .any(|change| matches!(change.kind, ChangeKind::Added | ChangeKind::Widened))
    }

    fn push(
        &mut self,
        kind: ChangeKind,
        capability: &str,
        before: Option<String>,
        after: Option<String>,
    ) {
        self.changes.push(Change {
            kind,
            capability: capability.to_owned(),
            before,
            after,
        });
    }

    /// The rules of `new` that `old` did not allow (added or widened), and those of
    /// `old` that `new` no longer allows (removed or narrowed).
    fn rules<R: Rule>(&mut self, capability: &str, old: &[R], new: &[R]) {
        for rule in new {
            if old.iter().any(|before| rule.is_within(before)) {
                continue;
            }
            let overlapping: Vec<String> = old
                .iter()
                .filter(|before| before.intersect(rule).is_some())
                .map(ToString::to_string)
                .collect();
            let kind = if overlapping.is_empty() {
                ChangeKind::Added
            } else {
                ChangeKind::Widened
            };
            let before = (!overlapping.is_empty()).then(|| overlapping.join("; "));
            self.push(kind, capability, before, Some(rule.to_string()));
        }
        for rule in old {
            if new.iter().any(|after| rule.is_within(after)) {
                continue;
            }
            let overlaps = new.iter().any(|after| after.intersect(rule).is_some());
            if !overlaps {
                self.push(
                    ChangeKind::Removed,
                    capability,
                    Some(rule.to_string()),
                    None,
                );
            } else if !new
                .iter()
                .any(|after| !after.is_within(rule) && after.intersect(rule).is_some())
            {
                self.push(
                    ChangeKind::Narrowed,
                    capability,
                    Some(rule.to_string()),
                    None,
                );
            }
        }
    }
}

fn reveal_text(reveal: bool) -> String {
    if reveal {
        "inject and reveal".into()
    } else {
        "inject only".into()
    }
}

fn workspace_text(access: WorkspaceAccess) -> String {
    match access {
        WorkspaceAccess::ReadOnly => "read-only".into(),
        WorkspaceAccess::ReadWrite => "read-write".into(),
    }
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl fmt::Display for CapabilityDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.changes.is_empty() {
            return writeln!(f, "no changes");
        }
        writeln!(
            f,
            "{:<9} {:<28} {:<40} after",
            "change", "capability", "before"
        )?;
        for change in &self.changes {
            let kind = match change.kind {
                ChangeKind::Added => "added",
                ChangeKind::Removed => "removed",
                ChangeKind::Widened => "widened",
                ChangeKind::Narrowed => "narrowed",
            };
            writeln!(
                f,
                "{kind:<9} {:<28} {:<40} {}",
                change.capability,
                change.before.as_deref().unwrap_or("-"),
                change.after.as_deref().unwrap_or("-")
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::{EgressRule, Method};
    use crate::grant::{InjectRule, SecretGrant};

    fn rule(url: &str, methods: &[Method]) -> EgressRule {
        EgressRule::parse(url, methods).expect("valid")
    }

    #[test]
    fn a_new_version_asking_for_more() {
        let mut old = Capabilities::default();
        old.egress
            .push(rule("https://forge.example.com/api/tags", &[Method::Get]));
        old.egress
            .push(rule("https://old.example.com/*", &[Method::Get]));
        old.secrets.insert("token".into(), SecretGrant::default());
        old.workspace = Some(WorkspaceAccess::ReadOnly);

        let mut new = old.clone();
        new.egress = vec![
            rule("https://forge.example.com/api/*", &[Method::Get]),
            rule("https://new.example.com/x", &[Method::Post]),
        ];
        new.secrets.insert(
            "token".into(),
            SecretGrant {
                inject: Vec::new(),
                reveal: true,
            },
        );
        new.workspace = Some(WorkspaceAccess::ReadWrite);
        new.limits.memory_bytes *= 2;
        new.signer_keys.insert("release".into());

        let diff = CapabilityDiff::between(&old, &new);
        let kinds: Vec<(ChangeKind, &str)> = diff
            .changes
            .iter()
            .map(|c| (c.kind, c.capability.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                (ChangeKind::Widened, "egress"),
                (ChangeKind::Added, "egress"),
                (ChangeKind::Removed, "egress"),
                (ChangeKind::Widened, "secret token"),
                (ChangeKind::Added, "signer key release"),
                (ChangeKind::Widened, "workspace"),
                (ChangeKind::Widened, "limit memory_bytes"),
            ]
        );
        assert!(diff.widens());
        let table = diff.to_string();
        assert!(table.contains("widened   egress"), "{table}");
        assert!(!CapabilityDiff::between(&new, &new).widens());
        assert_eq!(
            CapabilityDiff::between(&new, &new).to_string(),
            "no changes\n"
        );
    }

    fn inject(url: &str, header: &str) -> InjectRule {
        InjectRule {
            destination: rule(url, &[Method::Get]),
            header: header.parse().expect("valid"),
        }
    }

    #[test]
    fn inject_rules_show_their_header() {
        let mut old = Capabilities::default();
        old.secrets.insert(
            "token".into(),
            SecretGrant {
                inject: vec![inject("https://forge.example.com/*", "authorization")],
                reveal: false,
            },
        );
        let mut new = old.clone();
        new.secrets.insert(
            "token".into(),
            SecretGrant {
                inject: vec![inject("https://forge.example.com/*", "origin")],
                reveal: false,
            },
        );
        new.secrets.insert(
            "key".into(),
            SecretGrant {
                inject: vec![inject("https://registry.example.com/v2/*", "x-api-key")],
                reveal: false,
            },
        );
        let diff = CapabilityDiff::between(&old, &new);
        let lines: Vec<(ChangeKind, &str, Option<&str>, Option<&str>)> = diff
            .changes
            .iter()
            .map(|c| {
                (
                    c.kind,
                    c.capability.as_str(),
                    c.before.as_deref(),
                    c.after.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            lines,
            [
                (ChangeKind::Added, "secret key", None, Some("inject only")),
                (
                    ChangeKind::Added,
                    "secret key inject",
                    None,
                    Some("GET https://registry.example.com:443/v2/* header x-api-key")
                ),
                (
                    ChangeKind::Added,
                    "secret token inject",
                    None,
                    Some("GET https://forge.example.com:443/* header origin")
                ),
                (
                    ChangeKind::Removed,
                    "secret token inject",
                    Some("GET https://forge.example.com:443/* header authorization"),
                    None
                ),
            ]
        );
        assert!(diff.widens(), "another header is more, not the same");
        assert!(diff.to_string().contains("header origin"), "{diff}");
    }

    #[test]
    fn asking_for_less_only_narrows() {
        let mut old = Capabilities::default();
        old.egress.push(rule(
            "https://forge.example.com/api/*",
            &[Method::Get, Method::Post],
        ));
        let mut new = old.clone();
        new.egress = vec![rule("https://forge.example.com/api/tags", &[Method::Get])];
        new.limits.fuel /= 2;
        let diff = CapabilityDiff::between(&old, &new);
        assert!(!diff.widens(), "{diff}");
        assert!(
            diff.changes.iter().all(|c| c.kind == ChangeKind::Narrowed),
            "{diff}"
        );
    }
}
