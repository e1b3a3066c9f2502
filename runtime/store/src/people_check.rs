//! The people directory against the control chain that recorded every change to it.
//!
//! People, their keys and roles are rows once a server imports them; a database writer
//! could add a key of their own to someone, or a role. Every change the server makes is
//! an `admin.action` entry of the control chain (`user.created`, `user.imported`,
//! `user.roles-set`, `user.disabled`, `key.added`, `key.imported`, `key.revoked`).
//! [`check_people`] replays them and refuses a directory whose signing people, keys or
//! roles no entry explains.

use std::collections::{BTreeMap, BTreeSet};

use crate::evidence::StoredEntry;
use crate::people::PeopleDirectory;

/// A person, key or role in the directory that no control-chain entry explains
/// (`people-tampered`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("people-tampered: {person}: {reason}")]
pub struct PeopleTampered {
    /// The person whose row is unexplained.
    pub person: String,
    /// What the entries do not explain.
    pub reason: String,
}

impl PeopleTampered {
    /// The stable machine code: `people-tampered`.
    pub fn code(&self) -> &'static str {
        "people-tampered"
    }
}

/// What the control chain says about one person.
#[derive(Debug, Default)]
struct Recorded {
    roles: Option<BTreeSet<String>>,
    keys: BTreeSet<String>,
    disabled: bool,
}

/// Checks every person of `directory` who holds a key (whose signature can count)
/// against the `admin.action` entries of `control` (the control chain, in order, as
/// trusted: [`Store::trusted_entries`](crate::Store::trusted_entries)): they were created
/// or imported and not disabled since, each of their keys was added or imported and not
/// revoked since, and their roles are the last ones recorded.
pub fn check_people(
    directory: &PeopleDirectory,
    control: &[StoredEntry],
) -> Result<(), PeopleTampered> {
    let recorded = replay(control);
    for person in directory.people.iter().filter(|p| !p.keys.is_empty()) {
        let tampered = |reason: String| PeopleTampered {
            person: person.name.clone(),
            reason,
        };
        let Some(known) = recorded.get(&person.name) else {
            return Err(tampered(
                "no control-chain entry created or imported them".into(),
            ));
        };
        if known.disabled {
            return Err(tampered(
                "they were disabled, but the directory lists them".into(),
            ));
        }
        if let Some(key) = person.keys.iter().find(|k| !known.keys.contains(&k.key_id)) {
            return Err(tampered(format!(
                "key {} was never added to them (or was revoked) in the control chain",
                key.key_id
            )));
        }
        let roles: BTreeSet<String> = person.roles.iter().cloned().collect();
        let expected = known.roles.clone().unwrap_or_default();
        if roles != expected {
            return Err(tampered(format!(
                "the directory gives them the roles [{}] but the control chain recorded [{}]",
                join(&roles),
                join(&expected)
            )));
        }
    }
    Ok(())
}

/// Replays the `admin.action` entries of `control`, in order.
fn replay(control: &[StoredEntry]) -> BTreeMap<String, Recorded> {
    let mut people: BTreeMap<String, Recorded> = BTreeMap::new();
    for entry in control.iter().filter(|e| e.kind == "admin.action") {
        let Ok(body) = serde_json::from_str::<serde_json::Value>(&entry.body) else {
            continue;
        };
        let text = |field: &str| body.get(field).and_then(serde_json::Value::as_str);
        let (Some(action), Some(target)) = (text("action"), text("target")) else {
            continue;
        };
        let detail = text("detail").unwrap_or_default();
        let person = people.entry(target.to_owned()).or_default();
        match action {
            "user.created" | "user.imported" | "user.roles-set" => {
                person.roles = Some(role_list(detail));
                person.disabled &= action == "user.roles-set";
            }
            "user.disabled" => person.disabled = true,
            "key.added" | "key.imported" => {
                person.keys.insert(detail.to_owned());
            }
            "key.revoked" => {
                person.keys.remove(detail);
            }
            _ => {}
        }
    }
    people
}

/// Roles as the server records them: names joined by `, `.
fn role_list(detail: &str) -> BTreeSet<String> {
    detail
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect()
}

fn join(roles: &BTreeSet<String>) -> String {
    roles
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::people::{DirectoryPerson, StoredPersonKey};

    fn action(seq: u64, action: &str, target: &str, detail: Option<&str>) -> StoredEntry {
        StoredEntry {
            seq,
            scope: "control".into(),
            scope_seq: seq,
            step_id: None,
            kind: "admin.action".into(),
            time: "2026-12-08T00:00:00Z".into(),
            body: serde_json::json!({
                "by": "ada", "action": action, "target": target, "detail": detail
            })
            .to_string(),
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    fn directory(name: &str, roles: &[&str], keys: &[&str]) -> PeopleDirectory {
        PeopleDirectory {
            revision: 1,
            people: vec![DirectoryPerson {
                name: name.into(),
                roles: roles.iter().map(|r| (*r).to_owned()).collect(),
                keys: keys
                    .iter()
                    .map(|k| StoredPersonKey {
                        key_id: (*k).to_owned(),
                        user: name.into(),
                        public_key: String::new(),
                        added_by: "ada".into(),
                        added_at: String::new(),
                        revoked: None,
                    })
                    .collect(),
            }],
        }
    }

    fn history() -> Vec<StoredEntry> {
        vec![
            action(1, "user.imported", "rita", Some("release-manager")),
            action(2, "key.imported", "rita", Some("sha256:r1")),
            action(
                3,
                "user.roles-set",
                "rita",
                Some("release-manager, auditor"),
            ),
            action(4, "key.added", "rita", Some("sha256:r2")),
            action(5, "key.revoked", "rita", Some("sha256:r1")),
        ]
    }

    #[test]
    fn a_directory_the_chain_explains_passes() {
        let dir = directory("rita", &["auditor", "release-manager"], &["sha256:r2"]);
        assert_eq!(check_people(&dir, &history()), Ok(()));
        let keyless = directory("bootstrap", &["admin"], &[]);
        assert_eq!(
            check_people(&keyless, &history()),
            Ok(()),
            "no key, no signature"
        );
    }

    #[test]
    fn unexplained_keys_roles_and_people_are_people_tampered() {
        let cases = [
            (
                directory("rita", &["auditor", "release-manager"], &["sha256:r1"]),
                "key sha256:r1",
            ),
            (
                directory("rita", &["auditor", "release-manager"], &["sha256:evil"]),
                "key sha256:evil",
            ),
            (
                directory(
                    "rita",
                    &["admin", "auditor", "release-manager"],
                    &["sha256:r2"],
                ),
                "roles",
            ),
            (
                directory("mallory", &["release-manager"], &["sha256:m"]),
                "created or imported",
            ),
        ];
        for (dir, words) in cases {
            let err = check_people(&dir, &history()).expect_err(words);
            assert_eq!(err.code(), "people-tampered");
            assert!(err.reason.contains(words), "`{words}` not in: {err}");
        }
        let mut disabled = history();
        disabled.push(action(6, "user.disabled", "rita", None));
        let dir = directory("rita", &["auditor", "release-manager"], &["sha256:r2"]);
        assert!(check_people(&dir, &disabled).is_err());
    }
}
