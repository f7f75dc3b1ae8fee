//! The command line: one clap command per subcommand, each in its own module. This
//! is the edge where errors become messages and exit codes; nothing below it prints.
//!
//! Exit codes: 0 success (for `diff`: no changes), 1 error — a usage error included,
//! for every command —, 2 (`diff` only) changes present — as `terraform plan
//! -detailed-exitcode`.

/// `println!` for commands: a reader that went away (`mesosync diff | head`) is not
/// an error. The rest of the output is dropped and the command finishes with its own
/// exit code, where `println!` would panic ("failed printing to stdout").
macro_rules! outln {
    ($($arg:tt)*) => { $crate::cli::write_line(false, format_args!($($arg)*)) };
}

/// `eprintln!` with the same tolerance (`mesosync diff 2>&1 | head`).
macro_rules! errln {
    ($($arg:tt)*) => { $crate::cli::write_line(true, format_args!($($arg)*)) };
}

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
    /// Internal: render one template read from stdin in a memory-limited process.
    #[command(name = "render-template", hide = true)]
    RenderTemplate,
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
            errln!("error: {err:#}");
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
        Command::RenderTemplate => {
            crate::source::template::serve_render_request(std::io::stdin().lock(), std::io::stdout().lock())?;
            Ok(EXIT_OK)
        }
    }
}

/// Write one line to stdout or stderr. A closed pipe is ignored; any other failure
/// to write the output is as fatal as it is for `println!`.
pub(crate) fn write_line(stderr: bool, line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let written = if stderr {
        writeln!(std::io::stderr().lock(), "{line}")
    } else {
        writeln!(std::io::stdout().lock(), "{line}")
    };
    ignore_closed_pipe(written).unwrap_or_else(|e| panic!("failed writing the output: {e}"));
}

/// `Ok` for a write refused because the reader went away (`EPIPE`).
pub(crate) fn ignore_closed_pipe(written: std::io::Result<()>) -> std::io::Result<()> {
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Print every load error, then the closing line: nothing was (or would be) written.
fn print_load_errors(dir: &std::path::Path, errors: &crate::source::LoadErrors) {
    for e in errors.iter() {
        errln!("{e}");
    }
    errln!("{}: {} error(s); nothing was written", dir.display(), errors.len());
}

/// How long, once a command is done, its leftover background work (a blocking read
/// abandoned with its reconcile) may delay the exit.
const EXIT_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Run an async command on a fresh multi-threaded runtime. The exit does not wait for
/// abandoned work beyond [`EXIT_GRACE`] (dropping a runtime would wait for it forever).
fn block_on<F: std::future::Future<Output = anyhow::Result<u8>>>(future: F) -> anyhow::Result<u8> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = runtime.block_on(future);
    runtime.shutdown_timeout(EXIT_GRACE);
    result
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
