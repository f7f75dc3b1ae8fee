//! Leader election on a real ZooKeeper (Debian's `zookeeper` package, started per test by
//! `scripts/zookeeper.sh` on a free loopback port with a temp data dir). Each test has
//! its own server, since some stop, restart or partition it. Without ZooKeeper installed
//! (`make test-deps`) the tests fail under CI and print SKIPPED elsewhere (`requires`).
//!
//! No assertion bounds a wall-clock duration tightly (a loaded machine stretches them
//! all): safety is asserted as an order of events (the old leader's fence closes before
//! another replica may write; two fences are never open at once), liveness as a wait for
//! an observable condition with a generous deadline. Where "at once" matters (a graceful
//! handover must not wait for the session to expire), the session is long enough that
//! the deadline cannot be met by expiry. The lease arithmetic itself (a fence closes one
//! lease after the check was sent) is tested under tokio's paused clock in `ha::fence`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mesosync::ha::{ElectionConfig, Fence, LeaderElection, LeaderInfo, Role, ZkUrl};

use super::zk::ZkServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zookeeper_client as zk;

/// Requested session timeout: 2 s unless MESOSYNC_HA_TEST_SESSION_MS says otherwise (to
/// measure failover at production settings). The server's tickTime is 500 ms, its
/// minimum session 1 s, its maximum 30 s.
fn session() -> Duration {
    let ms = std::env::var("MESOSYNC_HA_TEST_SESSION_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    Duration::from_millis(ms)
}
/// A session far longer than any handover that does not wait for it: a handover within
/// half of it cannot have come from an expiry.
const LONG_SESSION: Duration = Duration::from_secs(20);

fn elector(url: &ZkUrl, name: &str) -> LeaderElection {
    elector_with_session(url, name, session())
}

fn elector_with_session(url: &ZkUrl, name: &str, session: Duration) -> LeaderElection {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("MESOSYNC_TEST_LOG"))
        .with_test_writer()
        .try_init();
    let mut config = ElectionConfig::new(url.clone(), "test");
    config.session_timeout = session;
    config.max_retry_delay = Duration::from_millis(300);
    config.identity.endpoint = Some(format!("replica-{name}"));
    LeaderElection::start(config).expect("valid election config")
}

async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cond()
}

fn endpoint(info: &Option<LeaderInfo>) -> Option<String> {
    info.as_ref().and_then(|i| i.endpoint.clone())
}

/// Waits for exactly one leader among `electors` and every other one following it.
async fn settled(electors: &[&LeaderElection], limit: Duration) -> Option<usize> {
    let mut leader = None;
    let ok = wait_until(limit, || {
        let roles: Vec<Role> = electors.iter().map(|e| e.role()).collect();
        let leaders: Vec<usize> = (0..roles.len()).filter(|&i| roles[i].is_leader()).collect();
        if leaders.len() != 1 {
            return false;
        }
        let id = electors[leaders[0]].me().id;
        let all_follow = roles.iter().enumerate().all(|(i, r)| match r {
            Role::Leader => i == leaders[0],
            Role::Follower { leader: Some(l) } => l.id == id,
            _ => false,
        });
        leader = Some(leaders[0]);
        all_follow && electors[leaders[0]].fence().may_write()
    })
    .await;
    if ok { leader } else { None }
}

/// Samples fences every millisecond and remembers whether two were ever open at once.
struct SplitBrainMonitor {
    stop: Arc<AtomicBool>,
    violations: Arc<AtomicU64>,
    handle: std::thread::JoinHandle<()>,
}

