//! The infoledger collector: receives agents' events and keeps violations for information managers.
//!
//! The storage layer ([`store`]); the HTTP API ([`api`]): agent-facing (enrollment, signed
//! ingest, the bundle) and for people ([`api::manager`]: violations, decisions, exports, figures,
//! agents, the audit trail); the web dashboard for information managers ([`dashboard`]); service
//! levels per severity ([`sla`]); server-side rules and the webhook; and the `infoledger-server`
//! command line ([`cli`]) with its configuration ([`config`]), server key file ([`keyfile`]) and
//! HTTPS set-up ([`tls`]).

pub mod api;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod keyfile;
pub mod rules;
pub mod sla;
pub mod store;
pub mod tls;
pub mod webhook;
