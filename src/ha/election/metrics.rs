//! The `mesosync_ha_*` metrics of one replica: whether it leads, its role, whether its
//! ZooKeeper session is connected, who leads, sessions established and elections won.
//! Registered in the controller's registry (whose `mesosync` prefix they take).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::Role;
use super::identity::LeaderInfo;

type Labels = Vec<(String, String)>;

/// The metrics; clones share the same series.
#[derive(Clone, Default)]
pub(super) struct Metrics {
    leader: Gauge,
    connected: Gauge,
    role: Family<Labels, Gauge>,
    leader_info: Family<Labels, Gauge>,
    sessions: Counter,
    elections_won: Counter,
}

impl Metrics {
    /// `leader` (1 on the leader), `zk_connected`, `role{role}`,
    /// `leader_info{host,pid,id,revision}`, `sessions_total`, `elections_won_total`.
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register("ha_leader", "1 while this replica is the HA leader", self.leader.clone());
        registry.register(
            "ha_zk_connected",
            "1 while the ZooKeeper session is connected",
            self.connected.clone(),
        );
        registry.register("ha_role", "This replica's HA role (label role)", self.role.clone());
        registry.register(
            "ha_leader_info",
            "The current HA leader as this replica knows it",
            self.leader_info.clone(),
        );
        registry.register("ha_sessions", "ZooKeeper sessions established", self.sessions.clone());
        registry.register(
            "ha_elections_won",
            "Times this replica became HA leader",
            self.elections_won.clone(),
        );
    }

    /// The role now, and who leads as far as this replica knows.
    pub(super) fn role(&self, role: &Role, leader: Option<&LeaderInfo>) {
        self.leader.set(role.is_leader() as i64);
        self.role.clear();
        self.role.get_or_create(&vec![("role".to_string(), role.as_str().to_string())]).set(1);
        self.leader_info.clear();
        if let Some(l) = leader {
            let labels = vec![
                ("host".to_string(), l.host.clone()),
                ("pid".to_string(), l.pid.to_string()),
                ("id".to_string(), l.id.clone()),
                ("revision".to_string(), l.revision.clone().unwrap_or_default()),
            ];
            self.leader_info.get_or_create(&labels).set(1);
        }
    }

    /// This replica just became leader.
    pub(super) fn won(&self) {
        self.elections_won.inc();
    }

    /// A new ZooKeeper session is up.
    pub(super) fn session_established(&self) {
        self.sessions.inc();
    }

    /// Whether the session is connected now.
    pub(super) fn connected(&self, connected: bool) {
        self.connected.set(connected as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_follow_the_role_and_the_leader() {
        let metrics = Metrics::default();
        let mut registry = Registry::with_prefix("mesosync");
        metrics.register(&mut registry);
        let mut leader = LeaderInfo::this_process();
        leader.revision = Some("rev-1".into());
        metrics.role(&Role::Follower { leader: Some(leader.clone()) }, Some(&leader));
        metrics.role(&Role::Leader, Some(&leader));
        metrics.won();
        metrics.session_established();
        metrics.connected(true);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("mesosync_ha_leader 1"), "{text}");
        assert!(text.contains("mesosync_ha_role{role=\"leader\"} 1"), "{text}");
        assert!(!text.contains("role=\"follower\""), "only the current role has a series: {text}");
        assert!(text.contains("revision=\"rev-1\""), "{text}");
        assert!(text.contains("mesosync_ha_elections_won_total 1"), "{text}");
        assert!(text.contains("mesosync_ha_sessions_total 1"), "{text}");
        assert!(text.contains("mesosync_ha_zk_connected 1"), "{text}");
    }
}
