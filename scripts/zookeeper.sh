#!/usr/bin/env bash
# A throwaway Apache ZooKeeper server from Debian's `zookeeper` package, for the HA tests.
#
#   scripts/zookeeper.sh install          apt-get install zookeeper when it is missing (root)
#   scripts/zookeeper.sh available        exit 0 when the server jars are installed
#   scripts/zookeeper.sh start DIR PORT   standalone server on 127.0.0.1:PORT, data in DIR,
#                                         pid in DIR/zookeeper.pid, log in DIR/zookeeper.log;
#                                         returns once the server answers `ruok`
#                                         (with ZK_OWNER_PID set, the server is killed once
#                                         that process is gone)
#   scripts/zookeeper.sh stop DIR         SIGKILL the server started in DIR (a crash, on purpose:
#                                         the tests restart it with the same data dir)
#
# Nothing here touches the system service (/etc/zookeeper, /var/lib/zookeeper): the server
# runs from its own zoo.cfg in DIR and listens on loopback only.
set -euo pipefail

ZK_JAR=${ZK_JAR:-/usr/share/java/zookeeper.jar}
JAVA=${JAVA:-java}

die() { echo "zookeeper.sh: $*" >&2; exit 1; }

available() { [ -d /usr/share/zookeeper ] && [ -f "$ZK_JAR" ] && command -v "$JAVA" >/dev/null 2>&1; }

# The jar's manifest lists its dependencies (Class-Path); a logging binding is added when one
# is installed so that DIR/zookeeper.log says what the server did.
classpath() {
    local cp="$ZK_JAR"
    for jar in /usr/share/java/slf4j-simple.jar /usr/share/java/zookeeper-jute.jar; do
        [ -f "$jar" ] && cp="$cp:$jar"
    done
    echo "$cp"
}

ruok() {
    # bash's /dev/tcp: no nc needed. A closed port fails the redirection (quietly).
    local reply
    reply=$( (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'ruok' >&3 && timeout 2 cat <&3) 2>/dev/null || true)
    [ "$reply" = "imok" ]
}

cmd_install() {
    if available; then
        echo "zookeeper.sh: ZooKeeper already installed ($ZK_JAR)"
        return 0
    fi
    if [ "$(id -u)" != 0 ]; then
        die "ZooKeeper is not installed and installing it needs root (apt-get install zookeeper)"
    fi
    echo "zookeeper.sh: installing Debian's zookeeper package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends zookeeper >/dev/null
    available || die "apt-get installed zookeeper but $ZK_JAR or java is missing"
    echo "zookeeper.sh: installed $(ls /usr/share/java/zookeeper-[0-9]*.jar 2>/dev/null | head -1)"
}

cmd_start() {
    local dir=${1:?usage: start DIR PORT} port=${2:?usage: start DIR PORT}
    available || die "ZooKeeper is not installed: run '$0 install' (as root)"
    mkdir -p "$dir/data"
    dir=$(cd "$dir" && pwd)
    if [ -f "$dir/zookeeper.pid" ] && kill -0 "$(cat "$dir/zookeeper.pid")" 2>/dev/null; then
        die "a server is already running from $dir (pid $(cat "$dir/zookeeper.pid"))"
    fi
    # tickTime 500 ms: sessions may be as short as 1 s (minSessionTimeout), so the tests see
    # expiry and failover in seconds. The admin server (Jetty on 8080) is off.
    cat >"$dir/zoo.cfg" <<CFG
tickTime=500
minSessionTimeout=1000
maxSessionTimeout=30000
dataDir=$dir/data
clientPort=$port
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,stat
autopurge.purgeInterval=0
CFG
    # setsid: the server is no child of the caller's process group, so a test harness that
    # is killed leaves it to the pid file (and `stop`), not to a signal aimed at the group.
    setsid "$JAVA" -Xmx256m -XX:+UseSerialGC -Dzookeeper.jmx.log4j.disable=true \
        -cp "$(classpath)" org.apache.zookeeper.server.ZooKeeperServerMain "$dir/zoo.cfg" \
        >"$dir/zookeeper.log" 2>&1 </dev/null &
    local pid=$! i
    echo "$pid" >"$dir/zookeeper.pid"
    # ZK_OWNER_PID: the server dies with that process (a test binary killed before it
    # could stop its server leaves no JVM behind).
    if [ -n "${ZK_OWNER_PID:-}" ]; then
        setsid bash -c 'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done
            kill -9 "$2" 2>/dev/null' zk-watchdog "$ZK_OWNER_PID" "$pid" >/dev/null 2>&1 </dev/null &
    fi
    for i in $(seq 1 300); do
        if ruok "$port"; then
            echo "zookeeper.sh: ZooKeeper up on 127.0.0.1:$port (pid $pid, dir $dir)"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || { tail -20 "$dir/zookeeper.log" >&2; die "the server exited"; }
        sleep 0.1
    done
    tail -20 "$dir/zookeeper.log" >&2
    kill -9 "$pid" 2>/dev/null || true
    die "no 'imok' from 127.0.0.1:$port within 30 s"
}

cmd_stop() {
    local dir=${1:?usage: stop DIR}
    [ -f "$dir/zookeeper.pid" ] || return 0
    local pid
    pid=$(cat "$dir/zookeeper.pid")
    if kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid" 2>/dev/null || true
        local i
        # Gone, or a zombie (its sockets are closed then; its reaper may be slow).
        for i in $(seq 1 200); do
            kill -0 "$pid" 2>/dev/null || break
            [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ] && break
            sleep 0.05
        done
    fi
    rm -f "$dir/zookeeper.pid"
}

case "${1:-}" in
    install) cmd_install ;;
    available) available ;;
    start) shift; cmd_start "$@" ;;
    stop) shift; cmd_stop "$@" ;;
    *) die "usage: $0 install | available | start DIR PORT | stop DIR" ;;
esac
