"""The helper process spoken to directly, line by line, as the client does."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest

from virthost.storage.oop import protocol
from virthost.storage.oop.connection import helper_command
from virthost.storage.oop.protocol import ErrorKind, Request

from .support import Fifo


class Helper:
    def __init__(self, threads: int, max_queued: int) -> None:
        self.process = subprocess.Popen(
            helper_command("raw", threads, max_queued),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self._stdin: IO[bytes] = self.process.stdin
        self._stdout: IO[bytes] = self.process.stdout

    def send(self, line: bytes) -> None:
        self._stdin.write(line)
        self._stdin.flush()

    def call(self, request: Request) -> protocol.Response:
        self.send(request.encode())
        return self.receive()

    def receive(self) -> protocol.Response:
        line = self._stdout.readline()
        assert line, "the helper closed its output"
        return protocol.decode_response(line)

    def close(self) -> int:
        self._stdin.close()
        code = self.process.wait(30)
        self._stdout.close()
        return code


@pytest.fixture
def make_helper() -> Iterator[Callable[[int, int], Helper]]:
    helpers: list[Helper] = []

    def make(threads: int = 2, max_queued: int = 2) -> Helper:
        helper = Helper(threads, max_queued)
        helpers.append(helper)
        return helper

    yield make
    for helper in helpers:
        if helper.process.poll() is None:
            helper.process.kill()
            helper.process.wait()


def test_answers_and_exits_on_end_of_input(
    make_helper: Callable[[int, int], Helper], tmp_path: Path
) -> None:
    helper = make_helper(2, 2)
    assert helper.call(Request(1, "ping", {})) == protocol.Response(1, True)
    response = helper.call(Request(2, "listdir", {"path": str(tmp_path)}))
    assert response == protocol.Response(2, [])
    assert helper.close() == 0


def test_bad_lines_are_answered_and_serving_goes_on(
    make_helper: Callable[[int, int], Helper],
) -> None:
    helper = make_helper(2, 2)
    helper.send(b"this is not json\n")
    garbage = helper.receive()
    assert garbage.id is None and garbage.error is not None
    assert garbage.error.kind is ErrorKind.INVALID

    helper.send(b'{"id": 4, "op": "stat", "args": "nope"}\n')
    bad_args = helper.receive()
    assert bad_args.id == 4 and bad_args.error is not None
    assert bad_args.error.kind is ErrorKind.INVALID

    unknown = helper.call(Request(5, "chown", {"path": "/"}))
    assert unknown.id == 5 and unknown.error is not None
    assert unknown.error.kind is ErrorKind.INVALID and "chown" in unknown.error.message

    missing_arg = helper.call(Request(6, "stat", {}))
    assert missing_arg.error is not None and missing_arg.error.kind is ErrorKind.INVALID

    assert helper.call(Request(7, "ping", {})).result is True


def test_os_errors_carry_errno(make_helper: Callable[[int, int], Helper], tmp_path: Path) -> None:
    helper = make_helper(1, 1)
    response = helper.call(Request(1, "stat", {"path": str(tmp_path / "missing")}))
    assert response.error is not None
    assert response.error.kind is ErrorKind.OS
    assert response.error.errno == 2
    assert response.error.filename == str(tmp_path / "missing")


def test_full_queue_is_refused_at_once_and_stale_requests_are_not_run(
    make_helper: Callable[[int, int], Helper], make_fifo: Callable[[str], Fifo], tmp_path: Path
) -> None:
    helper = make_helper(1, 1)
    fifo = make_fifo("hung")
    helper.send(Request(1, "read_file", {"path": str(fifo.path)}).encode())
    fifo.wait_for_reader()  # the only worker is stuck

    marker = tmp_path / "created-by-a-stale-request"
    helper.send(Request(2, "touch", {"path": str(marker)}, timeout=0.001).encode())  # queued
    busy = helper.call(Request(3, "ping", {}))  # the queue is full
    assert busy.id == 3 and busy.error is not None and busy.error.kind is ErrorKind.BUSY

    time.sleep(0.05)  # request 2's caller has given up by now
    fifo.release(b"late data")
    first = helper.receive()
    assert first.id == 1 and first.result == protocol.encode_bytes(b"late data")
    stale = helper.receive()
    assert stale.id == 2 and stale.error is not None and stale.error.kind is ErrorKind.EXPIRED
    assert not marker.exists()
    assert helper.call(Request(4, "ping", {})).result is True


def test_responses_come_in_completion_order(
    make_helper: Callable[[int, int], Helper], make_fifo: Callable[[str], Fifo]
) -> None:
    helper = make_helper(2, 2)
    fifo = make_fifo("slow")
    helper.send(Request(1, "read_file", {"path": str(fifo.path)}).encode())
    fifo.wait_for_reader()
    assert helper.call(Request(2, "ping", {})) == protocol.Response(2, True)
    fifo.release(b"x")
    assert helper.receive().id == 1


def test_exits_even_with_a_stuck_worker(
    make_helper: Callable[[int, int], Helper], make_fifo: Callable[[str], Fifo]
) -> None:
    helper = make_helper(1, 1)
    fifo = make_fifo("forever")
    helper.send(Request(1, "read_file", {"path": str(fifo.path)}).encode())
    fifo.wait_for_reader()
    assert helper.close() == 0


def test_runs_as_a_module(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "virthost.storage.oop.helper", "--threads", "1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(Request(1, "exists", {"path": os.fspath(tmp_path)}).encode())
        process.stdin.flush()
        assert protocol.decode_response(process.stdout.readline()) == protocol.Response(1, True)
    finally:
        process.stdin.close()
        process.stdout.close()
        assert process.wait(30) == 0
