#!/usr/bin/env bash
# Installs everything virthost needs on a Debian 12 host, idempotently:
# the Debian packages, the unprivileged service user, and the virtualenv in ./venv.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
    libvirt-daemon-system qemu-system-x86 qemu-utils python3-libvirt python3-sanlock
    python3-venv python3-dev gcc tini dmidecode openssl iproute2 procps
    systemd
    busybox-static kmod gzip
    fuse3 python3-fusepy
    glusterfs-server glusterfs-client
    sanlock
    python3-pyroute2
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=900 update -q
    apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${missing[@]}"
fi

# The daemon drops to this user; kvm and libvirt let it reach /dev/kvm and libvirt's socket.
getent group kvm >/dev/null || groupadd --system kvm
getent group libvirt >/dev/null || groupadd --system libvirt
if ! getent passwd virthost >/dev/null; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
        --groups kvm,libvirt virthost
fi
# sanlock's socket is group sanlock: the daemon holds the SPM lease through it
if getent group sanlock >/dev/null && ! id -nG virthost | grep -qw sanlock; then
    usermod -aG sanlock virthost
fi

# Debian's own Python with its libvirt binding; everything else pinned from PyPI.
PY=/usr/bin/python3
stamp=venv/.installed
if [ ! -x venv/bin/python ] || [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    [ -x venv/bin/python ] || "$PY" -m venv --system-site-packages venv
    venv/bin/pip install -q --disable-pip-version-check -e '.[dev]'
    touch "$stamp"
fi
