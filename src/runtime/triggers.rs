//! The sources of reconcile requests, each turned into [`Trigger`]s on one channel:
//! file-system events on the manifest directory, the live systems' event stream, and
//! `--git-pull`. (The resync timer and retries live in the scheduler; signals in
//! `daemon::run`.) Triggers only say "something may have changed": they carry no
//! state, so losing one while a reconcile is already pending loses nothing.

use std::collections::VecDeque;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant as StdInstant};

use futures::{Stream, StreamExt};
use notify::event::{EventKind, ModifyKind};
use notify::{RecommendedWatcher, RecursiveMode};
use rand::Rng;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::backoff::Backoff;
use super::config::GitPullConfig;
use super::git;
use crate::status::{StatusStore, Trigger};

/// Room for this many triggers between two looks by the controller; more are dropped,
/// which is harmless since a reconcile is already pending then.
pub const TRIGGER_QUEUE: usize = 256;

/// A handle that asks the controller for a reconcile. Cheap to clone, usable from any
/// thread, never blocks.
#[derive(Clone, Debug)]
pub struct TriggerSender(pub(crate) mpsc::Sender<Trigger>);

impl TriggerSender {
    /// Ask for a reconcile for `trigger`'s reason.
    pub fn send(&self, trigger: Trigger) {
        if let Err(mpsc::error::TrySendError::Full(t)) = self.0.try_send(trigger) {
            debug!(trigger = %t, "trigger queue full; a reconcile is pending anyway");
        }
    }
}

/// The paths of the last file events the watcher handled (at most [`RECENT_PATHS`],
/// oldest first), whether they mattered or not.
///
/// The watcher handles events in the order the kernel queued them, and sends a trigger
/// before it records the event here. So once a path written last shows up here, every
/// event before it has been turned into triggers: tests use that as a barrier instead of
/// sleeping "long enough" for late events. A window, not only the last event: the
/// watcher's own reads come after (notify opens a new directory to watch it once it has
/// handled the events read with its creation), and a receiver sees only the latest
/// value, so with only the last event kept, a barrier could be replaced before anyone
/// looked at it.
#[derive(Clone, Debug)]
pub struct LastFileEvent(watch::Sender<VecDeque<PathBuf>>);

/// How many paths [`LastFileEvent`] keeps.
pub const RECENT_PATHS: usize = 256;

impl Default for LastFileEvent {
    fn default() -> Self {
        Self(watch::channel(VecDeque::new()).0)
    }
}

impl LastFileEvent {
    /// Changes of the recent events' paths (absolute, under the canonical root).
    pub fn subscribe(&self) -> watch::Receiver<VecDeque<PathBuf>> {
        self.0.subscribe()
    }

    fn record(&self, paths: &[PathBuf]) {
        self.0.send_modify(|recent| {
            recent.extend(paths.iter().cloned());
            let over = recent.len().saturating_sub(RECENT_PATHS);
            recent.drain(..over);
        });
    }
}

/// Watches the manifest directory while it is alive.
pub struct FileWatcher {
    _watcher: RecommendedWatcher,
}

/// Watch `dir` recursively; every change to a file that may be a manifest sends
/// [`Trigger::FileChange`]. Reads (our own loader's) and changes under hidden
/// directories (`.git`) are ignored, or every reconcile would trigger the next.
///
/// Raw events go straight to the scheduler, whose `--debounce` is the only wait: an
/// editor's rename-and-replace or a `git pull` writing many files is one burst of
/// triggers there, and a reconcile reloads the whole directory anyway. (A second,
/// file-level debouncer in front of it added its own delay to every edit.)
pub fn watch_files(dir: &Path, triggers: TriggerSender, last: LastFileEvent) -> notify::Result<FileWatcher> {
    let root = dir.canonicalize().map_err(|e| notify::Error::io(e).add_path(dir.to_path_buf()))?;
    let handler_root = root.clone();
    let mut watcher =
        notify::recommended_watcher(move |result: notify::Result<notify::Event>| match result {
            Ok(event) => {
                if event_matters(&handler_root, &event) {
                    debug!(paths = ?event.paths, kind = ?event.kind, "manifest directory changed");
                    triggers.send(Trigger::FileChange);
                }
                last.record(&event.paths);
            }
            Err(e) => {
                warn!(error = %e, "file watch error");
                // Events may have been lost: look again.
                triggers.send(Trigger::FileChange);
            }
        })?;
    notify::Watcher::watch(&mut watcher, &root, RecursiveMode::Recursive)?;
    Ok(FileWatcher { _watcher: watcher })
}

