//! The desired-state types: what a manifest document means once loaded.
//!
//! A manifest document is `kind` + `sync` + `spec`. The `spec` is kept as the JSON the
//! API accepts (that is what gets normalized, diffed and sent), and it is also checked
//! against typed models of every field Marathon 1.10 and Chronos 2.x/3.x accept
//! ([`marathon::AppSpec`], [`chronos::JobSpec`]). Every value remembers where it was
//! written ([`Provenance`]). This module knows nothing of files, HTTP or diffs.

pub mod chronos;
pub mod duration;
pub mod live;
pub mod location;
pub mod marathon;
pub mod number;
pub mod pointer;
pub mod secret;
pub mod spec;
pub mod strict;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use duration::Timeout;
pub use live::{LiveHead, LiveIndex, LiveObject, LiveState, ReadHead};
pub use location::{Location, Provenance};
pub use secret::SecretValues;
pub use spec::Spec;

/// A 64-bit hash of `bytes` (XXH3): fast, and stable across processes and builds, so
/// it can be kept in a saved plan. Used for content fingerprints and cache keys.
pub fn fingerprint(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// The two kinds of object mesosync manages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ObjectKind {
    /// A long-running Marathon app, keyed by its absolute id (`/group/app`).
    MarathonApp,
    /// A Chronos job, keyed by its name.
    ChronosJob,
}

impl ObjectKind {
    /// Every kind, in order (one per registered system).
    pub const ALL: &'static [ObjectKind] = &[ObjectKind::MarathonApp, ObjectKind::ChronosJob];

    /// The kind named `name` in a manifest (`MarathonApp`, `ChronosJob`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|kind| kind.to_string() == name)
    }

    /// The system that holds objects of this kind.
    pub fn system(self) -> &'static str {
        match self {
            ObjectKind::MarathonApp => "marathon",
            ObjectKind::ChronosJob => "chronos",
        }
    }

    /// What people call one object of this kind (`app`, `job`): in references
    /// (`app /a`), the dashboard's filter and links, notifications.
    pub fn noun(self) -> &'static str {
        match self {
            ObjectKind::MarathonApp => "app",
            ObjectKind::ChronosJob => "job",
        }
    }

    /// The kind whose [noun](ObjectKind::noun) is `noun`.
    pub fn from_noun(noun: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|kind| kind.noun() == noun)
    }
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ObjectKind::MarathonApp => "MarathonApp",
            ObjectKind::ChronosJob => "ChronosJob",
        })
    }
}

/// What a write costs the running workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Impact {
    /// No effect on running tasks (no write, or a create).
    None,
    /// Marathon: every task is restarted (any change but `instances`).
    Restart,
    /// Marathon: only the number of tasks changes.
    ScaleOnly,
    /// Chronos: the job is replaced whole; its run statistics are reset.
    Replace,
    /// The object (and its tasks) goes away.
    Destroy,
}

/// A reference to one object: its kind and its key (app id or job name).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectRef {
    /// Which system and kind.
    pub kind: ObjectKind,
    /// The Marathon app id (absolute) or the Chronos job name.
    pub id: String,
}

impl ObjectRef {
    /// A reference to the Marathon app `id`.
    pub fn app(id: impl Into<String>) -> Self {
        Self { kind: ObjectKind::MarathonApp, id: id.into() }
    }

    /// A reference to the Chronos job `name`.
    pub fn job(name: impl Into<String>) -> Self {
        Self { kind: ObjectKind::ChronosJob, id: name.into() }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.noun(), self.id)
    }
}

/// mesosync's own per-object options (the `sync:` block of a manifest document).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SyncOptions {
    /// JSON pointers (RFC 6901) into `spec` whose live value wins, e.g. `/instances`
    /// for an autoscaled app. Changes under them never cause a write.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// `true`: never write this object (it is still diffed and reported).
    #[serde(default)]
    pub suspend: bool,
    /// Explicit ordering wave: every object of a lower wave is applied first.
    #[serde(default)]
    pub wave: Option<i64>,
    /// Cross-system ordering: objects that must be in place before this one. A value
    /// starting with `/` is a Marathon app id, anything else a Chronos job name.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// JSON pointers into `spec` whose values are secret: never printed, only reported
    /// as changed. Names that look secret (PASSWORD, TOKEN, …) are masked anyway.
    #[serde(default)]
    pub secret: Vec<String>,
    /// Who starts a Chronos job's runs: Chronos alone (the default), or mesosync once
    /// per definition (`onChange`, a run-once job, like kolla's `run_once` commands and
    /// Argo CD's hook Jobs), with its dependants waiting for that run to succeed.
    #[serde(default)]
    pub run: RunPolicy,
    /// How long to wait for this object to be done after writing it (a run-once job's
    /// run, an app's health) before it counts as failed and its dependants stay
    /// blocked. Default per kind: [`SyncOptions::timeout_for`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Timeout>,
}

