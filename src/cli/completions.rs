//! `mesosync completions SHELL` and `mesosync man`: generated from the clap definition,
//! so they never drift from `--help`.

use std::io::Write;

use clap::CommandFactory;

/// Arguments of `mesosync completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to write a completion script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Write the completion script to stdout.
pub fn completions(args: &CompletionsArgs) -> anyhow::Result<u8> {
    let mut cmd = super::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "mesosync", &mut out);
    super::ignore_closed_pipe(std::io::stdout().write_all(&out))?;
    Ok(super::EXIT_OK)
}

/// Write the man page (roff) to stdout.
pub fn man() -> anyhow::Result<u8> {
    let mut out = Vec::new();
    clap_mangen::Man::new(super::Cli::command()).render(&mut out)?;
    super::ignore_closed_pipe(std::io::stdout().write_all(&out))?;
    Ok(super::EXIT_OK)
}
