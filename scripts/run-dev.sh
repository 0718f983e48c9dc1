#!/usr/bin/env bash
# `make run`: the supervisor (root) and virthostd in the foreground, with a development
# configuration whose state lives under ./var/. Ctrl-C stops everything this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VAR=$ROOT/var
mkdir -p "$VAR/lib" "$VAR/run"
STARTED=$VAR/run/started.pids
: > "$STARTED"
bash scripts/start-libvirt.sh "$STARTED"
bash scripts/start-sanlock.sh "$STARTED"

USER_NAME=virthost
# The daemon drops to 'virthost'; it must be able to reach ./var. A checkout below a private
# directory (such as /root) is not reachable: then it keeps running as root, and says so.
if ! runuser -u "$USER_NAME" -- test -x "$VAR" 2>/dev/null; then
    echo "run-dev: $VAR is not reachable by user $USER_NAME; the daemon will stay root" >&2
    USER_NAME=""
fi
venv/bin/virthost-pki init "$VAR/pki" >/dev/null

CONF=$VAR/virthostd.toml
cat > "$CONF" <<CONF
# Development configuration written by scripts/run-dev.sh (rewritten on every start).
[daemon]
user = "$USER_NAME"
state_dir = "$VAR/lib"
run_dir = "$VAR/run"
log_level = "INFO"
health_interval = 60.0

[rpc]
port = 54321

[pki]
ca_file = "$VAR/pki/certs/cacert.pem"
cert_file = "$VAR/pki/certs/hostcert.pem"
key_file = "$VAR/pki/keys/hostkey.pem"

[supervisor]
socket = "$VAR/run/supervisor.sock"

[sampling]
host_stats_interval = 5.0

[storage]
repository = "$VAR/data-center"

[virt]
# Our development machines cannot run KVM guests (nested virtualization): TCG is the default
# here. VIRTHOST_DOMAIN_TYPE=auto picks KVM where /dev/kvm is usable.
domain_type = "${VIRTHOST_DOMAIN_TYPE:-qemu}"
vm_sample_interval = 5.0
hooks_dir = "$VAR/hooks"
CONF

pids=()
cleanup() {
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    while read -r pid; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done < "$STARTED"
    rm -f "$STARTED"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

venv/bin/virthost-supervisor -c "$CONF" &
pids+=($!)
venv/bin/virthostd -c "$CONF" &
pids+=($!)
echo "run-dev: virthostd on port 54321; try: VIRTHOST_PKI_DIR=$VAR/pki venv/bin/virthost-client Host getCapabilities" >&2
wait "${pids[1]}"
