//! How a Chronos write is executed and waited on: a PUT (or POST) of the whole job, a
//! DELETE, a replace as DELETE then create (Chronos cannot switch a job between
//! scheduled and dependent in place), transient errors retried, and on Chronos 3.x the
//! wait until a created job is listed.

use std::time::Duration;

use super::{ApplyError, Ctx, Executed, Outcome, invalid, masked};
use crate::client::{ChronosClient, ChronosVersion, ClientError};
use crate::plan::{Action, Write};

impl Ctx<'_> {
    /// One Chronos action: replace (or delete + create when the job switches between
    /// scheduled and dependent), or delete. Transient errors are retried.
    pub(super) async fn run_job(&self, a: &Action, c: &ChronosClient) -> Executed {
        let name = a.object.id.as_str();
        let Some(write) = a.decision.write() else { return Executed::new(Outcome::Unchanged, None, 0) };
        let body = match (write, &a.body) {
            (Write::Delete, _) => None,
            (Write::Scale, _) => return invalid("Chronos jobs cannot be scaled".into()),
            (_, Some(b)) => Some(b),
            (write, None) => return invalid(format!("{:?} of job {name} has no body", write.kind())),
        };
        let switches = matches!(write, Write::Replace { .. });
        let mut attempts = 0u32;
        let mut error_retries = 0u32;
        // Set once the delete half of a delete + create has been done.
        let mut deleted = false;
        loop {
            if let Some(reason) = self.write_refused(attempts) {
                return Executed::new(Outcome::Skipped(reason), None, attempts);
            }
            attempts += 1;
            let result = match body {
                None => match c.delete_job(name).await {
                    Err(ClientError::NotFound { .. }) => Ok(()),
                    other => other,
                },
                Some(b) => {
                    let mut r = Ok(());
                    if switches && !deleted {
                        r = match c.delete_job(name).await {
                            Ok(()) | Err(ClientError::NotFound { .. }) => {
                                deleted = true;
                                Ok(())
                            }
                            Err(e) => Err(e),
                        };
                    }
                    match r {
                        Ok(()) => c.put_job(b).await,
                        e => e,
                    }
                }
            };
            match result {
                Ok(()) => {
                    if let (Some(_), Ok(ChronosVersion::V3)) = (body, c.version().await) {
                        if *write == Write::Create || switches {
                            return self.wait_job_visible(c, name, attempts).await;
                        }
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

    /// Chronos 3.x answers 204 before the job exists (and hides a job whose parent is
    /// missing): dependants must not start before it is listed.
    async fn wait_job_visible(&self, c: &ChronosClient, name: &str, attempts: u32) -> Executed {
        let timeout = self.opts.chronos_visibility_timeout;
        let interval = self.opts.poll_interval.min(Duration::from_millis(500));
        let outcome = match c.wait_visible(name, interval, timeout).await {
            Ok(true) => Outcome::Applied,
            Ok(false) => Outcome::Failed(ApplyError::NotVisible(timeout)),
            Err(e) => Outcome::Failed(e.into()),
        };
        Executed::new(outcome, None, attempts)
    }
}
