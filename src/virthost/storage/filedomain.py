"""File storage domains: a directory ``<mount>/<sdUUID>`` that every host of a pool shares.

LOCALFS, NFS, POSIXFS and GlusterFS domains all look the same once their storage is visible
under the mount root: ``dom_md/`` holds the sealed metadata, the sanlock lockspace (``ids``),
the SPM lease (``leases``), the mailbox (``inbox``/``outbox``) and the external leases volume
(``xleases``), and ``images/`` holds the disks. Other hosts (and VDSM) read these files, so
names, sizes and metadata keys follow VDSM's file domain version 5 (4 is accepted as well).

Why everything goes through the domain's out-of-process pool: a mount can hang (an NFS
server gone away, a Gluster brick stuck) and a thread of ours blocked in the kernel never
comes back. Each domain gets its own pool, named by its UUID, so one hung domain cannot
starve the others; finding a domain and creating one use the global pool.

A creation either completes or leaves nothing behind: the domain directory is made first
(exclusively: its existence is the "already exists" check) and removed again on any failure.
The metadata is written last, so a domain whose creation was cut short never validates.

sanlock opens ``ids`` and ``leases`` as the ``sanlock`` user: the files are created 0660 and
take their group from the directory above, so the mount root must give them group
``sanlock`` (a set-group-id directory owned by that group, as VDSM's vdsm:kvm layout does).
"""

from __future__ import annotations

import fnmatch
import grp
import logging
import os
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from virthost.common import errors, validate
from virthost.storage import clusterlock, sdmetadata
from virthost.storage import constants as sc
from virthost.storage import errors as se
from virthost.storage.connections import GLUSTER_DIR
from virthost.storage.oop import OutOfProcessIO, ProcessPools

log = logging.getLogger("virthost.storage.filedomain")

SUPPORTED_VERSIONS = (4, 5)
DEFAULT_VERSION = 5
DEFAULT_MAX_HOSTS = 250
MAILBOX_SIZE = 16 * sc.MiB
LEASES_SLOTS = 2048
XLEASES_SLOTS = 1024
FILE_MODE = 0o660
DIR_MODE = 0o755
SANLOCK_GROUP = "sanlock"
SANLOCK_SOCKET = "/run/sanlock/sanlock.sock"
BLOCK_SIZE_DETECT = 0  # blockSize 0: probe the storage when the domain is created
SPECIAL_FILES = ("metadata", "ids", "leases", "inbox", "outbox", "xleases")


class LockInitializer(Protocol):
    """What a new domain needs from the cluster lock: a lockspace and the SPM lease."""

    def init_lockspace(
        self, sd_uuid: str, ids_path: str, io_timeout: int, alignment: int, block_size: int
    ) -> None: ...

    def init_sdm_lease(
        self, sd_uuid: str, leases_path: str, alignment: int, block_size: int
    ) -> None: ...


class SanlockInitializer:
    """:class:`LockInitializer` with the real sanlock daemon (which must be running)."""

    @staticmethod
    def _require_sanlock() -> None:
        if not os.path.exists(SANLOCK_SOCKET):
            raise se.ClusterLockInitError(f"the sanlock daemon is not running ({SANLOCK_SOCKET})")

    def init_lockspace(
        self, sd_uuid: str, ids_path: str, io_timeout: int, alignment: int, block_size: int
    ) -> None:
        self._require_sanlock()
        clusterlock.init_lockspace(
            sd_uuid, ids_path, io_timeout, alignment=alignment, block_size=block_size
        )

    def init_sdm_lease(
        self, sd_uuid: str, leases_path: str, alignment: int, block_size: int
    ) -> None:
        self._require_sanlock()
        clusterlock.init_resource(
            sd_uuid,
            clusterlock.SDM_LEASE_NAME,
            leases_path,
            clusterlock.sdm_lease_offset(alignment),
            alignment=alignment,
            block_size=block_size,
        )


