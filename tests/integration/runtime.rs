//! The controller loop (`mesosync::runtime`) driving a fake reconcile: triggers,
//! debounce, resync, live events, no overlap, per-object backoff, dry run, git revision
//! and self-pull, graceful shutdown.
//!
//! Timing rules are checked under tokio's paused clock (virtual time, exact instants).
//! Tests that need the real file system or `git` run on the real clock and only wait
//! for events, never assert on elapsed wall-clock time.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use mesosync::model::ObjectRef;
use mesosync::runtime::{
    Controller, GitPullConfig, ObjectState, OutcomeKind, ReconcileReport, StatusStore, Trigger,
};
use tokio::time::Instant;

use crate::fake_reconcile::{FakeReconcile, Running, app_manifest, fake, test_config};

const WAIT: Duration = Duration::from_secs(20);

fn manifest_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("web.yaml"), app_manifest("/web", 1)).unwrap();
    dir
}

/// After the reconciles seen so far, prove no other one is pending: once the file watcher
/// has caught up with every file event so far (a barrier, not a sleep), request one
/// more reconcile (a live event, queued behind any stray file trigger) and check it is
/// the next reconcile, carrying only that reason.
async fn assert_nothing_else_pending(fake: &FakeReconcile, running: &Running, dir: &Path) {
    let seen = fake.calls().len();
    running.file_events_handled(dir, WAIT).await;
    running.triggers.send(Trigger::LiveEvent);
    let calls = fake.wait_for_calls(seen + 1, WAIT).await;
    assert_eq!(calls.len(), seen + 1);
    assert_eq!(calls[seen].reasons, [Trigger::LiveEvent], "{calls:#?}");
}

#[tokio::test]
async fn editing_a_manifest_reconciles_exactly_once() {
    let dir = manifest_dir();
    let fake = fake(dir.path());
    let running = Running::start(Controller::new(test_config(dir.path()), fake.clone()));

    let calls = fake.wait_for_calls(1, WAIT).await;
    assert_eq!(calls[0].reasons, [Trigger::Startup]);

    fs::write(dir.path().join("web.yaml"), app_manifest("/web", 3)).unwrap();
    let calls = fake.wait_for_calls(2, WAIT).await;
    assert_eq!(calls[1].reasons, [Trigger::FileChange]);
    assert_nothing_else_pending(&fake, &running, dir.path()).await;

    running.stop().await;
}

/// The burst lands while the startup reconcile is held, so however slowly the files are
/// written, its triggers all wait in the queue for the next reconcile: one.
#[tokio::test]
async fn a_burst_of_file_events_and_an_editor_save_collapse_into_one_reconcile() {
    let dir = manifest_dir();
    let fake = fake(dir.path());
    fake.hold();
    let running = Running::start(Controller::new(test_config(dir.path()), fake.clone()));
    fake.wait_for_entered(1, WAIT).await;

    // A `git checkout` touching 50 files…
    fs::create_dir(dir.path().join("group")).unwrap();
    for i in 0..50 {
        fs::write(dir.path().join(format!("group/app{i}.yaml")), app_manifest(&format!("/group/app{i}"), 1))
            .unwrap();
    }
    // …and an editor's rename-and-replace save, with its hidden swap file.
    fs::write(dir.path().join(".web.yaml.swp"), "swap").unwrap();
    fs::write(dir.path().join("web.yaml.new"), app_manifest("/web", 2)).unwrap();
    fs::rename(dir.path().join("web.yaml.new"), dir.path().join("web.yaml")).unwrap();
    fs::remove_file(dir.path().join(".web.yaml.swp")).unwrap();
    running.file_events_handled(dir.path(), WAIT).await;
    fake.release();

    let calls = fake.wait_for_calls(2, WAIT).await;
    assert_eq!(calls[0].reasons, [Trigger::Startup]);
    assert_eq!(calls[1].reasons, [Trigger::FileChange]);
    assert_nothing_else_pending(&fake, &running, dir.path()).await;

    running.stop().await;
}

