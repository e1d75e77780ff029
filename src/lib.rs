//! hookline: a durable, Logto-compatible webhook engine for identity events.
//!
//! See ARCHITECTURE.md for the map of the code.

pub mod clock;
pub mod configuration;
pub mod console;
pub mod delivery;
pub mod domain;
pub mod identity;
pub mod metrics;
pub mod retention;
pub mod routes;
pub mod script;
pub mod server;
pub mod startup;
pub mod storage;
pub mod telemetry;
