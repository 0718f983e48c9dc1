"""Atomic file replacement, so a crash never leaves a half-written state file.

Host-local state (network running/safe configuration, pending tasks) is read back after a crash
or a power cut, when a half-written file is worse than an old one. So a file is never rewritten
in place: the new content goes to a temporary file in the *same directory* (rename is atomic only
within one file system), is fsynced, and is renamed over the old name; then the directory is
fsynced so the rename itself survives a power cut. Readers see the old file or the new one,
never a mixture.

The temporary file is created private (mkstemp's 0600) and gets its final ``mode`` with fchmod,
which, unlike the mode given to open, is not masked by the umask. On any failure it is removed
and the old file is left untouched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically and durably."""
    directory = path.parent
    fd, temp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as temp_file:
            os.fchmod(temp_file.fileno(), mode)
            temp_file.write(data)
            temp_file.flush()
            os.fsync(temp_file.fileno())
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    fsync_directory(directory)


def atomic_write_text(path: Path, text: str, mode: int = 0o644, encoding: str = "utf-8") -> None:
    """:func:`atomic_write` for text."""
    atomic_write(path, text.encode(encoding), mode)


def fsync_directory(directory: Path) -> None:
    """Make renames and creations in ``directory`` durable."""
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
