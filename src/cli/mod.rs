//! The command line: one clap command per subcommand, each in its own module. This
//! is the edge where errors become messages and exit codes; nothing below it prints.
//!
//! Exit codes: 0 success (for `diff`: no changes), 1 error — a usage error included,
//! for every command —, 2 (`diff` only) changes present — as `terraform plan
//! -detailed-exitcode`.

mod apply;
mod args;
mod completions;
mod diff;
mod duration;
mod ha;
mod import;
mod run;
mod sandbox;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code: success / no changes.
pub const EXIT_OK: u8 = 0;
/// Exit code: an error (bad input, API failure, an object that failed to apply).
pub const EXIT_ERROR: u8 = 1;
/// Exit code of `diff`: the live state differs from the manifests.
pub const EXIT_CHANGES: u8 = 2;

/// mesosync — keep Marathon apps and Chronos jobs equal to a directory of manifests.
#[derive(Debug, Parser)]
#[command(name = "mesosync", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load and check a manifest directory; print every error with file:line:column.
    Validate(validate::ValidateArgs),
    /// Show what `apply` would change (exit 0: none, 2: changes, 1: error).
    Diff(diff::DiffArgs),
    /// Make the live state equal to the manifests, with the minimal writes.
    Apply(apply::ApplyCommand),
    /// Reconcile continuously: file watch, periodic resync, Marathon event stream.
    Run(Box<run::RunArgs>),
    /// Write the live apps and jobs as manifests (exit 0: all written, 1: one left out or an error).
    Import(import::ImportArgs),
    /// Run the Marathon + Chronos emulator.
    Sandbox(sandbox::SandboxArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(completions::CompletionsArgs),
    /// Print the man page (roff) to stdout.
    Man,
}

/// Parse the process arguments, run the command, and return its exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(&err),
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {}", crate::diff::mask::redact_userinfo(&format!("{err:#}")));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Print clap's message and pick the exit code: 0 for `--help` / `--version`, 1 for
/// a usage error. (clap's own is 2, which `diff` uses for "changes": a CI job would
/// read a typo in its flags as a pending change.)
fn usage_error(err: &clap::Error) -> ExitCode {
    let _ = err.print();
    match err.kind() {
        clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
            ExitCode::from(EXIT_OK)
        }
        _ => ExitCode::from(EXIT_ERROR),
    }
}

/// Run one parsed command line; the `u8` is the process exit code.
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Diff(args) => block_on(diff::run(args)),
        Command::Apply(args) => block_on(apply::run(args)),
        Command::Run(args) => block_on(run::run(*args)),
        Command::Import(args) => block_on(import::run(args)),
        Command::Sandbox(args) => sandbox::run(&args),
        Command::Completions(args) => completions::completions(&args),
        Command::Man => completions::man(),
    }
}

/// Print every load error, then the closing line: nothing was (or would be) written.
fn print_load_errors(dir: &std::path::Path, errors: &crate::source::LoadErrors) {
    for e in errors.iter() {
        eprintln!("{e}");
    }
    eprintln!("{}: {} error(s); nothing was written", dir.display(), errors.len());
}

/// Run an async command on a fresh multi-threaded runtime.
fn block_on<F: std::future::Future<Output = anyhow::Result<u8>>>(future: F) -> anyhow::Result<u8> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(future)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        // clap checks every subcommand: unique names, valid defaults, flag conflicts.
        super::Cli::command().debug_assert();
    }
}
