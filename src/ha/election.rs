//! The election itself: one background task per replica, one ZooKeeper session at a time.

use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use zookeeper_client as zk;

use super::fence::Fence;
use super::url::{ZkUrl, ZkUrlError, check_instance};

/// Prefix of every member znode's name.
const MEMBER: &str = "member-";

/// How a replica takes part in the election.
#[derive(Clone, Debug)]
pub struct ElectionConfig {
    /// The ensemble and root znode (`--ha-zk`).
    pub url: ZkUrl,
    /// One controller deployment: replicas with the same instance elect one leader among
    /// them. One znode name (no `/`).
    pub instance: String,
    /// Requested ZooKeeper session timeout; the server clamps it to its
    /// `[minSessionTimeout, maxSessionTimeout]`. A crashed leader is replaced after about
    /// this long; a partitioned leader stops writing within half of it.
    pub session_timeout: Duration,
    /// Upper bound of the back-off between attempts to reach ZooKeeper.
    pub max_retry_delay: Duration,
    /// What this replica writes into its znode (and shows as leader).
    pub identity: LeaderInfo,
}

impl ElectionConfig {
    /// Defaults: 10 s session timeout (Marathon's), this process's identity.
    pub fn new(url: ZkUrl, instance: impl Into<String>) -> ElectionConfig {
        ElectionConfig {
            url,
            instance: instance.into(),
            session_timeout: Duration::from_secs(10),
            max_retry_delay: Duration::from_secs(2),
            identity: LeaderInfo::this_process(),
        }
    }

    /// `<root>/<instance>/leader`.
    pub fn election_path(&self) -> String {
        self.url.election_path(&self.instance)
    }
}

/// A replica's identity, as stored (JSON) in its election znode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderInfo {
    /// Unique per process (a UUID), so that two replicas on one host are told apart.
    pub id: String,
    pub host: String,
    pub pid: u32,
    /// The manifest revision this replica last reconciled, when it knows one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    pub started: DateTime<Utc>,
    /// Where its HTTP server listens (e.g. `http://10.0.0.5:8080`), if it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The member znode's name (`member-…`); filled in when read, not stored in the data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

impl LeaderInfo {
    /// This process: host name, pid, a fresh id, started now.
    pub fn this_process() -> LeaderInfo {
        LeaderInfo {
            id: uuid::Uuid::new_v4().to_string(),
            host: host_name(),
            pid: std::process::id(),
            revision: None,
            started: Utc::now(),
            endpoint: None,
            node: None,
        }
    }

    fn to_znode_data(&self) -> Vec<u8> {
        let mut stored = self.clone();
        stored.node = None;
        serde_json::to_vec(&stored).unwrap_or_default()
    }

    fn from_znode_data(data: &[u8], node: &str) -> Option<LeaderInfo> {
        let mut info: LeaderInfo = serde_json::from_slice(data).ok()?;
        info.node = Some(node.to_string());
        Some(info)
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "localhost".to_string())
}

/// This replica's part in the election, as last seen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum Role {
    /// No usable ZooKeeper session (connecting, disconnected, expired, stopped): no writes.
    Disconnected,
    /// Another member leads; `leader` is its identity when its znode could be read.
    Follower { leader: Option<LeaderInfo> },
    /// This replica leads (its fence may still close on a lapse, before the role changes).
    Leader,
}

impl Role {
    /// `"leader"`, `"follower"` or `"disconnected"`, as /status and metrics say it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Disconnected => "disconnected",
            Role::Follower { .. } => "follower",
            Role::Leader => "leader",
        }
    }

    pub fn is_leader(&self) -> bool {
        matches!(self, Role::Leader)
    }
}