impl SplitBrainMonitor {
    fn start(fences: Vec<Fence>) -> SplitBrainMonitor {
        let stop = Arc::new(AtomicBool::new(false));
        let violations = Arc::new(AtomicU64::new(0));
        let (s, v) = (stop.clone(), violations.clone());
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                if fences.iter().filter(|f| f.may_write()).count() > 1 {
                    v.fetch_add(1, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        SplitBrainMonitor { stop, violations, handle }
    }

    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().unwrap();
        self.violations.load(Ordering::SeqCst)
    }
}

/// Records when a fence first reads closed, from a thread of its own (so that a test
/// blocked in a script does not delay the measurement).
struct FenceWatch {
    closed: Arc<Mutex<Option<Instant>>>,
}

impl FenceWatch {
    fn start(fence: Fence) -> FenceWatch {
        let closed = Arc::new(Mutex::new(None));
        let at = closed.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(30) {
                if !fence.may_write() {
                    *at.lock().unwrap() = Some(Instant::now());
                    return;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        FenceWatch { closed }
    }

    fn closed_after(&self, t0: Instant, limit: Duration) -> Option<Duration> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(at) = *self.closed.lock().unwrap() {
                return Some(at.saturating_duration_since(t0));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }
}

async fn raw_client(server: &ZkServer) -> zk::Client {
    zk::Client::connect(&server.address()).await.expect("raw ZooKeeper client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_electors_elect_exactly_one_leader_visible_in_zookeeper() {
    let Some(server) = ZkServer::start("two_electors_elect_exactly_one_leader") else { return };
    let url = server.url("/mesosync");
    let a = elector(&url, "a");
    assert!(wait_until(session() * 3, || a.role().is_leader()).await, "a alone never led: {:?}", a.role());
    let b = elector(&url, "b");
    let leader = settled(&[&a, &b], session() * 3).await.expect("one leader, one follower");
    assert_eq!(leader, 0, "the first member leads");
    assert!(a.fence().may_write());
    assert!(!b.fence().may_write(), "a follower never writes");
    assert_eq!(endpoint(&b.leader_info()), Some("replica-a".into()));
    assert_eq!(endpoint(&a.leader_info()), Some("replica-a".into()));

    // ZooKeeper shows both members; the lowest is the leader, with its identity as JSON.
    let raw = raw_client(&server).await;
    assert_eq!(a.election_path(), "/mesosync/test/leader");
    let mut children = raw.list_children(a.election_path()).await.unwrap();
    children.sort_by_key(|c| c.rsplit('-').next().unwrap().to_string());
    assert_eq!(children.len(), 2, "{children:?}");
    assert_eq!(Some(children[0].clone()), a.me().node);
    let (data, stat) = raw.get_data(&format!("{}/{}", a.election_path(), children[0])).await.unwrap();
    assert_ne!(stat.ephemeral_owner, 0, "member znodes are ephemeral");
    let json: serde_json::Value = serde_json::from_slice(&data).unwrap();
    assert_eq!(json["pid"], std::process::id());
    assert_eq!(json["host"], a.me().host);
    assert!(json["started"].is_string());

    // The revision reaches ZooKeeper and the follower's view.
    a.update_revision("rev-2");
    assert!(
        wait_until(session(), || b.leader_info().and_then(|l| l.revision).as_deref() == Some("rev-2")).await,
        "follower did not see the new revision: {:?}",
        b.leader_info()
    );
    let (data, _) = raw.get_data(&format!("{}/{}", a.election_path(), children[0])).await.unwrap();
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&data).unwrap()["revision"], "rev-2");

    // /status material.
    let status = serde_json::to_value(b.status()).unwrap();
    assert_eq!(status["role"], "follower");
    assert_eq!(status["leader"]["revision"], "rev-2");
    assert_eq!(status["may_write"], false);
    assert_eq!(status["election_path"], "/mesosync/test/leader");
    // The lease is renewed in the background; on a loaded machine it can lapse for a
    // moment (the fence closes, as it must), so wait for the leader's status to say so.
    assert!(
        wait_until(session(), || a.status().may_write).await,
        "the leader may not write: {:?}",
        a.status()
    );
    let status = serde_json::to_value(a.status()).unwrap();
    assert_eq!(status["role"], "leader");
    assert_eq!(status["may_write"], true);
    assert_eq!(status["elections_won"], 1);

    // Metrics.
    let mut registry = prometheus_client::registry::Registry::with_prefix("mesosync");
    b.register_metrics(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(text.contains("mesosync_ha_leader 0"), "{text}");
    assert!(text.contains("mesosync_ha_role{role=\"follower\"} 1"), "{text}");
    assert!(text.contains("mesosync_ha_zk_connected 1"), "{text}");
    assert!(text.contains("revision=\"rev-2\""), "{text}");

    // A third member, still one leader.
    let c = elector(&url, "c");
    assert_eq!(settled(&[&a, &b, &c], session() * 3).await, Some(0));
    for e in [a, b, c] {
        e.shutdown().await;
    }
    assert!(
        raw.list_children("/mesosync/test/leader").await.unwrap().is_empty(),
        "shutdown deletes the znodes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_and_drop_hand_over_at_once() {
    let Some(server) = ZkServer::start("graceful_shutdown_and_drop_hand_over_at_once") else { return };
    let url = server.url("/ha");
    let elector = |name| elector_with_session(&url, name, LONG_SESSION);
    let a = elector("a");
    assert!(wait_until(LONG_SESSION, || a.role().is_leader()).await);
    let b = elector("b");
    assert_eq!(settled(&[&a, &b], LONG_SESSION).await, Some(0));
    let c = elector("c");
    assert_eq!(settled(&[&a, &b, &c], LONG_SESSION).await, Some(0));
    let monitor = SplitBrainMonitor::start(vec![a.fence(), b.fence(), c.fence()]);
    let raw = raw_client(&server).await;
    let a_node = format!("{}/{}", a.election_path(), a.me().node.unwrap());

    // Within half a session: only the deleted znode, not an expiry, can explain it.
    let t0 = Instant::now();
    a.shutdown().await;
    assert!(raw.check_stat(&a_node).await.unwrap().is_none(), "shutdown deleted the znode");
    assert_eq!(settled(&[&b, &c], LONG_SESSION / 2).await, Some(0), "b (next in line) leads");
    println!("ha: graceful shutdown handover took {:?}", t0.elapsed());

    let t0 = Instant::now();
    drop(b);
    assert_eq!(settled(&[&c], LONG_SESSION / 2).await, Some(0), "dropping closes the session");
    println!("ha: drop handover took {:?}", t0.elapsed());
    assert_eq!(monitor.finish(), 0, "two fences were open at once");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_leader_session_hands_over_and_the_old_leader_rejoins() {
    let Some(server) = ZkServer::start("expired_leader_session_hands_over") else { return };
    let url = server.url("/ha");
    let a = elector(&url, "a");
    assert!(wait_until(session() * 3, || a.role().is_leader()).await);
    let b = elector(&url, "b");
    assert_eq!(settled(&[&a, &b], session() * 3).await, Some(0));
    let old_node = a.me().node;

    let t0 = Instant::now();
    a.expire_session().await.expect("expire a's session");
    assert!(wait_until(session() * 3, || b.role().is_leader()).await, "b did not take over: {:?}", b.role());
    println!("ha: takeover after forced expiry took {:?}", t0.elapsed());
    // A forced expiry (another connection taking the session over and closing it) ends
    // the session at once, so b may lead while a's lease still runs, which no real expiry
    // (a session timeout after a's last answered check) allows. What holds either way:
    // a's fence closes by the end of its lease at the latest (the lease is read off the
    // clock, so the last check of `wait_until`, after the deadline, cannot be early).
    assert!(
        wait_until(session(), || !a.fence().may_write()).await,
        "the expired leader may still write a session timeout later"
    );

    // The old leader joins again with a new session, as a follower of b.
    assert_eq!(settled(&[&a, &b], session() * 4).await, Some(1), "a: {:?}, b: {:?}", a.role(), b.role());
    assert_eq!(a.status().sessions, 2);
    assert_ne!(a.me().node, old_node);
    let raw = raw_client(&server).await;
    assert_eq!(raw.list_children(a.election_path()).await.unwrap().len(), 2, "the expired node is gone");
    a.shutdown().await;
    b.shutdown().await;
}

/// A TCP relay that can drop everything in both directions without closing anything: a
/// network partition as the client and the server see it.
struct Partition {
    port: u16,
    /// (cut, generation): connections only forward while not cut and of the current
    /// generation, so a connection that lost bytes never forwards again.
    state: Arc<Mutex<(bool, u64)>>,
}

impl Partition {
    async fn start(upstream: String) -> Partition {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new((false, 0u64)));
        let st = state.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let generation = st.lock().unwrap().1;
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else { continue };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, st.clone(), generation));
                tokio::spawn(pump(sr, cw, st.clone(), generation));
            }
        });
        Partition { port, state }
    }

    fn cut(&self, cut: bool) {
        let mut st = self.state.lock().unwrap();
        st.0 = cut;
        st.1 += 1;
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    state: Arc<Mutex<(bool, u64)>>,
    generation: u64,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let forward = {
            let st = state.lock().unwrap();
            !st.0 && st.1 == generation
        };
        if forward && to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_leader_stops_writing_before_another_replica_leads() {
    let Some(server) = ZkServer::start("partitioned_leader_stops_writing") else { return };
    let partition = Partition::start(server.address()).await;
    let via_partition: ZkUrl = format!("zk://127.0.0.1:{}/ha", partition.port).parse().unwrap();
    let a = elector(&via_partition, "a");
    assert!(wait_until(session() * 3, || a.role().is_leader()).await, "a: {:?}", a.role());
    let b = elector(&server.url("/ha"), "b");
    assert_eq!(settled(&[&a, &b], session() * 3).await, Some(0));
    let monitor = SplitBrainMonitor::start(vec![a.fence(), b.fence()]);

    let t0 = Instant::now();
    partition.cut(true);
    let fence = a.fence();
    let mut fence_closed = None;
    let mut b_leads = None;
    while t0.elapsed() < session() * 3 && (fence_closed.is_none() || b_leads.is_none()) {
        if fence_closed.is_none() && !fence.may_write() {
            fence_closed = Some(t0.elapsed());
        }
        if b_leads.is_none() && b.fence().may_write() {
            b_leads = Some(t0.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let fence_closed = fence_closed.expect("the partitioned leader's fence never closed");
    let b_leads = b_leads.expect("b never took over");
    println!(
        "ha: partition (session timeout {:?}): old leader's fence closed after {fence_closed:?}, \
         new leader writing after {b_leads:?}",
        session()
    );
    // The order is the promise: the lease (half a session, from the last check *sent*)
    // runs out before ZooKeeper can expire the session and let b lead.
    assert!(fence_closed < b_leads, "the new leader started before the old one stopped");
    assert!(!a.role().is_leader() || !a.fence().may_write());

    // Healed: a gets a new session (the old one expired) and follows b.
    partition.cut(false);
    assert_eq!(settled(&[&a, &b], session() * 5).await, Some(1), "a: {:?}, b: {:?}", a.role(), b.role());
    assert_eq!(monitor.finish(), 0, "two fences were open at once");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zookeeper_down_closes_the_fence_and_a_restart_elects_one_leader() {
    let Some(server) = ZkServer::start("zookeeper_down_closes_the_fence") else { return };
    let url = server.url("/ha");
    let a = elector(&url, "a");
    assert!(wait_until(session() * 3, || a.role().is_leader()).await);
    let b = elector(&url, "b");
    assert_eq!(settled(&[&a, &b], session() * 3).await, Some(0));
    let monitor = SplitBrainMonitor::start(vec![a.fence(), b.fence()]);

    let closed_at = FenceWatch::start(a.fence());
    let t0 = Instant::now();
    server.stop();
    // Nobody else can lead without ZooKeeper; still, the fence closes on the lost
    // connection, or by the end of its lease (half a session) at the latest.
    assert!(wait_until(session(), || !a.fence().may_write()).await, "the fence stayed open a session long");
    println!("ha: ZooKeeper killed: leader's fence closed after {:?}", closed_at.closed_after(t0, session()));
    assert!(
        wait_until(session() * 3, || a.role() == Role::Disconnected && b.role() == Role::Disconnected).await
    );
    // Nobody writes while ZooKeeper is away.
    tokio::time::sleep(session()).await;
    assert!(!a.fence().may_write() && !b.fence().may_write());

    server.restart();
    let t1 = Instant::now();
    let leader = settled(&[&a, &b], session() * 6).await;
    assert!(leader.is_some(), "no single leader after restart: a {:?}, b {:?}", a.role(), b.role());
    println!("ha: ZooKeeper restarted: one leader again after {:?}", t1.elapsed());
    // Stable: still exactly one leader a session timeout later.
    tokio::time::sleep(session()).await;
    assert_eq!(settled(&[&a, &b], session()).await, leader);
    assert_eq!(monitor.finish(), 0, "two fences were open at once");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_without_zookeeper_and_leads_once_it_is_up() {
    let Some(server) = ZkServer::start("starts_without_zookeeper") else { return };
    server.stop();
    let a = elector(&server.url("/ha"), "a");
    tokio::time::sleep(session()).await;
    assert_eq!(a.role(), Role::Disconnected);
    assert!(!a.fence().may_write());
    assert_eq!(a.status().role, "disconnected");
    server.restart();
    assert!(
        wait_until(session() * 4, || a.role().is_leader() && a.fence().may_write()).await,
        "{:?}",
        a.role()
    );
    a.shutdown().await;
}

#[test]
fn bad_instance_names_are_refused() {
    let url: ZkUrl = "zk://127.0.0.1:1/x".parse().unwrap();
    let config = ElectionConfig::new(url, "a/b");
    assert!(LeaderElection::start(config).is_err());
    assert!(Fence::always_open().may_write());
}
