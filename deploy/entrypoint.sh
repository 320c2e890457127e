#!/bin/sh
# Entrypoint of the app image (deploy/Dockerfile). One role per container:
#   control | executor | gate | door | api   the long-running processes, as plain `node <bundle>`
#   tls-init                    make the stack's certificates, one folder per process kind
#   pairing-code                open pairing and print the one-time code (in the control container)
#   cli ARGS…                   the countersign command (the `cli` service)
set -eu
cd /app
role=${1:-help}
[ $# -gt 0 ] && shift

if [ "$(id -u)" = 0 ]; then
  # Only the executor starts as root: to join the group of the Docker socket it was given, whose
  # gid differs from host to host, and then to run as uid 1000 like every other container.
  if [ -S /var/run/docker.sock ]; then
    exec setpriv --reuid=1000 --regid=1000 --groups="$(stat -c %g /var/run/docker.sock)" -- "$0" "$role" "$@"
  fi
  exec setpriv --reuid=1000 --regid=1000 --clear-groups -- "$0" "$role" "$@"
fi

log() { printf '%s entrypoint: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
# A smaller young generation, as `countersign up` starts its workers (cli/stack/processes.ts).
run_node() { exec node --max-semi-space-size=2 "$@"; }

case "$role" in
  control) run_node dist/control.mjs ;;
  gate) run_node dist/gate.mjs ;;
  door) run_node dist/door.mjs ;;
  tls-init) run_node dist/tls-init.mjs /tls/ca /tls ;;
  api) run_node dist/api.mjs ;;
  executor)
    # Steps run under detached runner processes that outlive the executor, so an executor that
    # crashes comes back and re-attaches to them. Restarting it here, inside the container, keeps
    # that promise; a container restart would kill the runners with it. The container's init
    # (`init: true`) reaps the runners.
    child=
    stopping=
    trap 'stopping=1; [ -z "$child" ] || kill -TERM "$child" 2>/dev/null || true' TERM INT
    restarts=0
    while :; do
      started=$(date +%s)
      node --max-semi-space-size=2 dist/executor.mjs &
      child=$!
      status=0
      wait "$child" || status=$?
      # A signal interrupts `wait`: wait again for the executor to finish its shutdown.
      while kill -0 "$child" 2>/dev/null; do wait "$child" || status=$?; done
      [ -z "$stopping" ] || exit 0
      # A worker that keeps dying right after start backs off, up to 30 s.
      if [ $(($(date +%s) - started)) -lt 10 ]; then restarts=$((restarts + 1)); else restarts=0; fi
      delay=$((1 << (restarts < 5 ? restarts : 5)))
      [ "$delay" -le 30 ] || delay=30
      log "executor worker exited ($status); restarting in ${delay}s"
      sleep "$delay" &
      wait $! || true
      [ -z "$stopping" ] || exit 0
    done
    ;;
  pairing-code) run_node --import tsx deploy/pairing-code.mjs ;;
  cli) exec bin/countersign "$@" ;;
  *)
    echo "usage: entrypoint.sh control|executor|gate|door|api|tls-init|pairing-code|cli ARGS…" >&2
    [ "$role" = help ] || exit 64
    ;;
esac