@dataclass(frozen=True)
class DomainHandle:
    """A located domain: where it is, what its metadata said, and the pool to reach it."""

    directory: str
    metadata: sdmetadata.DomainMetadata
    io: OutOfProcessIO

    @property
    def sd_uuid(self) -> str:
        return self.metadata.sd_uuid

    @property
    def images_dir(self) -> str:
        return os.path.join(self.directory, sc.DOMAIN_IMAGES)

    @property
    def dom_md(self) -> str:
        return os.path.join(self.directory, sc.DOMAIN_META_DATA)


@dataclass(frozen=True)
class CreateRequest:
    """StorageDomain.create's arguments, validated."""

    sd_uuid: str
    storage_type: sc.StorageType
    remote_path: str
    description: str
    domain_class: sc.DomainClass
    version: int
    block_size: int
    alignment: int
    max_hosts: int = DEFAULT_MAX_HOSTS

    @classmethod
    def from_wire(
        cls,
        sd_uuid: Any,
        domain_type: Any,
        type_args: Any,
        name: Any,
        domain_class: Any,
        version: Any = None,
        block_size: Any = None,
        max_hosts: Any = None,
    ) -> CreateRequest:
        kind = sc.StorageType.from_value(domain_type)
        if not kind.is_file:
            raise se.StorageDomainTypeError(f"{kind.name} is not a file domain type")
        if not isinstance(type_args, str) or not type_args or "\x00" in type_args:
            raise se.StorageDomainIllegalRemotePath(f"typeArgs={type_args!r}")
        if kind is sc.StorageType.LOCALFS:
            validate.absolute_path(type_args, "typeArgs")
        ver = _int_arg(version, "version", DEFAULT_VERSION)
        if ver not in SUPPORTED_VERSIONS:
            raise se.UnsupportedDomainVersion(f"version={version!r}")
        size = _int_arg(block_size, "blockSize", sc.BLOCK_SIZE_512)
        if size == BLOCK_SIZE_DETECT:
            size = sc.BLOCK_SIZE_512 if ver < 5 else BLOCK_SIZE_DETECT
        if size not in (*sc.BLOCK_SIZES, BLOCK_SIZE_DETECT) or (
            ver < 5 and size != sc.BLOCK_SIZE_512
        ):
            raise se.InvalidParameterException(f"blockSize={block_size!r}")
        hosts = _int_arg(max_hosts, "maxHosts", DEFAULT_MAX_HOSTS) or DEFAULT_MAX_HOSTS
        return cls(
            sd_uuid=validate.uuid(sd_uuid, "storagedomainID"),
            storage_type=kind,
            remote_path=type_args,
            description=check_description(name),
            domain_class=sc.DomainClass.from_value(domain_class),
            version=ver,
            block_size=size,
            alignment=alignment_for(size or sc.BLOCK_SIZE_512, hosts),
            max_hosts=hosts,
        )

    def metadata(self) -> sdmetadata.DomainMetadata:
        """The metadata VDSM writes for a new, unattached file domain."""
        return sdmetadata.DomainMetadata(
            sd_uuid=self.sd_uuid,
            version=self.version,
            storage_type=self.storage_type,
            domain_class=self.domain_class,
            role=sc.DomainRole.REGULAR,
            description=self.description,
            pool_uuids=(),
            lock_policy="",
            lock_renewal_interval_sec=sc.DEFAULT_LOCK_RENEWAL_INTERVAL_SEC,
            lease_time_sec=sc.DEFAULT_LEASE_TIME_SEC,
            io_op_timeout_sec=sc.DEFAULT_IO_OP_TIMEOUT_SEC,
            lease_retries=sc.DEFAULT_LEASE_RETRIES,
            block_size=self.block_size,
            alignment=self.alignment,
            remote_path=self.remote_path,
        )


