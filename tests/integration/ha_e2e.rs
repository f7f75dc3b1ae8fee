//! High availability end to end: two real `mesosync run` replicas, a real ZooKeeper
//! and the emulator. Writes are told apart by the User-Agent each replica sends
//! (`mesosync/<v> (<replica id>)`). Without ZooKeeper: a failure under CI, SKIPPED
//! elsewhere (`requires`).

use std::time::{Duration, Instant};

use mesosync::emulator::RecordedRequest;
use serde_json::Value;

use super::e2e::{Controller, manifests_copy, set_resource};
use super::harness;
use super::zk::ZkServer;

const SESSION: &str = "2s";

fn is_write(r: &RecordedRequest) -> bool {
    r.method != "GET" && !r.path.starts_with("/_sandbox")
}

/// The replica ids that made writes, from the emulator's request log.
fn writers(log: &[RecordedRequest]) -> Vec<String> {
    let mut ids: Vec<String> = log
        .iter()
        .filter(|r| is_write(r))
        .map(|r| {
            let ua = r.user_agent.clone().unwrap_or_default();
            ua.split_once('(').map_or(ua.clone(), |(_, id)| id.trim_end_matches(')').to_string())
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// [`writers`] once a write is in the log. The emulator logs a request when its handler
/// returned, so the state a write made can be read a moment before the write is in the
/// log (seen in a stress run): after waiting for a state, wait for its write too.
async fn logged_writers(h: &harness::Harness) -> Vec<String> {
    wait_for("the write to be logged", Duration::from_secs(10), async || {
        !writers(&h.sandbox.requests()).is_empty()
    })
    .await;
    writers(&h.sandbox.requests())
}

fn replica(h: &harness::Harness, dir: &std::path::Path, zk: &ZkServer, id: &str) -> Controller {
    replica_with(h, dir, zk, id, &[])
}

fn replica_with(
    h: &harness::Harness,
    dir: &std::path::Path,
    zk: &ZkServer,
    id: &str,
    extra: &[&str],
) -> Controller {
    let url = format!("zk://{}/mesosync", zk.address());
    let mut args = vec!["--ha-zk", &url, "--ha-session-timeout", SESSION, "--replica-id", id];
    args.extend_from_slice(extra);
    Controller::start(h, dir, &args)
}

fn role(status: &Value) -> &str {
    status["ha"]["role"].as_str().unwrap_or("none")
}

async fn live_app(h: &harness::Harness, id: &str) -> Value {
    let v: Value =
        h.http.get(h.marathon(&format!("/v2/apps{id}"))).send().await.unwrap().json().await.unwrap();
    v["app"].clone()
}

async fn wait_for(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Start two replicas, wait until one of them converged the manifests; returns
/// (leader, follower) in that order.
async fn two_replicas(
    h: &harness::Harness,
    dir: &std::path::Path,
    zk: &ZkServer,
) -> (Controller, Controller) {
    let a = replica(h, dir, zk, "replica-a");
    let b = replica(h, dir, zk, "replica-b");
    wait_for("the leader to converge 20 apps", Duration::from_secs(60), async || {
        let apps: Value = h.http.get(h.marathon("/v2/apps")).send().await.unwrap().json().await.unwrap();
        apps["apps"].as_array().is_some_and(|a| a.len() == 20)
    })
    .await;
    wait_for("one leader and one follower", Duration::from_secs(20), async || {
        let roles = [role(&a.status().await).to_string(), role(&b.status().await).to_string()];
        roles.contains(&"leader".to_string()) && roles.contains(&"follower".to_string())
    })
    .await;
    if role(&a.status().await) == "leader" { (a, b) } else { (b, a) }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_exactly_one_writes_and_a_killed_leader_is_replaced() {
    let Some(zk) = ZkServer::start("two_replicas_exactly_one_writes_and_a_killed_leader_is_replaced") else {
        return;
    };
    let h = harness::start().await;
    let dir = manifests_copy();
    let (leader, follower) = two_replicas(&h, dir.path(), &zk).await;
    let leader_id = leader.status().await["ha"]["me"]["id"].as_str().map(str::to_string);
    let writers_so_far = writers(&h.sandbox.requests());
    assert_eq!(writers_so_far.len(), 1, "exactly one replica writes: {writers_so_far:?}");
    let follower_status = follower.status().await;
    assert_eq!(
        follower_status["ha"]["leader"]["id"].as_str().map(str::to_string),
        leader_id,
        "{follower_status:#}"
    );

    // kill -9 the leader, then push a change: the follower takes over and applies it.
    let leader_name = writers_so_far[0].clone();
    drop(leader);
    h.sandbox.reset_requests();
    let killed_at = Instant::now();
    set_resource(dir.path(), "horizon", "cpus", "0.5");
    wait_for("the former follower to apply the pending change", Duration::from_secs(30), async || {
        live_app(&h, "/openstack/horizon/horizon").await["cpus"] == 0.5
    })
    .await;
    let failover = killed_at.elapsed();
    let after = logged_writers(&h).await;
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(after[0], leader_name, "the killed replica cannot write");
    assert_eq!(role(&follower.status().await), "leader");
    // Liveness is the 30 s deadline above (a session timeout of 2 s + one reconcile);
    // how fast is a measurement, not an assertion.
    println!("HA failover after kill -9 (session {SESSION}): change applied {failover:?} after the kill");
}

#[tokio::test(flavor = "multi_thread")]
async fn zookeeper_down_stops_all_writes_and_a_restart_elects_one_leader() {
    let Some(zk) = ZkServer::start("zookeeper_down_stops_all_writes_and_a_restart_elects_one_leader") else {
        return;
    };
    let h = harness::start().await;
    let dir = manifests_copy();
    let (leader, follower) = two_replicas(&h, dir.path(), &zk).await;
    zk.stop();
    wait_for("the leader's fence to close", Duration::from_secs(10), async || {
        leader.status().await["ha"]["may_write"] == false
    })
    .await;
    h.sandbox.reset_requests();
    set_resource(dir.path(), "horizon", "cpus", "0.6");
    // Both replicas see the edit (file watch) but neither may write without ZooKeeper.
    wait_for("both replicas to reconcile the edit", Duration::from_secs(10), async || {
        let a = leader.status().await;
        let b = follower.status().await;
        [a, b].iter().all(|s| s["objects"].to_string().contains("drifted"))
    })
    .await;
    assert!(
        writers(&h.sandbox.requests()).is_empty(),
        "a write without ZooKeeper: {:?}",
        h.sandbox.requests()
    );

    zk.restart();
    wait_for("exactly one leader again and the edit applied", Duration::from_secs(30), async || {
        let roles = [role(&leader.status().await).to_string(), role(&follower.status().await).to_string()];
        roles.iter().filter(|r| *r == "leader").count() == 1
            && live_app(&h, "/openstack/horizon/horizon").await["cpus"] == 0.6
    })
    .await;
    let after = logged_writers(&h).await;
    assert_eq!(after.len(), 1, "{after:?}");
}

/// Issue 20.2: each replica tells its own receiver when it becomes the leader, and the
/// follower that takes over after the leader is killed says so too.
#[tokio::test(flavor = "multi_thread")]
async fn leadership_changes_are_notified() {
    let Some(zk) = ZkServer::start("leadership_changes_are_notified") else {
        return;
    };
    let h = harness::start().await;
    let dir = manifests_copy();
    let recv = super::notifications::receiver().await;
    let notify = |id: &str| format!("generic={}/{id},events=leadership", recv.base);
    let (na, nb) = (notify("replica-a"), notify("replica-b"));
    let a = replica_with(&h, dir.path(), &zk, "replica-a", &["--notify", &na]);
    let b = replica_with(&h, dir.path(), &zk, "replica-b", &["--notify", &nb]);
    wait_for("one leader", Duration::from_secs(30), async || {
        role(&a.status().await) == "leader" || role(&b.status().await) == "leader"
    })
    .await;
    let (leader, follower, leader_id, follower_id) = if role(&a.status().await) == "leader" {
        (a, b, "replica-a", "replica-b")
    } else {
        (b, a, "replica-b", "replica-a")
    };
    wait_for("the leader's notification", Duration::from_secs(20), async || {
        !recv.events(&format!("/{leader_id}")).is_empty()
    })
    .await;
    let event = &recv.events(&format!("/{leader_id}"))[0];
    assert_eq!((event["event"].as_str(), event["severity"].as_str()), (Some("leadership"), Some("info")));
    assert_eq!(event["message"], format!("replica {leader_id} became the leader: it writes from now on"));
    assert!(recv.events(&format!("/{follower_id}")).is_empty(), "a follower that stays one says nothing");

    drop(leader);
    wait_for("the follower taking over", Duration::from_secs(30), async || {
        recv.events(&format!("/{follower_id}"))
            .iter()
            .any(|e| e["message"].as_str().unwrap().contains("became the leader"))
    })
    .await;
    assert_eq!(role(&follower.status().await), "leader");
}
