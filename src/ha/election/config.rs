//! How a replica takes part in the election: the ensemble, the instance that names the
//! election, the session timeout, and the identity it announces. Data only.

use std::time::Duration;

use super::identity::LeaderInfo;
use crate::ha::url::ZkUrl;

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
