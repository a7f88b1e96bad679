//! The infoledger collector: receives agents' events and keeps violations for information managers.
//!
//! The storage layer ([`store`]) and the agent-facing HTTP API ([`api`]); the manager API and the
//! admin CLI build on them.

pub mod api;
pub mod store;