def _int_arg(value: Any, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise se.InvalidParameterException(f"{name}={value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise se.InvalidParameterException(f"{name}={value!r}") from None


def check_description(value: Any) -> str:
    if not isinstance(value, str):
        raise se.InvalidParameterException(f"description={value!r}")
    if len(value) > sc.MAX_DOMAIN_DESCRIPTION_SIZE:
        raise se.StorageDomainDescriptionTooLongError(
            f"{len(value)} characters, at most {sc.MAX_DOMAIN_DESCRIPTION_SIZE}"
        )
    return value


def alignment_for(block_size: int, max_hosts: int) -> int:
    """The smallest sanlock alignment whose lockspace holds ``max_hosts`` hosts."""
    if not 1 <= max_hosts <= sc.HOSTS_MAX:
        raise se.InvalidParameterException(f"maxHosts={max_hosts}")
    for alignment in sc.ALIGNMENTS:
        try:
            if sc.max_hosts(block_size, alignment) >= max_hosts:
                return alignment
        except errors.VirtHostError:
            continue
    raise se.InvalidParameterException(f"maxHosts={max_hosts}")  # pragma: no cover


class FileDomains:
    """The file domains found under the mount root, and the verbs on them."""

    def __init__(
        self,
        mount_root: Path,
        mount_point: Callable[[int, str], Path],
        pools: ProcessPools,
        locks: LockInitializer | None = None,
        lockspace_io_timeout: int | None = None,
    ) -> None:
        """``lockspace_io_timeout``: sanlock's I/O timeout written into new lockspaces, this
        host's ``sanlock_io_timeout`` as VDSM does (not the domain's IOOPTIMEOUTSEC)."""
        self._mount_root = mount_root
        self._mount_point = mount_point
        self._pools = pools
        self._locks = locks if locks is not None else SanlockInitializer()
        self._lockspace_io_timeout = lockspace_io_timeout
        self._known: dict[str, str] = {}
        self._known_lock = threading.Lock()

    # --- finding domains ----------------------------------------------------------------

    def _candidates(self, sd_uuid: str) -> list[str]:
        root, io = str(self._mount_root), self._pools.global_pool
        found = io.glob(os.path.join(root, "*", sd_uuid))
        return sorted({*found, *io.glob(os.path.join(root, GLUSTER_DIR, "*", sd_uuid))})

    def domain_dir(self, sd_uuid: Any) -> str:
        """The directory of domain ``sd_uuid`` (358 when no mount has it).

        Where a domain was found is remembered and checked again through the domain's own
        pool: searching walks every mount, and one hung mount would make every domain's
        lookup wait for it (VDSM keeps a domain cache for the same reason)."""
        sd = validate.uuid(sd_uuid, "storagedomainID")
        with self._known_lock:
            known = self._known.get(sd)
        if known is not None:
            if self._io(sd).exists(sdmetadata.metadata_path(known)):
                return known
            self.forget(sd)
        io = self._pools.global_pool
        for candidate in self._candidates(sd):
            if io.exists(sdmetadata.metadata_path(candidate)):
                with self._known_lock:
                    self._known[sd] = candidate
                return candidate
        raise se.StorageDomainDoesNotExist(sd)

    def forget(self, sd_uuid: str) -> None:
        """Drop what is remembered about where ``sd_uuid`` lives (it moved or went)."""
        with self._known_lock:
            self._known.pop(sd_uuid, None)

    def _io(self, sd_uuid: str) -> OutOfProcessIO:
        """The domain's own pool, so that one hung mount cannot block the others."""
        return self._pools.get(sd_uuid)

    def locate(self, sd_uuid: Any) -> DomainHandle:
        """Domain ``sd_uuid``'s directory, metadata (read now) and own I/O pool."""
        directory, md = self._read(sd_uuid)
        return DomainHandle(directory, md, self._io(md.sd_uuid))

    def write_metadata(self, handle: DomainHandle, md: sdmetadata.DomainMetadata) -> None:
        """Replace the domain's metadata (atomically, sealed) with ``md``."""
        if md.sd_uuid != handle.metadata.sd_uuid:
            raise se.MetaDataValidationError(f"SDUUID={md.sd_uuid} for {handle.metadata.sd_uuid}")
        sdmetadata.write_metadata(handle.io, sdmetadata.metadata_path(handle.directory), md)

    def _read(self, sd_uuid: str) -> tuple[str, sdmetadata.DomainMetadata]:
        sd = validate.uuid(sd_uuid, "storagedomainID")
        directory = self.domain_dir(sd)
        try:
            md = sdmetadata.read_metadata(self._io(sd), sdmetadata.metadata_path(directory))
        except OSError as e:
            raise se.StorageDomainAccessError(f"{sd}: {e}") from e
        if md.sd_uuid != sd:
            raise se.MetaDataValidationError(f"SDUUID={md.sd_uuid} in the directory of {sd}")
        return directory, md

    # --- create and format --------------------------------------------------------------

    def create(self, req: CreateRequest) -> None:
        mount = self._mount_point(int(req.storage_type), req.remote_path)
        if mount.name in ("", ".", ".."):
            raise se.StorageDomainIllegalRemotePath(req.remote_path)
        io = self._io(req.sd_uuid)
        if not io.exists(mount):
            raise se.StorageDomainFSNotMounted(req.remote_path)
        for candidate in self._candidates(req.sd_uuid):
            if io.exists(sdmetadata.metadata_path(candidate)):
                raise se.StorageDomainAlreadyExists(req.sd_uuid)
            # No metadata: what a creation cut short (kill -9) left behind, never a domain.
            log.warning("Removing %s, left by an interrupted creation", candidate)
            io.rmtree(candidate, os.path.dirname(candidate))
        if req.block_size == BLOCK_SIZE_DETECT:
            try:
                detected = io.probe_block_size(mount)
            except OSError as e:
                raise se.StorageDomainCreationError(f"cannot probe the block size: {e}") from e
            req = replace(
                req, block_size=detected, alignment=alignment_for(detected, req.max_hosts)
            )
            log.info("Block size of %s: %d", req.remote_path, detected)
        directory = os.path.join(str(mount), req.sd_uuid)
        try:
            io.mkdir(directory, DIR_MODE)
        except FileExistsError:
            raise se.StorageDomainAlreadyExists(req.sd_uuid) from None
        except OSError as e:
            raise se.StorageDomainCreationError(f"{directory}: {e}") from e
        try:
            self._populate(io, directory, req)
        except BaseException as e:
            log.warning("Creating domain %s failed (%s), removing %s", req.sd_uuid, e, directory)
            try:
                io.rmtree(directory, str(mount))
            except Exception:
                log.exception("Cannot remove the partial domain %s", directory)
            if isinstance(e, errors.VirtHostError) or not isinstance(e, Exception):
                raise
            raise se.StorageDomainCreationError(f"{req.sd_uuid}: {e}") from e
        log.info("Created %s domain %s at %s", req.storage_type.name, req.sd_uuid, directory)

    def _populate(self, io: OutOfProcessIO, directory: str, req: CreateRequest) -> None:
        self._share_with_sanlock(io, directory)
        dom_md = os.path.join(directory, sc.DOMAIN_META_DATA)
        io.mkdir(dom_md, DIR_MODE)
        io.mkdir(os.path.join(directory, sc.DOMAIN_IMAGES), DIR_MODE)
        sizes = {
            "ids": 0,
            "leases": LEASES_SLOTS * req.alignment,
            "inbox": MAILBOX_SIZE,
            "outbox": MAILBOX_SIZE,
            "xleases": XLEASES_SLOTS * req.alignment,
        }
        for name, size in sizes.items():
            io.truncate(os.path.join(dom_md, name), size, mode=FILE_MODE, exclusive=True)
        ids, leases = os.path.join(dom_md, "ids"), os.path.join(dom_md, "leases")
        self._check_sanlock_access(io, ids)
        md = req.metadata()
        io_timeout = self._lockspace_io_timeout or sc.DEFAULT_IO_OP_TIMEOUT_SEC
        self._locks.init_lockspace(req.sd_uuid, ids, io_timeout, req.alignment, req.block_size)
        self._locks.init_sdm_lease(req.sd_uuid, leases, req.alignment, req.block_size)
        sdmetadata.write_metadata(io, os.path.join(dom_md, "metadata"), md)

    @staticmethod
    def _share_with_sanlock(io: OutOfProcessIO, directory: str) -> None:
        """Give the domain directory group ``sanlock``, set-group-id, so that every file and
        directory made in it later belongs to that group too and sanlock can use them,
        whatever the storage root's own group is (the daemon's user is in that group)."""
        try:
            gid = grp.getgrnam(SANLOCK_GROUP).gr_gid
        except KeyError:
            return
        try:
            io.chgrp(directory, gid)
            io.chmod(directory, DIR_MODE | stat.S_ISGID)
        except PermissionError as e:
            log.warning("Cannot give %s to group %s: %s", directory, SANLOCK_GROUP, e)

    @staticmethod
    def _check_sanlock_access(io: OutOfProcessIO, path: str) -> None:
        """Fail early, and clearly, when sanlock would not be allowed to open ``path``."""
        try:
            gid = grp.getgrnam(SANLOCK_GROUP).gr_gid
        except KeyError:
            return  # no sanlock on this machine: a test double initialises the locks
        st = io.stat(path)
        group_rw = st.st_gid == gid and st.st_mode & 0o060 == 0o060
        if not (group_rw or st.st_mode & 0o006 == 0o006 or st.st_uid == 0):
            raise se.ClusterLockInitError(
                f"{path} is not readable and writable by group {SANLOCK_GROUP} "
                f"(gid {st.st_gid}, mode {stat.filemode(st.st_mode)}); make the storage "
                f"directory set-group-id and owned by group {SANLOCK_GROUP}"
            )

    def format(self, sd_uuid: Any, auto_detach: bool = False) -> None:
        sd = validate.uuid(sd_uuid, "storagedomainID")
        directory = self.domain_dir(sd)
        try:
            _, md = self._read(sd)
        except se.MetaDataGeneralError:
            md = None  # unreadable metadata does not stop removing the domain
        if md is not None and md.pools and not auto_detach:
            raise se.CannotFormatAttachedStorageDomain(f"{sd} is in pool {md.pools[0]}")
        self._io(sd).rmtree(directory, os.path.dirname(directory))
        self.forget(sd)
        self._pools.discard(sd)
        log.info("Formatted domain %s (%s)", sd, directory)

    # --- queries ------------------------------------------------------------------------

    def info(self, sd_uuid: Any) -> dict[str, Any]:
        _, md = self._read(sd_uuid)
        info: dict[str, Any] = {
            "uuid": md.sd_uuid,
            "type": md.storage_type.name,
            "class": md.domain_class.metadata_name,
            "name": md.description,
            "role": md.role.value,
            "pool": list(md.pools),
            "version": str(md.version),
            "block_size": md.effective_block_size,
            "alignment": md.effective_alignment,
            "remotePath": md.remote_path or "",
        }
        return info

    def stats(self, sd_uuid: Any) -> dict[str, Any]:
        sd = validate.uuid(sd_uuid, "storagedomainID")
        directory = self.domain_dir(sd)
        try:
            st = self._io(sd).statvfs(directory)
        except OSError as e:
            raise se.StorageDomainAccessError(f"{sd}: {e}") from e
        return {
            "disktotal": str(st.f_blocks * st.f_frsize),
            "diskfree": str(st.f_bavail * st.f_frsize),
            "mdasize": 0,
            "mdafree": 0,
            "mdavalid": True,
            "mdathreshold": True,
        }

    def validate(self, sd_uuid: Any) -> None:
        directory, md = self._read(sd_uuid)
        io = self._io(md.sd_uuid)
        missing = [
            name
            for name in SPECIAL_FILES
            if (name != "xleases" or md.version >= 4)
            and not io.exists(os.path.join(directory, sc.DOMAIN_META_DATA, name))
        ]
        if missing or not io.exists(os.path.join(directory, sc.DOMAIN_IMAGES)):
            raise se.StorageDomainAccessError(f"{md.sd_uuid}: missing {missing or ['images']}")

    def images(self, sd_uuid: Any) -> list[str]:
        directory, md = self._read(sd_uuid)
        found: list[str] = []
        for name in self._io(md.sd_uuid).listdir(os.path.join(directory, sc.DOMAIN_IMAGES)):
            try:
                found.append(validate.uuid(name, "image"))
            except errors.VirtHostError:
                continue  # _remove_me_ images and stray files are not images
        return found

    def set_description(self, sd_uuid: Any, description: Any) -> None:
        text = check_description(description)
        directory, md = self._read(sd_uuid)
        sdmetadata.write_metadata(
            self._io(md.sd_uuid),
            sdmetadata.metadata_path(directory),
            replace(md, description=text),
        )

    def list_domains(
        self,
        pool: str | None = None,
        domain_class: sc.DomainClass | None = None,
        storage_type: sc.StorageType | None = None,
        remote_path: str | None = None,
    ) -> list[str]:
        """The domains visible under the mount root, filtered as Host.getStorageDomains asks.

        A domain whose metadata cannot be read is left out (and logged): the list is what
        this host can use now."""
        root, io = str(self._mount_root), self._pools.global_pool
        pattern = os.path.join("*", "*", sc.DOMAIN_META_DATA, "metadata")
        paths = io.glob(os.path.join(root, pattern))
        paths += io.glob(os.path.join(root, GLUSTER_DIR, pattern))
        found: list[str] = []
        for path in paths:
            name = os.path.basename(os.path.dirname(os.path.dirname(path)))
            try:
                sd = validate.uuid(name, "storagedomainID")
                md = sdmetadata.read_metadata(self._io(sd), path)
            except (errors.VirtHostError, OSError) as e:
                log.warning("Skipping %s: %s", path, e)
                continue
            if (
                (pool is None or pool in md.pools)
                and (domain_class is None or md.domain_class is domain_class)
                and (storage_type is None or md.storage_type is storage_type)
                and (remote_path is None or md.remote_path == remote_path)
            ):
                found.append(md.sd_uuid)
        return sorted(set(found))

    def iso_files(self, sd_uuid: Any, pattern: str, case_sensitive: bool) -> dict[str, Any]:
        """The files of an ISO domain matching ``pattern`` (StorageDomain.getFileStats)."""
        directory, md = self._read(sd_uuid)
        if md.domain_class is not sc.DomainClass.ISO:
            raise se.StorageDomainClassError(f"{md.sd_uuid} is a {md.domain_class.name} domain")
        io = self._io(md.sd_uuid)
        folder = os.path.join(directory, sc.DOMAIN_IMAGES, sc.ISO_IMAGE_UUID)
        try:
            names = io.listdir(folder) if io.exists(folder) else []
        except OSError as e:
            raise se.GetFileListError(f"{folder}: {e}") from e
        wanted = pattern if case_sensitive else pattern.lower()
        files: dict[str, Any] = {}
        for name in names:
            if not fnmatch.fnmatchcase(name if case_sensitive else name.lower(), wanted):
                continue
            try:
                st = io.stat(os.path.join(folder, name))
            except OSError as e:
                log.warning("Cannot stat ISO file %s: %s", name, e)
                continue
            if stat.S_ISREG(st.st_mode):
                files[name] = {"status": 0, "ctime": str(int(st.st_ctime)), "size": str(st.st_size)}
        return files

    def dump(self, sd_uuid: Any) -> dict[str, Any]:
        sd = validate.uuid(sd_uuid, "sd_id")
        path = sdmetadata.metadata_path(self.domain_dir(sd))
        return {"metadata": sdmetadata.read_entries(self._io(sd), path)}
