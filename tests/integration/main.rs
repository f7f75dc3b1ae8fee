//! The one integration test binary: every module drives the real `mesosync` binary or
//! library against real files and, where HTTP is involved, the emulator on 127.0.0.1.

mod apply;
mod certs;
mod client;
mod e2e;
mod emulator_chronos;
mod emulator_fidelity;
mod emulator_marathon;
mod fake_reconcile;
mod ha;
mod ha_e2e;
mod harness;
mod human_logs;
mod import;
mod loader_fuzz;
mod notifications;
mod packaging;
mod plan_fixtures;
mod plan_properties;
mod preview;
mod preview_cli;
mod reliability_faults;
mod reliability_input;
mod reliability_liveness;
mod reliability_properties;
mod reliability_prune;
mod reliability_security;
mod reliability_support;
mod requires;
mod runtime;
mod secrets;
mod server;
mod templates;
mod validate;
mod webhooks;
mod zk;
