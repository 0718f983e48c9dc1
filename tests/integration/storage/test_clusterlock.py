"""The SPM lease and host ids with a real sanlock daemon, and a second "host" contending.

Files live under /tmp where the sanlock user can reach them; io_timeout 1 keeps joining a
lockspace at about 3 s. Host 1 is this test process (registered with the local daemon); host 2
is a Python snippet run against a second daemon in its own mount namespace.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fixtures.sanlock import (
    SanlockDaemon,
    local_daemon_for_session,
    make_lease_files,
    make_workdir,
    other_host,
    unavailable_reason,
)
from virthost.storage import clusterlock
from virthost.storage import errors as storage_errors

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason())),
]

IO_TIMEOUT = 1
SDM = clusterlock.SDM_LEASE_NAME
OFFSET = clusterlock.sdm_lease_offset()


@dataclass(frozen=True)
class Domain:
    sd_uuid: str
    ids: str
    leases: str

    def acquire(self, version: int | None = None) -> int:
        return clusterlock.acquire(self.sd_uuid, SDM, self.leases, OFFSET, version)

    def release(self) -> None:
        clusterlock.release(self.sd_uuid, SDM, self.leases, OFFSET)

    def owners(self) -> clusterlock.LeaseStatus:
        return clusterlock.read_resource_owners(self.sd_uuid, SDM, self.leases, OFFSET)


def new_domain(root: Path, *, join: bool) -> Domain:
    """A formatted ids/leases pair with a free SDM lease; joined as host 1 when asked."""
    sd_uuid = str(uuid.uuid4())
    ids, leases = make_lease_files(root, sd_uuid)
    clusterlock.init_lockspace(sd_uuid, str(ids), io_timeout=IO_TIMEOUT)
    clusterlock.init_resource(sd_uuid, SDM, str(leases), OFFSET)
    domain = Domain(sd_uuid, str(ids), str(leases))
    if join:
        clusterlock.add_lockspace(sd_uuid, 1, domain.ids, io_timeout=IO_TIMEOUT)
    return domain


@pytest.fixture(scope="session")
def sanlock_daemon() -> Iterator[SanlockDaemon]:
    yield from local_daemon_for_session()


@pytest.fixture(scope="module")
def workdir(sanlock_daemon: SanlockDaemon) -> Iterator[Path]:
    path = make_workdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def domain(workdir: Path) -> Iterator[Domain]:
    joined = new_domain(workdir, join=True)
    yield joined
    clusterlock.rem_lockspace(joined.sd_uuid, 1, joined.ids)


@pytest.fixture(scope="module")
def host2(domain: Domain, workdir: Path) -> Iterator[SanlockDaemon]:
    """The second host, already joined to ``domain``'s lockspace with host id 2."""
    with other_host(workdir) as daemon:
        joined = run_on(
            daemon,
            "clusterlock.add_lockspace(a['sd'], 2, a['ids'], io_timeout=1)\nreport(joined=True)",
            sd=domain.sd_uuid,
            ids=domain.ids,
        )
        assert joined == {"joined": True}
        yield daemon


_PRELUDE = """
import json
from virthost.common import errors
from virthost.storage import clusterlock
def report(**values):
    print(json.dumps(values))
"""

# Host 2 tries to take the SPM lease; if it gets it, it reports what storage says and exits
# without releasing: the lease must die with the process.
_TRY_ACQUIRE = """
try:
    lver = clusterlock.acquire(a['sd'], 'SDM', a['leases'], a['offset'])
except errors.VirtHostError as e:
    report(ok=False, code=e.code, kind=type(e).__name__, errno=e.context.get('sanlock_errno'))
else:
    status = clusterlock.read_resource_owners(a['sd'], 'SDM', a['leases'], a['offset'])
    report(ok=True, lver=lver, version=status.version, owners=[o.host_id for o in status.owners])
"""


def run_on(daemon: SanlockDaemon, body: str, **args: Any) -> dict[str, Any]:
    """Run ``body`` (with ``a`` = args and ``report``) as a client of ``daemon``."""
    result = daemon.run_python(f"{_PRELUDE}\na = {args!r}\n{body}\n")
    assert result.returncode == 0, f"{result.stderr}\n{daemon.log_tail()}"
    reported: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return reported


def wait_for_free(domain: Domain, limit: float = 30.0) -> clusterlock.LeaseStatus:
    """The lease once nobody owns it (a dead client's lease is dropped asynchronously)."""
    deadline = time.monotonic() + limit
    status = domain.owners()
    while status.owners and time.monotonic() < deadline:
        time.sleep(0.1)
        status = domain.owners()
    return status


def test_joined_lockspace_is_acquired_and_our_host_id_live(domain: Domain) -> None:
    assert clusterlock.inquire_lockspace(domain.sd_uuid, 1, domain.ids) is True
    assert clusterlock.inquire_lockspace(domain.sd_uuid, 3, domain.ids) is False
    assert clusterlock.host_status(domain.sd_uuid, 1).state == "live"
    assert 1 in [h.host_id for h in clusterlock.get_hosts(domain.sd_uuid)]


