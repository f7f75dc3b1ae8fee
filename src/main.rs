//! The `mesosync` binary: parse arguments, run one command, map the outcome to an exit code.
#![forbid(unsafe_code)]

use std::process::ExitCode;

/// jemalloc, configured (`.cargo/config.toml`) to return freed pages to the OS at
/// once. With glibc's malloc, `mesosync run` at 10,000 apps + 5,000 jobs stayed at
/// its first reconcile's size and then crept up edit after edit (56 → 113 MB over 10
/// edits) while its live heap did not grow: freed memory was kept in per-thread
/// arenas. See BENCHMARKS.md.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    mesosync::cli::main()
}
