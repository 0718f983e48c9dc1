"""Cluster locks on shared storage, held with sanlock: host ids and the SPM lease.

Why sanlock: only one host of a pool may change its metadata (the SPM), and hosts that cannot
talk to each other must still agree on which one it is. sanlock does that with leases written
on the shared storage itself, so the storage is the arbiter. Two kinds of lease matter here:

* **Host id** (a *delta lease*): each host joins a domain's *lockspace* (named by the domain's
  UUID, stored in ``dom_md/ids``) with its pool-wide host id, 1..2000. Joining takes a few
  renewal periods (about 3 s with io_timeout 1, 21 s with VDSM's io_timeout 10) because
  sanlock must see that no one else renews that id. The daemon keeps renewing it by itself.
* **Resource leases** (*paxos leases*): the SPM lease is the resource ``"SDM"`` in the
  master domain's ``dom_md/leases`` at slot 1 (``1 * alignment``; slot 0 was the pre-sanlock
  SPM lease). VM and job leases use the same calls on the ``xleases`` volume (user slots from
  3 on). Every successful acquire bumps the lease version (*lver*), which VDSM stores as
  ``POOL_SPM_LVER`` and which the engine uses to fence a previous SPM.

**Leases belong to a process.** A resource lease is held by the process that registered with
the sanlock daemon (:func:`register`, done once, lazily, by :func:`acquire`) and lasts exactly
as long as that registration: when the process exits or the connection closes, sanlock
releases its leases. So the long-lived virthost daemon itself must acquire the SPM lease (never
a helper process that exits), must keep the registration fd open (it is never closed here and
is not inherited by children), and loses the SPM role when it dies, which is the point. If the
host cannot renew its host id, sanlock kills the holding process so that a new SPM can be
elected safely. For the same reason :func:`rem_lockspace` defaults to ``unused=True``: without
it sanlock would kill *us* to free leases still held in that lockspace.

Every call is time-boxed: a blocking sanlock call runs in a daemon thread and the caller waits
at most ``timeout`` seconds (storage can hang; sanlock calls sleep in the kernel). A call that
overran keeps running in the daemon; if a late ``acquire`` succeeds, its lease is released
again so that nothing is held that the caller believes it does not hold. Failures become
VDSM's errors (:mod:`virthost.common.errors`, 651/660/661/662/701) carrying ``sanlock_errno``.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from typing import Any, Final

import sanlock

from virthost.storage import errors as storage_errors
from virthost.storage.clusterlock_sanlock import (
    SANLK_ACQUIRE_IDLIVE,
    SANLK_ACQUIRE_OTHER,
    SANLK_ACQUIRE_OWNED,
    call,
    decode_name,
    encode_name,
    parse_held,
    parse_host,
    parse_owner,
)
from virthost.storage.clusterlock_sanlock import HeldLease as HeldLease
from virthost.storage.clusterlock_sanlock import HostStatus as HostStatus
from virthost.storage.clusterlock_sanlock import LeaseOwner as LeaseOwner
from virthost.storage.clusterlock_sanlock import LeaseStatus as LeaseStatus

log = logging.getLogger("virthost.storage.clusterlock")

SDM_LEASE_NAME: Final = "SDM"
SDM_LEASE_SLOT: Final = 1
DEFAULT_ALIGNMENT: Final = 1024 * 1024
DEFAULT_BLOCK_SIZE: Final = 512
DEFAULT_IO_TIMEOUT: Final = 10
DEFAULT_TIMEOUT: Final = 60.0

_HELD_ELSEWHERE: Final = dict.fromkeys(
    (SANLK_ACQUIRE_IDLIVE, SANLK_ACQUIRE_OWNED, SANLK_ACQUIRE_OTHER),
    storage_errors.LeaseHeldByOtherHost,
)
_ACQUIRE_REASONS: Final = {
    errno.ENOSPC: "this host has not joined the lockspace",
    errno.EEXIST: "already held by a process on this host",
}
_HOSTS_POLL_INTERVAL = 0.5

_registration_lock = threading.Lock()
_registration: tuple[int, int] | None = None  # (pid, fd)


def sdm_lease_offset(alignment: int = DEFAULT_ALIGNMENT) -> int:
    """Where VDSM keeps the SPM lease in a domain's ``leases`` volume."""
    return SDM_LEASE_SLOT * alignment


