//! The one integration test binary: each module drives the real servers over HTTP.

mod emulator_chronos;
mod emulator_marathon;
mod harness;
