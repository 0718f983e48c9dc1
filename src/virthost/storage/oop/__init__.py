"""Out-of-process file I/O for storage domains, so a hung mount never blocks a daemon thread.

See :mod:`virthost.storage.oop.client` for the why; the helper process is
:mod:`virthost.storage.oop.helper`, its wire format :mod:`virthost.storage.oop.protocol`.
"""

from __future__ import annotations

from virthost.storage.oop.client import OutOfProcessIO
from virthost.storage.oop.exceptions import (
    BadRequest,
    HelperDied,
    HelperFailed,
    OopError,
    PoolClosed,
    StorageTimeout,
    TooManyRequests,
)
from virthost.storage.oop.pools import GLOBAL, ProcessPools

__all__ = [
    "GLOBAL",
    "BadRequest",
    "HelperDied",
    "HelperFailed",
    "OopError",
    "OutOfProcessIO",
    "PoolClosed",
    "ProcessPools",
    "StorageTimeout",
    "TooManyRequests",
]
