//! `mesosync import --out DIR`: write the live apps and jobs as manifests (one GET per
//! system), so that a team can adopt mesosync on a running cluster. The pure part —
//! which fields a manifest needs, secrets, file names — is [`crate::import`]; this
//! module lists, checks the output directory and writes the files.
//!
//! Nothing is written unless every target file is free (or `--force`): a half-written
//! import next to an old one would be worse than none.

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::args::TargetArgs;
use crate::import::{self, ImportOptions, ImportedObject, Origin};
use crate::model::ObjectKind;

/// Arguments of `mesosync import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Directory to write the manifests to (created if missing). Apps go to
    /// DIR/<app id>.yaml, jobs to DIR/_chronos/<job name>.yaml.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Import only the apps in this Marathon group (e.g. /openstack).
    #[arg(long, value_name = "GROUP")]
    pub prefix: Option<String>,
    /// Import only the Chronos jobs whose name starts with this.
    #[arg(long, value_name = "PREFIX")]
    pub job_prefix: Option<String>,
    /// The instance whose ownership marks are left out (objects owned by another
    /// instance are skipped).
    #[arg(long, default_value = "mesosync", env = "MESOSYNC_INSTANCE")]
    pub instance: String,
    /// Overwrite existing files.
    #[arg(long)]
    pub force: bool,
    /// Write secret-looking values (PASSWORD, TOKEN, KEY, … names) as they are live
    /// instead of the placeholder CHANGE-ME.
    #[arg(long)]
    pub include_secrets: bool,
}

/// Run `mesosync import`: 0 when every object in scope was written, 1 otherwise.
pub async fn run(args: ImportArgs) -> anyhow::Result<u8> {
    if args.target.marathon.is_empty() && args.target.chronos.is_empty() {
        anyhow::bail!("nothing to import from: set --marathon and/or --chronos");
    }
    let clients = args.target.clients().context("configuring the API clients")?;
    // Listing first: a Chronos client detects its version with the listing it gets on
    // the way, so the version below costs no further GET.
    let live = clients.list_live(None).await.context("listing live state")?;
    let chronos_version = match &clients.chronos {
        Some(c) => Some(c.version().await.context("detecting the Chronos version")?),
        None => None,
    };
    let at = chrono::Utc::now();
    let opts = ImportOptions {
        instance: args.instance.clone(),
        marathon_version: None,
        chronos_version,
        app_prefix: args.prefix.clone(),
        job_prefix: args.job_prefix.clone(),
        include_secrets: args.include_secrets,
    };
    let values = |list: &[crate::model::LiveObject]| {
        list.iter().map(crate::model::LiveObject::value).collect::<Vec<_>>()
    };
    let result = import::import(&values(&live.apps), &values(&live.jobs), &opts);
    if !args.force {
        let taken: Vec<String> = result
            .objects
            .iter()
            .map(|o| args.out.join(&o.path))
            .filter(|p| p.exists())
            .map(|p| p.display().to_string())
            .collect();
        if !taken.is_empty() {
            anyhow::bail!(
                "refusing to overwrite {} existing file(s) (use --force): {}; nothing was written",
                taken.len(),
                taken.join(", ")
            );
        }
    }
    let origin =
        |kind: ObjectKind| Origin { url: args.target.urls(kind).first().cloned().unwrap_or_default(), at };
    for object in &result.objects {
        write(&args.out, object, &origin(object.object.kind))?;
    }
    for object in result.objects.iter().filter(|o| !o.redacted.is_empty()) {
        errln!(
            "warning: {}: secret values replaced by {} (use --include-secrets to keep them): {}; keep the real \
             values in a SOPS-encrypted values file (docs/secrets.md)",
            object.object,
            import::PLACEHOLDER,
            object.redacted.join(", ")
        );
    }
    for skipped in &result.skipped {
        let level = if skipped.error { "error" } else { "note" };
        errln!("{level}: {}: not imported: {}", skipped.object, skipped.reason);
    }
    let (apps, jobs) = result.counts();
    outln!("{apps} apps, {jobs} jobs written to {}", args.out.display());
    let failed = result.skipped.iter().any(|s| s.error);
    Ok(if failed { super::EXIT_ERROR } else { super::EXIT_OK })
}

fn write(out: &Path, object: &ImportedObject, origin: &Origin) -> anyhow::Result<()> {
    let path = out.join(&object.path);
    let text = import::render(object, origin)?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}
