"""Test support for out-of-process I/O: polling with a bound, and FIFOs that hang on demand.

A FIFO is the cheapest "hung storage" there is: a helper thread reading one blocks until the test
writes to it, exactly as a read from a dead NFS server blocks until the server returns.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

WAIT_LIMIT = 30.0


def eventually(check: Callable[[], bool], what: str) -> None:
    """Poll ``check`` until it holds; fail (not hang) after WAIT_LIMIT seconds."""
    deadline = time.monotonic() + WAIT_LIMIT
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        time.sleep(0.01)


class Fifo:
    """A named pipe whose readers block until :meth:`release`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path)
        self._fd: int | None = None

    def wait_for_reader(self) -> None:
        """Return once a helper thread has the FIFO open and is blocked reading it."""

        def reader_present() -> bool:
            try:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as e:
                if e.errno == errno.ENXIO:
                    return False
                raise
            return True

        eventually(reader_present, f"a reader opened {self.path}")

    def release(self, data: bytes = b"released") -> None:
        """Give the blocked reader its data and end of file; also unblocks a reader to come."""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK)
        os.write(self._fd, data)
        os.close(self._fd)
        self._fd = None

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
