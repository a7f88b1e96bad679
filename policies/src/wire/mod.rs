//! What travels between the agent and the collector and how it is protected on the way.
//!
//! Both sides link this module so that the client and the server cannot drift apart: the agent
//! signs with the same code that the server verifies with.

pub mod bundle;
pub mod events;
pub mod signing;
