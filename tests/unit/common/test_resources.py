from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from virthost.common import errors
from virthost.common.resources import LockMode, ResourceLock, ResourceManager

SHARED = LockMode.SHARED
EXCLUSIVE = LockMode.EXCLUSIVE


def wait_for(predicate: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


class Acquirer(threading.Thread):
    """Acquires a lock in the background; ``lock`` or ``error`` holds the outcome."""

    def __init__(
        self, manager: ResourceManager, name: str, mode: LockMode, timeout: float = 2.0
    ) -> None:
        super().__init__(daemon=True)
        self.manager = manager
        self.resource_name = name
        self.mode = mode
        self.timeout = timeout
        self.lock: ResourceLock | None = None
        self.error: Exception | None = None
        self.start()

    def run(self) -> None:
        try:
            self.lock = self.manager.acquire("ns", self.resource_name, self.mode, self.timeout)
        except Exception as e:
            self.error = e


def waiters(manager: ResourceManager, name: str) -> list[str]:
    entry = manager.snapshot().get("ns", {}).get(name)
    return [] if entry is None else list(entry["waiters"])


def test_shared_locks_are_held_together() -> None:
    manager = ResourceManager()
    first = manager.acquire("ns", "a", SHARED, 0)
    second = manager.acquire("ns", "a", SHARED, 0)
    assert manager.snapshot() == {"ns": {"a": {"mode": "shared", "holders": 2, "waiters": []}}}
    first.release()
    second.release()


def test_exclusive_excludes_and_timeout_names_resource() -> None:
    manager = ResourceManager()
    with manager.acquire("ns", "vol-1", EXCLUSIVE, 0):
        with pytest.raises(errors.ResourceTimeout) as info:
            manager.acquire("ns", "vol-1", SHARED, 0.05)
        assert info.value.code == 851
        assert "ns/vol-1" in info.value.wire_message
        with pytest.raises(errors.ResourceTimeout):
            manager.acquire("ns", "vol-1", EXCLUSIVE, 0)


def test_other_resources_are_independent() -> None:
    manager = ResourceManager()
    with (
        manager.acquire("ns", "a", EXCLUSIVE, 0),
        manager.acquire("ns", "b", EXCLUSIVE, 0),
        manager.acquire("other", "a", EXCLUSIVE, 0),
    ):
        assert len(manager.snapshot()) == 2


def test_waiter_is_granted_on_release() -> None:
    manager = ResourceManager()
    held = manager.acquire("ns", "a", EXCLUSIVE, 0)
    waiter = Acquirer(manager, "a", EXCLUSIVE)
    assert wait_for(lambda: waiters(manager, "a") == ["exclusive"])
    held.release()
    waiter.join(2)
    assert waiter.lock is not None and waiter.error is None
    waiter.lock.release()


def test_waiting_writer_blocks_new_readers() -> None:
    manager = ResourceManager()
    reader = manager.acquire("ns", "a", SHARED, 0)
    writer = Acquirer(manager, "a", EXCLUSIVE)
    assert wait_for(lambda: waiters(manager, "a") == ["exclusive"])
    with pytest.raises(errors.ResourceTimeout):
        manager.acquire("ns", "a", SHARED, 0.05)  # compatible with the holder, but queued
    reader.release()
    writer.join(2)
    assert writer.lock is not None
    writer.lock.release()


def test_queued_readers_are_granted_together_after_writer() -> None:
    manager = ResourceManager()
    held = manager.acquire("ns", "a", EXCLUSIVE, 0)
    readers = [Acquirer(manager, "a", SHARED) for _ in range(3)]
    assert wait_for(lambda: len(waiters(manager, "a")) == 3)
    held.release()
    for reader in readers:
        reader.join(2)
        assert reader.lock is not None
    assert manager.snapshot()["ns"]["a"]["holders"] == 3
    for reader in readers:
        assert reader.lock is not None
        reader.lock.release()


def test_timed_out_writer_lets_readers_behind_it_through() -> None:
    manager = ResourceManager()
    reader = manager.acquire("ns", "a", SHARED, 0)
    writer = Acquirer(manager, "a", EXCLUSIVE, timeout=0.3)
    assert wait_for(lambda: waiters(manager, "a") == ["exclusive"])
    late_reader = Acquirer(manager, "a", SHARED, timeout=2)
    assert wait_for(lambda: waiters(manager, "a") == ["exclusive", "shared"])
    late_reader.join(2)
    writer.join(2)
    assert isinstance(writer.error, errors.ResourceTimeout)
    assert late_reader.lock is not None
    late_reader.lock.release()
    reader.release()


def test_release_is_idempotent_and_entries_are_forgotten() -> None:
    manager = ResourceManager()
    lock = manager.acquire("ns", "a", SHARED, 0)
    other = manager.acquire("ns", "a", SHARED, 0)
    lock.release()
    lock.release()
    assert manager.snapshot()["ns"]["a"]["holders"] == 1
    other.release()
    assert lock.released
    assert manager.snapshot() == {}


def test_timed_out_request_leaves_no_entry() -> None:
    manager = ResourceManager()
    held = manager.acquire("ns", "a", EXCLUSIVE, 0)
    with pytest.raises(errors.ResourceTimeout):
        manager.acquire("ns", "a", EXCLUSIVE, 0.01)
    held.release()
    assert manager.snapshot() == {}


def test_context_manager_releases_on_error() -> None:
    manager = ResourceManager()
    with pytest.raises(KeyError), manager.acquire("ns", "a", EXCLUSIVE, 0):
        raise KeyError("x")
    assert manager.snapshot() == {}


def test_acquire_all_sorts_and_merges_duplicates() -> None:
    manager = ResourceManager()
    requests = [
        ("ns", "b", SHARED),
        ("img", "z", SHARED),
        ("ns", "a", SHARED),
        ("ns", "b", EXCLUSIVE),
        ("ns", "b", SHARED),  # EXCLUSIVE wins whatever the order
    ]
    with manager.acquire_all(requests, timeout=0) as locks:
        assert [(lock.namespace, lock.name, lock.mode) for lock in locks.locks] == [
            ("img", "z", SHARED),
            ("ns", "a", SHARED),
            ("ns", "b", EXCLUSIVE),
        ]
    assert manager.snapshot() == {}


def test_acquire_all_failure_releases_what_it_took() -> None:
    manager = ResourceManager()
    blocker = manager.acquire("ns", "c", EXCLUSIVE, 0)
    with pytest.raises(errors.ResourceTimeout) as info:
        manager.acquire_all([("ns", "a", EXCLUSIVE), ("ns", "c", SHARED)], timeout=0.05)
    assert "ns/c" in info.value.wire_message
    assert manager.snapshot() == {"ns": {"c": {"mode": "exclusive", "holders": 1, "waiters": []}}}
    blocker.release()


def test_acquire_all_in_opposite_orders_does_not_deadlock() -> None:
    manager = ResourceManager()
    failures: list[BaseException] = []

    def worker(names: list[str]) -> None:
        try:
            for _ in range(200):
                with manager.acquire_all([("ns", n, EXCLUSIVE) for n in names], timeout=2):
                    pass
        except BaseException as e:
            failures.append(e)

    threads = [
        threading.Thread(target=worker, args=(["a", "b", "c"],)),
        threading.Thread(target=worker, args=(["c", "b", "a"],)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert failures == []
    assert manager.snapshot() == {}


def test_lock_set_release_is_idempotent() -> None:
    manager = ResourceManager()
    locks = manager.acquire_all([("ns", "a", SHARED)], timeout=0)
    locks.release()
    locks.release()
    assert manager.snapshot() == {}


def test_bad_arguments_are_refused() -> None:
    manager = ResourceManager()
    with pytest.raises(TypeError):
        manager.acquire("ns", "a", "exclusive", 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        manager.acquire("ns", "a", SHARED, -1)
    assert manager.snapshot() == {}
