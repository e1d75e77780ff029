//! The domain: events, hooks, payloads, signatures, retry and target rules. Pure code, no
//! I/O, so every rule here is unit-tested on its own.

pub mod action;
pub mod authorization;
pub mod event;
pub mod hook;
pub mod id;
pub mod identity;
pub mod interaction;
pub mod payload;
pub mod retry;
pub mod signature;
pub mod target;
pub mod transform;
