"""HostIds with a fake sanlock: when it joins, waits and leaves."""

from __future__ import annotations

import pytest

from virthost.storage import errors as se
from virthost.storage.hostids import HostIds, ids_path


class Lockspaces:
    def __init__(self, joins_after: int = 0, refuse_remove: bool = False) -> None:
        self.joins_after = joins_after
        self.refuse_remove = refuse_remove
        self.adds: list[tuple[str, int, int]] = []
        self.removes: list[str] = []
        self.inquiries = 0

    def add(self, sd_uuid: str, host_id: int, ids: str, io_timeout: int) -> None:
        self.adds.append((sd_uuid, host_id, io_timeout))

    def remove(self, sd_uuid: str, host_id: int, ids: str) -> None:
        if self.refuse_remove:
            raise se.ReleaseHostIdFailure("leases are still held")
        self.removes.append(sd_uuid)

    def inquire(self, sd_uuid: str, host_id: int, ids: str) -> bool | None:
        self.inquiries += 1
        if not self.adds:
            return False
        return True if self.inquiries > self.joins_after else None


def test_ids_path() -> None:
    assert ids_path("/mnt/x/sd") == "/mnt/x/sd/dom_md/ids"


def test_acquire_joins_once() -> None:
    ops = Lockspaces()
    ids = HostIds(ops, io_timeout=3)
    ids.acquire("sd", 5, "/ids")
    ids.acquire("sd", 5, "/ids")  # joined (or joining): nothing more
    assert ops.adds == [("sd", 5, 3)]
    assert ids.acquired("sd", 5, "/ids")


def test_wait_acquired_polls_until_joined() -> None:
    ops = Lockspaces(joins_after=3)
    ids = HostIds(ops, io_timeout=1)
    ids.wait_acquired("sd", 1, "/ids", timeout=30)
    assert ops.adds == [("sd", 1, 1)]
    assert ops.inquiries > 3


def test_wait_acquired_times_out_with_661() -> None:
    ops = Lockspaces(joins_after=10**9)
    ids = HostIds(ops, io_timeout=1)
    with pytest.raises(se.AcquireHostIdFailure):
        ids.wait_acquired("sd", 1, "/ids", timeout=0.6)


def test_release_leaves_even_a_lockspace_joined_before_a_restart() -> None:
    ops = Lockspaces()
    ids = HostIds(ops)
    ids.release("joined-by-the-last-run", 1, "/ids")
    assert ops.removes == ["joined-by-the-last-run"]
    ids.acquire("sd", 1, "/ids")
    ids.release("sd", 1, "/ids")
    assert ops.removes == ["joined-by-the-last-run", "sd"]


def test_refused_release_is_logged_not_raised() -> None:
    ops = Lockspaces(refuse_remove=True)
    ids = HostIds(ops)
    ids.acquire("sd", 1, "/ids")
    ids.release("sd", 1, "/ids")  # leases held: sanlock refuses, we carry on


def test_query_errors_count_as_not_acquired() -> None:
    class Broken(Lockspaces):
        def inquire(self, sd_uuid: str, host_id: int, ids: str) -> bool | None:
            raise se.ClusterLockQueryError("sanlock down")

    ids = HostIds(Broken())
    assert not ids.acquired("sd", 1, "/ids")
