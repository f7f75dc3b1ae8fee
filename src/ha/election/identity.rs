//! Who a replica is, as it writes itself into its election znode (JSON) and as the
//! others read the leader back: host, pid, a unique id, revision, start time.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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

    pub(super) fn to_znode_data(&self) -> Vec<u8> {
        let mut stored = self.clone();
        stored.node = None;
        serde_json::to_vec(&stored).unwrap_or_default()
    }

    pub(super) fn from_znode_data(data: &[u8], node: &str) -> Option<LeaderInfo> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
