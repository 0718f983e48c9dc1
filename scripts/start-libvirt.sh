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

# What a host managed by an engine has (VDSM configures the same): the directory of the
# guests' channel sockets, and SPICE with TLS (the engine's displays ask for a TLS port).
mkdir -p /var/lib/libvirt/qemu/channels
chown libvirt-qemu:kvm /var/lib/libvirt/qemu/channels 2>/dev/null || true
chmod 0775 /var/lib/libvirt/qemu/channels
SPICE=/etc/pki/virthost-spice
if [ ! -f "$SPICE/server-cert.pem" ]; then
    mkdir -p "$SPICE"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=virthost spice CA" \
        -keyout "$SPICE/ca-key.pem" -out "$SPICE/ca-cert.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$(hostname)" \
        -keyout "$SPICE/server-key.pem" -out "$SPICE/server.csr" 2>/dev/null
    openssl x509 -req -in "$SPICE/server.csr" -CA "$SPICE/ca-cert.pem" -CAkey "$SPICE/ca-key.pem" \
        -CAcreateserial -days 3650 -out "$SPICE/server-cert.pem" 2>/dev/null
    rm -f "$SPICE/server.csr"
    chgrp kvm "$SPICE/server-key.pem" && chmod 0640 "$SPICE/server-key.pem"
    chmod 0600 "$SPICE/ca-key.pem"
fi
QCONF=/etc/libvirt/qemu.conf
# QEMU runs in group kvm (its user's own group), so the images libvirt hands over to it while a
# VM runs stay readable and writable by the agent, which is in kvm too (VDSM's vdsm:kvm model).
GMARK="# virthost: QEMU's group"
if [ -f "$QCONF" ] && ! grep -qF "$GMARK" "$QCONF"; then
    printf '\n%s\ngroup = "kvm"\n' "$GMARK" >> "$QCONF"
    restart=1
fi
QMARK="# virthost: SPICE over TLS"
if [ -f "$QCONF" ] && ! grep -qF "$QMARK" "$QCONF"; then
    printf '\n%s\nspice_tls = 1\nspice_tls_x509_cert_dir = "%s"\n' "$QMARK" "$SPICE" >> "$QCONF"
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
