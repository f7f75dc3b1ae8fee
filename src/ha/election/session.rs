//! The session state machine, one ZooKeeper session at a time: connect (with backoff),
//! join with an EPHEMERAL_SEQUENTIAL member znode, then lead (renewing the fence's lease
//! on a heartbeat) or follow (watching the predecessor and the leader), until the session
//! is lost (join again with a new one) or the election shuts down. Every change of role
//! goes through [`Shared`]; the fence is closed before anything else on any doubt.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use zookeeper_client as zk;

use super::config::ElectionConfig;
use super::identity::LeaderInfo;
use super::{Command, Role, Shared};

/// Prefix of every member znode's name.
const MEMBER: &str = "member-";

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
pub(super) fn connector(config: &ElectionConfig) -> zk::Connector {
    zk::Client::connector().with_session_timeout(config.session_timeout).with_server_version(3, 4, 0)
}

pub(super) async fn run(shared: Arc<Shared>, mut commands: mpsc::UnboundedReceiver<Command>) {
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
        shared.metrics.session_established();
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
}