/// What /status shows of HA.
#[derive(Clone, Debug, Serialize)]
pub struct HaStatus {
    /// `leader`, `follower` or `disconnected`.
    pub role: &'static str,
    /// Who leads, as far as this replica knows (itself when leader).
    pub leader: Option<LeaderInfo>,
    /// This replica, with its znode once created.
    pub me: LeaderInfo,
    /// Whether a write may start now.
    pub may_write: bool,
    pub zookeeper: String,
    pub election_path: String,
    /// `0x…` of the current session, if any.
    pub session_id: Option<String>,
    /// The client's last session state (`SyncConnected`, `Disconnected`, `Expired`, …).
    pub session_state: String,
    /// Negotiated session timeout, milliseconds.
    pub session_timeout_ms: Option<u64>,
    /// When this replica last became leader, while it leads.
    pub leader_since: Option<DateTime<Utc>>,
    /// Sessions established since start (1 unless one expired or was lost).
    pub sessions: u64,
    /// Times this replica became leader.
    pub elections_won: u64,
}

enum Command {
    /// Rewrite this member's znode data (the identity changed).
    Refresh,
    Shutdown(oneshot::Sender<()>),
}

struct Status {
    me: LeaderInfo,
    leader: Option<LeaderInfo>,
    session: Option<zk::SessionInfo>,
    session_state: String,
    session_timeout: Option<Duration>,
    leader_since: Option<DateTime<Utc>>,
    sessions: u64,
    elections_won: u64,
}

#[derive(Clone, Default)]
struct Metrics {
    leader: Gauge,
    connected: Gauge,
    role: Family<Vec<(String, String)>, Gauge>,
    leader_info: Family<Vec<(String, String)>, Gauge>,
    sessions: Counter,
    elections_won: Counter,
}

struct Shared {
    config: ElectionConfig,
    path: String,
    fence: Fence,
    role: watch::Sender<Role>,
    status: Mutex<Status>,
    metrics: Metrics,
}

impl Shared {
    fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn me(&self) -> LeaderInfo {
        self.status().me.clone()
    }

    /// Publishes a role; the fence is handled by the caller (closed before a non-leader
    /// role is published, opened before `Leader` is).
    fn set_role(&self, role: Role) {
        let leader = match &role {
            Role::Leader => Some(self.me()),
            Role::Follower { leader } => leader.clone(),
            Role::Disconnected => None,
        };
        {
            let mut st = self.status();
            if role.is_leader() && st.leader_since.is_none() {
                st.leader_since = Some(Utc::now());
                st.elections_won += 1;
                self.metrics.elections_won.inc();
            } else if !role.is_leader() {
                st.leader_since = None;
            }
            st.leader = leader.clone();
        }
        self.metrics.leader.set(role.is_leader() as i64);
        self.metrics.role.clear();
        self.metrics.role.get_or_create(&vec![("role".to_string(), role.as_str().to_string())]).set(1);
        self.metrics.leader_info.clear();
        if let Some(l) = &leader {
            let labels = vec![
                ("host".to_string(), l.host.clone()),
                ("pid".to_string(), l.pid.to_string()),
                ("id".to_string(), l.id.clone()),
                ("revision".to_string(), l.revision.clone().unwrap_or_default()),
            ];
            self.metrics.leader_info.get_or_create(&labels).set(1);
        }
        self.role.send_if_modified(|current| {
            if *current == role {
                false
            } else {
                tracing::info!(role = role.as_str(), leader = ?leader.as_ref().map(|l| (&l.host, l.pid)), "ha: role changed");
                *current = role;
                true
            }
        });
    }

    fn set_session_state(&self, state: zk::SessionState) {
        self.status().session_state = state.to_string();
        self.metrics.connected.set((state == zk::SessionState::SyncConnected) as i64);
    }

    fn lose_leadership(&self, role: Role) {
        self.fence.close();
        self.set_role(role);
    }
}

/// One replica's membership in the election. Start it with [`LeaderElection::start`]
/// (inside a Tokio runtime); it connects, joins and rejoins in the background for as
/// long as it lives. Dropping it ends the membership as well (the session is closed);
/// [`LeaderElection::shutdown`] does so and waits until the znode is gone.
pub struct LeaderElection {
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
    task: Option<JoinHandle<()>>,
}

