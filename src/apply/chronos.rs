//! How a Chronos write is executed and waited on: a PUT (or POST) of the whole job, a
//! DELETE, a replace (below), transient errors retried, and on Chronos 3.x the wait
//! until a created job is listed. A run-once job's run, after its write, is
//! `job_runs`.
//!
//! A replace (the job switches between scheduled and dependent, which Chronos 2.4
//! cannot do in place) is a DELETE then the create. Chronos rewrites the children of a
//! deleted job (`JobManagementResource.delete`, docs/emulator.md): a dependent job's
//! children inherit its parents; a scheduled job's children all become scheduled jobs
//! with most fields reset — the ownership marker in the description included, so
//! mesosync would no longer recognise them. A replace therefore:
//! 1. lists the jobs and keeps the job's children as listed;
//! 2. if the job is scheduled, first re-puts each child without it as a parent (its
//!    other parents, else the job's new parents), so the DELETE rewrites nothing and a
//!    process killed from here on leaves every child marked, dependent and repairable;
//! 3. DELETE, then the create (and the 3.x visibility wait);
//! 4. re-puts every child exactly as it was listed, its parents included;
//! 5. reads everything back: the job must have the type, parents and owner of the body
//!    sent, each child the parents and owner it had. Otherwise the action fails.
//!
//! Killed between the DELETE and the create, the next plan sees the job missing (a
//! create, no `--prune` needed) and the children with other parents (updates, ordered
//! after it). Once started, a replace runs to its end on cancellation; only the write
//! fence stops it.

use serde_json::{Value, json};

use super::{ApplyError, Ctx, Executed, Outcome, SkipReason, invalid, masked};
use crate::client::chronos::is_dependent;
use crate::client::{ChronosClient, ChronosVersion, ClientError};
use crate::diff::mask::{self, Masker};
use crate::model::{LiveObject, ObjectKind};
use crate::plan::runs::RunCause;
use crate::plan::{Action, Write};
use crate::system::System;
use crate::system::chronos::Chronos;

