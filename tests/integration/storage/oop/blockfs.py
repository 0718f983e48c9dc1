"""A FUSE file system for tests that hangs on demand, like an NFS server that stopped answering.

Run as ``python blockfs.py MOUNTPOINT`` (root, fusepy from Debian's python3-fusepy). It serves a
read-only tree (:data:`FILES`) with the kernel's attribute and entry caches off and direct I/O, so
every stat, lookup and read really reaches this process. It prints ``ready`` once the kernel has
initialised the mount, then takes commands on stdin, one a line, answering each with one line:

``block``
    From now on every operation waits (``ok``).
``release``
    Let every waiting and future operation through (``ok``).
``waiting``
    ``waiting TID...``: the kernel thread ids of the callers held right now. The kernel reports
    the calling thread, so the test can tell *which process* is stuck on the mount.

End of input (the test died) releases everything and lazily unmounts, so a hung mount is never
left behind. The test unmounts with ``fusermount3 -u -z``, which ends the FUSE loop and this
process.
"""

from __future__ import annotations

import errno
import stat
import subprocess
import sys
import threading
from typing import Any

import fusepy

FILES: dict[str, bytes] = {
    "/metadata": b"CLASS=Data\nDESCRIPTION=hung-domain\nVERSION=5\n",
    "/dom_md/ids": bytes(range(256)) * 32,
}
DIRS = {"/", "/dom_md"}

_print_lock = threading.Lock()


def say(line: str) -> None:
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class Gate:
    """Open by default; while closed, callers wait and are counted by thread id."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._open = True
        self._waiting: list[int] = []

    def pass_through(self) -> None:
        with self._cond:
            if self._open:
                return
            tid = fusepy.fuse_get_context()[2]
            self._waiting.append(tid)
            try:
                self._cond.wait_for(lambda: self._open)
            finally:
                self._waiting.remove(tid)

    def set_open(self, value: bool) -> None:
        with self._cond:
            self._open = value
            self._cond.notify_all()

    def waiting(self) -> list[int]:
        with self._cond:
            return list(self._waiting)


class BlockingFS(fusepy.Operations):  # type: ignore[misc]
    use_ns = True

    def __init__(self, gate: Gate) -> None:
        self._gate = gate

    def init(self, path: str) -> None:
        say("ready")

    def getattr(self, path: str, fh: Any = None) -> dict[str, Any]:
        self._gate.pass_through()
        if path in DIRS:
            return {"st_mode": stat.S_IFDIR | 0o755, "st_nlink": 2}
        if path in FILES:
            return {"st_mode": stat.S_IFREG | 0o644, "st_nlink": 1, "st_size": len(FILES[path])}
        raise fusepy.FuseOSError(errno.ENOENT)

    def readdir(self, path: str, fh: Any) -> list[str]:
        self._gate.pass_through()
        prefix = path.rstrip("/") + "/"
        children = {
            name[len(prefix) :].split("/")[0]
            for name in [*FILES, *DIRS]
            if name.startswith(prefix) and name != prefix
        }
        return [".", "..", *sorted(children)]

    def open(self, path: str, flags: int) -> int:
        self._gate.pass_through()
        if path not in FILES:
            raise fusepy.FuseOSError(errno.ENOENT)
        return 0

    def read(self, path: str, size: int, offset: int, fh: Any) -> bytes:
        self._gate.pass_through()
        return FILES[path][offset : offset + size]

    def statfs(self, path: str) -> dict[str, int]:
        self._gate.pass_through()
        return {"f_bsize": 4096, "f_frsize": 4096, "f_blocks": 1024, "f_namemax": 255}


def control(gate: Gate, mountpoint: str) -> None:
    for raw in sys.stdin:
        command = raw.strip()
        if command == "block":
            gate.set_open(False)
            say("ok")
        elif command == "release":
            gate.set_open(True)
            say("ok")
        elif command == "waiting":
            say(" ".join(["waiting", *map(str, gate.waiting())]))
        else:
            say(f"error unknown command {command!r}")
    gate.set_open(True)
    subprocess.run(["fusermount3", "-u", "-z", mountpoint], check=False)


def main() -> None:
    mountpoint = sys.argv[1]
    gate = Gate()
    threading.Thread(target=control, args=(gate, mountpoint), daemon=True).start()
    fusepy.FUSE(
        BlockingFS(gate),
        mountpoint,
        foreground=True,
        ro=True,
        direct_io=True,
        attr_timeout=0,
        entry_timeout=0,
        negative_timeout=0,
        fsname="blockfs",
    )


if __name__ == "__main__":
    main()
