//! The infoledger endpoint agent: inspects files (labels, encryption, permissions), evaluates
//! them against the bundle with `infoledger-policies`, and reports findings.

pub mod bundle;
pub mod cli;
pub mod facts;
pub mod inspect;
pub mod notify_desktop;
pub mod report;
pub mod scan;
pub mod staged;
pub mod warnings;
pub mod watch;
