//! The `mesosync` binary: parse arguments, run one command, map the outcome to an exit code.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    mesosync::cli::main()
}
