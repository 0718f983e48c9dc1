"""Storage server connections: StoragePool.connectStorageServer / disconnectStorageServer.

A connection makes a storage server's file system visible under the mount root
(``<repository>/mnt``, VDSM's ``/rhev/data-center/mnt``) at the path VDSM derives from the
remote name, so that several hosts agree on where a domain lives:

- LOCALFS: a local directory, linked (no mount) as ``mnt/_path_to_dir``;
- POSIXFS: ``mount -t <vfs_type> -o <mnt_options>``;
- GLUSTERFS: ``mount -t glusterfs`` under ``mnt/glusterSD/``;
- NFS: ``mount -t nfs`` with the configured default options.

Mounts are done by the supervisor (root); the daemon only decides what to mount. Each
connection gets its own status in the answer, as VDSM returns them: 0 or an error code.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from virthost.common import errors, validate

log = logging.getLogger("virthost.storage.connections")

NFS, LOCALFS, POSIXFS, GLUSTERFS = 1, 4, 6, 7
DOMAIN_TYPES = {
    "NFS": NFS,
    "LOCALFS": LOCALFS,
    "POSIXFS": POSIXFS,
    "SHAREDFS": POSIXFS,
    "GLUSTERFS": GLUSTERFS,
}
GLUSTER_DIR = "glusterSD"


class StorageServerConnectionError(errors.VirtHostError):
    code = 451
    message = "Error storage server connection"


class StorageServerDisconnectionError(errors.VirtHostError):
    code = 452
    message = "Error storage server disconnection"


class UnsupportedDomainType(errors.VirtHostError):
    code = 1000
    message = "Invalid parameter"


class Supervisor(Protocol):
    def call(self, op: str, timeout: float | None = None, **args: Any) -> Any: ...


def transform_path(remote: str) -> str:
    """VDSM's mount directory name: ``_`` doubled, then ``/`` becomes ``_``."""
    return remote.replace("_", "__").replace("/", "_")


def domain_type(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value in DOMAIN_TYPES.values():
        return value
    if isinstance(value, str):
        if value.isdigit() and int(value) in DOMAIN_TYPES.values():
            return int(value)
        if value.upper() in DOMAIN_TYPES:
            return DOMAIN_TYPES[value.upper()]
    raise UnsupportedDomainType(f"domainType {value!r} is not supported")


@dataclass(frozen=True)
class Connection:
    id: str
    connection: str
    vfs_type: str = ""
    mnt_options: str = ""

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Connection:
        if not isinstance(params, Mapping):
            raise errors.InvalidParameter("a connection must be an object")
        ident = str(params.get("id", ""))
        remote = params.get("connection")
        if not isinstance(remote, str) or not remote:
            raise errors.InvalidParameter(f"connection {ident}: no 'connection' given")
        return cls(
            ident,
            remote,
            str(params.get("vfs_type") or params.get("vfsType") or ""),
            str(params.get("mnt_options") or params.get("mntOptions") or ""),
        )


class StorageConnections:
    def __init__(
        self, mount_root: Path, supervisor: Supervisor, nfs_options: str = "soft,nosharecache"
    ) -> None:
        self.mount_root = mount_root
        self._supervisor = supervisor
        self._nfs_options = nfs_options

    def mount_point(self, kind: int, remote: str) -> Path:
        if kind == GLUSTERFS:
            return self.mount_root / GLUSTER_DIR / transform_path(remote)
        return self.mount_root / transform_path(remote)

    def connect(self, kind_value: Any, params: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        kind = domain_type(kind_value)
        return [self._each(kind, p, self._connect_one) for p in params]

    def disconnect(
        self, kind_value: Any, params: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        kind = domain_type(kind_value)
        return [self._each(kind, p, self._disconnect_one) for p in params]

    @staticmethod
    def _each(kind: int, params: Mapping[str, Any], action: Any) -> dict[str, Any]:
        ident = str(params.get("id", "")) if isinstance(params, Mapping) else ""
        try:
            action(kind, Connection.from_params(params))
        except errors.VirtHostError as e:
            code = getattr(e, "remote_code", e.code)
            log.warning("connection %s: %s", ident, e.wire_message)
            return {"id": ident, "status": code}
        return {"id": ident, "status": 0}

    def _connect_one(self, kind: int, conn: Connection) -> None:
        target = self.mount_point(kind, conn.connection)
        if kind == LOCALFS:
            self._link_local(conn.connection, target)
            return
        fstype, options = self._mount_args(kind, conn)
        try:
            self._supervisor.call(
                "mount",
                source=conn.connection,
                target=str(target),
                fstype=fstype,
                options=options,
            )
        except errors.SupervisorError as e:
            if hasattr(e, "remote_code"):
                raise  # the supervisor's own code (477 mount error...) is the status
            raise StorageServerConnectionError(e.detail or e.wire_message) from None
        log.info("connected %s at %s", conn.connection, target)

    def _mount_args(self, kind: int, conn: Connection) -> tuple[str, str]:
        if kind == GLUSTERFS:
            return "glusterfs", conn.mnt_options
        if kind == NFS:
            options = ",".join(o for o in (self._nfs_options, conn.mnt_options) if o)
            return "nfs", options
        if not conn.vfs_type:
            raise errors.InvalidParameter(f"connection {conn.id}: POSIXFS needs vfs_type")
        return conn.vfs_type, conn.mnt_options

    def _link_local(self, directory: str, link: Path) -> None:
        path = validate.absolute_path(directory, "connection")
        if not os.path.isdir(path):
            raise StorageServerConnectionError(f"{path} is not a directory")
        if link.is_symlink():
            if os.readlink(link) == path:
                return
            link.unlink()
        self.mount_root.mkdir(parents=True, exist_ok=True)
        link.symlink_to(path)
        log.info("connected local directory %s at %s", path, link)

    def _disconnect_one(self, kind: int, conn: Connection) -> None:
        target = self.mount_point(kind, conn.connection)
        if kind == LOCALFS:
            if target.is_symlink():
                target.unlink()
            return
        try:
            self._supervisor.call("umount", target=str(target), lazy=False)
        except errors.SupervisorError as e:
            raise StorageServerDisconnectionError(e.detail or e.wire_message) from None
        log.info("disconnected %s", conn.connection)