/// A cheap, cloneable view of a [`LeaderElection`] for other tasks (the reconciler
/// publishing its revision, the status reporter). It does not keep the election alive.
#[derive(Clone)]
pub struct ElectionHandle {
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
}

impl ElectionHandle {
    /// Records the revision this replica reconciled and rewrites its znode data, so
    /// that ZooKeeper and the followers' /status show it.
    pub fn update_revision(&self, revision: impl Into<String>) {
        let revision = Some(revision.into());
        let changed = {
            let mut st = self.shared.status();
            let changed = st.me.revision != revision;
            st.me.revision = revision;
            if st.leader.as_ref().is_some_and(|l| l.id == st.me.id) {
                st.leader = Some(st.me.clone());
            }
            changed
        };
        if changed {
            let _ = self.commands.send(Command::Refresh);
        }
    }

    /// A snapshot for /status.
    pub fn status(&self) -> HaStatus {
        let role = self.shared.role.borrow().clone();
        let st = self.shared.status();
        HaStatus {
            role: role.as_str(),
            leader: st.leader.clone(),
            me: st.me.clone(),
            may_write: self.shared.fence.may_write(),
            zookeeper: self.shared.config.url.to_string(),
            election_path: self.shared.path.clone(),
            session_id: st.session.as_ref().map(|s| s.id().to_string()),
            session_state: st.session_state.clone(),
            session_timeout_ms: st.session_timeout.map(|t| t.as_millis() as u64),
            leader_since: st.leader_since,
            sessions: st.sessions,
            elections_won: st.elections_won,
        }
    }
}

impl LeaderElection {
    /// Starts taking part. Never blocks on ZooKeeper: the role is
    /// [`Role::Disconnected`] until a session is up.
    pub fn start(config: ElectionConfig) -> Result<LeaderElection, ZkUrlError> {
        check_instance(&config.instance)?;
        let path = config.election_path();
        let (role, _) = watch::channel(Role::Disconnected);
        let shared = Arc::new(Shared {
            path,
            fence: Fence::closed(),
            role,
            status: Mutex::new(Status {
                me: config.identity.clone(),
                leader: None,
                session: None,
                session_state: zk::SessionState::Disconnected.to_string(),
                session_timeout: None,
                leader_since: None,
                sessions: 0,
                elections_won: 0,
            }),
            metrics: Metrics::default(),
            config,
        });
        shared.set_role(Role::Disconnected);
        let (commands, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(shared.clone(), rx));
        Ok(LeaderElection { shared, commands, task: Some(task) })
    }

    /// A cheap handle for other tasks: status and revision updates.
    pub fn handle(&self) -> ElectionHandle {
        ElectionHandle { shared: self.shared.clone(), commands: self.commands.clone() }
    }

    /// The write fence; clones are cheap and all see the same state.
    pub fn fence(&self) -> Fence {
        self.shared.fence.clone()
    }

    /// The current role.
    pub fn role(&self) -> Role {
        self.shared.role.borrow().clone()
    }

    /// Role changes, e.g. to reconcile at once on becoming leader.
    pub fn subscribe(&self) -> watch::Receiver<Role> {
        self.shared.role.subscribe()
    }

    /// Who leads, as far as this replica knows: itself when leader, the leader's znode
    /// data when follower, `None` when disconnected or unknown.
    pub fn leader_info(&self) -> Option<LeaderInfo> {
        self.shared.status().leader.clone()
    }

    /// This replica's identity (with its znode name once it has one).
    pub fn me(&self) -> LeaderInfo {
        self.shared.me()
    }

    /// The election directory, `<root>/<instance>/leader`.
    pub fn election_path(&self) -> &str {
        &self.shared.path
    }

    /// Records the revision this replica reconciled and rewrites its znode data, so
    /// that ZooKeeper and the followers' /status show it.
    pub fn update_revision(&self, revision: impl Into<String>) {
        self.handle().update_revision(revision);
    }

    /// A snapshot for /status.
    pub fn status(&self) -> HaStatus {
        self.handle().status()
    }

