//! What the planner decided for one object, as a type: equal, held (and why), or a
//! write (and which). Every reason an object is left alone is a [`HoldReason`] variant,
//! put into words in one place (its `Display`); nothing reads those words back.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ActionKind;
use super::runs::{MAX_RUNS, RunCause, RunStats};

/// The decision for one object.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Live equals the manifest (or only ignored fields differ): nothing to do.
    Equal,
    /// There is a difference (or a would-be write), and it is left alone.
    Hold(HoldReason),
    /// Apply writes.
    Write(Write),
}

/// A write apply makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// The object does not exist live: create it.
    Create,
    /// It exists and differs in more than `instances`: write the full definition.
    Update,
    /// A Marathon app that differs only in `instances`: `PUT {"instances": N}`.
    Scale,
    /// Chronos: the job changes between scheduled and dependent, which Chronos cannot
    /// do in place (2.4 keeps firing the old schedule): apply deletes the job, then
    /// creates it with the body. Reported as one update (impact Replace), so ordering
    /// and reporting see one object.
    Replace {
        /// Whether the job becomes scheduled (else dependent).
        to_scheduled: bool,
    },
    /// An owned object with no manifest, with prune enabled: delete it.
    Delete,
    /// A live object with the manifest's id that no instance owns: take it over; the
    /// write carries the ownership mark of `instance`.
    Adopt {
        /// The instance taking it over.
        instance: Box<str>,
    },
    /// A run-once job (`sync.run: onChange`) equal to its manifest whose current
    /// definition has not run successfully: apply runs it (or waits for its run) and
    /// it is done only once that run succeeded ([`super::runs`]).
    Run(RunCause),
}

/// Why an object with a difference (or a would-be write) is left alone.
#[derive(Clone, Debug, PartialEq)]
pub enum HoldReason {
    /// `sync.suspend: true`.
    Suspended {
        /// The write it would otherwise get.
        would: ActionKind,
    },
    /// A Chronos job whose name is outside this instance's prefix: once written it
    /// would never be recognised as owned (nor updated, nor pruned).
    OutsidePrefix {
        /// The configured prefix.
        prefix: Box<str>,
        /// The write it would otherwise get.
        would: ActionKind,
    },
    /// The live object carries no ownership mark, and adoption is off.
    Unowned,
    /// The live object is marked by another instance (never adopted from it).
    OwnedByOther {
        /// The instance whose mark it carries.
        owner: Box<str>,
        /// This instance.
        instance: Box<str>,
    },
    /// The job carries this instance's mark but not its name prefix.
    MarkedOutsidePrefix {
        /// The instance whose mark it carries (this one).
        owner: Box<str>,
    },
    /// Owned, no manifest, and prune is off.
    PruneOff {
        /// This instance.
        instance: Box<str>,
    },
    /// Owned, no manifest, and the deletes were refused.
    PruneRefused(PruneRefusal),
    /// The controller is backing off this object after a failure.
    BackingOff,
    /// An app that waits (directly or through other apps) on a Chronos job while
    /// Chronos is unreachable.
    WaitsOnUnreachableChronos,
    /// Owned, no manifest, prune on, but first missed less than `--prune-delay` ago:
    /// deleted only if still missing from a load that much later (a file being
    /// rewritten must not delete what it will declare again a moment later).
    PruneDelayed {
        /// Seconds until the delete may happen.
        seconds_left: u64,
    },
    /// The live object carries more than one ownership mark (several description
    /// markers, or owner labels differing only in case): nobody owns it. An error for
    /// that object: never written, adopted or pruned until one mark remains.
    AmbiguousOwner,
    /// A run-once job whose current definition failed [`MAX_RUNS`] runs: not started
    /// again until its definition changes (no endless run loop).
    RunFailed {
        /// Its run statistics.
        stats: RunStats,
        /// Failed runs of this definition.
        runs: u64,
    },
    /// A write that depends (directly or through other held writes) on a run-once job
    /// that is not done for its current definition and does not run in this apply.
    WaitsForJob {
        /// The job.
        job: Box<str>,
        /// Its run statistics.
        stats: RunStats,
    },
    /// A reason read back from a saved plan file: its words as written. Only shown,
    /// never inspected (a saved plan is applied for its writes alone).
    Recorded(Box<str>),
}

