//! Stand-ins for the services of the offline release demo: **not real services**.
//!
//! The reference release (RELEASE_FLOW.md) talks to a forge (tags and releases) and a
//! deploy target (which reports the digest it runs). To run it offline, and to test the
//! release plugins against something that answers, this crate serves tiny in-memory
//! imitations of both on 127.0.0.1 — nothing else is ever bound:
//!
//! | stand-in | request | answer |
//! |---|---|---|
//! | [`Forge`] | `GET /api/tags` | `200 [{"name": "v1.3.0"}, …]` |
//! | | `POST /api/tags {"name"}` | `201 {"name"}`; `409` if it exists |
//! | | `POST /api/releases {"tag", "notes"}` | `201 {"id", "url", "tag"}`; `422` for an unknown tag, `409` for a second release of a tag |
//! | [`Target`] | `POST /api/deployments {"digest", "version"[, "image"]}` | `200 {"digest", "version"}` |
//! | | `GET /api/deployments/current` | `200 {"digest", "version"}`; `404` before the first deployment |
//!
//! The forge's `POST`s need `Authorization: Bearer <token>` with the token it was
//! started with, else `401`. Malformed bodies get `400`, other paths `404`, other
//! methods `405`, each with `{"error": "…"}`. Both record every request they answer as
//! a [`RecordedRequest`] (method, path, whether an `Authorization` header was present,
//! status) — never a header's value — and can print each on stderr.
//!
//! ```
//! use relo_stand_ins::{Forge, Target};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let forge = Forge::start("127.0.0.1:0".parse().unwrap(), "demo-token", ["v1.3.0"]).await?;
//! let target = Target::start("127.0.0.1:0".parse().unwrap()).await?;
//! assert!(forge.url().starts_with("http://127.0.0.1:"));
//! assert_eq!(forge.tags(), ["v1.3.0"]);
//! // Make the target lie about what it runs, to test a deploy step's check.
//! target.report_digest_override(Some("sha256:0000".to_owned()));
//! assert!(target.deployed().is_none());
//! # Ok(()) }
//! ```
//!
//! The `relo-stand-ins` binary runs both for the demo script.

mod forge;
mod journal;
mod server;
mod target;

pub use forge::{Forge, Release};
pub use journal::RecordedRequest;
pub use target::{Deployment, Target};

/// Printed first by the binary, and the label every log line carries.
pub const LABEL: &str = "relo demo stand-ins (not real services)";
