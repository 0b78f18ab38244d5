#!/usr/bin/env bash
# The seed's run flow, end to end, with the dockyard CLI (and the docker CLI when installed):
# a local registry, a daemon whose Docker Hub mirror is that registry, `run` of an image that
# is not there yet (so it is pulled), ps, run -d, inspect, exec, commit, login, push, rmi,
# pull again.
#
# `make demo` runs this inside a network namespace of its own (only loopback), so nothing
# the demo starts can reach beyond this machine, and docker.io is never contacted: `busybox`
# means docker.io/library/busybox, which the daemon fetches from its mirror
# http://127.0.0.1:5000 (a dockyard-registry seeded here from Debian's busybox-static).
# The daemon and the registries keep running after the demo (the registries in the
# daemon's network namespace), so you can go on typing `dockyard ...`.
set -euo pipefail

DATA_ROOT=${DOCKYARD_DATA_ROOT:-/var/lib/dockyard}
EXEC_ROOT=${DOCKYARD_EXEC_ROOT:-/run/dockyard}
SOCK=${DOCKYARD_SOCK:-/run/dockyard/dockyard.sock}
BUSYBOX_TAR=${DOCKYARD_BUSYBOX_TAR:-build/busybox-rootfs.tar}
REGISTRY_ROOT=${DOCKYARD_REGISTRY_ROOT:-/var/lib/dockyard-registry}
AUTH_REGISTRY_ROOT=${DOCKYARD_AUTH_REGISTRY_ROOT:-/var/lib/dockyard-registry-auth}
MIRROR_PORT=5000
AUTH_PORT=5001
DEMO_USER=demo
DEMO_PASSWORD=demo-password
export DOCKER_HOST="unix://$SOCK"
export DOCKER_CONFIG=${DOCKER_CONFIG:-$EXEC_ROOT/demo-docker-config}
B=$'\e[1m'; N=$'\e[0m'

step() { printf '\n%s$ %s%s\n' "$B" "$*" "$N"; "$@"; }
# a step whose failure is shown but does not end the demo (a feature still being built)
try_step() { printf '\n%s$ %s%s\n' "$B" "$*" "$N"; "$@" || echo "(failed: $?)"; }
note() { printf '\n%s# %s%s\n' "$B" "$*" "$N"; }

mkdir -p "$EXEC_ROOT" "$DOCKER_CONFIG"

# -- the daemon, with the local registry as its Docker Hub mirror --------------------------
daemon_pid() {
  local p=""
  [ -s "$EXEC_ROOT/dockyardd.pid" ] && p=$(cat "$EXEC_ROOT/dockyardd.pid")
  [ -z "$p" ] && [ -s "$DATA_ROOT/dockyardd.lock" ] && p=$(head -n1 "$DATA_ROOT/dockyardd.lock")
  echo "$p"
}

if dockyard version >/dev/null 2>&1; then
  mirrors=$(dockyard info --format '{{json .RegistryConfig.Mirrors}}' 2>/dev/null || true)
  if [[ "$mirrors" != *"127.0.0.1:$MIRROR_PORT"* ]]; then
    pid=$(daemon_pid)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      echo "restarting dockyardd (pid $pid) with --registry-mirror http://127.0.0.1:$MIRROR_PORT"
      kill "$pid"                                  # containers keep running (their shims own them)
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  fi
fi
if ! dockyard version >/dev/null 2>&1; then
  echo "starting dockyardd (log: $EXEC_ROOT/dockyardd.log)"
  setsid dockyardd -H "unix://$SOCK" --data-root "$DATA_ROOT" --exec-root "$EXEC_ROOT" \
    --pidfile "$EXEC_ROOT/dockyardd.pid" --registry-mirror "http://127.0.0.1:$MIRROR_PORT" \
    >>"$EXEC_ROOT/dockyardd.log" 2>&1 < /dev/null &
  for _ in $(seq 100); do dockyard version >/dev/null 2>&1 && break; sleep 0.1; done
fi
DPID=$(daemon_pid)
# the registries live in the daemon's network namespace (it may be an earlier demo's)
NS=()
if [ -n "$DPID" ] && [ -e "/proc/$DPID/ns/net" ]; then NS=(nsenter "--net=/proc/$DPID/ns/net"); fi