/// Issue 20: file events that leave the manifests as the last reconcile loaded them
/// (the checkout's own fast-forward seen late, a save of the same bytes) start no
/// reconcile and are no reason of one that something else starts; a real edit still
/// reconciles, and so does a file whose bytes changed back and forth.
#[tokio::test]
async fn file_events_that_leave_the_manifests_as_loaded_do_not_reconcile() {
    let dir = manifest_dir();
    let web = dir.path().join("web.yaml");
    let fake = Arc::new(FakeReconcile::new(dir.path()).keyed());
    let running = Running::start(Controller::new(test_config(dir.path()), fake.clone()));
    fake.wait_for_calls(1, WAIT).await;
    // Counted once per batch of such events (one here, more if the burst straddled the
    // debounce).
    let unchanged = || {
        let metrics = running.metrics.encode();
        let line = metrics.lines().find_map(|l| l.strip_prefix("mesosync_unchanged_input_total "));
        line.and_then(|n| n.parse::<u64>().ok()).is_some_and(|n| n > 0)
    };

    // The same bytes, written again (twice, and a new file removed again).
    fs::write(&web, fs::read(&web).unwrap()).unwrap();
    fs::write(&web, fs::read(&web).unwrap()).unwrap();
    fs::write(dir.path().join("new.yaml"), app_manifest("/new", 1)).unwrap();
    fs::remove_file(dir.path().join("new.yaml")).unwrap();
    running.file_events_handled(dir.path(), WAIT).await;
    // The live event lands in the same burst or after it: either way it is the only
    // reason of the next reconcile.
    assert_nothing_else_pending(&fake, &running, dir.path()).await;
    assert!(unchanged(), "{}", running.metrics.encode());

    // A real edit.
    fs::write(&web, app_manifest("/web", 2)).unwrap();
    let calls = fake.wait_for_calls(3, WAIT).await;
    assert_eq!(calls[2].reasons, [Trigger::FileChange]);
    assert_nothing_else_pending(&fake, &running, dir.path()).await;

    running.stop().await;
}

