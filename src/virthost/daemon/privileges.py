"""Dropping root: virthostd is started by root and serves as an unprivileged user.

What needs root before the switch is done first (creating the state directories and handing
them over, reading the TLS key); afterwards the process has the user's uid, its primary group
and its supplementary groups (kvm, libvirt), and nothing else. Privileged work then goes
through the supervisor.
"""

from __future__ import annotations

import logging
import os
import pwd
from pathlib import Path

log = logging.getLogger("virthost.daemon")


def prepare_dirs(user: str, *dirs: str) -> None:
    """Create ``dirs`` and make them owned by ``user`` (when running as root)."""
    entry = pwd.getpwnam(user) if user and os.geteuid() == 0 else None
    for d in dirs:
        path = Path(d)
        path.mkdir(parents=True, exist_ok=True)
        if entry is not None:
            os.chown(path, entry.pw_uid, entry.pw_gid)


def drop_to(user: str) -> None:
    """Become ``user`` for good, with its groups. No-op when not root or user is ""."""
    if not user or os.geteuid() != 0:
        return
    entry = pwd.getpwnam(user)
    os.initgroups(user, entry.pw_gid)
    os.setresgid(entry.pw_gid, entry.pw_gid, entry.pw_gid)
    os.setresuid(entry.pw_uid, entry.pw_uid, entry.pw_uid)
    os.environ["HOME"] = entry.pw_dir
    os.environ["USER"] = os.environ["LOGNAME"] = user
    log.info("running as %s (uid %d, groups %s)", user, entry.pw_uid, sorted(os.getgroups()))
