"""Volume leases: the ``<vol>.lease`` file every volume of a v3+ file domain carries.

A volume lease is a sanlock resource named by the volume UUID in the domain's lockspace (named
by the domain UUID), written at offset 0 of a file one alignment unit long. SDM jobs acquire it
before touching the volume from any host. Creating the lease needs the sanlock daemon, so the
store takes a :class:`VolumeLeaseInitializer`: :class:`SanlockVolumeLeases` in the daemon, a
recording double in unit tests.
"""

from __future__ import annotations

import os
from typing import Protocol

from virthost.storage import clusterlock
from virthost.storage import errors as se

LEASE_OFFSET = 0
SANLOCK_SOCKET = "/run/sanlock/sanlock.sock"


class VolumeLeaseInitializer(Protocol):
    """What creating a volume needs from the cluster lock."""

    def init_volume_lease(
        self, sd_uuid: str, vol_uuid: str, lease_path: str, alignment: int, block_size: int
    ) -> None: ...


class SanlockVolumeLeases:
    """:class:`VolumeLeaseInitializer` with the real sanlock daemon (which must be running)."""

    def __init__(self, timeout: float = clusterlock.DEFAULT_TIMEOUT) -> None:
        self._timeout = timeout

    def init_volume_lease(
        self, sd_uuid: str, vol_uuid: str, lease_path: str, alignment: int, block_size: int
    ) -> None:
        if not os.path.exists(SANLOCK_SOCKET):
            raise se.ClusterLockInitError(f"the sanlock daemon is not running ({SANLOCK_SOCKET})")
        clusterlock.init_resource(
            sd_uuid,
            vol_uuid,
            lease_path,
            LEASE_OFFSET,
            alignment=alignment,
            block_size=block_size,
            timeout=self._timeout,
        )
