//! The infoledger collector: receives agents' events and keeps violations for information managers.
//!
//! The storage layer ([`store`]), the agent-facing HTTP API ([`api`]), and the
//! `infoledger-server` command line ([`cli`]) with its configuration ([`config`]), server key
//! file ([`keyfile`]) and HTTPS set-up ([`tls`]); the manager API builds on them.

pub mod api;
pub mod cli;
pub mod config;
pub mod keyfile;
pub mod store;
pub mod tls;