    /// Registers the `ha_*` metrics in `registry` (the controller's, whose `mesosync`
    /// prefix makes them `mesosync_ha_*`): `leader` (1 on the leader), `zk_connected`,
    /// `role{role}`, `leader_info{host,pid,id,revision}`, `sessions_total`,
    /// `elections_won_total`.
    pub fn register_metrics(&self, registry: &mut Registry) {
        let m = &self.shared.metrics;
        registry.register("ha_leader", "1 while this replica is the HA leader", m.leader.clone());
        registry.register(
            "ha_zk_connected",
            "1 while the ZooKeeper session is connected",
            m.connected.clone(),
        );
        registry.register("ha_role", "This replica's HA role (label role)", m.role.clone());
        registry.register(
            "ha_leader_info",
            "The current HA leader as this replica knows it",
            m.leader_info.clone(),
        );
        registry.register("ha_sessions", "ZooKeeper sessions established", m.sessions.clone());
        registry.register("ha_elections_won", "Times this replica became HA leader", m.elections_won.clone());
    }

    /// Leaves the election: closes the fence, deletes this member's znode (the next member
    /// leads at once) and closes the session. Waits at most a few seconds.
    pub async fn shutdown(mut self) {
        self.shared.fence.close();
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Shutdown(tx)).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.shared.lose_leadership(Role::Disconnected);
    }

    /// Test hook: makes ZooKeeper end this replica's current session, as an expiry after
    /// a long partition would: a second connection takes the session over and closes it
    /// (this replica's client reconnects at once and may take it back first; so retried).
    #[doc(hidden)]
    pub async fn expire_session(&self) -> Result<(), String> {
        let session = self.shared.status().session.clone().ok_or("no session")?;
        let mut last = String::new();
        for _ in 0..50 {
            let thief = connector(&self.shared.config)
                .with_session(session.clone())
                .with_fail_eagerly()
                .connect(&self.shared.config.url.connect_string())
                .await;
            match thief {
                Ok(thief) => {
                    drop(thief);
                    return Ok(());
                }
                Err(zk::Error::SessionExpired) => return Ok(()),
                Err(err) => last = err.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err(last)
    }
}

impl Drop for LeaderElection {
    fn drop(&mut self) {
        self.shared.fence.close();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// How a session ended.
enum End {
    /// It expired or failed; `stale` are member znodes (full paths) of ours that may linger
    /// until the server notices.
    Lost {
        stale: Vec<String>,
    },
    Shutdown(Option<oneshot::Sender<()>>),
}

/// What an election round decided.
enum Flow {
    /// Look at the members again.
    Again,
    /// The session is gone (terminal state).
    Lost,
    Shutdown(Option<oneshot::Sender<()>>),
}

/// The client settings every session uses. The plain (3.4) create request: the election
/// needs no stat back, and so works with ZooKeeper 3.4 ensembles, still common beside
/// Mesos, as well as with 3.5 and later.
fn connector(config: &ElectionConfig) -> zk::Connector {
    zk::Client::connector().with_session_timeout(config.session_timeout).with_server_version(3, 4, 0)
}

async fn run(shared: Arc<Shared>, mut commands: mpsc::UnboundedReceiver<Command>) {
    let connect_string = shared.config.url.connect_string();
    let mut delay = Duration::from_millis(100);
    let mut stale: Vec<String> = Vec::new();
    loop {
        shared.lose_leadership(Role::Disconnected);
        shared.fence.set_session(None);
        let connecting = connector(&shared.config).connect(&connect_string);
        let mut connecting = pin!(connecting);
        let connected = loop {
            tokio::select! {
                result = &mut connecting => break result,
                command = commands.recv() => match command {
                    Some(Command::Refresh) => {}
                    Some(Command::Shutdown(done)) => return finish(&shared, Some(done)),
                    None => return finish(&shared, None),
                },
            }
        };
        let client = match connected {
            Ok(client) => client,
            Err(err) => {
                tracing::warn!(zookeeper = %shared.config.url, error = %err, "ha: cannot reach ZooKeeper; retrying");
                let sleep = tokio::time::sleep(delay);
                let mut sleep = pin!(sleep);
                loop {
                    tokio::select! {
                        _ = &mut sleep => break,
                        command = commands.recv() => match command {
                            Some(Command::Refresh) => {}
                            Some(Command::Shutdown(done)) => return finish(&shared, Some(done)),
                            None => return finish(&shared, None),
                        },
                    }
                }
                delay = (delay * 2).min(shared.config.max_retry_delay);
                continue;
            }
        };
        delay = Duration::from_millis(100);
        {
            let mut st = shared.status();
            st.session = Some(client.session().clone());
            st.session_timeout = Some(client.session_timeout());
            st.sessions += 1;
        }
        shared.metrics.sessions.inc();
        shared.set_session_state(client.state());
        shared.fence.set_session(Some(client.state_watcher()));
        tracing::info!(
            session = %client.session_id(),
            timeout_ms = client.session_timeout().as_millis() as u64,
            path = %shared.path,
            "ha: ZooKeeper session established"
        );
        let session = Session::new(&shared, client, &mut commands, std::mem::take(&mut stale));
        match session.run().await {
            End::Lost { stale: left } => {
                tracing::warn!("ha: ZooKeeper session lost; joining again with a new one");
                stale = left;
            }
            End::Shutdown(done) => return finish(&shared, done),
        }
    }
}

fn finish(shared: &Shared, done: Option<oneshot::Sender<()>>) {
    shared.lose_leadership(Role::Disconnected);
    shared.fence.set_session(None);
    shared.status().session = None;
    if let Some(done) = done {
        let _ = done.send(());
    }
}

struct Session<'a> {
    shared: &'a Shared,
    client: zk::Client,
    states: zk::StateWatcher,
    commands: &'a mut mpsc::UnboundedReceiver<Command>,
    /// Our member znode's name, once created in this session.
    node: Option<String>,
    /// `member-<session id>-`: finds our node again after a create whose answer was lost.
    prefix: String,
    /// Member znodes of ours from lost sessions, deleted once this one can.
    stale: Vec<String>,
    /// The identity changed while the znode could not be written.
    dirty: bool,
    timeout: Duration,
}

impl<'a> Session<'a> {
    fn new(
        shared: &'a Shared,
        client: zk::Client,
        commands: &'a mut mpsc::UnboundedReceiver<Command>,
        stale: Vec<String>,
    ) -> Self {
        let mut states = client.state_watcher();
        states.state();
        let prefix = format!("{MEMBER}{:016x}-", client.session_id().0 as u64);
        let timeout = client.session_timeout();
        Session { shared, client, states, commands, node: None, prefix, stale, dirty: false, timeout }
    }

    fn node_path(&self) -> Option<String> {
        self.node.as_ref().map(|n| format!("{}/{n}", self.shared.path))
    }

    /// The leader's lease: how long after a sent-and-answered check it may write.
    fn lease(&self) -> Duration {
        self.timeout / 2
    }

    async fn run(mut self) -> End {
        loop {
            let flow = match self.round().await {
                Ok(flow) => flow,
                Err(err) => {
                    self.shared.fence.close();
                    tracing::debug!(error = %err, "ha: ZooKeeper request failed");
                    match err {
                        zk::Error::ConnectionLoss
                        | zk::Error::Timeout
                        | zk::Error::SessionExpired
                        | zk::Error::SessionMoved
                        | zk::Error::ClientClosed => self.wait_connected().await,
                        other => {
                            tracing::warn!(error = %other, path = %self.shared.path, "ha: election step failed; retrying");
                            self.shared.lose_leadership(Role::Disconnected);
                            self.pause(self.shared.config.max_retry_delay).await
                        }
                    }
                }
            };
            match flow {
                Flow::Again => continue,
                Flow::Lost => {
                    self.shared.set_session_state(self.client.state());
                    let mut stale = std::mem::take(&mut self.stale);
                    stale.extend(self.node_path());
                    return End::Lost { stale };
                }
                Flow::Shutdown(done) => {
                    self.goodbye().await;
                    return End::Shutdown(done);
                }
            }
        }
    }

    /// Waits until the session is connected again (Again) or over (Lost).
    async fn wait_connected(&mut self) -> Flow {
        loop {
            let state = self.states.state();
            self.shared.set_session_state(state);
            match state {
                zk::SessionState::SyncConnected => return Flow::Again,
                s if s.is_terminated() => {
                    self.shared.lose_leadership(Role::Disconnected);
                    return Flow::Lost;
                }
                _ => {
                    self.shared.lose_leadership(Role::Disconnected);
                    tokio::select! {
                        _ = self.states.changed() => {}
                        command = self.commands.recv() => match command {
                            Some(Command::Refresh) => self.dirty = true,
                            Some(Command::Shutdown(done)) => return Flow::Shutdown(Some(done)),
                            None => return Flow::Shutdown(None),
                        },
                    }
                }
            }
        }
    }

    /// Sleeps, still answering commands.
    async fn pause(&mut self, delay: Duration) -> Flow {
        let sleep = tokio::time::sleep(delay);
        let mut sleep = pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => return Flow::Again,
                command = self.commands.recv() => match command {
                    Some(Command::Refresh) => self.dirty = true,
                    Some(Command::Shutdown(done)) => return Flow::Shutdown(Some(done)),
                    None => return Flow::Shutdown(None),
                },
            }
        }
    }

    /// A state change seen while leading or following ends the round.
    async fn on_state(&mut self, state: zk::SessionState) -> Flow {
        self.shared.set_session_state(state);
        if state == zk::SessionState::SyncConnected {
            // Reconnected within the session: look again before trusting anything.
            return Flow::Again;
        }
        self.shared.lose_leadership(Role::Disconnected);
        self.wait_connected().await
    }

    async fn goodbye(&mut self) {
        self.shared.lose_leadership(Role::Disconnected);
        if let Some(path) = self.node_path() {
            let deleted = tokio::time::timeout(Duration::from_secs(3), self.client.delete(&path, None)).await;
            match deleted {
                Ok(Ok(())) | Ok(Err(zk::Error::NoNode)) => {
                    tracing::info!(node = %path, "ha: left the election")
                }
                Ok(Err(err)) => {
                    tracing::warn!(node = %path, error = %err, "ha: could not delete member znode")
                }
                Err(_) => tracing::warn!(node = %path, "ha: timed out deleting member znode"),
            }
        }
        self.node = None;
    }

    /// Rewrites our znode's data; until that succeeds the session stays `dirty`.
    async fn write_me(&mut self) -> Result<(), zk::Error> {
        self.dirty = true;
        if let Some(path) = self.node_path() {
            let data = self.shared.me().to_znode_data();
            match self.client.set_data(&path, &data, None).await {
                Ok(_) => {}
                Err(zk::Error::NoNode) => self.node = None,
                Err(err) => return Err(err),
            }
        }
        self.dirty = false;
        Ok(())
    }

    /// Makes sure this session has its member znode.
    async fn ensure_node(&mut self) -> Result<(), zk::Error> {
        if self.node.is_some() {
            return Ok(());
        }
        let dir = self.shared.path.clone();
        let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        self.client.mkdir(&dir, &persistent).await?;
        while let Some(stale) = self.stale.last().cloned() {
            match self.client.delete(&stale, None).await {
                Ok(()) | Err(zk::Error::NoNode) => {
                    tracing::info!(node = %stale, "ha: removed our member znode of a lost session");
                }
                Err(err @ (zk::Error::ConnectionLoss | zk::Error::SessionExpired | zk::Error::Timeout)) => {
                    return Err(err);
                }
                Err(err) => {
                    tracing::warn!(node = %stale, error = %err, "ha: cannot remove our old member znode")
                }
            }
            self.stale.pop();
        }
        let mut data = self.shared.me();
        // A create of this session whose answer was lost may have made the node already.
        let children = self.client.list_children(&dir).await?;
        if let Some(existing) = children.into_iter().find(|c| c.starts_with(&self.prefix)) {
            self.node = Some(existing);
            self.write_me().await?;
        } else {
            let ephemeral = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
            let (_, sequence) = self
                .client
                .create(&format!("{dir}/{}", self.prefix), &data.to_znode_data(), &ephemeral)
                .await?;
            self.node = Some(format!("{}{sequence}", self.prefix));
        }
        data.node = self.node.clone();
        self.shared.status().me.node = self.node.clone();
        tracing::info!(node = ?self.node_path(), "ha: joined the election");
        Ok(())
    }

    async fn round(&mut self) -> Result<Flow, zk::Error> {
        self.ensure_node().await?;
        if self.dirty {
            self.write_me().await?;
        }
        let Some(mine) = self.node.clone() else { return Ok(Flow::Again) };
        let sent = Instant::now();
        let children = self.client.list_children(&self.shared.path).await?;
        let members = sorted_members(children);
        let Some(index) = members.iter().position(|m| *m == mine) else {
            tracing::warn!(node = %mine, "ha: our member znode disappeared; joining again");
            self.shared.lose_leadership(Role::Disconnected);
            self.node = None;
            return Ok(Flow::Again);
        };
        if index == 0 {
            self.lead(sent).await
        } else {
            let leader = members[0].clone();
            let predecessor = members[index - 1].clone();
            self.follow(&leader, &predecessor).await
        }
    }

    /// Checks that our znode exists and belongs to this session.
    fn owns(&self, stat: &Option<zk::Stat>) -> bool {
        stat.as_ref().is_some_and(|s| s.ephemeral_owner == self.client.session_id().0)
    }

    async fn lead(&mut self, sent: Instant) -> Result<Flow, zk::Error> {
        let path = self.node_path().unwrap_or_default();
        let (stat, watcher) = self.client.check_and_watch_stat(&path).await?;
        if !self.owns(&stat) {
            self.shared.lose_leadership(Role::Disconnected);
            self.node = None;
            return Ok(Flow::Again);
        }
        if self.client.state() != zk::SessionState::SyncConnected {
            return Err(zk::Error::ConnectionLoss);
        }
        let lease = self.lease();
        self.shared.fence.grant(sent, lease);
        self.shared.set_role(Role::Leader);
        let mut node_event = pin!(watcher.changed());
        let mut heartbeat = tokio::time::interval(self.timeout / 5);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.tick().await;
        loop {
            tokio::select! {
                event = &mut node_event => {
                    self.shared.fence.close();
                    tracing::info!(event = ?event.event_type, state = ?event.session_state, "ha: leader znode event");
                    if event.event_type == zk::EventType::NodeDeleted {
                        self.shared.lose_leadership(Role::Disconnected);
                        self.node = None;
                    }
                    return Ok(Flow::Again);
                }
                state = self.states.changed() => {
                    if state != zk::SessionState::SyncConnected {
                        self.shared.fence.close();
                    }
                    return Ok(self.on_state(state).await);
                }
                _ = heartbeat.tick() => {
                    let sent = Instant::now();
                    match tokio::time::timeout(lease, self.client.check_stat(&path)).await {
                        Ok(Ok(stat)) if self.owns(&stat) => self.shared.fence.grant(sent, lease),
                        Ok(Ok(_)) => {
                            self.shared.lose_leadership(Role::Disconnected);
                            self.node = None;
                            return Ok(Flow::Again);
                        }
                        Ok(Err(err)) => return Err(err),
                        Err(_) => {
                            tracing::warn!("ha: leader lease check unanswered; writes stopped");
                            self.shared.fence.close();
                        }
                    }
                }
                command = self.commands.recv() => match command {
                    Some(Command::Refresh) => {
                        self.write_me().await?;
                        self.shared.set_role(Role::Leader);
                    }
                    Some(Command::Shutdown(done)) => return Ok(Flow::Shutdown(Some(done))),
                    None => return Ok(Flow::Shutdown(None)),
                },
            }
        }
    }

    async fn follow(&mut self, leader: &str, predecessor: &str) -> Result<Flow, zk::Error> {
        self.shared.fence.close();
        let dir = self.shared.path.clone();
        let (data, _, leader_watch) = match self.client.get_and_watch_data(&format!("{dir}/{leader}")).await {
            Ok(found) => found,
            Err(zk::Error::NoNode) => return Ok(Flow::Again),
            Err(err) => return Err(err),
        };
        let info = LeaderInfo::from_znode_data(&data, leader);
        if info.is_none() {
            tracing::warn!(node = %leader, "ha: the leader's znode data is not a mesosync identity");
        }
        let predecessor_watch = if predecessor == leader {
            None
        } else {
            match self.client.check_and_watch_stat(&format!("{dir}/{predecessor}")).await? {
                (None, _) => return Ok(Flow::Again),
                (Some(_), watcher) => Some(watcher),
            }
        };
        self.shared.set_role(Role::Follower { leader: info });
        let mut leader_event = pin!(leader_watch.changed());
        let has_predecessor = predecessor_watch.is_some();
        let mut predecessor_event = pin!(async move {
            match predecessor_watch {
                Some(w) => w.changed().await,
                None => std::future::pending().await,
            }
        });
        loop {
            tokio::select! {
                _ = &mut leader_event => return Ok(Flow::Again),
                _ = &mut predecessor_event, if has_predecessor => return Ok(Flow::Again),
                state = self.states.changed() => {
                    return Ok(self.on_state(state).await);
                }
                command = self.commands.recv() => match command {
                    Some(Command::Refresh) => self.write_me().await?,
                    Some(Command::Shutdown(done)) => return Ok(Flow::Shutdown(Some(done))),
                    None => return Ok(Flow::Shutdown(None)),
                },
            }
        }
    }
}

