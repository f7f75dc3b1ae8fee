//! `mesosync validate DIR`: load a manifest directory and report every problem.

use std::path::PathBuf;

use crate::source;

/// Arguments of `mesosync validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The manifest directory.
    #[arg(default_value = "manifests", env = "MESOSYNC_MANIFESTS")]
    pub dir: PathBuf,
    /// Template values files, applied over DIR/values.yaml in order (later wins).
    #[arg(long = "values", value_name = "FILE")]
    pub values: Vec<PathBuf>,
}

/// Print every load error (exit 1), or a one-line summary (exit 0).
pub fn run(args: &ValidateArgs) -> anyhow::Result<u8> {
    let options = super::args::load_options(args.values.clone());
    match source::load_dir_with(&args.dir, &options) {
        Ok(state) => {
            outln!("{}: {} apps, {} jobs: valid", args.dir.display(), state.apps.len(), state.jobs.len());
            Ok(super::EXIT_OK)
        }
        Err(errors) => {
            super::print_load_errors(&args.dir, &errors);
            Ok(super::EXIT_ERROR)
        }
    }
}
