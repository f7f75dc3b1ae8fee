//! The one integration test binary: each module drives the real servers over HTTP.

mod apply;
mod client;
mod emulator_chronos;
mod emulator_marathon;
mod harness;
mod plan_fixtures;
mod plan_properties;
