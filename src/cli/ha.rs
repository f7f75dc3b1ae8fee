//! The `mesosync run` flags for high availability, ready to `#[command(flatten)]`, and
//! the [`ElectionConfig`] they make.

use std::time::Duration;

use super::duration::parse_session_timeout;
use crate::ha::{ElectionConfig, ZkUrl, check_instance};

/// High availability: several replicas, one leader elected in ZooKeeper.
#[derive(Debug, Clone, clap::Args)]
pub struct HaArgs {
    /// Run as one of several replicas: elect a leader in ZooKeeper, e.g.
    /// zk://zk1:2181,zk2:2181/mesosync. Only the leader writes. Without it: a single
    /// replica, no ZooKeeper needed.
    #[arg(long = "ha-zk", env = "MESOSYNC_HA_ZK", value_name = "URL")]
    pub zk: Option<ZkUrl>,

    /// Replicas with the same instance name elect one leader among them, under
    /// <path>/<instance>/leader (default: the controller's --instance).
    #[arg(id = "ha_instance", long = "ha-instance", env = "MESOSYNC_HA_INSTANCE", value_name = "NAME", value_parser = parse_instance)]
    pub instance: Option<String>,

    /// ZooKeeper session timeout (e.g. 10s, 4000ms): a crashed leader is replaced after
    /// about this long; a cut-off leader stops writing within half of it.
    #[arg(
        long = "ha-session-timeout",
        env = "MESOSYNC_HA_SESSION_TIMEOUT",
        value_name = "DURATION",
        default_value = "10s",
        value_parser = parse_session_timeout
    )]
    pub session_timeout: Duration,
}

impl HaArgs {
    /// The election to start, or None without `--ha-zk`; `instance` names the
    /// election when `--ha-instance` is not given.
    pub fn election_config(&self, instance: &str) -> Option<ElectionConfig> {
        let url = self.zk.clone()?;
        let mut config =
            ElectionConfig::new(url, self.instance.clone().unwrap_or_else(|| instance.to_string()));
        config.session_timeout = self.session_timeout;
        Some(config)
    }
}

fn parse_instance(s: &str) -> Result<String, String> {
    check_instance(s).map_err(|e| e.to_string())?;
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        ha: HaArgs,
    }

    #[test]
    fn flags_make_an_election_config_only_with_a_url() {
        let none = Cmd::try_parse_from(["x"]).unwrap();
        assert!(none.ha.election_config("mesosync").is_none());
        let default = Cmd::try_parse_from(["x", "--ha-zk", "zk://a:2181/m"]).unwrap();
        assert_eq!(default.ha.election_config("prod").unwrap().election_path(), "/m/prod/leader");
        let cmd = Cmd::try_parse_from([
            "x",
            "--ha-zk",
            "zk://a:2181,b/mesos",
            "--ha-instance",
            "prod",
            "--ha-session-timeout",
            "4s",
        ])
        .unwrap();
        let config = cmd.ha.election_config("ignored").unwrap();
        assert_eq!(config.election_path(), "/mesos/prod/leader");
        assert_eq!(config.session_timeout, Duration::from_secs(4));
        assert!(Cmd::try_parse_from(["x", "--ha-zk", "http://a"]).is_err());
        assert!(Cmd::try_parse_from(["x", "--ha-instance", "a/b"]).is_err());
    }
}
