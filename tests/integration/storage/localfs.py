"""A local directory connected as LOCALFS storage through the real daemon, for domain tests.

The directory is set-group-id and owned by group ``sanlock`` (mode 2770): files the daemon
creates as ``virthost`` then belong to that group, so sanlock can use ``ids`` and ``leases``.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fixtures import daemon as daemon_fixtures

POOL = "00000000-0000-0000-0000-000000000000"


@contextmanager
def connected_local_dir(services: daemon_fixtures.Services, prefix: str) -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    shutil.chown(directory, group="sanlock")
    directory.chmod(0o2770)
    params = [{"id": str(uuid.uuid4()), "connection": str(directory)}]
    with services.client() as cli:
        answer = cli.StoragePool.connectStorageServer(
            storagepoolID=POOL, domainType=4, connectionParams=params
        )
        assert answer[0]["status"] == 0
    try:
        yield directory
    finally:
        with services.client() as cli:
            cli.StoragePool.disconnectStorageServer(
                storagepoolID=POOL, domainType=4, connectionParams=params
            )
        shutil.rmtree(directory, ignore_errors=True)