/// Why the mass-delete guard (or the empty-manifest rule) refused the deletes.
#[derive(Clone, Debug, PartialEq)]
pub enum PruneRefusal {
    /// The manifest set is empty and `--allow-empty` was not given.
    EmptyManifests {
        /// Owned objects that would have been deleted.
        count: usize,
    },
    /// More deletes than `max_count`, or more than `max_ratio` of the owned set.
    Guard {
        /// Deletes planned.
        count: usize,
        /// Owned objects.
        owned: usize,
        /// `--max-delete-count`.
        max_count: usize,
        /// `--max-delete-ratio`.
        max_ratio: f64,
    },
    /// Read back from a saved plan file: its words as written.
    Recorded(Box<str>),
}

impl Write {
    /// The action word this write is reported as (a replace is an update).
    pub fn kind(&self) -> ActionKind {
        match self {
            Write::Create => ActionKind::Create,
            Write::Update | Write::Replace { .. } => ActionKind::Update,
            Write::Scale => ActionKind::Scale,
            Write::Delete => ActionKind::Delete,
            Write::Adopt { .. } => ActionKind::Adopt,
            Write::Run(_) => ActionKind::Run,
        }
    }

    /// What a reader should know about the write besides its kind, if anything.
    fn note(&self) -> Option<String> {
        match self {
            Write::Replace { to_scheduled } => Some(format!(
                "changes from {} to {}: Chronos cannot do that in place, so the job is deleted and created \
                 again",
                if *to_scheduled { "dependent" } else { "scheduled" },
                if *to_scheduled { "scheduled" } else { "dependent" },
            )),
            Write::Adopt { instance } => {
                Some(format!("not owned yet: adopting it for instance '{instance}'"))
            }
            Write::Run(RunCause::NotSucceeded) => Some(
                "run once (sync.run: onChange): no run of this definition has succeeded yet; started (unless one \
                 is in flight) and waited for"
                    .into(),
            ),
            Write::Run(RunCause::Unrecorded) => Some(
                "run once (sync.run: onChange): carries no run record of this definition; written again with \
                 one (resets its run statistics), then run and waited for"
                    .into(),
            ),
            Write::Run(RunCause::AfterParents) => Some(
                "run once (sync.run: onChange): its parents run in this apply, so Chronos runs it after them; \
                 that run is waited for"
                    .into(),
            ),
            _ => None,
        }
    }
}

impl Decision {
    /// The action word (`noop` for equal and held objects).
    pub fn kind(&self) -> ActionKind {
        match self {
            Decision::Equal | Decision::Hold(_) => ActionKind::NoOp,
            Decision::Write(w) => w.kind(),
        }
    }

    /// The decision in words, for people: why it is held, or what a write implies.
    pub fn note(&self) -> Option<String> {
        match self {
            Decision::Equal => None,
            Decision::Hold(reason) => Some(reason.to_string()),
            Decision::Write(w) => w.note(),
        }
    }

    /// The write, if apply makes one.
    pub fn write(&self) -> Option<&Write> {
        match self {
            Decision::Write(w) => Some(w),
            _ => None,
        }
    }

    /// The reason it is held, if it is.
    pub fn hold_reason(&self) -> Option<&HoldReason> {
        match self {
            Decision::Hold(r) => Some(r),
            _ => None,
        }
    }

    /// Whether apply deletes then creates the object (a Chronos [`Write::Replace`]).
    pub fn recreate(&self) -> bool {
        matches!(self, Decision::Write(Write::Replace { .. }))
    }
}

impl From<Write> for Decision {
    fn from(w: Write) -> Self {
        Decision::Write(w)
    }
}