#[tokio::test]
async fn changes_under_dot_git_and_non_manifest_files_do_not_reconcile() {
    let dir = manifest_dir();
    fs::create_dir(dir.path().join(".git")).unwrap();
    let fake = fake(dir.path());
    let running = Running::start(Controller::new(test_config(dir.path()), fake.clone()));
    fake.wait_for_calls(1, WAIT).await;

    fs::write(dir.path().join(".git/index"), "x").unwrap();
    fs::write(dir.path().join("notes.txt"), "x").unwrap();
    fs::write(dir.path().join("web.yaml~"), "x").unwrap();
    assert_nothing_else_pending(&fake, &running, dir.path()).await;

    running.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_resync_timer_reconciles_a_period_after_the_last_reconcile() {
    let dir = manifest_dir();
    let fake = fake(dir.path());
    let mut config = test_config(dir.path());
    config.resync = Duration::from_secs(60);
    let running = Running::start(Controller::new(config, fake.clone()));

    let calls = fake.wait_for_calls(4, Duration::from_secs(600)).await;
    let start = calls[0].at;
    let offsets: Vec<u64> = calls.iter().map(|c| (c.at - start).as_secs()).collect();
    assert_eq!(offsets[..4], [0, 60, 120, 180]);
    assert!(calls[1..4].iter().all(|c| c.reasons == [Trigger::Resync]), "{calls:#?}");

    running.stop().await;
}

#[tokio::test(start_paused = true)]
async fn live_events_trigger_a_debounced_reconcile_and_the_stream_reconnects() {
    let dir = manifest_dir();
    let fake = fake(dir.path());
    let (live_tx, live_rx) = tokio::sync::mpsc::channel::<()>(16);
    let mut first = Some(live_rx);
    let connects = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = connects.clone();
    let running =
        Running::start(Controller::new(test_config(dir.path()), fake.clone()).with_live_events(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            match first.take() {
                Some(rx) => tokio_stream::wrappers::ReceiverStream::new(rx).boxed(),
                None => futures::stream::pending().boxed(),
            }
        }));
    fake.wait_for_calls(1, WAIT).await;

    // Three events in quick succession: one reconcile, one debounce after the last.
    let sent = Instant::now();
    for _ in 0..3 {
        live_tx.send(()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let calls = fake.wait_for_calls(2, WAIT).await;
    assert_eq!(calls[1].reasons, [Trigger::LiveEvent]);
    assert_eq!(calls[1].at - sent, Duration::from_millis(100 + 200), "debounced after the last event");

    // The stream drops: the controller reconnects (after its backoff).
    drop(live_tx);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(connects.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(fake.calls().len(), 2, "a drop alone does not reconcile");

    running.stop().await;
}

#[tokio::test(start_paused = true)]
async fn reconciles_never_overlap_and_triggers_during_one_collapse_into_the_next() {
    let dir = manifest_dir();
    let fake = Arc::new(FakeReconcile::new(dir.path()).with_writes(10, Duration::from_secs(1)));
    let running = Running::start(Controller::new(test_config(dir.path()), fake.clone()));

    // While the 10 s startup reconcile runs, every kind of trigger arrives, many times.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for _ in 0..20 {
        running.triggers.send(Trigger::FileChange);
        running.triggers.send(Trigger::LiveEvent);
        running.triggers.send(Trigger::Signal);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let calls = fake.wait_for_calls(2, Duration::from_secs(60)).await;
    assert_eq!(calls[1].reasons, [Trigger::FileChange, Trigger::LiveEvent, Trigger::Signal]);
    assert_eq!(calls[1].at - calls[0].at, Duration::from_secs(10), "right after the first one");
    // Nothing else is pending: the next reconcile would be the hourly resync.
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(fake.calls().len(), 2, "{:#?}", fake.calls());

    running.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_failing_object_backs_off_exponentially_while_other_triggers_stay_prompt() {
    let dir = manifest_dir();
    fs::write(dir.path().join("bad.yaml"), app_manifest("/bad", 1)).unwrap();
    let bad = ObjectRef::app("/bad");
    let failing = bad.clone();
    let fake = Arc::new(FakeReconcile::new(dir.path()).with_script(move |_, _| {
        let mut report = ReconcileReport::default();
        report.objects.insert(failing.clone(), ObjectState::failed("503 Service Unavailable"));
        report.objects.insert(ObjectRef::app("/web"), ObjectState::Synced);
        Some(Ok(report))
    }));
    let running = Running::start(Controller::new(test_config(dir.path()), fake.clone()));

    // Startup, then retries 1, 2, 4 s apart (backoff 1 s doubling, no jitter).
    let calls = fake.wait_for_calls(4, Duration::from_secs(60)).await;
    let start = calls[0].at;
    let offsets: Vec<u64> = calls.iter().map(|c| (c.at - start).as_secs()).collect();
    assert_eq!(offsets, [0, 1, 3, 7]);
    assert_eq!(calls[1].reasons, [Trigger::Retry(bad.clone())]);
    assert!(calls[1].backing_off.is_empty());
    let retry = status_retry(&running.status, &bad);
    assert_eq!(retry, Some(4), "four consecutive failures");

    // Next retry is 8 s after t=7. A live event at t=8 is reconciled after the
    // debounce, told that /bad is still backing off.
    tokio::time::sleep_until(start + Duration::from_secs(8)).await;
    running.triggers.send(Trigger::LiveEvent);
    let calls = fake.wait_for_calls(5, Duration::from_secs(60)).await;
    assert_eq!(calls[4].at - start, Duration::from_millis(8200));
    assert_eq!(calls[4].reasons, [Trigger::LiveEvent]);
    assert_eq!(calls[4].backing_off, std::slice::from_ref(&bad));

    // …and the retry schedule is not disturbed by it.
    let calls = fake.wait_for_calls(6, Duration::from_secs(60)).await;
    assert_eq!(calls[5].at - start, Duration::from_secs(15));
    assert_eq!(calls[5].reasons, [Trigger::Retry(bad.clone())]);

    let snapshot = running.status.snapshot();
    assert_eq!(snapshot.last_reconcile.unwrap().outcome, OutcomeKind::Partial);
    assert!(snapshot.last_errors.iter().any(|e| e.object.as_ref() == Some(&bad)));

    running.stop().await;
}

fn status_retry(status: &StatusStore, object: &ObjectRef) -> Option<u32> {
    status
        .snapshot()
        .objects
        .iter()
        .find(|o| &o.object == object)
        .and_then(|o| o.retry.as_ref())
        .map(|r| r.failures)
}

#[tokio::test(start_paused = true)]
async fn a_reconcile_that_fails_as_a_whole_is_retried_then_recovers() {
    let dir = manifest_dir();
    let fake = fake(dir.path());
    fs::write(dir.path().join("broken.yaml"), "kind: MarathonApp\nspec: [not a map\n").unwrap();
    let running = Running::start(Controller::new(test_config(dir.path()), fake.clone()));

    let calls = fake.wait_for_calls(3, Duration::from_secs(60)).await;
    let start = calls[0].at;
    assert_eq!(calls[1].at - start, Duration::from_secs(1));
    assert_eq!(calls[2].at - start, Duration::from_secs(3));
    assert_eq!(calls[1].reasons, [Trigger::RetryAfterError]);
    let snapshot = running.status.snapshot();
    assert!(!snapshot.ready, "never loaded: not ready");
    assert!(snapshot.last_reconcile.unwrap().error.unwrap().contains("broken.yaml"));
    assert_eq!(snapshot.retry.unwrap().failures, 3);

    fs::remove_file(dir.path().join("broken.yaml")).unwrap();
    let calls = fake.wait_for_calls(4, Duration::from_secs(60)).await;
    // The fix is picked up by its file event (after the debounce) or, at the latest,
    // by the retry due at 3 + 4 s — which comes first depends on when the OS delivers
    // the event relative to the paused clock.
    let at = calls[3].at - start;
    assert!(at > Duration::from_secs(3) && at <= Duration::from_secs(7), "{at:?}");
    assert!(
        calls[3].reasons.iter().all(|r| matches!(r, Trigger::FileChange | Trigger::RetryAfterError)),
        "{:?}",
        calls[3].reasons
    );
    let snapshot = running.status.snapshot();
    assert!(snapshot.ready);
    assert!(snapshot.retry.is_none());
    assert_eq!(snapshot.objects.len(), 1);

    running.stop().await;
}

#[tokio::test(start_paused = true)]
async fn dry_run_is_passed_to_every_reconcile_and_reported() {
    let dir = manifest_dir();
    let fake = fake(dir.path());
    let mut config = test_config(dir.path());
    config.dry_run = true;
    let running = Running::start(Controller::new(config, fake.clone()));
    fake.wait_for_calls(1, WAIT).await;
    running.triggers.send(Trigger::Signal);
    let calls = fake.wait_for_calls(2, WAIT).await;
    assert!(calls.iter().all(|c| c.dry_run));
    assert!(running.status.snapshot().dry_run);

    running.stop().await;
    let mut config = test_config(dir.path());
    config.dry_run = false;
    let fake = self::fake(dir.path());
    let running = Running::start(Controller::new(config, fake.clone()));
    assert!(!fake.wait_for_calls(1, WAIT).await[0].dry_run);
    running.stop().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_lets_the_write_in_flight_finish_then_run_returns_ok() {
    let dir = manifest_dir();
    let fake = Arc::new(FakeReconcile::new(dir.path()).with_writes(10, Duration::from_secs(1)));
    let running = Running::start(Controller::new(test_config(dir.path()), fake.clone()));

    tokio::time::sleep(Duration::from_millis(2500)).await;
    let stopped_at = Instant::now();
    let status = running.status.clone();
    running.stop().await;
    let calls = fake.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].writes, 3, "the third write was in flight and finished; no fourth started");
    assert!(calls[0].cancelled);
    assert_eq!(Instant::now() - stopped_at, Duration::from_millis(500));
    assert_eq!(status.snapshot().last_reconcile.unwrap().outcome, OutcomeKind::Cancelled);
}

#[tokio::test]
async fn a_missing_manifest_directory_is_an_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let fake = fake(&missing);
    let err = Controller::new(test_config(&missing), fake.clone()).run().await.unwrap_err();
    assert!(err.to_string().contains("cannot watch"), "{err}");
    assert!(fake.calls().is_empty());
}

// ---- git ----

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=mesosync test",
            "-c",
            "user.email=test@example.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A work tree with one committed manifest; returns its HEAD.
fn git_repo(dir: &Path) -> String {
    git(dir, &["init", "--quiet", "--initial-branch=main"]);
    fs::write(dir.join("web.yaml"), app_manifest("/web", 1)).unwrap();
    git(dir, &["add", "."]);
    git(dir, &["commit", "--quiet", "-m", "web"]);
    git(dir, &["rev-parse", "HEAD"])
}

#[tokio::test]
async fn the_git_head_and_dirtiness_are_read_for_every_reconcile() {
    let dir = tempfile::tempdir().unwrap();
    let head = git_repo(dir.path());
    let fake = fake(dir.path());
    let running = Running::start(Controller::new(test_config(dir.path()), fake.clone()));

    let calls = fake.wait_for_calls(1, WAIT).await;
    let revision = calls[0].revision.clone().expect("a git work tree has a revision");
    assert_eq!(revision.commit, head);
    assert!(!revision.dirty);
    assert_eq!(running.status.snapshot().revision, Some(revision));
    assert!(running.metrics.encode().contains(&format!("mesosync_git_revision{{commit=\"{head}\"}} 1")));

    // An uncommitted edit: the next reconcile applies a dirty tree.
    fs::write(dir.path().join("web.yaml"), app_manifest("/web", 2)).unwrap();
    let calls = fake.wait_for_calls(2, WAIT).await;
    let revision = calls[1].revision.clone().unwrap();
    assert_eq!((revision.commit.as_str(), revision.dirty), (head.as_str(), true));
    assert!(running.status.snapshot().last_reconcile.unwrap().revision.unwrap().dirty);
    assert!(running.metrics.encode().contains("mesosync_git_dirty 1"));

    // Committing it only touches .git, which is not watched: SIGHUP-style request.
    git(dir.path(), &["commit", "--quiet", "-am", "scale web"]);
    let new_head = git(dir.path(), &["rev-parse", "HEAD"]);
    running.triggers.send(Trigger::Signal);
    let calls = fake.wait_for_calls(3, WAIT).await;
    let revision = calls[2].revision.clone().unwrap();
    assert_eq!((revision.commit, revision.dirty), (new_head, false));
    assert!(running.metrics.encode().contains("mesosync_git_dirty 0"));

    running.stop().await;
}

/// Issue 20, the other order: a pull's trigger reaching the controller after a
/// reconcile already loaded its commit (started by the fast-forward's file events) is no
/// reason to reconcile again. A new commit that leaves the manifests as they were is one:
/// the revision is part of the key (the new commit is applied and reported).
#[tokio::test]
async fn a_git_pull_of_the_revision_already_loaded_does_not_reconcile() {
    let dir = tempfile::tempdir().unwrap();
    git_repo(dir.path());
    // The barrier files of `assert_nothing_else_pending` would make the tree dirty (a
    // new revision): ignored, they do not.
    fs::write(dir.path().join(".git/info/exclude"), ".barrier-*\n").unwrap();
    let fake = Arc::new(FakeReconcile::new(dir.path()).keyed());
    let running = Running::start(Controller::new(test_config(dir.path()), fake.clone()));
    fake.wait_for_calls(1, WAIT).await;

    running.triggers.send(Trigger::GitPull);
    assert_nothing_else_pending(&fake, &running, dir.path()).await;
    assert!(running.metrics.encode().contains("mesosync_unchanged_input_total 1"));

    fs::write(dir.path().join("README.md"), "docs only\n").unwrap();
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "--quiet", "-m", "docs"]);
    let head = git(dir.path(), &["rev-parse", "HEAD"]);
    running.triggers.send(Trigger::GitPull);
    let calls = fake.wait_for_calls(3, WAIT).await;
    assert_eq!(calls[2].reasons, [Trigger::GitPull]);
    assert_eq!(calls[2].revision.as_ref().map(|r| r.commit.as_str()), Some(head.as_str()));

    running.stop().await;
}