/// `sync.run`: who starts a Chronos job's runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RunPolicy {
    /// Chronos alone: its schedule, or its parents' success. mesosync writes the job
    /// and never starts it; dependants wait only for the write.
    #[default]
    Chronos,
    /// Run once per definition: when the job is created or its definition changes,
    /// mesosync starts a run (Chronos's manual start) and the job is done only once a
    /// run of that definition succeeded; dependants wait for that. Chronos must never
    /// start it by itself: its `schedule` has a repeat count of 0 (`R0//P1D`), or it is
    /// a dependent job (`parents`), which Chronos also runs after its parents succeed.
    OnChange,
}

/// The default `sync.timeout` of a run-once job: long enough for a database migration.
pub const DEFAULT_JOB_TIMEOUT: Timeout = Timeout::new(std::time::Duration::from_secs(30 * 60));

/// The default `sync.timeout` of an app (the default deployment wait).
pub const DEFAULT_APP_TIMEOUT: Timeout = Timeout::new(std::time::Duration::from_secs(10 * 60));

impl SyncOptions {
    /// `sync.timeout`, or the default of `kind` when it is not written.
    pub fn timeout_for(&self, kind: ObjectKind) -> Timeout {
        self.timeout.unwrap_or(match kind {
            ObjectKind::MarathonApp => DEFAULT_APP_TIMEOUT,
            ObjectKind::ChronosJob => DEFAULT_JOB_TIMEOUT,
        })
    }

    /// Whether mesosync runs this (job) once per definition (`sync.run: onChange`).
    pub fn runs_once(&self) -> bool {
        self.run == RunPolicy::OnChange
    }

    /// The objects named by `depends_on`, as references.
    pub fn depends_on_refs(&self) -> Vec<ObjectRef> {
        self.depends_on
            .iter()
            .map(|d| if d.starts_with('/') { ObjectRef::app(d.clone()) } else { ObjectRef::job(d.clone()) })
            .collect()
    }
}

/// One loaded manifest document: a Marathon app or a Chronos job as desired.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredObject {
    /// App or job, and its id / name.
    pub object: ObjectRef,
    /// mesosync's own options for it.
    pub sync: SyncOptions,
    /// The spec as the API accepts it (Marathon app JSON / Chronos job JSON), with
    /// relative Marathon ids made absolute. Validated against the typed models.
    /// Kept as compact text: [`Spec::value`] parses it.
    pub spec: Spec,
    /// Where each value of `spec` (and `sync`) was written.
    pub provenance: Provenance,
    /// The secret values of this object: `sync.secret` pointers and secret names
    /// resolved against the manifest as written, plus the values shared by the whole
    /// set (decrypted SOPS values) once the loader attached them.
    pub secrets: SecretValues,
    /// Marathon `dependencies` / Chronos `parents` and `sync.dependsOn`, sorted
    /// (shared between the copies a reconcile makes).
    pub(crate) dependencies: std::sync::Arc<[ObjectRef]>,
}

impl DesiredObject {
    /// Where the value at JSON `pointer` inside `spec` was written (or its nearest
    /// enclosing value, e.g. the document itself for a default filled in later).
    pub fn locate(&self, pointer: &str) -> Location {
        self.provenance.locate(&format!("/spec{pointer}"))
    }

    /// The objects this one must wait for: Marathon `dependencies`, Chronos `parents`
    /// and `sync.dependsOn`, sorted.
    pub fn dependencies(&self) -> &[ObjectRef] {
        &self.dependencies
    }
}

/// The whole desired state: every app and job of a manifest directory, sorted by id.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DesiredState {
    /// Marathon apps, sorted by id.
    pub apps: Vec<DesiredObject>,
    /// Chronos jobs, sorted by name.
    pub jobs: Vec<DesiredObject>,
    /// Secret values that belong to no one object: every value decrypted from a SOPS
    /// values file, and the last known secrets of objects whose manifest is gone (so a
    /// prune still masks them). Also attached to every object's `secrets`.
    pub secrets: SecretValues,
}

impl DesiredState {
    /// Every object, apps first.
    pub fn objects(&self) -> impl Iterator<Item = &DesiredObject> {
        self.apps.iter().chain(self.jobs.iter())
    }

    /// Find an object by reference.
    pub fn get(&self, r: &ObjectRef) -> Option<&DesiredObject> {
        self.find(r.kind, &r.id)
    }

    /// The objects of `kind`, sorted by key.
    pub fn list(&self, kind: ObjectKind) -> &[DesiredObject] {
        match kind {
            ObjectKind::MarathonApp => &self.apps,
            ObjectKind::ChronosJob => &self.jobs,
        }
    }

    /// Find an object by kind and id (a binary search: the lists are sorted).
    pub fn find(&self, kind: ObjectKind, id: &str) -> Option<&DesiredObject> {
        let list = self.list(kind);
        list.binary_search_by(|o| o.object.id.as_str().cmp(id)).ok().map(|i| &list[i])
    }
}