/// Member znodes in election order: by the sequence ZooKeeper appended (the digits after
/// the last `-`), names as a tie-break.
fn sorted_members(children: Vec<String>) -> Vec<String> {
    let mut members: Vec<(i64, String)> = children
        .into_iter()
        .filter(|c| c.starts_with(MEMBER))
        .filter_map(|c| {
            let seq = c.rsplit('-').next()?.parse::<i64>().ok()?;
            Some((seq, c))
        })
        .collect();
    members.sort();
    members.into_iter().map(|(_, c)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_sort_by_sequence_not_by_name() {
        let children = vec![
            "member-ffff000000000001-0000000012".to_string(),
            "member-0000000000000002-0000000011".to_string(),
            "other".to_string(),
            "member-bad".to_string(),
            "member-aaaa000000000003-0000000100".to_string(),
        ];
        assert_eq!(
            sorted_members(children),
            vec![
                "member-0000000000000002-0000000011",
                "member-ffff000000000001-0000000012",
                "member-aaaa000000000003-0000000100",
            ]
        );
    }

    #[test]
    fn identity_round_trips_through_znode_data_without_the_node_name() {
        let mut me = LeaderInfo::this_process();
        me.revision = Some("abc123".into());
        me.node = Some("member-x-0000000001".into());
        let data = me.to_znode_data();
        let json: serde_json::Value = serde_json::from_slice(&data).unwrap();
        assert!(json.get("node").is_none());
        assert_eq!(json["pid"], std::process::id());
        let back = LeaderInfo::from_znode_data(&data, "member-x-0000000001").unwrap();
        assert_eq!(back, me);
        assert!(LeaderInfo::from_znode_data(b"not json", "n").is_none());
    }

    #[test]
    fn role_serializes_for_status() {
        assert_eq!(serde_json::to_value(Role::Leader).unwrap(), serde_json::json!({"role": "leader"}));
        let v = serde_json::to_value(Role::Follower { leader: None }).unwrap();
        assert_eq!(v, serde_json::json!({"role": "follower", "leader": null}));
        assert_eq!(Role::Disconnected.as_str(), "disconnected");
    }
}