/// The one place a hold reason is put into words.
impl fmt::Display for HoldReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let would = |kind: &ActionKind| format!("{kind:?}").to_lowercase();
        match self {
            HoldReason::Suspended { would: kind } => {
                write!(f, "suspended (sync.suspend): would {}, left alone", would(kind))
            }
            HoldReason::OutsidePrefix { prefix, would: kind } => write!(
                f,
                "the job name is outside this instance's prefix '{prefix}': would {}, left alone",
                would(kind)
            ),
            HoldReason::Unowned => f.write_str(
                "exists live but is not owned by mesosync: left alone (enable adoption to take it over)",
            ),
            HoldReason::OwnedByOther { owner, instance } => write!(
                f,
                "exists live but is owned by instance '{owner}', not '{instance}': left alone (never adopted \
                 from another instance)"
            ),
            HoldReason::MarkedOutsidePrefix { owner } => {
                write!(f, "carries the mark of instance '{owner}' but not the job name prefix: left alone")
            }
            HoldReason::PruneOff { instance } => {
                write!(f, "owned by instance '{instance}' but has no manifest: prune is off, left alone")
            }
            HoldReason::PruneRefused(why) => write!(f, "would be deleted, but prune was refused: {why}"),
            HoldReason::BackingOff => f.write_str("backing off after a failure; retried later"),
            HoldReason::WaitsOnUnreachableChronos => {
                f.write_str("waits on a Chronos job, and Chronos is unreachable")
            }
            HoldReason::PruneDelayed { seconds_left } => write!(
                f,
                "has no manifest: deleted only if still missing from a load at least {seconds_left}s from now \
                 (--prune-delay)"
            ),
            HoldReason::AmbiguousOwner => f.write_str(
                "error: carries more than one ownership mark (`[mesosync:…]` markers in the description, \
                 or MESOSYNC_OWNER labels differing in case): owned by nobody, left alone until only one remains",
            ),
            HoldReason::RunFailed { stats, runs } => write!(
                f,
                "run once (sync.run: onChange): {stats}; {runs} run(s) of this definition failed (at most \
                 {MAX_RUNS}), not started again until its definition changes"
            ),
            HoldReason::WaitsForJob { job, stats } => write!(f, "waits for job {job}: {stats}"),
            HoldReason::Recorded(words) => f.write_str(words),
        }
    }
}

impl fmt::Display for PruneRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PruneRefusal::EmptyManifests { count } => write!(
                f,
                "the manifest set is empty: refusing to delete {count} owned object(s) without --allow-empty"
            ),
            PruneRefusal::Guard { count, owned, max_count, max_ratio } => write!(
                f,
                "refusing to delete {count} of {owned} owned object(s): more than {max_count} or more than \
                 {:.0}% of the owned set (use --force-prune to override)",
                max_ratio * 100.0
            ),
            PruneRefusal::Recorded(words) => f.write_str(words),
        }
    }
}

/// Saved as its words (the plan-file format predates the type).
impl Serialize for PruneRefusal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PruneRefusal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(PruneRefusal::Recorded(String::deserialize(d)?.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_read_as_before() {
        let suspended = Decision::Hold(HoldReason::Suspended { would: ActionKind::Update });
        assert_eq!(suspended.kind(), ActionKind::NoOp);
        assert_eq!(suspended.note().unwrap(), "suspended (sync.suspend): would update, left alone");
        let replace = Decision::Write(Write::Replace { to_scheduled: false });
        assert_eq!((replace.kind(), replace.recreate()), (ActionKind::Update, true));
        assert!(replace.note().unwrap().starts_with("changes from scheduled to dependent"));
        let guard = PruneRefusal::Guard { count: 4, owned: 10, max_count: 10, max_ratio: 0.3 };
        assert!(guard.to_string().contains("4 of 10 owned object(s): more than 10 or more than 30%"));
        assert_eq!(Decision::Equal.note(), None);
    }
}
