//! Integration tests of relo-store. Every backend test runs twice: on SQLite in a
//! temporary relo home, and on PostgreSQL in a fresh schema of the database named by
//! `RELO_TEST_POSTGRES_URL` (the PostgreSQL half fails without it unless
//! `RELO_SKIP_POSTGRES=1`).

mod support;

mod append;
mod auth;
mod checkpoints;
mod drivers;
mod open;
mod people;
mod processes;
mod runs;
mod schema;
mod seals;
mod snapshots;
mod writer;
