"""Reading /proc, /sys and /etc files below an injectable root directory.

Everything in ``virthost.host`` that looks at the running system goes through these helpers with
a ``root`` argument (``"/"`` in production). Tests point ``root`` at a temporary tree holding
golden copies of the kernel files, so the readers are exercised without depending on the machine
the tests run on. Missing or unreadable files are normal here (no NUMA sysfs on some kernels,
no ``speed`` for virtual NICs, no SELinux on Debian), so the helpers return ``None`` or an empty
list instead of raising, and callers pick the documented default.
"""

from __future__ import annotations

import os


def host_path(root: str, path: str) -> str:
    """``path`` (absolute, as on the host) re-rooted below ``root``."""
    return os.path.join(root, path.lstrip("/"))


def read_text(root: str, path: str) -> str | None:
    """The whole file as text, or ``None`` when it cannot be read."""
    try:
        with open(host_path(root, path), encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def read_line(root: str, path: str) -> str | None:
    """The file's content stripped of surrounding whitespace (sysfs attributes), or ``None``."""
    text = read_text(root, path)
    return None if text is None else text.strip()


def read_int(root: str, path: str) -> int | None:
    """A sysfs/procfs attribute holding one integer, or ``None`` when absent or not a number."""
    value = read_line(root, path)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def list_dir(root: str, path: str) -> list[str]:
    """Sorted entries of a directory; empty when it does not exist."""
    try:
        return sorted(os.listdir(host_path(root, path)))
    except OSError:
        return []


def exists(root: str, path: str) -> bool:
    return os.path.exists(host_path(root, path))
