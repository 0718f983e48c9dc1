#!/usr/bin/env bash
# Starts the sanlock daemon when it is not answering (our machines have no systemd). The
# storage pool's SPM lease and the hosts' ids in each domain live in sanlock.
# Idempotent; with an argument FILE, the pid of a daemon started here is appended to FILE.
#
# Development machines differ from a real host in two ways, handled here and nowhere else:
# no watchdog device (the daemon runs with -w 0: a host that loses its lease is not reset),
# and root without CAP_SYS_RESOURCE (sanlock cannot raise its rlimits; a small LD_PRELOAD shim,
# scripts/dev/sanlock-rlimit-shim.c, is then built and used). A real host runs sanlock with
# wdmd from its own service unit.
set -euo pipefail
cd "$(dirname "$0")/.."
STARTED=${1:-/dev/null}
LOG=/var/log/sanlock-virthost.log

answers() { timeout 10 sanlock client status >/dev/null 2>&1; }
answers && exit 0

mkdir -p /run/sanlock
chown sanlock:sanlock /run/sanlock
env_preload=()
if ! prlimit --pid $$ --memlock=unlimited:unlimited 2>/dev/null; then
    CACHE=/var/tmp/virthost-dev-cache
    SRC=scripts/dev/sanlock-rlimit-shim.c
    SHIM=$CACHE/sanlock-rlimit-shim-$(sha256sum "$SRC" | cut -c1-12).so
    if [ ! -f "$SHIM" ]; then
        mkdir -p "$CACHE"
        gcc -shared -fPIC -O2 -Wall -o "$SHIM.tmp" "$SRC" -ldl
        mv "$SHIM.tmp" "$SHIM"
    fi
    env_preload=(env "LD_PRELOAD=$SHIM")
fi
setsid "${env_preload[@]}" sanlock daemon -D -w 0 -l 0 -U sanlock -G sanlock >>"$LOG" 2>&1 </dev/null &
echo $! >> "$STARTED"
for _ in $(seq 100); do answers && exit 0; sleep 0.2; done
echo "start-sanlock: the sanlock daemon did not start; see $LOG" >&2
exit 1
