"""The out-of-process I/O helper: ``python -m virthost.storage.oop.helper``.

Why a process: a thread that touches a hung NFS or Gluster mount sleeps in the kernel until the
server comes back, maybe forever, and nothing in Python can interrupt it. If that thread is one of
the daemon's, it holds whatever it held (locks, an executor slot) for as long. So the daemon never
touches file storage itself: each storage domain gets a helper process (see
:mod:`virthost.storage.oop.client`), and a hung mount strands threads of *that* helper only.

Inside, the main thread only reads requests from stdin and hands them to ``--threads`` worker
threads through a queue of at most ``--queue`` requests. It never touches a file, so it keeps
reading and answering even when every worker is stuck: a request that finds the queue full is
answered ``busy`` at once, and a request that waited in the queue longer than the caller's
timeout is answered ``expired`` without being run. Workers write responses to stdout under one
lock, each a complete line.

The helper lives as long as its stdin: end of input (the daemon closed the pipe, stopped or died)
makes it exit at once with ``os._exit``, which does not wait for workers stuck on a mount (the
kernel kills them with the process). It ignores SIGINT so a Ctrl-C meant for a foreground daemon
does not kill it first, and logs only problems, to stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import BinaryIO

from virthost.storage.oop import protocol
from virthost.storage.oop.ops import OPS

log = logging.getLogger("virthost.storage.oop.helper")

DEFAULT_THREADS = 10
DEFAULT_QUEUE = 10


@dataclass(frozen=True)
class _Job:
    request: protocol.Request
    deadline: float | None


class HelperServer:
    """Serves requests from ``reader`` with ``threads`` workers, answering on ``writer``."""

    def __init__(self, reader: BinaryIO, writer: BinaryIO, threads: int, max_queued: int) -> None:
        if threads < 1 or max_queued < 1:
            raise ValueError("threads and max_queued must be at least 1")
        self._reader = reader
        self._writer = writer
        self._write_lock = threading.Lock()
        self._jobs: queue.Queue[_Job] = queue.Queue(maxsize=max_queued)
        self._workers = [
            threading.Thread(target=self._work, name=f"oop-worker/{n}", daemon=True)
            for n in range(1, threads + 1)
        ]

    def serve(self) -> None:
        """Run until end of input; workers are left to the caller's ``os._exit``."""
        for worker in self._workers:
            worker.start()
        while True:
            line = self._reader.readline(protocol.MAX_LINE + 1)
            if not line:
                return
            if not line.endswith(b"\n"):
                if len(line) > protocol.MAX_LINE:
                    # The rest of the line would be parsed as garbage: give up on this stream.
                    self._send(
                        protocol.Response.failure(None, protocol.ErrorKind.INVALID, "line too long")
                    )
                    return
                # A last line without its newline: the client is gone, nobody waits for it.
                return
            self._accept(line, time.monotonic())

    def _accept(self, line: bytes, received: float) -> None:
        try:
            request = protocol.decode_request(line)
        except protocol.ProtocolError as e:
            ident = protocol.peek_id(line)
            self._send(protocol.Response.failure(ident, protocol.ErrorKind.INVALID, str(e)))
            return
        if request.op not in OPS:
            message = f"unknown operation {request.op!r}"
            self._send(protocol.Response.failure(request.id, protocol.ErrorKind.INVALID, message))
            return
        deadline = None if request.timeout is None else received + request.timeout
        try:
            self._jobs.put_nowait(_Job(request, deadline))
        except queue.Full:
            message = f"all threads busy and {self._jobs.maxsize} requests queued"
            self._send(protocol.Response.failure(request.id, protocol.ErrorKind.BUSY, message))

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            self._send(self._run(job))

    def _run(self, job: _Job) -> protocol.Response:
        request = job.request
        if job.deadline is not None and time.monotonic() > job.deadline:
            message = "dropped: the caller stopped waiting before a thread was free"
            return protocol.Response.failure(request.id, protocol.ErrorKind.EXPIRED, message)
        try:
            return protocol.Response(request.id, OPS[request.op](request.args))
        except Exception as e:
            if not isinstance(e, (OSError, ValueError, TypeError, KeyError)):
                log.exception("%s failed unexpectedly", request.op)
            return protocol.Response.from_exception(request.id, e)

    def _send(self, response: protocol.Response) -> None:
        try:
            data = response.encode()
        except protocol.ProtocolError as e:
            kind = protocol.ErrorKind.INVALID
            data = protocol.Response.failure(response.id, kind, str(e)).encode()
        with self._write_lock:
            try:
                self._writer.write(data)
                self._writer.flush()
            except (BrokenPipeError, ValueError):
                # The daemon closed our output: nobody can receive anything any more.
                os._exit(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--name", default="Global", help="the pool's name, for logs and ps")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS)
    parser.add_argument("--queue", type=int, default=DEFAULT_QUEUE)
    options = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING,
        format=f"oop-helper[{options.name}] %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    server = HelperServer(sys.stdin.buffer, sys.stdout.buffer, options.threads, options.queue)
    server.serve()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