def test_joining_again_with_the_same_host_id_is_a_no_op(domain: Domain) -> None:
    clusterlock.add_lockspace(domain.sd_uuid, 1, domain.ids, io_timeout=IO_TIMEOUT)
    assert clusterlock.inquire_lockspace(domain.sd_uuid, 1, domain.ids) is True


def test_acquire_returns_the_new_version_and_storage_shows_us(domain: Domain) -> None:
    before = domain.owners()
    assert before.owners == ()
    lver = domain.acquire()
    try:
        assert lver == before.version + 1
        held = domain.owners()
        assert [o.host_id for o in held.owners] == [1]
        assert held.version == lver
        assert (domain.sd_uuid, SDM, lver) in [
            (h.lockspace, h.resource, h.version) for h in clusterlock.inquire()
        ]
    finally:
        domain.release()
    after = domain.owners()
    assert after.owners == ()
    assert after.version == lver
    assert all(h.resource != SDM for h in clusterlock.inquire())


def test_acquire_at_a_stale_version_fails_with_651(domain: Domain) -> None:
    current = domain.owners().version
    with pytest.raises(storage_errors.AcquireLockFailure) as failure:
        domain.acquire(version=current + 5)
    assert failure.value.code == 651
    assert not isinstance(failure.value, storage_errors.LeaseHeldByOtherHost)
    lver = domain.acquire(version=current)
    domain.release()
    assert lver == current + 1


def test_acquiring_twice_in_one_process_fails_and_keeps_the_lease(domain: Domain) -> None:
    lver = domain.acquire()
    try:
        with pytest.raises(storage_errors.AcquireLockFailure) as failure:
            domain.acquire()
        assert failure.value.code == 651
        assert [o.host_id for o in domain.owners().owners] == [1]
    finally:
        domain.release()
    assert domain.owners().version == lver


def test_releasing_a_lease_not_held_fails_with_660(domain: Domain) -> None:
    with pytest.raises(storage_errors.ReleaseLockFailure) as failure:
        domain.release()
    assert failure.value.code == 660


def test_other_host_cannot_take_our_lease_and_takes_it_after_release(
    domain: Domain, host2: SanlockDaemon
) -> None:
    args = {"sd": domain.sd_uuid, "leases": domain.leases, "offset": OFFSET}
    ours = domain.acquire()
    try:
        refused = run_on(host2, _TRY_ACQUIRE, **args)
        assert refused == {
            "ok": False,
            "code": 651,
            "kind": "LeaseHeldByOtherHost",
            "errno": -243,
        }
        assert [o.host_id for o in domain.owners().owners] == [1]
    finally:
        domain.release()

    taken = run_on(host2, _TRY_ACQUIRE, **args)
    assert taken == {"ok": True, "lver": ours + 1, "version": ours + 1, "owners": [2]}

    # host 2's snippet exited holding the lease: sanlock dropped it with the process.
    status = wait_for_free(domain)
    assert status.owners == ()
    assert status.version == ours + 1
    assert domain.acquire(version=ours + 1) == ours + 2
    domain.release()


def test_both_hosts_are_seen_in_the_lockspace(domain: Domain, host2: SanlockDaemon) -> None:
    seen = run_on(
        host2,
        "report(ids=sorted(h.host_id for h in clusterlock.get_hosts(a['sd'])))",
        sd=domain.sd_uuid,
    )
    assert seen == {"ids": [1, 2]}


def test_acquire_without_joining_the_lockspace_fails_with_651(workdir: Path) -> None:
    unjoined = new_domain(workdir, join=False)
    assert unjoined.owners().owners == ()  # reading needs no host id
    with pytest.raises(storage_errors.AcquireLockFailure) as failure:
        unjoined.acquire()
    assert failure.value.code == 651
    assert "not joined" in str(failure.value)


def test_join_fails_with_661_on_a_lockspace_never_initialised(workdir: Path) -> None:
    sd_uuid = str(uuid.uuid4())
    ids, _ = make_lease_files(workdir, sd_uuid)
    with pytest.raises(storage_errors.AcquireHostIdFailure) as failure:
        clusterlock.add_lockspace(sd_uuid, 1, str(ids), io_timeout=IO_TIMEOUT)
    assert failure.value.code == 661
    assert clusterlock.inquire_lockspace(sd_uuid, 1, str(ids)) is False


def test_leaving_is_refused_while_a_lease_is_held_then_releases_the_host_id(
    sanlock_daemon: SanlockDaemon, workdir: Path
) -> None:
    leaving = new_domain(workdir, join=True)
    leaving.acquire()
    try:
        with pytest.raises(storage_errors.ReleaseHostIdFailure) as failure:
            clusterlock.rem_lockspace(leaving.sd_uuid, 1, leaving.ids)
        assert failure.value.code == 662
        assert clusterlock.inquire_lockspace(leaving.sd_uuid, 1, leaving.ids) is True
    finally:
        leaving.release()
    clusterlock.rem_lockspace(leaving.sd_uuid, 1, leaving.ids)
    assert clusterlock.inquire_lockspace(leaving.sd_uuid, 1, leaving.ids) is False
    clusterlock.rem_lockspace(leaving.sd_uuid, 1, leaving.ids)  # not joined: a no-op
