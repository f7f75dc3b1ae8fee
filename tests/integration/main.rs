//! The one integration test binary: every module drives the real `mesosync` binary or
//! library against real files and, where HTTP is involved, the emulator on 127.0.0.1.

mod ha;
mod loader_fuzz;
mod packaging;
mod templates;
mod validate;