def lockspace_timeout(io_timeout: int) -> float:
    """How long joining or leaving a lockspace may take: a host id left by a crashed run
    must expire first (about 8 io timeouts) before sanlock gives it to us."""
    return max(DEFAULT_TIMEOUT, 20.0 * io_timeout)


# --- initialising storage --------------------------------------------------------------


def init_lockspace(
    sd_uuid: str,
    ids_path: str,
    io_timeout: int = DEFAULT_IO_TIMEOUT,
    max_hosts: int = 0,
    *,
    alignment: int = DEFAULT_ALIGNMENT,
    block_size: int = DEFAULT_BLOCK_SIZE,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """Format ``ids_path`` as the lockspace ``sd_uuid`` (max_hosts 0: as many as fit)."""
    name = encode_name(sd_uuid)
    call(
        f"init lockspace {sd_uuid} at {ids_path}",
        lambda: sanlock.write_lockspace(
            name,
            ids_path,
            max_hosts=max_hosts,
            iotimeout=io_timeout,
            align=alignment,
            sector=block_size,
        ),
        timeout=timeout,
        error=storage_errors.ClusterLockInitError,
    )


def init_resource(
    sd_uuid: str,
    name: str,
    leases_path: str,
    offset: int,
    *,
    alignment: int = DEFAULT_ALIGNMENT,
    block_size: int = DEFAULT_BLOCK_SIZE,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """Write a free lease ``name`` (e.g. ``"SDM"`` at :func:`sdm_lease_offset`), version 0."""
    lockspace, resource = encode_name(sd_uuid), encode_name(name)
    call(
        f"init lease {sd_uuid}:{name} at {leases_path}:{offset}",
        lambda: sanlock.write_resource(
            lockspace, resource, [(leases_path, offset)], align=alignment, sector=block_size
        ),
        timeout=timeout,
        error=storage_errors.ClusterLockInitError,
    )


# --- host ids --------------------------------------------------------------------------


def add_lockspace(
    sd_uuid: str,
    host_id: int,
    ids_path: str,
    io_timeout: int = DEFAULT_IO_TIMEOUT,
    wait: bool = True,
    *,
    timeout: float | None = None,
) -> None:
    """Join the lockspace with ``host_id`` (wait=False: start joining, poll
    :func:`inquire_lockspace`). Joining again with the same id is a no-op."""
    what = f"add lockspace {sd_uuid} host id {host_id}"
    name = encode_name(sd_uuid)
    try:
        call(
            what,
            lambda: sanlock.add_lockspace(name, host_id, ids_path, iotimeout=io_timeout, wait=wait),
            timeout=timeout if timeout is not None else lockspace_timeout(io_timeout),
            error=storage_errors.AcquireHostIdFailure,
            explain={errno.EEXIST: "the lockspace is already joined"},
        )
    except storage_errors.AcquireHostIdFailure as e:
        if e.context.get("sanlock_errno") == errno.EEXIST and inquire_lockspace(
            sd_uuid, host_id, ids_path
        ):
            log.info("Host id %d already acquired in lockspace %s", host_id, sd_uuid)
            return
        raise
    log.info("%s: %s", what, "done" if wait else "started")


def rem_lockspace(
    sd_uuid: str,
    host_id: int,
    ids_path: str,
    wait: bool = True,
    *,
    unused: bool = True,
    timeout: float | None = None,
) -> None:
    """Leave the lockspace, releasing ``host_id``; a lockspace not joined is a no-op.

    With ``unused`` (the default) this fails (662) while leases are held in the lockspace;
    ``unused=False`` lets sanlock kill the processes holding them, this one included.
    """
    what = f"remove lockspace {sd_uuid} host id {host_id}"
    name = encode_name(sd_uuid)
    try:
        call(
            what,
            lambda: sanlock.rem_lockspace(name, host_id, ids_path, wait=wait, unused=unused),
            timeout=timeout if timeout is not None else lockspace_timeout(DEFAULT_IO_TIMEOUT),
            error=storage_errors.ReleaseHostIdFailure,
            explain={errno.EBUSY: "leases are still held in the lockspace"},
        )
    except storage_errors.ReleaseHostIdFailure as e:
        if e.context.get("sanlock_errno") == errno.ENOENT:
            log.info("Lockspace %s was not joined; nothing to remove", sd_uuid)
            return
        raise
    log.info("%s: %s", what, "done" if wait else "started")


def inquire_lockspace(
    sd_uuid: str, host_id: int, ids_path: str, *, timeout: float = DEFAULT_TIMEOUT
) -> bool | None:
    """True when this host holds ``host_id`` in the lockspace, False when it does not, None
    while joining or leaving is in progress (what VDSM reports as ``acquired``)."""
    name = encode_name(sd_uuid)
    result: bool | None = call(
        f"inquire lockspace {sd_uuid} host id {host_id}",
        lambda: sanlock.inq_lockspace(name, host_id, ids_path),
        timeout=timeout,
        error=storage_errors.ClusterLockQueryError,
    )
    return result


def get_hosts(
    sd_uuid: str, host_id: int = 0, *, timeout: float = DEFAULT_TIMEOUT
) -> list[HostStatus]:
    """The hosts of a lockspace this host has joined (host_id 0: all of them).

    Right after joining sanlock knows nothing yet (EAGAIN until its first renewal); this
    waits for that within ``timeout``.
    """
    name = encode_name(sd_uuid)
    deadline = time.monotonic() + timeout
    while True:
        remaining = max(deadline - time.monotonic(), 0.001)
        try:
            hosts: list[dict[str, Any]] = call(
                f"get hosts of lockspace {sd_uuid}",
                lambda: sanlock.get_hosts(name, host_id),
                timeout=remaining,
                error=storage_errors.ClusterLockQueryError,
            )
        except storage_errors.ClusterLockQueryError as e:
            if e.context.get("sanlock_errno") != errno.EAGAIN:
                raise
            if time.monotonic() + _HOSTS_POLL_INTERVAL >= deadline:
                raise
            time.sleep(_HOSTS_POLL_INTERVAL)
            continue
        return [parse_host(h) for h in hosts]


def host_status(sd_uuid: str, host_id: int, *, timeout: float = DEFAULT_TIMEOUT) -> HostStatus:
    """The liveness of one host id, e.g. the current lease owner's."""
    for host in get_hosts(sd_uuid, host_id, timeout=timeout):
        if host.host_id == host_id:
            return host
    raise storage_errors.ClusterLockQueryError(f"host id {host_id} not reported in {sd_uuid}")


# --- resource leases -------------------------------------------------------------------


def register(*, timeout: float = DEFAULT_TIMEOUT) -> int:
    """Register this process with the sanlock daemon (once per process) and return the fd.

    Leases acquired later live as long as this process; see the module docstring.
    """
    global _registration
    with _registration_lock:
        if _registration is not None and _registration[0] == os.getpid():
            return _registration[1]
        fd: int = call(
            "register with sanlock",
            sanlock.register,
            timeout=timeout,
            error=storage_errors.AcquireLockFailure,
            on_late=os.close,
        )
        os.set_inheritable(fd, False)
        _registration = (os.getpid(), fd)
        log.info("Registered with sanlock (fd %d)", fd)
        return fd


def acquire(
    sd_uuid: str,
    name: str,
    leases_path: str,
    offset: int,
    version: int | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> int:
    """Acquire the lease for this process and return its new version (lver).

    ``version``, when given, is the version the lease must have on storage now (the last
    holder's lver); if another host took it since, this fails. Fails with
    :class:`~virthost.common.storage_errors.LeaseHeldByOtherHost` (651) while a live host holds it.
    """
    lockspace, resource = encode_name(sd_uuid), encode_name(name)
    disks = [(leases_path, offset)]
    fd = register(timeout=timeout)
    kwargs: dict[str, Any] = {"slkfd": fd}
    if version is not None:
        kwargs["version"] = version

    def release_late(_: None) -> None:
        log.warning("Late acquire of %s:%s succeeded; releasing it", sd_uuid, name)
        sanlock.release(lockspace, resource, disks, slkfd=fd)

    call(
        f"acquire lease {sd_uuid}:{name} at {leases_path}:{offset}",
        lambda: sanlock.acquire(lockspace, resource, disks, **kwargs),
        timeout=timeout,
        error=storage_errors.AcquireLockFailure,
        special=_HELD_ELSEWHERE,
        explain=_ACQUIRE_REASONS,
        on_late=release_late,
    )
    for held in inquire(timeout=timeout):
        if (held.lockspace, held.resource) == (sd_uuid, name):
            log.info("Acquired lease %s:%s version %d", sd_uuid, name, held.version)
            return held.version
    log.warning("Lease %s:%s acquired but not reported held; reading its version", sd_uuid, name)
    return read_resource_owners(sd_uuid, name, leases_path, offset, timeout=timeout).version


def release(
    sd_uuid: str, name: str, leases_path: str, offset: int, *, timeout: float = DEFAULT_TIMEOUT
) -> None:
    """Release a lease this process holds (660 when it does not hold it)."""
    lockspace, resource = encode_name(sd_uuid), encode_name(name)
    fd = register(timeout=timeout)
    call(
        f"release lease {sd_uuid}:{name}",
        lambda: sanlock.release(lockspace, resource, [(leases_path, offset)], slkfd=fd),
        timeout=timeout,
        error=storage_errors.ReleaseLockFailure,
        explain={errno.EPERM: "not held by this process"},
    )
    log.info("Released lease %s:%s", sd_uuid, name)


def inquire(*, timeout: float = DEFAULT_TIMEOUT) -> list[HeldLease]:
    """The leases this process holds, from the daemon's memory (no storage I/O)."""
    fd = register(timeout=timeout)
    held: list[dict[str, Any]] = call(
        "inquire held leases",
        lambda: sanlock.inquire(slkfd=fd),
        timeout=timeout,
        error=storage_errors.ClusterLockQueryError,
    )
    return [parse_held(r) for r in held]


def read_resource_owners(
    sd_uuid: str,
    name: str,
    leases_path: str,
    offset: int,
    *,
    alignment: int = DEFAULT_ALIGNMENT,
    block_size: int = DEFAULT_BLOCK_SIZE,
    timeout: float = DEFAULT_TIMEOUT,
) -> LeaseStatus:
    """Read a lease from storage: its version and current owners (who is SPM, and at which
    lver). Works without joining the lockspace. The two reads are not atomic."""
    lockspace, resource = encode_name(sd_uuid), encode_name(name)
    what = f"read lease {sd_uuid}:{name} at {leases_path}:{offset}"
    info: dict[str, Any] = call(
        what,
        lambda: sanlock.read_resource(leases_path, offset, align=alignment, sector=block_size),
        timeout=timeout,
        error=storage_errors.ClusterLockQueryError,
    )
    found = (decode_name(info["lockspace"]), decode_name(info["resource"]))
    if found != (sd_uuid, name):
        raise storage_errors.ClusterLockQueryError(
            f"{what}: found lease {found[0]}:{found[1]} there"
        )
    owners: list[dict[str, Any]] = call(
        what,
        lambda: sanlock.read_resource_owners(
            lockspace, resource, [(leases_path, offset)], align=alignment, sector=block_size
        ),
        timeout=timeout,
        error=storage_errors.ClusterLockQueryError,
    )
    return LeaseStatus(sd_uuid, name, int(info["version"]), tuple(parse_owner(o) for o in owners))
