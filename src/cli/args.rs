//! Flags shared by the commands that talk to Marathon and Chronos (`diff`, `apply`,
//! `run`, `import`), and how they become clients and options. Credentials are read
//! from the environment or files only (`MESOSYNC_MARATHON_TOKEN[_FILE]`,
//! `MESOSYNC_MARATHON_USER` + `MESOSYNC_MARATHON_PASSWORD[_FILE]`, and the same with
//! `MESOSYNC_CHRONOS_`), never from flags that would show in `ps` or from manifests.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use super::duration::parse_positive_duration;
use crate::apply::ApplyOptions;
use crate::client::{
    ChronosClient, ChronosVersion, Clients, Credentials, HttpConfig, MarathonClient, TlsConfig,
};
use crate::model::ObjectKind;
use crate::plan::PlanOptions;
use crate::source::LoadOptions;

/// Where the APIs are and how to reach them.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct TargetArgs {
    /// Marathon base URL (repeat or comma-separate several masters; the first that
    /// answers is used).
    #[arg(long = "marathon", value_name = "URL", env = "MESOSYNC_MARATHON", value_delimiter = ',')]
    pub marathon: Vec<String>,

    /// Chronos base URL (repeat or comma-separate for several).
    #[arg(long = "chronos", value_name = "URL", env = "MESOSYNC_CHRONOS", value_delimiter = ',')]
    pub chronos: Vec<String>,

    /// Chronos version (2.4, 2.5, 3); detected from the server when not given.
    #[arg(long, value_name = "VERSION", env = "MESOSYNC_CHRONOS_VERSION")]
    pub chronos_version: Option<ChronosVersion>,

    /// PEM bundle of extra CA certificates to trust (e.g. the DC/OS cluster CA).
    #[arg(long, value_name = "FILE", env = "MESOSYNC_CA_BUNDLE")]
    pub ca_bundle: Option<PathBuf>,

    /// PEM client certificate for mutual TLS (with --client-key).
    #[arg(long, value_name = "FILE", env = "MESOSYNC_CLIENT_CERT", requires = "client_key")]
    pub client_cert: Option<PathBuf>,

    /// PEM private key of --client-cert.
    #[arg(long, value_name = "FILE", env = "MESOSYNC_CLIENT_KEY", requires = "client_cert")]
    pub client_key: Option<PathBuf>,

    /// Bound on one API request.
    #[arg(long, default_value = "30s", value_parser = parse_positive_duration, env = "MESOSYNC_REQUEST_TIMEOUT")]
    pub request_timeout: Duration,

    /// Identifies this replica in the User-Agent (`mesosync/<v> (<id>)`).
    #[arg(long, value_name = "ID", env = "MESOSYNC_REPLICA_ID")]
    pub replica_id: Option<String>,
}

impl TargetArgs {
    /// The base URLs of the system that holds objects of `kind` (its flag is part of
    /// registering a system).
    pub fn urls(&self, kind: ObjectKind) -> &[String] {
        match kind {
            ObjectKind::MarathonApp => &self.marathon,
            ObjectKind::ChronosJob => &self.chronos,
        }
    }

    fn http_config(&self, urls: &[String], env_prefix: &str) -> anyhow::Result<HttpConfig> {
        let mut config = HttpConfig::new(urls.iter().cloned());
        config.credentials = Credentials::from_env(env_prefix)?;
        config.tls = TlsConfig {
            ca_bundle: self.ca_bundle.clone(),
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
        };
        config.request_timeout = self.request_timeout;
        config.replica_id = self.replica_id.clone();
        Ok(config)
    }

    /// The clients for the systems that have URLs.
    pub fn clients(&self) -> anyhow::Result<Clients> {
        let marathon = if self.marathon.is_empty() {
            None
        } else {
            Some(MarathonClient::new(&self.http_config(&self.marathon, "MESOSYNC_MARATHON")?)?)
        };
        let chronos = if self.chronos.is_empty() {
            None
        } else {
            Some(ChronosClient::new(
                &self.http_config(&self.chronos, "MESOSYNC_CHRONOS")?,
                self.chronos_version,
            )?)
        };
        Ok(Clients { marathon, chronos })
    }
}

/// How the desired state is read and compared.
#[derive(Clone, Debug, clap::Args)]
pub struct PlanArgs {
    /// Template values files, applied over DIR/values.yaml in order (later wins).
    #[arg(long = "values", value_name = "FILE")]
    pub values: Vec<PathBuf>,

    /// This controller's name: the owner mark written on the apps and jobs it manages.
    #[arg(long, default_value = "mesosync", env = "MESOSYNC_INSTANCE")]
    pub instance: String,

    /// Delete owned apps and jobs that no manifest describes any more.
    #[arg(long, env = "MESOSYNC_PRUNE")]
    pub prune: bool,

    /// Allow pruning when the manifest set is empty (otherwise an empty directory never deletes).
    #[arg(long)]
    pub allow_empty: bool,

    /// Take over live objects with a manifest's id that mesosync does not own yet.
    #[arg(long, env = "MESOSYNC_ADOPT")]
    pub adopt: bool,

    /// The mass-delete guard: refuse a plan deleting more than this many objects…
    #[arg(long, default_value_t = 10, env = "MESOSYNC_MAX_DELETE")]
    pub max_delete: usize,

    /// …or more than this share of the owned objects (a number from 0 to 1).
    #[arg(long, default_value_t = 0.3, value_parser = parse_ratio, env = "MESOSYNC_MAX_DELETE_RATIO")]
    pub max_delete_ratio: f64,

