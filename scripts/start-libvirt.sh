#!/usr/bin/env bash
# Starts virtlogd and libvirtd when they are not running (our machines have no systemd) and makes
# libvirt's read-write socket usable by the 'libvirt' group, which the unprivileged daemon is in.
# Idempotent; safe to run on every 'make run' and 'make test'.
# With an argument FILE, the pids of the daemons this run started are appended to FILE, so the
# caller can stop exactly what it started.
set -euo pipefail
STARTED=${1:-/dev/null}
CONF=/etc/libvirt/libvirtd.conf
MARK="# virthost: socket access for the libvirt group"
restart=0
if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    printf '\n%s\nunix_sock_group = "libvirt"\nunix_sock_rw_perms = "0770"\nauth_unix_rw = "none"\n' "$MARK" >> "$CONF"
    restart=1
fi

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if ! running /run/virtlogd.pid; then
    virtlogd -d
    for _ in $(seq 50); do running /run/virtlogd.pid && break; sleep 0.1; done
    cat /run/virtlogd.pid >> "$STARTED"
fi

if running /run/libvirtd.pid && [ "$restart" = 1 ]; then
    kill "$(cat /run/libvirtd.pid)"
    for _ in $(seq 50); do running /run/libvirtd.pid || break; sleep 0.1; done
fi
if ! running /run/libvirtd.pid; then
    mkdir -p /var/log/libvirt
    # tini reaps qemu's zombies at once, which makes domain destroy several times faster here.
    setsid tini -s -- libvirtd --pid-file /run/libvirtd.pid >>/var/log/libvirt/libvirtd-fg.log 2>&1 </dev/null &
    echo $! >> "$STARTED"
fi
for _ in $(seq 300); do
    virsh -c qemu:///system version >/dev/null 2>&1 && exit 0
    sleep 0.1
done
echo "start-libvirt: libvirtd did not answer within 30 s" >&2
exit 1
