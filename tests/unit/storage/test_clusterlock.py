"""clusterlock against a scripted stand-in for python-sanlock: error mapping, registration,
time boxes and the small protocols (idempotent join/leave, waiting for host states).

The real daemon is exercised in tests/integration/storage/test_clusterlock.py; these cover
the paths a healthy daemon rarely takes (hangs, odd errnos).
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from virthost.common import errors
from virthost.storage import clusterlock, clusterlock_sanlock
from virthost.storage import errors as storage_errors

SD = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
LEASES = "/dom/dom_md/leases"
IDS = "/dom/dom_md/ids"
OFFSET = clusterlock.sdm_lease_offset()


class FakeSanlockException(Exception):
    def __init__(self, code: int, text: str = "failure") -> None:
        super().__init__(code, "Sanlock call failure", text)
        self.errno = code


class FakeSanlock:
    """Records calls; ``script[name]`` is an exception to raise or a callable to run."""

    SanlockException = FakeSanlockException

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.script: dict[str, BaseException | Callable[..., Any]] = {}
        self.held: list[dict[str, Any]] = []
        self.released = threading.Event()
        self.fds: list[int] = []

    def _do(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], default: Any) -> Any:
        self.calls.append((name, args, kwargs))
        action = self.script.get(name)
        if isinstance(action, BaseException):
            raise action
        if action is not None:
            return action(*args, **kwargs)
        return default

    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]

    def register(self) -> Any:
        self.fds.append(os.open(os.devnull, os.O_RDONLY))  # a real fd, as sanlock's socket is
        return self._do("register", (), {}, self.fds[-1])

    def acquire(self, *args: Any, **kwargs: Any) -> Any:
        result = self._do("acquire", args, kwargs, None)
        self.held = [{"lockspace": args[0], "resource": args[1], "version": 7, "disks": args[2]}]
        return result

    def release(self, *args: Any, **kwargs: Any) -> Any:
        result = self._do("release", args, kwargs, None)
        self.released.set()
        return result

    def inquire(self, **kwargs: Any) -> Any:
        return self._do("inquire", (), kwargs, self.held)

    def read_resource(self, *args: Any, **kwargs: Any) -> Any:
        info = {"lockspace": SD.encode(), "resource": b"SDM", "version": 7}
        return self._do("read_resource", args, kwargs, info)

    def read_resource_owners(self, *args: Any, **kwargs: Any) -> Any:
        owner = {"host_id": 3, "generation": 2, "timestamp": 100, "io_timeout": 0, "flags": 0}
        return self._do("read_resource_owners", args, kwargs, [owner])

    def __getattr__(self, name: str) -> Callable[..., Any]:
        # add_lockspace, rem_lockspace, inq_lockspace, get_hosts, write_lockspace, ...
        defaults = {"inq_lockspace": True, "get_hosts": []}
        return lambda *args, **kwargs: self._do(name, args, kwargs, defaults.get(name))


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSanlock]:
    stand_in = FakeSanlock()
    monkeypatch.setattr(clusterlock, "sanlock", stand_in)
    monkeypatch.setattr(clusterlock_sanlock, "sanlock", stand_in)
    monkeypatch.setattr(clusterlock, "_registration", None)
    monkeypatch.setattr(clusterlock, "_HOSTS_POLL_INTERVAL", 0.0)
    yield stand_in
    for fd in stand_in.fds:
        os.close(fd)


def acquire(version: int | None = None, timeout: float = 5.0) -> int:
    return clusterlock.acquire(SD, "SDM", LEASES, OFFSET, version, timeout=timeout)


def test_sdm_lease_is_slot_one_of_the_leases_volume() -> None:
    assert clusterlock.sdm_lease_offset() == 1024 * 1024
    assert clusterlock.sdm_lease_offset(8 * 1024 * 1024) == 8 * 1024 * 1024


def test_acquire_passes_bytes_names_registers_once_and_returns_the_version(
    fake: FakeSanlock,
) -> None:
    assert acquire() == 7
    assert acquire(version=6) == 7
    assert fake.names().count("register") == 1
    first, second = [c for c in fake.calls if c[0] == "acquire"]
    assert first[1] == (SD.encode(), b"SDM", [(LEASES, OFFSET)])
    assert first[2] == {"slkfd": fake.fds[0]}
    assert second[2] == {"slkfd": fake.fds[0], "version": 6}


def test_a_registration_inherited_from_a_parent_process_is_not_reused(
    fake: FakeSanlock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clusterlock, "_registration", (-1, 99))
    acquire()
    assert fake.names().count("register") == 1
    assert [c[2]["slkfd"] for c in fake.calls if c[0] == "acquire"] == fake.fds


@pytest.mark.parametrize("code", [-243, -244, -245])
def test_lease_held_by_another_host_is_651_and_says_so(fake: FakeSanlock, code: int) -> None:
    fake.script["acquire"] = FakeSanlockException(code, "Lease is held by another host")
    with pytest.raises(storage_errors.LeaseHeldByOtherHost) as failure:
        acquire()
    assert failure.value.to_wire()["code"] == 651
    assert failure.value.context["sanlock_errno"] == code
    assert failure.value.wire_message.startswith("Cannot obtain lock: acquire lease")


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (errno.ENOSPC, "has not joined the lockspace"),
        (errno.EEXIST, "already held by a process on this host"),
        (-240, "not at the requested version"),
        (-223, "no lease is initialised"),
    ],
)
def test_other_acquire_failures_are_651_with_the_reason(
    fake: FakeSanlock, code: int, reason: str
) -> None:
    fake.script["acquire"] = FakeSanlockException(code)
    with pytest.raises(storage_errors.AcquireLockFailure) as failure:
        acquire()
    assert type(failure.value) is storage_errors.AcquireLockFailure
    assert reason in str(failure.value)


def test_exceptions_other_than_sanlocks_pass_through(fake: FakeSanlock) -> None:
    fake.script["acquire"] = TypeError("bad argument")
    with pytest.raises(TypeError, match="bad argument"):
        acquire()


def test_a_hung_acquire_times_out_and_is_released_when_it_finally_succeeds(
    fake: FakeSanlock,
) -> None:
    unblock = threading.Event()
    fake.script["acquire"] = lambda *args, **kwargs: unblock.wait(30)
    with pytest.raises(storage_errors.AcquireLockFailure) as failure:
        acquire(timeout=0.05)
    assert failure.value.context["timeout"] == 0.05
    assert "release" not in fake.names()
    unblock.set()
    assert fake.released.wait(30)
    released = next(c for c in fake.calls if c[0] == "release")
    assert released[1] == (SD.encode(), b"SDM", [(LEASES, OFFSET)])


def test_a_late_failure_is_not_undone(fake: FakeSanlock) -> None:
    unblock = threading.Event()

    def slow_failure(*args: Any, **kwargs: Any) -> None:
        unblock.wait(30)
        raise FakeSanlockException(-243)

    fake.script["acquire"] = slow_failure
    with pytest.raises(storage_errors.AcquireLockFailure):
        acquire(timeout=0.05)
    unblock.set()
    for worker in threading.enumerate():
        if worker.name.startswith("sanlock "):
            worker.join(30)
    assert "release" not in fake.names()


def test_release_not_held_is_660(fake: FakeSanlock) -> None:
    fake.script["release"] = FakeSanlockException(errno.EPERM)
    with pytest.raises(storage_errors.ReleaseLockFailure) as failure:
        clusterlock.release(SD, "SDM", LEASES, OFFSET)
    assert failure.value.code == 660
    assert "not held by this process" in str(failure.value)


def test_joining_again_with_the_held_host_id_is_a_no_op(fake: FakeSanlock) -> None:
    fake.script["add_lockspace"] = FakeSanlockException(errno.EEXIST)
    clusterlock.add_lockspace(SD, 1, IDS, io_timeout=1)
    assert fake.names() == ["add_lockspace", "inq_lockspace"]
    assert fake.calls[0][2] == {"iotimeout": 1, "wait": True}


def test_joining_a_lockspace_joined_with_another_host_id_is_661(fake: FakeSanlock) -> None:
    fake.script["add_lockspace"] = FakeSanlockException(errno.EEXIST)
    fake.script["inq_lockspace"] = lambda *args, **kwargs: False
    with pytest.raises(storage_errors.AcquireHostIdFailure) as failure:
        clusterlock.add_lockspace(SD, 2, IDS)
    assert failure.value.code == 661


def test_leaving_defaults_to_refusing_while_leases_are_held(fake: FakeSanlock) -> None:
    fake.script["rem_lockspace"] = FakeSanlockException(errno.EBUSY)
    with pytest.raises(storage_errors.ReleaseHostIdFailure) as failure:
        clusterlock.rem_lockspace(SD, 1, IDS)
    assert failure.value.code == 662
    assert "still held" in str(failure.value)
    assert fake.calls[0][2] == {"wait": True, "unused": True}


def test_leaving_a_lockspace_not_joined_is_a_no_op(fake: FakeSanlock) -> None:
    fake.script["rem_lockspace"] = FakeSanlockException(errno.ENOENT)
    clusterlock.rem_lockspace(SD, 1, IDS)


def test_init_failures_are_701(fake: FakeSanlock) -> None:
    fake.script["write_resource"] = FakeSanlockException(errno.ENOENT)
    with pytest.raises(storage_errors.ClusterLockInitError) as failure:
        clusterlock.init_resource(SD, "SDM", LEASES, OFFSET)
    assert failure.value.code == 701


def test_get_hosts_waits_until_sanlock_knows_them(fake: FakeSanlock) -> None:
    answers: list[Any] = [
        FakeSanlockException(errno.EAGAIN),
        FakeSanlockException(errno.EAGAIN),
        [
            {"host_id": 1, "generation": 4, "timestamp": 9, "io_timeout": 1, "flags": 3},
            {"host_id": 2, "generation": 1, "timestamp": 8, "io_timeout": 1, "flags": 5},
        ],
    ]

    def next_answer(*args: Any, **kwargs: Any) -> Any:
        answer = answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    fake.script["get_hosts"] = next_answer
    hosts = clusterlock.get_hosts(SD)
    assert [(h.host_id, h.state) for h in hosts] == [(1, "live"), (2, "dead")]


def test_get_hosts_gives_up_at_its_deadline(fake: FakeSanlock) -> None:
    fake.script["get_hosts"] = FakeSanlockException(errno.EAGAIN)
    with pytest.raises(storage_errors.ClusterLockQueryError):
        clusterlock.get_hosts(SD, timeout=0.01)


def test_host_status_of_an_unreported_host_is_an_error(fake: FakeSanlock) -> None:
    with pytest.raises(storage_errors.ClusterLockQueryError):
        clusterlock.host_status(SD, 5)


def test_owners_read_from_storage(fake: FakeSanlock) -> None:
    status = clusterlock.read_resource_owners(SD, "SDM", LEASES, OFFSET)
    assert status == clusterlock.LeaseStatus(
        SD, "SDM", 7, (clusterlock.LeaseOwner(host_id=3, generation=2, timestamp=100),)
    )


def test_owners_of_some_other_lease_at_that_offset_is_an_error(fake: FakeSanlock) -> None:
    fake.script["read_resource"] = lambda *a, **k: {
        "lockspace": b"other",
        "resource": b"SDM",
        "version": 1,
    }
    with pytest.raises(storage_errors.ClusterLockQueryError, match="found lease other:SDM"):
        clusterlock.read_resource_owners(SD, "SDM", LEASES, OFFSET)


@pytest.mark.parametrize("name", ["", "x" * 49, "d\u00e9j\u00e0"])
def test_names_sanlock_cannot_store_are_invalid(fake: FakeSanlock, name: str) -> None:
    with pytest.raises(errors.InvalidParameter):
        clusterlock.acquire(SD, name, LEASES, OFFSET)
    assert "acquire" not in fake.names()


def test_a_registration_that_answers_too_late_is_closed(fake: FakeSanlock) -> None:
    unblock = threading.Event()
    late_fds: list[int] = []

    def slow_register() -> int:
        unblock.wait(30)
        late_fds.append(os.open(os.devnull, os.O_RDONLY))
        return late_fds[-1]

    fake.script["register"] = slow_register
    with pytest.raises(storage_errors.AcquireLockFailure, match="did not answer"):
        clusterlock.register(timeout=0.05)
    unblock.set()
    for worker in threading.enumerate():
        if worker.name.startswith("sanlock "):
            worker.join(30)
    with pytest.raises(OSError):
        os.fstat(late_fds[0])
    assert clusterlock._registration is None
