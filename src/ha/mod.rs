//! High availability: several `mesosync run` replicas, one leader, elected in ZooKeeper.
//!
//! Every replica joins the election under `<root>/<instance>/leader` with an
//! EPHEMERAL_SEQUENTIAL znode `member-<session>-<sequence>` whose data is its identity
//! ([`LeaderInfo`]: host, pid, revision, start time) as JSON. The lowest sequence leads;
//! every other member watches only its predecessor (no herd when the leader goes) plus the
//! leader's znode data (to report who leads). Only the leader may write: the controller
//! checks [`Fence::may_write`] before every write to Marathon or Chronos.
//!
//! The session is the lease. Whenever the client sees its connection drop, the fence
//! closes at once; it also closes by itself half a session timeout after the last answered
//! check of the leader's own znode, before ZooKeeper can possibly expire the session and
//! let another replica lead. After a reconnect within the session, leadership is verified
//! again before the fence reopens; after an expiry the replica joins again with a new
//! session. [`LeaderElection::shutdown`] deletes the node and closes the session, so a
//! graceful stop hands over at once; a crash hands over after one session timeout.
//!
//! Without `--ha-zk` none of this runs: [`Fence::always_open`] lets every write through.
//! The `--ha-*` flags are `cli`'s (with every other flag); this module takes an
//! [`ElectionConfig`].

mod election;
mod fence;
mod url;

pub use election::{ElectionConfig, ElectionHandle, HaStatus, LeaderElection, LeaderInfo, Role};
pub use fence::Fence;
pub(crate) use url::check_instance;
pub use url::{DEFAULT_PORT, DEFAULT_ROOT, ZkUrl, ZkUrlError};
