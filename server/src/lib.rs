//! The infoledger collector: receives agents' events and keeps violations for information managers.
//!
//! For now this is the storage layer ([`store`]); the HTTP API, authentication and the admin CLI
//! build on it.

pub mod store;
