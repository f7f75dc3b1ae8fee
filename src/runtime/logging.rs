//! Log output for `mesosync run`: human-readable lines by default, one JSON object per
//! line with `--log-format json`. `RUST_LOG` overrides the level (default `info`).

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::{SubscriberInitExt, TryInitError};

use super::config::LogFormat;

/// Install the global log subscriber. Fails if one is already installed.
pub fn init_logging(format: LogFormat) -> Result<(), TryInitError> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Human => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(|| crate::diff::mask::RedactingStderr)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(|| crate::diff::mask::RedactingStderr),
            )
            .try_init(),
    }
}