    /// Override the mass-delete guard.
    #[arg(long)]
    pub force_prune: bool,

    /// Chronos ownership also requires this job-name prefix.
    #[arg(long, value_name = "PREFIX", env = "MESOSYNC_CHRONOS_PREFIX")]
    pub chronos_prefix: Option<String>,
}

/// A share from 0 to 1. `nan` (every comparison with it is false, which would switch
/// the guard off) and values outside the range are refused.
fn parse_ratio(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
        Ok(_) => Err(format!("`{text}` is not a share from 0 to 1 (0.3 means 30 %)")),
        Err(_) => Err(format!("`{text}` is not a number from 0 to 1")),
    }
}

impl PlanArgs {
    /// Loading options (values files + `MESOSYNC_VAR_*`).
    pub fn load_options(&self) -> LoadOptions {
        load_options(self.values.clone())
    }

    /// Plan options.
    pub fn plan_options(&self, chronos_version: Option<ChronosVersion>) -> PlanOptions {
        PlanOptions {
            instance: self.instance.clone(),
            prune: self.prune,
            allow_empty: self.allow_empty,
            adopt: self.adopt,
            max_delete_count: self.max_delete,
            max_delete_ratio: self.max_delete_ratio,
            force_prune: self.force_prune,
            chronos_prefix: self.chronos_prefix.clone(),
            chronos_version,
            ..PlanOptions::default()
        }
    }
}

/// How writes are made.
#[derive(Clone, Debug, clap::Args)]
pub struct ApplyArgs {
    /// Write requests in flight at once (waits for deployments, health and job runs
    /// hold none).
    #[arg(long, default_value_t = 8, env = "MESOSYNC_CONCURRENCY")]
    pub concurrency: usize,

    /// Override Marathon deployment locks (`?force=true`) instead of waiting them out.
    #[arg(long)]
    pub force: bool,

    /// Per-object bound on waiting for a Marathon deployment to finish.
    #[arg(long, default_value = "10m", value_parser = parse_positive_duration, env = "MESOSYNC_DEPLOYMENT_TIMEOUT")]
    pub deployment_timeout: Duration,

    /// The pause before a failed run-once job (`sync.run: onChange`) is started again;
    /// doubled after each failed run (at most 3 runs per definition).
    #[arg(long, default_value = "10s", value_parser = parse_positive_duration, env = "MESOSYNC_JOB_RETRY_DELAY")]
    pub job_retry_delay: Duration,
}

impl ApplyArgs {
    /// Apply options.
    pub fn apply_options(&self) -> ApplyOptions {
        ApplyOptions {
            concurrency: self.concurrency.max(1),
            force: self.force,
            deployment_timeout: self.deployment_timeout,
            run_retry_delay: self.job_retry_delay,
            ..ApplyOptions::default()
        }
    }
}

/// `values_files` plus this process's `MESOSYNC_VAR_*` environment: the CLI is where
/// the process environment is read, never the loader.
pub fn load_options(values_files: Vec<PathBuf>) -> LoadOptions {
    let env = std::env::vars().filter(|(k, _)| crate::source::is_load_env(k)).collect();
    // Templates render in a child process of this binary, bounded in memory.
    let isolation = std::env::current_exe()
        .map_or(crate::source::template::Isolation::InProcess, crate::source::template::Isolation::Process);
    LoadOptions { values_files, env, isolation }
}

/// Build the pipeline for `dir`, refusing a configuration that cannot be right: a
/// manifest set with apps (jobs) but no Marathon (Chronos) URL would plan to create
/// everything.
pub fn pipeline(
    dir: PathBuf,
    target: &TargetArgs,
    plan: &PlanArgs,
    apply: &ApplyArgs,
) -> anyhow::Result<crate::reconcile::Pipeline> {
    let clients = target.clients().context("configuring the API clients")?;
    Ok(crate::reconcile::Pipeline {
        dir,
        load: plan.load_options(),
        clients,
        plan: plan.plan_options(target.chronos_version),
        apply: apply.apply_options(),
        on_revision: None,
        caches: Default::default(),
    })
}

/// Refuse to plan objects for a system with no URL.
pub fn check_targets(desired: &crate::model::DesiredState, target: &TargetArgs) -> anyhow::Result<()> {
    if !desired.apps.is_empty() && target.marathon.is_empty() {
        anyhow::bail!(
            "the manifests declare {} Marathon apps but no Marathon URL is set (--marathon or MESOSYNC_MARATHON)",
            desired.apps.len()
        );
    }
    if !desired.jobs.is_empty() && target.chronos.is_empty() {
        anyhow::bail!(
            "the manifests declare {} Chronos jobs but no Chronos URL is set (--chronos or MESOSYNC_CHRONOS)",
            desired.jobs.len()
        );
    }
    Ok(())
}

/// Load, list and plan; on a load error print every problem (file:line:column) and
/// return `None`: the caller exits 1 with nothing written.
pub async fn plan_or_report(
    pipeline: &crate::reconcile::Pipeline,
) -> anyhow::Result<Option<crate::reconcile::Planned>> {
    match pipeline.plan(chrono::Utc::now()).await {
        Ok(planned) => Ok(Some(planned)),
        Err(crate::reconcile::PipelineError::Load(errors)) => {
            super::print_load_errors(&pipeline.dir, &errors);
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}
