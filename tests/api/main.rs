//! Integration tests: every test drives hookline through its HTTP API (in-process or as the
//! real binary) against real receivers on loopback and a real SQLite file.

mod helpers;

mod actions;
mod auth_and_health;
mod compat;
mod conformance;
mod console;
mod delivery;
mod delivery_control;
mod hardening;
mod hook_health;
mod hooks;
mod identity;
mod ingest;
mod interactions;
mod lifecycle;
mod nodes;
mod observability;
mod operations;
mod retries;
mod signing_keys;
mod target_safety;
mod transforms;
