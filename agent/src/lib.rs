//! The infoledger endpoint agent: inspects files (labels, encryption, permissions), evaluates
//! them against the bundle with `infoledger-policies`, and reports findings: once (`scan`) or
//! continuously to a collector ([`daemon`]).

pub mod bundle;
pub mod cli;
mod cli_daemon;
pub mod daemon;
pub mod facts;
pub mod inspect;
pub mod notify_desktop;
pub mod report;
pub mod scan;
pub mod staged;
pub mod warnings;
pub mod watch;
