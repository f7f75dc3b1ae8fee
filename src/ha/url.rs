//! `zk://host1:2181,host2:2181/path`: where the replicas elect their leader.

use std::fmt;
use std::str::FromStr;

/// ZooKeeper's client port when a host names none.
pub const DEFAULT_PORT: u16 = 2181;

/// The root znode when the URL names no path.
pub const DEFAULT_ROOT: &str = "/mesosync";

/// A parsed `--ha-zk` value: the ensemble's servers and the root znode under which the
/// election lives (`<root>/<instance>/leader`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ZkUrl {
    /// `(host, port)` in the order given; an IPv6 host is kept without brackets.
    pub hosts: Vec<(String, u16)>,
    /// Absolute znode path without a trailing slash, e.g. `/mesosync`.
    pub root: String,
}

/// Why a `--ha-zk` value is not a ZooKeeper URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZkUrlError {
    #[error("a ZooKeeper URL starts with zk:// (e.g. zk://zk1:2181,zk2:2181/mesosync), got {0:?}")]
    Scheme(String),
    #[error("the ZooKeeper URL {0:?} names no host")]
    NoHost(String),
    #[error("bad host {host:?} in ZooKeeper URL: {reason}")]
    Host { host: String, reason: &'static str },
    #[error("bad znode path {path:?} in ZooKeeper URL: {reason}")]
    Path { path: String, reason: &'static str },
    #[error("credentials in ZooKeeper URLs (zk://user:pass@...) are not supported")]
    Credentials,
}

impl ZkUrl {
    /// The connect string the ZooKeeper client takes: `h1:2181,h2:2181` (no chroot; the
    /// election uses absolute paths).
    pub fn connect_string(&self) -> String {
        self.hosts
            .iter()
            .map(|(h, p)| if h.contains(':') { format!("[{h}]:{p}") } else { format!("{h}:{p}") })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The election directory of one mesosync instance: `<root>/<instance>/leader`.
    pub fn election_path(&self, instance: &str) -> String {
        let root = if self.root == "/" { "" } else { self.root.as_str() };
        format!("{root}/{instance}/leader")
    }

    /// The same servers with another root, e.g. for a test's own namespace.
    pub fn with_root(&self, root: &str) -> Result<ZkUrl, ZkUrlError> {
        Ok(ZkUrl { hosts: self.hosts.clone(), root: parse_path(root)? })
    }
}

impl fmt::Display for ZkUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "zk://{}{}", self.connect_string(), self.root)
    }
}

impl FromStr for ZkUrl {
    type Err = ZkUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let rest = s
            .strip_prefix("zk://")
            .or_else(|| s.strip_prefix("ZK://"))
            .ok_or_else(|| ZkUrlError::Scheme(s.to_string()))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(ZkUrlError::Credentials);
        }
        let mut hosts = Vec::new();
        for part in authority.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            hosts.push(parse_host(part)?);
        }
        if hosts.is_empty() {
            return Err(ZkUrlError::NoHost(s.to_string()));
        }
        let root = if path.is_empty() || path == "/" { DEFAULT_ROOT.to_string() } else { parse_path(path)? };
        Ok(ZkUrl { hosts, root })
    }
}

fn parse_host(part: &str) -> Result<(String, u16), ZkUrlError> {
    let bad = |reason| ZkUrlError::Host { host: part.to_string(), reason };
    let (host, port) = if let Some(v6) = part.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':').ok_or_else(|| bad("expected ':' after ']'"))?)),
        }
    } else {
        match part.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (part, None),
        }
    };
    if host.is_empty() {
        return Err(bad("empty host name"));
    }
    if host.chars().any(|c| c.is_whitespace() || c == '?' || c == '#') {
        return Err(bad("host names have no blanks, '?' or '#'"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(bad("the port is a number from 1 to 65535")),
            Ok(n) => n,
        },
    };
    Ok((host.to_string(), port))
}

fn parse_path(path: &str) -> Result<String, ZkUrlError> {
    let bad = |reason| ZkUrlError::Path { path: path.to_string(), reason };
    if !path.starts_with('/') {
        return Err(bad("a znode path is absolute"));
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok("/".to_string());
    }
    for seg in trimmed[1..].split('/') {
        match seg {
            "" => return Err(bad("empty path segment ('//')")),
            "." | ".." => return Err(bad("'.' and '..' are not znode names")),
            "zookeeper" if trimmed == "/zookeeper" || trimmed.starts_with("/zookeeper/") => {
                return Err(bad("/zookeeper is ZooKeeper's own subtree"));
            }
            _ => {}
        }
        if seg.chars().any(|c| c.is_control() || c == '?' || c == '#') {
            return Err(bad("control characters, '?' and '#' are not allowed"));
        }
    }
    Ok(trimmed.to_string())
}

/// Checks an instance name: one znode path segment.
pub(crate) fn check_instance(instance: &str) -> Result<(), ZkUrlError> {
    let bad = |reason| ZkUrlError::Path { path: instance.to_string(), reason };
    if instance.is_empty() {
        return Err(bad("the instance name is empty"));
    }
    if instance.contains('/') || instance == "." || instance == ".." {
        return Err(bad("the instance name is one znode name (no '/')"));
    }
    if instance.chars().any(|c| c.is_control()) {
        return Err(bad("the instance name has control characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_ports_and_path() {
        let u: ZkUrl = "zk://host1:2181,host2:2182/mesosync".parse().unwrap();
        assert_eq!(u.hosts, vec![("host1".into(), 2181), ("host2".into(), 2182)]);
        assert_eq!(u.root, "/mesosync");
        assert_eq!(u.connect_string(), "host1:2181,host2:2182");
        assert_eq!(u.election_path("prod"), "/mesosync/prod/leader");
        assert_eq!(u.to_string(), "zk://host1:2181,host2:2182/mesosync");
    }

    #[test]
    fn defaults_port_and_root() {
        let u: ZkUrl = "zk://zk".parse().unwrap();
        assert_eq!(u.hosts, vec![("zk".into(), 2181)]);
        assert_eq!(u.root, "/mesosync");
        let u: ZkUrl = "zk://a,b:1/".parse().unwrap();
        assert_eq!(u.hosts, vec![("a".into(), 2181), ("b".into(), 1)]);
        assert_eq!(u.root, "/mesosync");
    }

    #[test]
    fn nested_path_trailing_slash_and_ipv6() {
        let u: ZkUrl = "zk://[::1]:2181,10.0.0.1/a/b/".parse().unwrap();
        assert_eq!(u.hosts, vec![("::1".into(), 2181), ("10.0.0.1".into(), 2181)]);
        assert_eq!(u.root, "/a/b");
        assert_eq!(u.connect_string(), "[::1]:2181,10.0.0.1:2181");
        assert_eq!(u.election_path("x"), "/a/b/x/leader");
        assert_eq!(u.with_root("/").unwrap().election_path("x"), "/x/leader");
    }

    #[test]
    fn rejects_bad_urls() {
        for bad in [
            "http://h:2181/x",
            "h:2181/x",
            "zk:///x",
            "zk://h:0/x",
            "zk://h:99999/x",
            "zk://h:abc/x",
            "zk://u:p@h/x",
            "zk://h/a//b",
            "zk://h/a/../b",
            "zk://h/zookeeper/x",
            "zk://[::1/x",
        ] {
            assert!(bad.parse::<ZkUrl>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn instance_names() {
        assert!(check_instance("prod").is_ok());
        assert!(check_instance("").is_err());
        assert!(check_instance("a/b").is_err());
        assert!(check_instance("..").is_err());
    }
}