/// Could this event change what the loader reads? Creations, removals, content and
/// name changes of manifest paths (see [`is_manifest_path`]) can; reads, opens and
/// metadata changes cannot. A rescan request (events were lost) always does.
pub fn event_matters(root: &Path, event: &notify::Event) -> bool {
    if event.need_rescan() {
        return true;
    }
    let kind_matters = match event.kind {
        EventKind::Any | EventKind::Other | EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(modify) => !matches!(modify, ModifyKind::Metadata(_)),
        EventKind::Access(_) => false,
    };
    kind_matters && event.paths.iter().any(|p| is_manifest_path(root, p))
}

/// Could a change at `path` change what the loader reads? Hidden files and directories
/// (`.git`, editor swap files) and backups (`x.yaml~`) cannot; directories (no
/// extension) and `*.yaml`, `*.yml`, `*.json` can.
pub fn is_manifest_path(root: &Path, path: &Path) -> bool {
    let relative = path.strip_prefix(root).unwrap_or(path);
    let hidden = relative.components().any(|c| match c {
        Component::Normal(name) => name.to_string_lossy().starts_with('.'),
        _ => false,
    });
    if hidden || relative.as_os_str().is_empty() {
        return false;
    }
    match relative.extension().and_then(|e| e.to_str()) {
        None => !relative.to_string_lossy().ends_with('~'),
        Some(ext) => matches!(ext, "yaml" | "yml" | "json"),
    }
}

/// A connection to the live systems' change notifications: each `()` means "something
/// changed live"; the stream ending means the connection dropped.
pub type LiveEvents = std::pin::Pin<Box<dyn Stream<Item = ()> + Send>>;

/// A connection that lasted this long was healthy: the next drop starts the
/// reconnect backoff from the beginning.
const HEALTHY_CONNECTION: Duration = Duration::from_secs(30);

