"""One running helper process and the two threads that feed and drain its pipes.

Why threads of our own on the pipes: the daemon thread that makes a call must never block on the
helper, not even on a pipe write (a stopped helper stops reading, and a full pipe would then
block the writer for good). So a caller only registers its request and waits on an event, with
its time box; a writer thread does the writes and a reader thread matches each response to its
request by id, so any number of calls are in flight at once, answered in any order.

When the helper goes away (its output ends, a pipe breaks, it breaks the protocol, or it is
stopped), every pending call is completed at once with an error and no more are accepted: no
caller waits out its timeout for an answer that cannot come. Responses for requests nobody waits
for any more (their caller timed out) are dropped.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import virthost
from virthost.storage.oop import protocol
from virthost.storage.oop.exceptions import HelperDied, OopError

log = logging.getLogger("virthost.storage.oop")


class Pending:
    """A call waiting for its response: exactly one of ``response`` or ``error`` gets set."""

    __slots__ = ("done", "error", "response")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.response: protocol.Response | None = None
        self.error: OopError | None = None


def helper_command(name: str, threads: int, max_queued: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "virthost.storage.oop.helper",
        "--name",
        name,
        "--threads",
        str(threads),
        "--queue",
        str(max_queued),
    ]


def _environment() -> dict[str, str]:
    """Our environment, with virthost importable even when it is not installed."""
    env = dict(os.environ)
    source_root = str(Path(virthost.__file__).resolve().parents[1])
    paths = [source_root, *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


class HelperProcess:
    """A started helper. Thread safe; once dead it stays dead (make a new one)."""

    def __init__(self, name: str, threads: int, max_queued: int) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._pending: dict[int, Pending] = {}
        self._ids = itertools.count(1)
        self._dead: OopError | None = None
        self._outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._process = subprocess.Popen(
            helper_command(name, threads, max_queued),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=_environment(),
            close_fds=True,
        )
        self._reader = threading.Thread(target=self._read, name=f"oop/{name}/reader", daemon=True)
        self._writer = threading.Thread(target=self._write, name=f"oop/{name}/writer", daemon=True)
        self._reader.start()
        self._writer.start()
        log.debug("Started I/O helper %s (pid %d)", name, self._process.pid)

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def alive(self) -> bool:
        with self._lock:
            return self._dead is None

    def submit(
        self, op: str, args: dict[str, object], timeout: float | None
    ) -> tuple[int, Pending]:
        """Queue a request; the returned Pending completes with its response or an error."""
        pending = Pending()
        with self._lock:
            if self._dead is not None:
                raise self._dead
            ident = next(self._ids)
            data = protocol.Request(ident, op, args, timeout).encode()
            self._pending[ident] = pending
            self._outbox.put(data)
        return ident, pending

    def forget(self, ident: int) -> bool:
        """Stop waiting for ``ident``; False when its outcome already arrived."""
        with self._lock:
            return self._pending.pop(ident, None) is not None

    def stop(self, error: OopError, grace: float) -> None:
        """Fail pending calls with ``error``, end the helper's input and wait for it to exit.

        It exits on end of input; a helper that does not within ``grace`` seconds is killed, and
        one that survives even that (stuck in uninterruptible I/O) is left for the kernel.
        """
        self._fail(error)
        self._outbox.put(None)
        try:
            self._process.wait(grace)
            return
        except subprocess.TimeoutExpired:
            log.warning("I/O helper %s (pid %d) ignored end of input", self._name, self.pid)
        with contextlib.suppress(OSError):
            self._process.kill()
        try:
            self._process.wait(grace)
        except subprocess.TimeoutExpired:
            log.error("I/O helper %s (pid %d) survived SIGKILL, leaving it", self._name, self.pid)

    def _fail(self, error: OopError) -> None:
        with self._lock:
            if self._dead is None:
                self._dead = error
            pending, self._pending = self._pending, {}
        for call in pending.values():
            call.error = error
            call.done.set()

    def _write(self) -> None:
        stdin = self._process.stdin
        assert stdin is not None
        try:
            while (data := self._outbox.get()) is not None:
                stdin.write(data)
                stdin.flush()
        except OSError as e:
            self._fail(HelperDied(f"helper {self._name} stopped reading: {e}"))
        finally:
            with contextlib.suppress(OSError):
                stdin.close()

    def _read(self) -> None:
        stdout = self._process.stdout
        assert stdout is not None
        reason = "its output ended"
        try:
            while line := stdout.readline(protocol.MAX_LINE + 1):
                if not line.endswith(b"\n"):
                    reason = "it sent a truncated or oversized line"
                    break
                try:
                    response = protocol.decode_response(line)
                except protocol.ProtocolError as e:
                    reason = f"it broke the protocol: {e}"
                    break
                self._deliver(response)
        except OSError as e:
            reason = f"reading its output failed: {e}"
        finally:
            with contextlib.suppress(OSError):
                stdout.close()
        if self.alive:
            self._died(reason)

    def _deliver(self, response: protocol.Response) -> None:
        if response.id is None:
            log.warning("I/O helper %s complained: %s", self._name, response.error)
            return
        with self._lock:
            pending = self._pending.pop(response.id, None)
        if pending is None:
            return  # its caller timed out and left
        pending.response = response
        pending.done.set()

    def _died(self, reason: str) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(1.0)
        code = self._process.returncode
        status = "is still running" if code is None else f"exited with status {code}"
        detail = f"I/O helper {self._name} (pid {self.pid}) {status}: {reason}"
        log.warning("%s", detail)
        self._fail(HelperDied(detail))
        if code is None:
            with contextlib.suppress(OSError):
                self._process.kill()