#[tokio::test]
async fn git_pull_fast_forwards_the_checkout_from_a_local_bare_repository() {
    let root = tempfile::tempdir().unwrap();
    let (origin, author, checkout) =
        (root.path().join("origin.git"), root.path().join("author"), root.path().join("checkout"));
    fs::create_dir(&author).unwrap();
    let first = git_repo(&author);
    git(root.path(), &["clone", "--quiet", "--bare", author.to_str().unwrap(), origin.to_str().unwrap()]);
    git(&author, &["remote", "add", "origin", &format!("file://{}", origin.display())]);
    git(root.path(), &["clone", "--quiet", origin.to_str().unwrap(), checkout.to_str().unwrap()]);

    let fake = fake(&checkout);
    let mut config = test_config(&checkout);
    config.git_pull = Some(GitPullConfig { branch: "main".into(), interval: Duration::from_millis(200) });
    let running = Running::start(Controller::new(config, fake.clone()));
    let calls = fake.wait_for_calls(1, WAIT).await;
    assert_eq!(calls[0].revision.as_ref().unwrap().commit, first);

    // Someone pushes a new commit to the branch.
    fs::write(author.join("db.yaml"), app_manifest("/db", 1)).unwrap();
    git(&author, &["add", "."]);
    git(&author, &["commit", "--quiet", "-m", "add db"]);
    git(&author, &["push", "--quiet", "origin", "main"]);
    let second = git(&author, &["rev-parse", "HEAD"]);

    // The controller fetches, fast-forwards and reconciles the new commit.
    let deadline = Instant::now() + WAIT;
    loop {
        let calls = fake.calls();
        if let Some(call) = calls.iter().find(|c| c.revision.as_ref().is_some_and(|r| r.commit == second)) {
            assert!(!call.revision.as_ref().unwrap().dirty);
            assert!(
                call.reasons.iter().any(|r| matches!(r, Trigger::GitPull | Trigger::FileChange)),
                "{call:#?}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "the new commit was never reconciled: {calls:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(git(&checkout, &["rev-parse", "HEAD"]), second);
    assert!(checkout.join("db.yaml").exists());
    let objects = running.status.snapshot().objects;
    assert!(objects.iter().any(|o| o.object == ObjectRef::app("/db")), "{objects:?}");

    running.stop().await;
}

#[tokio::test]
async fn git_pull_outside_a_git_checkout_is_refused_at_start() {
    let dir = manifest_dir();
    let mut config = test_config(dir.path());
    config.git_pull = Some(GitPullConfig { branch: "main".into(), interval: Duration::from_secs(30) });
    let fake = fake(dir.path());
    let err = Controller::new(config, fake.clone()).run().await.unwrap_err();
    assert!(err.to_string().contains("not inside a git work tree"), "{err}");
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn a_failing_git_pull_is_reported_and_the_controller_keeps_going() {
    let dir = tempfile::tempdir().unwrap();
    git_repo(dir.path());
    git(dir.path(), &["remote", "add", "origin", &format!("file://{}/missing.git", dir.path().display())]);
    let fake = fake(dir.path());
    let mut config = test_config(dir.path());
    config.git_pull = Some(GitPullConfig { branch: "main".into(), interval: Duration::from_millis(100) });
    let running = Running::start(Controller::new(config, fake.clone()));
    fake.wait_for_calls(1, WAIT).await;
    let deadline = Instant::now() + WAIT;
    while !running.status.snapshot().last_errors.iter().any(|e| e.message.starts_with("git pull main")) {
        assert!(Instant::now() < deadline, "no git pull error reported");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(running.status.is_ready());
    running.stop().await;
}
