//! The write fence: checked before every write to Marathon or Chronos.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::time::Instant;
use zookeeper_client as zk;

/// A cheap, cloneable "may this replica write now?" check.
///
/// In HA mode it is open only while all of these hold, each checked on every call:
/// - the election made this replica leader (and has not seen its znode go since);
/// - the ZooKeeper session is connected right now, as the client library last saw it, so
///   the fence closes the moment the client sees a disconnect, not only on expiry;
/// - the leader's lease has not run out: a read of its own znode answered by ZooKeeper was
///   *sent* less than half a session timeout ago. ZooKeeper cannot expire the session (and
///   so let another replica lead) before a full session timeout after that send, so a
///   leader whose process was paused or partitioned stops writing before anyone else can
///   start, even if the client library has not noticed yet.
///
/// Without HA ([`Fence::always_open`]) it is always open.
#[derive(Clone)]
pub struct Fence {
    inner: Arc<Inner>,
}

struct Inner {
    always: bool,
    leader: AtomicBool,
    base: Instant,
    /// Nanoseconds after `base` until which the lease holds.
    lease_until: AtomicU64,
    session: RwLock<Option<zk::StateWatcher>>,
}

impl Fence {
    /// The fence of a single replica (no `--ha-zk`): every write may go.
    pub fn always_open() -> Fence {
        Fence::build(true)
    }

    pub(crate) fn closed() -> Fence {
        Fence::build(false)
    }

    fn build(always: bool) -> Fence {
        Fence {
            inner: Arc::new(Inner {
                always,
                leader: AtomicBool::new(false),
                base: Instant::now(),
                lease_until: AtomicU64::new(0),
                session: RwLock::new(None),
            }),
        }
    }

    /// Whether a new write may start now. An in-flight write is not interrupted: check this
    /// right before sending each request.
    pub fn may_write(&self) -> bool {
        let inner = &self.inner;
        if inner.always {
            return true;
        }
        if !inner.leader.load(Ordering::SeqCst) {
            return false;
        }
        let now = inner.base.elapsed().as_nanos() as u64;
        if now >= inner.lease_until.load(Ordering::SeqCst) {
            return false;
        }
        let session = inner.session.read().unwrap_or_else(|e| e.into_inner());
        matches!(session.as_ref().map(|s| s.peek_state()), Some(zk::SessionState::SyncConnected))
    }

    /// The fence as a plain closure, the shape `apply::ApplyOptions::write_fence` takes.
    pub fn as_fn(&self) -> Arc<dyn Fn() -> bool + Send + Sync> {
        let fence = self.clone();
        Arc::new(move || fence.may_write())
    }

    /// How long the current lease still holds (zero when closed); for /status and tests.
    pub fn lease_remaining(&self) -> Duration {
        if self.inner.always {
            return Duration::MAX;
        }
        if !self.inner.leader.load(Ordering::SeqCst) {
            return Duration::ZERO;
        }
        let now = self.inner.base.elapsed().as_nanos() as u64;
        Duration::from_nanos(self.inner.lease_until.load(Ordering::SeqCst).saturating_sub(now))
    }

    /// A new session: its state is what `may_write` checks from now on. Closes the fence.
    pub(crate) fn set_session(&self, watcher: Option<zk::StateWatcher>) {
        self.close();
        *self.inner.session.write().unwrap_or_else(|e| e.into_inner()) = watcher;
    }

    /// Leadership verified by a request sent at `sent`: open until `sent + lease`.
    pub(crate) fn grant(&self, sent: Instant, lease: Duration) {
        let until = (sent + lease).saturating_duration_since(self.inner.base);
        self.inner.lease_until.store(until.as_nanos() as u64, Ordering::SeqCst);
        self.inner.leader.store(true, Ordering::SeqCst);
    }

    /// Stops all new writes at once.
    pub(crate) fn close(&self) {
        self.inner.leader.store(false, Ordering::SeqCst);
        self.inner.lease_until.store(0, Ordering::SeqCst);
    }
}

impl fmt::Debug for Fence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fence")
            .field("always", &self.inner.always)
            .field("may_write", &self.may_write())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn always_open_and_closed() {
        assert!(Fence::always_open().may_write());
        assert!((Fence::always_open().as_fn())());
        let f = Fence::closed();
        assert!(!f.may_write());
        assert_eq!(f.lease_remaining(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn needs_a_connected_session_and_a_live_lease() {
        let f = Fence::closed();
        // Leader with a lease but no session: closed.
        f.grant(Instant::now(), Duration::from_secs(10));
        assert!(!f.may_write());
        assert_eq!(f.lease_remaining(), Duration::from_secs(10));
        // A lease that already ran out keeps it closed whatever else holds.
        f.grant(Instant::now() - Duration::from_secs(20), Duration::from_secs(10));
        assert_eq!(f.lease_remaining(), Duration::ZERO);
        f.close();
        assert!(!f.may_write());
    }

    /// The lease runs from when the answered check was *sent*, and ends exactly one lease
    /// later, however late the answer came: a partitioned leader's fence closes on time
    /// with no further word from ZooKeeper.
    #[tokio::test(start_paused = true)]
    async fn the_lease_ends_one_lease_after_the_check_was_sent() {
        let lease = Duration::from_millis(1000);
        let f = Fence::closed();
        let sent = Instant::now();
        tokio::time::advance(Duration::from_millis(300)).await; // the answer's round trip
        f.grant(sent, lease);
        assert_eq!(f.lease_remaining(), Duration::from_millis(700));
        tokio::time::advance(Duration::from_millis(699)).await;
        assert_eq!(f.lease_remaining(), Duration::from_millis(1));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(f.lease_remaining(), Duration::ZERO, "closed at sent + lease");
        // A renewal sent later extends it; a close ends it at once.
        f.grant(Instant::now(), lease);
        assert_eq!(f.lease_remaining(), lease);
        f.close();
        assert_eq!(f.lease_remaining(), Duration::ZERO);
    }
}
