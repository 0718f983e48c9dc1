#!/usr/bin/env bash
# A "host" in a network namespace for trying Host.setupNetworks without touching this machine's
# own network: the supervisor and virthostd run inside namespace virthost-lab, whose nics are
# veth pairs (nic0 carries the client's path at 10.231.0.2; nic1 and nic2 are free, their peers
# lab1/lab2 here have 10.232.0.1/24 and 10.234.0.1/24). Run after `make run` has installed
# everything (it reuses ./var/pki); Ctrl-C stops the daemons and removes the namespace.
#
#   VIRTHOST_PKI_DIR=$PWD/var/pki venv/bin/virthost-client -a 10.231.0.2 Host setupNetworks ...
set -euo pipefail
cd "$(dirname "$0")/../.."
NS=virthost-lab
LAB=$PWD/var/netns-host
mkdir -p "$LAB/lib" "$LAB/run"
chmod 0755 "$LAB" "$LAB/lib" "$LAB/run"
[ -f var/pki/certs/cacert.pem ] || { echo "netns-host: run 'make run' once first" >&2; exit 1; }

cleanup() {
    trap - EXIT INT TERM
    kill "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    for n in 0 1 2; do ip link del "lab$n" 2>/dev/null || true; done
    ip netns del "$NS" 2>/dev/null || true
}
pids=()
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$NS"
ip -n "$NS" link set lo up
subnets=(10.231.0 10.232.0 10.234.0)
for n in 0 1 2; do
    ip link add "lab$n" type veth peer name "nic$n" netns "$NS"
    ip addr add "${subnets[$n]}.1/24" dev "lab$n"
    ip link set "lab$n" up
    ip -n "$NS" link set "nic$n" up
done
ip -n "$NS" addr add 10.231.0.2/24 dev nic0

CONF=$LAB/virthostd.toml
cat > "$CONF" <<CONF
# Written by scripts/dev/netns-host.sh: a daemon playing a host in namespace $NS.
[daemon]
state_dir = "$LAB/lib"
run_dir = "$LAB/run"
log_level = "INFO"

[rpc]
address = "0.0.0.0"
port = 54321

[pki]
ca_file = "$PWD/var/pki/certs/cacert.pem"
cert_file = "$PWD/var/pki/certs/hostcert.pem"
key_file = "$PWD/var/pki/keys/hostkey.pem"

[supervisor]
socket = "$LAB/run/supervisor.sock"

[storage]
repository = "$LAB/data-center"

[virt]
domain_type = "qemu"
CONF

ip netns exec "$NS" venv/bin/virthost-supervisor -c "$CONF" &
pids+=($!)
ip netns exec "$NS" venv/bin/virthostd -c "$CONF" &
pids+=($!)
echo "netns-host: try VIRTHOST_PKI_DIR=$PWD/var/pki venv/bin/virthost-client -a 10.231.0.2 Host getNetworkCapabilities" >&2
wait "${pids[1]}"