/// Consume live notifications from `connect()` (called again after every drop, with
/// `reconnect` backoff between tries) and send [`Trigger::LiveEvent`] for each, until
/// `cancel`.
pub async fn follow_live_events(
    mut connect: impl FnMut() -> LiveEvents + Send,
    reconnect: Backoff,
    triggers: TriggerSender,
    cancel: CancellationToken,
) {
    let mut failures = 0;
    loop {
        let connected = tokio::time::Instant::now();
        let mut events = connect();
        let mut seen = 0u64;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                event = events.next() => match event {
                    Some(()) => {
                        seen += 1;
                        triggers.send(Trigger::LiveEvent);
                    }
                    None => break,
                },
            }
        }
        if connected.elapsed() >= HEALTHY_CONNECTION {
            failures = 0;
        }
        failures += 1;
        let delay = reconnect.delay(failures, rand::rng().random());
        warn!(events = seen, retry_in = ?delay, "live event stream ended; reconnecting");
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// Every `config.interval`, and whenever `now` is notified (the push webhook), fetch and
/// fast-forward the checkout holding `dir`; send [`Trigger::GitPull`] when HEAD moved.
/// Failures are logged and kept in the status; the next interval tries again.
///
/// `now` keeps at most one pending wake-up, so any burst of notifications during a
/// fetch is one more fetch after it, never a queue of them.
pub async fn pull_periodically(
    dir: PathBuf,
    config: GitPullConfig,
    now: std::sync::Arc<tokio::sync::Notify>,
    triggers: TriggerSender,
    status: StatusStore,
    cancel: CancellationToken,
) {
    let mut ticks = tokio::time::interval(config.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticks.tick() => {}
            _ = now.notified() => debug!(branch = %config.branch, "fetching now: push webhook"),
        }
        let started = StdInstant::now();
        match git::pull(&dir, &config.branch).await {
            Ok(pulled) if pulled.changed() => {
                info!(branch = %config.branch, from = %short(&pulled.before), to = %short(&pulled.after), "pulled new commits");
                triggers.send(Trigger::GitPull);
            }
            Ok(_) => debug!(branch = %config.branch, took = ?started.elapsed(), "checkout up to date"),
            Err(e) => {
                warn!(branch = %config.branch, error = %e, "git pull failed");
                status.record_error(format!("git pull {}: {e}", config.branch));
            }
        }
    }
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stress run lost a barrier: the watcher recorded a later event (its own open of a
    /// new directory) before the test looked, and only the last event was kept.
    #[test]
    fn a_recorded_path_stays_visible_after_later_events() {
        let last = LastFileEvent::default();
        let mut seen = last.subscribe();
        let barrier = PathBuf::from("/m/.barrier-0");
        last.record(std::slice::from_ref(&barrier));
        last.record(&[PathBuf::from("/m/group")]);
        assert!(seen.borrow_and_update().contains(&barrier), "replaced before it was looked at");
        // Bounded: the oldest go first.
        for i in 0..RECENT_PATHS {
            last.record(&[PathBuf::from(format!("/m/{i}.yaml"))]);
        }
        let recent = seen.borrow_and_update().clone();
        assert_eq!(recent.len(), RECENT_PATHS);
        assert!(!recent.contains(&barrier));
        assert_eq!(recent.back(), Some(&PathBuf::from(format!("/m/{}.yaml", RECENT_PATHS - 1))));
    }

    #[test]
    fn only_paths_the_loader_reads_matter() {
        let root = Path::new("/srv/manifests");
        let yes = ["a.yaml", "sub/b.yml", "c.json", "sub", "sub/dir", "4913"];
        let no = [
            ".git/index",
            ".git",
            "sub/.hidden/x.yaml",
            ".a.yaml.swp",
            "a.yaml~",
            "notes.txt",
            "x.yaml.tmp",
            "",
        ];
        for p in yes {
            assert!(is_manifest_path(root, &root.join(p)), "{p} should matter");
        }
        for p in no {
            assert!(!is_manifest_path(root, &root.join(p)), "{p} should not matter");
        }
        // Hidden ancestors above the root do not hide anything.
        let root = Path::new("/home/u/.config/manifests");
        assert!(is_manifest_path(root, &root.join("a.yaml")));
    }

    #[test]
    fn reads_and_metadata_changes_do_not_matter() {
        use notify::event::{AccessKind, AccessMode, CreateKind, DataChange, Flag, MetadataKind, RenameMode};
        let root = Path::new("/srv/m");
        let event = |kind: EventKind, path: &str| notify::Event::new(kind).add_path(root.join(path));
        let matters = [
            event(EventKind::Create(CreateKind::File), "a.yaml"),
            event(EventKind::Modify(ModifyKind::Data(DataChange::Content)), "a.yaml"),
            event(EventKind::Modify(ModifyKind::Name(RenameMode::Both)), "a.yaml.new")
                .add_path(root.join("a.yaml")),
            event(EventKind::Remove(notify::event::RemoveKind::Folder), "group"),
            event(EventKind::Access(AccessKind::Open(AccessMode::Read)), ".git/x").set_flag(Flag::Rescan),
        ];
        let ignored = [
            event(EventKind::Access(AccessKind::Open(AccessMode::Read)), "a.yaml"),
            event(EventKind::Access(AccessKind::Close(AccessMode::Write)), "a.yaml"),
            event(EventKind::Modify(ModifyKind::Metadata(MetadataKind::Permissions)), "a.yaml"),
            event(EventKind::Modify(ModifyKind::Data(DataChange::Content)), ".git/index"),
            event(EventKind::Create(CreateKind::File), "README.md"),
        ];
        for e in &matters {
            assert!(event_matters(root, e), "{e:?} should matter");
        }
        for e in &ignored {
            assert!(!event_matters(root, e), "{e:?} should be ignored");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn live_events_reconnect_with_backoff() {
        let (tx, mut rx) = mpsc::channel(16);
        let cancel = CancellationToken::new();
        let t0 = tokio::time::Instant::now();
        let connects = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = connects.clone();
        let connect = move || -> LiveEvents {
            seen.lock().unwrap().push(t0.elapsed());
            // Each connection delivers one event, then drops.
            Box::pin(futures::stream::iter([()]))
        };
        let policy = Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(8),
            factor: 2.0,
            jitter: 0.0,
        };
        let task = tokio::spawn(follow_live_events(connect, policy, TriggerSender(tx), cancel.clone()));
        for _ in 0..6 {
            assert_eq!(rx.recv().await, Some(Trigger::LiveEvent));
        }
        cancel.cancel();
        task.await.unwrap();
        let times: Vec<u64> = connects.lock().unwrap().iter().map(|d| d.as_secs()).collect();
        assert_eq!(times, [0, 1, 3, 7, 15, 23]);
    }
}