port_open() { "${NS[@]}" bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

start_registry() {   # port root pidfile [extra args]
  local port=$1 root=$2 pidfile=$3; shift 3
  if port_open "$port"; then return; fi
  echo "starting dockyard-registry on 127.0.0.1:$port (root $root)"
  mkdir -p "$root"
  "${NS[@]}" setsid dockyard-registry --listen "127.0.0.1:$port" --root "$root" "$@" \
    >>"$EXEC_ROOT/registry-$port.log" 2>&1 < /dev/null &
  echo $! > "$pidfile"
  for _ in $(seq 100); do port_open "$port" && return; sleep 0.1; done
  echo "dockyard-registry on port $port did not start; see $EXEC_ROOT/registry-$port.log" >&2
  exit 1
}

start_registry "$MIRROR_PORT" "$REGISTRY_ROOT" "$EXEC_ROOT/registry-$MIRROR_PORT.pid"
htpasswd -Bbn "$DEMO_USER" "$DEMO_PASSWORD" > "$EXEC_ROOT/demo-htpasswd"
start_registry "$AUTH_PORT" "$AUTH_REGISTRY_ROOT" "$EXEC_ROOT/registry-$AUTH_PORT.pid" \
  --htpasswd "$EXEC_ROOT/demo-htpasswd"

# -- seed library/busybox into the mirror, then forget it locally ---------------------------
for c in demo-hello demo-ticker demo-web; do dockyard rm -f "$c" >/dev/null 2>&1 || true; done
note "seeding 127.0.0.1:$MIRROR_PORT/library/busybox from $BUSYBOX_TAR"
dockyard import "$BUSYBOX_TAR" demo-seed:latest >/dev/null
dockyard tag demo-seed:latest "127.0.0.1:$MIRROR_PORT/library/busybox:latest"
dockyard push "127.0.0.1:$MIRROR_PORT/library/busybox:latest"
dockyard rmi demo-seed:latest "127.0.0.1:$MIRROR_PORT/library/busybox:latest" >/dev/null
dockyard rmi busybox:latest >/dev/null 2>&1 || true   # so that `run` has to pull it
dockyard rmi "127.0.0.1:$AUTH_PORT/demo/greeting:1" >/dev/null 2>&1 || true

# -- the tour ---------------------------------------------------------------------------------
note "busybox is not here: run pulls it (docker.io/library/busybox, served by the mirror)"
step dockyard run --name demo-hello busybox echo "hello from a container"
step dockyard ps
step dockyard ps -a
step dockyard images --digests
step dockyard run -d --name demo-web busybox sh -c \
  'echo "hello from a committed image" > /greeting; i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 1; done'
sleep 1.5
step dockyard inspect -f 'status={{.State.Status}} pid={{.State.Pid}} ip={{.NetworkSettings.IPAddress}}' demo-web
step dockyard logs --tail 2 demo-web
try_step dockyard exec demo-web cat /greeting
step dockyard commit -m "a greeting" -a "the demo" demo-web "127.0.0.1:$AUTH_PORT/demo/greeting:1"
step dockyard history "127.0.0.1:$AUTH_PORT/demo/greeting:1"
note "127.0.0.1:$AUTH_PORT wants a password (htpasswd): log in, then push"
try_step dockyard push "127.0.0.1:$AUTH_PORT/demo/greeting:1"
printf '\n%s$ echo *** | dockyard login -u %s --password-stdin 127.0.0.1:%s%s\n' "$B" "$DEMO_USER" "$AUTH_PORT" "$N"
echo "$DEMO_PASSWORD" | dockyard login -u "$DEMO_USER" --password-stdin "127.0.0.1:$AUTH_PORT"
step dockyard push "127.0.0.1:$AUTH_PORT/demo/greeting:1"
step dockyard stop -t 1 demo-web
step dockyard rm demo-web demo-hello
step dockyard rmi "127.0.0.1:$AUTH_PORT/demo/greeting:1"
note "and back from the registry"
step dockyard pull "127.0.0.1:$AUTH_PORT/demo/greeting:1"
step dockyard run --rm "127.0.0.1:$AUTH_PORT/demo/greeting:1" cat /greeting
step dockyard images --digests
if command -v docker >/dev/null 2>&1; then
  note "the real docker CLI, talking to dockyardd"
  step docker pull "127.0.0.1:$AUTH_PORT/demo/greeting:1"
  step docker run --rm busybox sh -c 'echo "the real docker CLI, talking to dockyardd"'
  step docker ps -a
fi
printf '\n%sdockyardd keeps running: try `DOCKER_HOST=%s DOCKER_CONFIG=%s dockyard images`%s\n' \
  "$B" "$DOCKER_HOST" "$DOCKER_CONFIG" "$N"
