//! Integration tests of relo-server, driving [`relo_server::app`] with `oneshot` and no
//! socket. Every test runs on SQLite in a temporary relo home, and again on PostgreSQL in
//! a fresh schema of the database named by `RELO_TEST_POSTGRES_URL` when that is set
//! (which fails, naming it, when unset unless `RELO_SKIP_POSTGRES=1` outside CI).

#![allow(
    clippy::unwrap_used,
    reason = "tests: a failure must fail loudly, with the value that caused it"
)]

mod support;

mod access_tokens;
mod api_tokens;
mod audit;
mod context;
mod input;
mod limits;
mod login;
mod metrics;
mod openapi;
mod plugins;
mod rbac;
mod refresh;
mod runs;
mod user_admin;
mod users;
