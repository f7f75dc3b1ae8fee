//! `mesosync sandbox`: run the Marathon + Chronos emulator until Ctrl-C / SIGTERM.
//! Prints the two URLs on stdout so scripts can read them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::emulator::{self, ChronosVersion, SandboxConfig, Seed};

use super::EXIT_OK;

/// Arguments of `mesosync sandbox`.
#[derive(Debug, clap::Args)]
pub struct SandboxArgs {
    /// Where the emulated Marathon listens.
    #[arg(long, env = "MESOSYNC_SANDBOX_MARATHON_ADDR", default_value = "127.0.0.1:8080")]
    pub marathon_addr: SocketAddr,
    /// Where the emulated Chronos listens.
    #[arg(long, env = "MESOSYNC_SANDBOX_CHRONOS_ADDR", default_value = "127.0.0.1:4400")]
    pub chronos_addr: SocketAddr,
    /// A JSON file `{"apps": [...], "jobs": [...]}` to load at start.
    #[arg(long, env = "MESOSYNC_SANDBOX_SEED")]
    pub seed: Option<PathBuf>,
    /// The Chronos API to serve: 2.4 (/scheduler), 2.5 (/scheduler) or 3 (/v1/scheduler).
    #[arg(long, env = "MESOSYNC_SANDBOX_CHRONOS_VERSION", default_value = "2.4")]
    pub chronos_version: ChronosVersion,
    /// How long a Marathon deployment takes, in milliseconds.
    #[arg(long, env = "MESOSYNC_SANDBOX_DEPLOYMENT_MS", default_value_t = 2000)]
    pub deployment_duration: u64,
    /// How long a Chronos job run takes, in milliseconds (per job: the controls).
    #[arg(long, env = "MESOSYNC_SANDBOX_JOB_RUN_MS", default_value_t = 1000)]
    pub job_run_duration: u64,
    /// How long after a failed Chronos run its retry starts, in milliseconds (a real
    /// Chronos waits `--failure_retry`, 60000).
    #[arg(long, env = "MESOSYNC_SANDBOX_JOB_RETRY_MS", default_value_t = 2000)]
    pub job_retry_delay: u64,
    /// Serve the /_sandbox/ control endpoints (faults, request log, clock, state).
    #[arg(long, env = "MESOSYNC_SANDBOX_CONTROLS")]
    pub controls: bool,
}

/// Run the sandbox until a shutdown signal.
pub fn run(args: &SandboxArgs) -> anyhow::Result<u8> {
    let seed = args.seed.as_deref().map(Seed::from_file).transpose().context("reading the seed file")?;
    let config = SandboxConfig {
        marathon_addr: args.marathon_addr,
        chronos_addr: args.chronos_addr,
        chronos_version: args.chronos_version,
        deployment_duration: Duration::from_millis(args.deployment_duration),
        job_run_duration: Duration::from_millis(args.job_run_duration),
        job_retry_delay: Duration::from_millis(args.job_retry_delay),
        controls: args.controls,
        seed,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        // The handlers first: a SIGTERM sent as soon as the addresses are printed must
        // find them installed, not the default action (a stress run was killed so,
        // between the print and the handler).
        #[cfg(unix)]
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        #[cfg(unix)]
        let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .context("installing the SIGINT handler")?;
        let sandbox = emulator::start(config).await.context("starting the sandbox")?;
        outln!("marathon: {}", sandbox.marathon_url());
        outln!("chronos:  {} (Chronos {:?})", sandbox.chronos_url(), args.chronos_version);
        #[cfg(unix)]
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        sandbox.shutdown().await;
        Ok(EXIT_OK)
    })
}