/// One request of a replace.
enum Step<'a> {
    /// Create or fully replace this job.
    Put(&'a Value),
    /// Delete the job of this name (already gone is fine).
    Delete(&'a str),
}

/// The parents a job lists (empty for a scheduled job).
fn parents(job: &Value) -> Vec<&str> {
    job.get("parents")
        .and_then(Value::as_array)
        .map(|p| p.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// A job's name.
fn name_of(job: &Value) -> &str {
    job.get("name").and_then(Value::as_str).unwrap_or_default()
}

/// How a job sits in the graph, in words (for a failed check): its type, parents and
/// owner — never a field value that could be secret.
fn placement(job: &Value) -> String {
    let owner = Chronos.owner_of(job).unwrap_or("nobody");
    if is_dependent(job) {
        format!("dependent on {}, owned by {owner}", parents(job).join(", "))
    } else {
        format!("scheduled, owned by {owner}")
    }
}

/// Whether `read` (listed after the replace) sits where `sent` says: same type, same
/// parents (a set), same owner.
fn same_placement(read: &Value, sent: &Value) -> bool {
    let set = |job| {
        let mut p = parents(job);
        p.sort_unstable();
        p.dedup();
        p
    };
    let owner = |job| Chronos.owner_of(job);
    is_dependent(read) == is_dependent(sent) && set(read) == set(sent) && owner(read) == owner(sent)
}

impl Ctx<'_> {
    /// One Chronos action: create or replace the whole job, delete it, or switch it
    /// between scheduled and dependent ([`Ctx::replace_job`]). Transient errors are
    /// retried.
    pub(super) async fn run_job(&self, a: &Action, c: &ChronosClient) -> Executed {
        let Some(write) = a.decision.write() else { return Executed::new(Outcome::Unchanged, None, 0) };
        if let Some(run) = &a.run {
            if let Err(outcome) = self.settle_runs(a, c, run, write).await {
                return Executed::new(outcome, None, 0);
            }
        }
        let written = match write {
            // Written again with its run record first (statistics reset), then run.
            Write::Run(RunCause::Unrecorded) => self.write_job(a, c, &Write::Update).await,
            Write::Run(_) => Executed::new(Outcome::Applied, None, 0),
            write => self.write_job(a, c, write).await,
        };
        match (&written.outcome, &a.run) {
            (Outcome::Applied, Some(run)) => self.run_once(a, c, run, written.attempts).await,
            _ => written,
        }
    }

    /// Send one write of a job (retrying transient errors).
    async fn write_job(&self, a: &Action, c: &ChronosClient, write: &Write) -> Executed {
        let name = a.object.id.as_str();
        let body = match (write, &a.body) {
            (Write::Delete, _) => None,
            (Write::Scale, _) => return invalid("Chronos jobs cannot be scaled".into()),
            (_, Some(b)) => Some(b),
            (write, None) => return invalid(format!("{:?} of job {name} has no body", write.kind())),
        };
        if let (Write::Replace { .. }, Some(body)) = (write, body) {
            return self.replace_job(name, body, c).await;
        }
        let mut attempts = 0u32;
        let mut error_retries = 0u32;
        loop {
            if let Some(reason) = self.write_refused(attempts) {
                return Executed::new(Outcome::Skipped(reason), None, attempts);
            }
            attempts += 1;
            let slot = self.write_slot().await;
            let result = match body {
                None => match c.delete_job(name).await {
                    Err(ClientError::NotFound { .. }) => Ok(()),
                    other => other,
                },
                Some(b) => c.put_job(b).await,
            };
            drop(slot);
            match result {
                Ok(()) => {
                    if let (Some(_), Write::Create, Ok(ChronosVersion::V3)) = (body, write, c.version().await)
                    {
                        return self.wait_job_visible(c, name, attempts).await;
                    }
                    return Executed::new(Outcome::Applied, None, attempts);
                }
                Err(e) if e.is_transient() && error_retries + 1 < self.opts.error_retry.max_attempts => {
                    tracing::info!(object = %a.object, error = %masked(a, &e), "transient error; retrying");
                    tokio::time::sleep(self.opts.error_retry.delay(error_retries)).await;
                    error_retries += 1;
                }
                Err(e) => return Executed::new(Outcome::Failed(e.into()), None, attempts),
            }
        }
    }

    /// A replace (see the module docs), with its children kept as they were.
    async fn replace_job(&self, name: &str, body: &Value, c: &ChronosClient) -> Executed {
        let mut attempts = 0u32;
        // Its requests go one after the other: one write slot for the whole replace.
        let _slot = self.write_slot().await;
        let outcome = match self.replace_steps(name, body, c, &mut attempts).await {
            Ok(()) => Outcome::Applied,
            Err(outcome) => outcome,
        };
        Executed::new(outcome, None, attempts)
    }

    async fn replace_steps(
        &self,
        name: &str,
        body: &Value,
        c: &ChronosClient,
        attempts: &mut u32,
    ) -> Result<(), Outcome> {
        let failed = |e: ClientError| Outcome::Failed(e.into());
        let listed = c.list_jobs().await.map_err(failed)?;
        let is_child = |j: &&LiveObject| j.head().dependencies.iter().any(|p| &**p == name);
        let children: Vec<Value> = listed.iter().filter(is_child).map(LiveObject::value).collect();
        let scheduled_now = listed
            .iter()
            .find(|j| j.head().key.as_deref() == Some(name))
            .is_some_and(|j| !is_dependent(&j.value()));
        drop(listed);

        if scheduled_now {
            for child in &children {
                let mut rest: Vec<&str> = parents(child).into_iter().filter(|p| *p != name).collect();
                if rest.is_empty() {
                    rest = parents(body);
                }
                if rest.is_empty() {
                    continue;
                }
                let mut detached = child.clone();
                detached["parents"] = json!(rest);
                tracing::info!(
                    job = name,
                    child = name_of(child),
                    "moving a child off the job before it is deleted"
                );
                self.child_step(c, &detached, attempts).await?;
            }
        }
        self.step(c, &Step::Delete(name), attempts).await?;
        self.step(c, &Step::Put(body), attempts).await?;
        let v3 = matches!(c.version().await, Ok(ChronosVersion::V3));
        if v3 {
            self.visible(c, name).await?;
        }
        for child in &children {
            tracing::info!(job = name, child = name_of(child), "putting a child back under the replaced job");
            self.child_step(c, child, attempts).await?;
        }
        if v3 {
            for child in &children {
                self.visible(c, name_of(child)).await?;
            }
        }

        // Read back: the job and its children must sit where the plan put them.
        let listed = c.list_jobs().await.map_err(failed)?;
        let find =
            |n: &str| listed.iter().find(|j| j.head().key.as_deref() == Some(n)).map(LiveObject::value);
        let mut wrong = Vec::new();
        for (what, sent) in std::iter::once(("job", body)).chain(children.iter().map(|c| ("child", c))) {
            let n = name_of(sent);
            match find(n) {
                None => wrong.push(format!("{what} {n} is not listed")),
                Some(read) if !same_placement(&read, sent) => wrong.push(format!(
                    "{what} {n} reads back {} instead of {}",
                    placement(&read),
                    placement(sent)
                )),
                Some(_) => {}
            }
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(Outcome::Failed(ApplyError::ReplaceUnsettled(wrong.join("; "))))
        }
    }

    /// One request of a replace, transient errors retried. Only the write fence stops
    /// it: a replace that has started is finished on cancellation.
    async fn step(&self, c: &ChronosClient, step: &Step<'_>, attempts: &mut u32) -> Result<(), Outcome> {
        let mut error_retries = 0u32;
        loop {
            if !self.opts.fence_open() {
                return Err(Outcome::Skipped(SkipReason::FenceLost));
            }
            *attempts += 1;
            let result = match step {
                Step::Put(job) => c.put_job(job).await,
                Step::Delete(name) => match c.delete_job(name).await {
                    Err(ClientError::NotFound { .. }) => Ok(()),
                    other => other,
                },
            };
            match result {
                Ok(()) => return Ok(()),
                Err(e) if e.is_transient() && error_retries + 1 < self.opts.error_retry.max_attempts => {
                    // The server may echo the job (and its secrets) in the error.
                    let kind = ObjectKind::ChronosJob;
                    let (body, secrets) = match step {
                        Step::Put(job) => (Some(*job), mask::recorded_secrets(kind, job)),
                        Step::Delete(_) => (None, Default::default()),
                    };
                    let masker = Masker::for_action(kind, body, &secrets);
                    let error = e.clone().map_text(&|t| masker.text(t));
                    tracing::info!(%error, "transient error; retrying");
                    tokio::time::sleep(self.opts.error_retry.delay(error_retries)).await;
                    error_retries += 1;
                }
                Err(e) => return Err(Outcome::Failed(e.into())),
            }
        }
    }

    /// A write of a child: what the server says is masked against the child's own
    /// secrets (the caller masks only the replaced job's).
    async fn child_step(&self, c: &ChronosClient, child: &Value, attempts: &mut u32) -> Result<(), Outcome> {
        self.step(c, &Step::Put(child), attempts).await.map_err(|outcome| match outcome {
            Outcome::Failed(e) => {
                let kind = ObjectKind::ChronosJob;
                let masker = Masker::for_action(kind, Some(child), &mask::recorded_secrets(kind, child));
                Outcome::Failed(e.map_text(&|t| masker.text(t)))
            }
            other => other,
        })
    }

    /// Chronos 3.x: wait until `name` is listed.
    async fn visible(&self, c: &ChronosClient, name: &str) -> Result<(), Outcome> {
        match self.wait_job_visible(c, name, 0).await.outcome {
            Outcome::Applied => Ok(()),
            other => Err(other),
        }
    }

    /// Chronos 3.x answers 204 before the job exists (and hides a job whose parent is
    /// missing): dependants must not start before it is listed.
    async fn wait_job_visible(&self, c: &ChronosClient, name: &str, attempts: u32) -> Executed {
        let timeout = self.opts.chronos_visibility_timeout;
        let interval = self.opts.poll_interval.min(std::time::Duration::from_millis(500));
        let outcome = match c.wait_visible(name, interval, timeout).await {
            Ok(true) => Outcome::Applied,
            Ok(false) => Outcome::Failed(ApplyError::NotVisible(timeout)),
            Err(e) => Outcome::Failed(e.into()),
        };
        Executed::new(outcome, None, attempts)
    }
}
