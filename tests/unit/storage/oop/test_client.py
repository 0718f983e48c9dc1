"""The client's life cycle: lazy start, time boxes, saturation, a dying helper, idling, closing.

Hung storage is a FIFO nobody writes to (see support.py).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from virthost.common import errors
from virthost.storage.oop import (
    HelperDied,
    OutOfProcessIO,
    PoolClosed,
    StorageTimeout,
    TooManyRequests,
)

from .support import Fifo, eventually

MakeOop = Callable[..., OutOfProcessIO]
MakeFifo = Callable[[str], Fifo]


class Background:
    """A call made in another thread, whose outcome the test inspects after joining it."""

    def __init__(self, func: Callable[[], object]) -> None:
        self.result: object = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(func,), daemon=True)
        self._thread.start()

    def _run(self, func: Callable[[], object]) -> None:
        try:
            self.result = func()
        except BaseException as e:
            self.error = e

    def join(self) -> None:
        self._thread.join(60)
        assert not self._thread.is_alive(), "the calling thread is still blocked"


def test_helper_starts_on_first_call(make_oop: MakeOop) -> None:
    oop = make_oop("lazy")
    assert oop.helper_pid is None
    oop.ping()
    assert oop.helper_pid is not None
    pid = oop.helper_pid
    oop.ping()
    assert oop.helper_pid == pid


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        OutOfProcessIO("x", max_threads=0)
    with pytest.raises(ValueError):
        OutOfProcessIO("x", timeout=0)


def test_storage_timeout_frees_the_caller_and_the_pool_keeps_serving(
    make_oop: MakeOop, make_fifo: MakeFifo, tmp_path: Path
) -> None:
    oop = make_oop("hung", timeout=0.5)
    oop.ping()
    pid = oop.helper_pid
    fifo = make_fifo("hung")

    with pytest.raises(StorageTimeout) as info:
        oop.read_file(fifo.path)
    assert isinstance(info.value, errors.AccessTimeout)
    assert info.value.code == 3
    assert str(fifo.path) in str(info.value)

    fifo.wait_for_reader()  # a helper thread is still stuck in the read ...
    assert oop.listdir(tmp_path) == ["hung"]  # ... while the others serve
    assert oop.helper_pid == pid  # the helper was not restarted

    fifo.release()
    oop.write_file(tmp_path / "after", b"fine")
    assert oop.read_file(tmp_path / "after") == b"fine"
    assert oop.helper_pid == pid


def test_saturated_pool_fails_fast_and_recovers(
    make_oop: MakeOop, make_fifo: MakeFifo, tmp_path: Path
) -> None:
    oop = make_oop("saturated", max_threads=1, max_queued=1, timeout=0.5)
    fifo = make_fifo("hung")
    stuck = Background(lambda: oop.read_file(fifo.path))
    fifo.wait_for_reader()  # the only thread is stuck

    with pytest.raises(StorageTimeout):
        oop.ping()  # waits in the helper's queue until its caller gives up
    with pytest.raises(TooManyRequests) as info:
        oop.ping()  # the queue is full: refused at once
    assert info.value.code == errors.ResourceExhausted.code

    stuck.join()
    assert isinstance(stuck.error, StorageTimeout)

    fifo.release()

    def answers() -> bool:
        try:
            oop.ping()
        except (TooManyRequests, StorageTimeout):
            return False
        return True

    eventually(answers, "the pool answers again")
    assert oop.listdir(tmp_path) == ["hung"]


def test_pending_calls_fail_when_the_helper_dies_and_it_restarts(
    make_oop: MakeOop, make_fifo: MakeFifo, tmp_path: Path
) -> None:
    oop = make_oop("mortal", timeout=60.0)
    fifo = make_fifo("hung")
    pending = Background(lambda: oop.read_file(fifo.path))
    fifo.wait_for_reader()
    pid = oop.helper_pid
    assert pid is not None

    os.kill(pid, signal.SIGKILL)
    pending.join()
    assert isinstance(pending.error, HelperDied)
    assert "SIGKILL" in str(pending.error) or "-9" in str(pending.error)
    eventually(lambda: oop.helper_pid is None, "the dead helper is noticed")

    assert oop.listdir(tmp_path) == ["hung"]
    assert oop.helper_pid not in (None, pid)


def test_helper_killed_while_idle_is_replaced(make_oop: MakeOop, tmp_path: Path) -> None:
    oop = make_oop("idle-death")
    oop.ping()
    pid = oop.helper_pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    eventually(lambda: oop.helper_pid is None, "the dead helper is noticed")
    assert oop.exists(tmp_path)
    assert oop.helper_pid not in (None, pid)


def test_stop_if_idle(make_oop: MakeOop) -> None:
    oop = make_oop("idler")
    assert not oop.stop_if_idle(0.0)  # nothing running yet
    oop.ping()
    pid = oop.helper_pid
    assert not oop.stop_if_idle(3600.0)
    assert oop.helper_pid == pid
    assert oop.stop_if_idle(0.0)
    assert oop.helper_pid is None
    oop.ping()  # started again on demand
    assert oop.helper_pid not in (None, pid)


def test_a_pool_with_a_call_in_flight_is_not_idle(make_oop: MakeOop, make_fifo: MakeFifo) -> None:
    oop = make_oop("busy", timeout=60.0)
    fifo = make_fifo("hung")
    pending = Background(lambda: oop.read_file(fifo.path))
    fifo.wait_for_reader()
    assert not oop.stop_if_idle(0.0)
    fifo.release(b"data")
    pending.join()
    assert pending.result == b"data"


def test_close_fails_pending_and_later_calls(make_oop: MakeOop, make_fifo: MakeFifo) -> None:
    oop = make_oop("closing", timeout=60.0)
    fifo = make_fifo("hung")
    pending = Background(lambda: oop.read_file(fifo.path))
    fifo.wait_for_reader()
    pid = oop.helper_pid
    assert pid is not None

    oop.close()
    pending.join()
    assert isinstance(pending.error, PoolClosed)
    assert oop.closed and oop.helper_pid is None
    with pytest.raises(PoolClosed):
        oop.ping()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the helper is gone (and reaped)
    oop.close()  # closing twice is harmless


def test_context_manager_closes(tmp_path: Path) -> None:
    with OutOfProcessIO("scoped") as oop:
        assert oop.exists(tmp_path)
        pid = oop.helper_pid
    assert oop.closed
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
