#!/usr/bin/env bash
# The run flow, end to end, with the dockyard CLI (and the docker CLI when installed).
# `make demo` runs this inside a network namespace of its own (only loopback), so nothing
# the demo starts can reach beyond this machine. The daemon it starts keeps running after
# the demo, on the default socket, so you can go on typing `dockyard ...`.
set -euo pipefail

DATA_ROOT=${DOCKYARD_DATA_ROOT:-/var/lib/dockyard}
EXEC_ROOT=${DOCKYARD_EXEC_ROOT:-/run/dockyard}
SOCK=${DOCKYARD_SOCK:-/run/dockyard/dockyard.sock}
BUSYBOX_TAR=${DOCKYARD_BUSYBOX_TAR:-build/busybox-rootfs.tar}
export DOCKER_HOST="unix://$SOCK"
B=$'\e[1m'; N=$'\e[0m'

step() { printf '\n%s$ %s%s\n' "$B" "$*" "$N"; "$@"; }

if ! dockyard version >/dev/null 2>&1; then
  mkdir -p "$EXEC_ROOT"
  echo "starting dockyardd (log: $EXEC_ROOT/dockyardd.log)"
  setsid dockyardd -H "unix://$SOCK" --data-root "$DATA_ROOT" --exec-root "$EXEC_ROOT" \
    --pidfile "$EXEC_ROOT/dockyardd.pid" >>"$EXEC_ROOT/dockyardd.log" 2>&1 < /dev/null &
  for _ in $(seq 100); do dockyard version >/dev/null 2>&1 && break; sleep 0.1; done
fi

if ! dockyard image inspect busybox:latest >/dev/null 2>&1; then
  step dockyard import "$BUSYBOX_TAR" busybox:latest
fi

step dockyard images
step dockyard run --rm busybox echo "hello from a container"
step dockyard run --rm --hostname demo busybox sh -c 'echo "I am $(hostname), pid $$, uid $(id -u)"; ls /'
docker_rm() { dockyard rm -f demo-ticker >/dev/null 2>&1 || true; }
docker_rm
step dockyard run -d --name demo-ticker busybox sh -c 'i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 1; done'
sleep 2
step dockyard ps
step dockyard logs --tail 3 demo-ticker
step dockyard inspect -f 'status={{.State.Status}} pid={{.State.Pid}} started={{.State.StartedAt}}' demo-ticker
step dockyard top demo-ticker
step dockyard stop -t 1 demo-ticker
step dockyard ps -a --filter name=demo-ticker
step dockyard rm demo-ticker
if command -v docker >/dev/null 2>&1; then
  step docker run --rm busybox sh -c 'echo "the real docker CLI, talking to dockyardd"'
  step docker ps -a
fi
printf '\n%sdockyardd keeps running: try `DOCKER_HOST=%s dockyard ps -a`%s\n' "$B" "$DOCKER_HOST" "$N"
