"""A storage domain's metadata: the sealed ``KEY=value`` file every host of the pool shares.

A file domain keeps its identity and configuration in ``<domain>/dom_md/metadata``, and the
master domain also carries the pool's (``POOL_*``, ``MASTER_VERSION``). Any host running VDSM may
read or rewrite that file, so we write exactly what VDSM writes and accept what it accepts:

- one ``KEY=value`` line per key, sorted by key, values stripped of surrounding whitespace;
- a last line ``_SHA_CKSUM=<hex>``, the SHA-1 of the preceding lines *concatenated without
  their line ends*, each encoded as ASCII with non-ASCII characters replaced by XML character
  references (``&#233;``); the file itself is UTF-8;
- on reading, lines without ``=`` are skipped, a checksum that does not match is
  :class:`~virthost.common.storage_errors.MetaDataSealIsBroken` (752), and a file without a seal is
  trusted as it is (VDSM does the same, for metadata being created);
- a value cannot hold a line break (it would become a line of its own); such a value is refused
  rather than written;
- the file is replaced atomically (VDSM renames ``metadata.new``; any temporary name will do,
  since readers only ever see a whole old or a whole new file).

:class:`DomainMetadata` is the typed view; keys it does not know (block domains' ``PVn``,
``LOGBLKSIZE``...) are kept in ``extra`` and written back unchanged. Reading and writing go
through :class:`MetadataFileIO`, so the out-of-process I/O pool (which survives a hung NFS
mount) plugs in where :class:`LocalFileIO` serves local files and tests.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import mmap
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from virthost.common import errors, fileutils
from virthost.storage import constants as sc
from virthost.storage import errors as storage_errors

log = logging.getLogger("virthost.storage.sdmetadata")

SHA_CKSUM_TAG = "_SHA_CKSUM"
METADATA_MODE = 0o660
_DIRECT_CHUNK = 64 * 1024  # a multiple of any block size; mmap makes it page-aligned
_LINE_BREAKS = ("\n", "\r")


# --- the sealed KEY=value format ---------------------------------------------------------


def compute_checksum(entries: Mapping[str, str]) -> str:
    """The seal of ``entries``: SHA-1 over the sorted ``KEY=value`` lines, no line ends."""
    digest = hashlib.sha1()
    for key in sorted(entries):
        digest.update(f"{key}={entries[key]}".encode("ascii", "xmlcharrefreplace"))
    return digest.hexdigest()


def render_entries(entries: Mapping[str, str]) -> bytes:
    """The file content for ``entries``: sorted lines, stripped values, then the seal."""
    clean: dict[str, str] = {}
    for key, value in entries.items():
        _check_key(key)
        _check_value(key, value)
        clean[key] = value.strip()
    lines = [f"{key}={clean[key]}" for key in sorted(clean)]
    lines.append(f"{SHA_CKSUM_TAG}={compute_checksum(clean)}")
    return ("\n".join(lines) + "\n").encode("utf-8")


def parse_entries(data: bytes) -> dict[str, str]:
    """The entries of a metadata file, after checking its seal."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise storage_errors.MetaDataValidationError(f"metadata is not UTF-8: {e}") from None
    entries: dict[str, str] = {}
    declared: str | None = None
    for line in text.split("\n"):
        key, sep, value = line.partition("=")
        if not sep:
            if line.strip():
                log.warning("Skipping metadata line without '=': %r", line)
            continue
        if key == SHA_CKSUM_TAG:
            declared = value.strip()
        else:
            entries[key] = value.strip()
    if not entries:
        return entries
    if declared is None:
        log.warning("Metadata has no %s line, trusting it as it is", SHA_CKSUM_TAG)
        return entries
    computed = compute_checksum(entries)
    if declared != computed:
        raise storage_errors.MetaDataSealIsBroken(
            f"cksum = {declared}, computed_cksum = {computed}"
        )
    return entries


def _check_key(key: str) -> None:
    if not key or "=" in key or key == SHA_CKSUM_TAG or any(c in key for c in _LINE_BREAKS):
        raise storage_errors.InvalidParameterException(f"metadata key={key!r}")


def _check_value(key: str, value: str) -> None:
    if any(c in value for c in _LINE_BREAKS):
        raise storage_errors.InvalidParameterException(f"{key}={value!r} (line break)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise storage_errors.InvalidParameterException(f"{key}={value!r} (not encodable)") from None


# --- the typed view ----------------------------------------------------------------------

_REQUIRED = ("SDUUID", "VERSION", "TYPE", "CLASS", "ROLE")
_LEASE_DEFAULTS = {
    "LOCKRENEWALINTERVALSEC": sc.DEFAULT_LOCK_RENEWAL_INTERVAL_SEC,
    "LEASETIMESEC": sc.DEFAULT_LEASE_TIME_SEC,
    "IOOPTIMEOUTSEC": sc.DEFAULT_IO_OP_TIMEOUT_SEC,
    "LEASERETRIES": sc.DEFAULT_LEASE_RETRIES,
}
_INT_KEYS = ("BLOCK_SIZE", "ALIGNMENT", "POOL_SPM_ID", "POOL_SPM_LVER", "MASTER_VERSION")
_STR_KEYS = ("LOCKPOLICY", "REMOTE_PATH", "VGUUID", "POOL_DESCRIPTION")
_LIST_KEYS = ("DESCRIPTION", "POOL_UUID", "POOL_DOMAINS")
KNOWN_KEYS = frozenset((*_REQUIRED, *_LIST_KEYS, *_LEASE_DEFAULTS, *_INT_KEYS, *_STR_KEYS))


@dataclass(frozen=True)
class DomainMetadata:
    """The content of ``dom_md/metadata``; ``None`` marks a key the file does not have
    (``DESCRIPTION`` is always written, empty when the file had none).

    ``pool_domains`` maps each domain of the pool to its status (``Active``, ``Attached``...)
    and exists only on a master domain, with the other ``pool_*`` fields and
    ``master_version``. ``extra`` holds keys this class does not model, kept as read.
    """

    sd_uuid: str
    version: int
    storage_type: sc.StorageType
    domain_class: sc.DomainClass
    role: sc.DomainRole
    description: str = ""
    pool_uuids: tuple[str, ...] | None = ()
    lock_policy: str | None = None
    lock_renewal_interval_sec: int | None = None
    lease_time_sec: int | None = None
    io_op_timeout_sec: int | None = None
    lease_retries: int | None = None
    block_size: int | None = None
    alignment: int | None = None
    remote_path: str | None = None
    vg_uuid: str | None = None
    pool_description: str | None = None
    pool_domains: Mapping[str, str] | None = None
    pool_spm_id: int | None = None
    pool_spm_lver: int | None = None
    master_version: int | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for uuid in self.pool_uuids or ():
            if not uuid or "," in uuid:
                raise storage_errors.InvalidParameterException(f"POOL_UUID={uuid!r}")
        for sd_uuid, status in (self.pool_domains or {}).items():
            if not sd_uuid or any(c in sd_uuid + status for c in ",:") or not status:
                raise storage_errors.InvalidParameterException(
                    f"POOL_DOMAINS={sd_uuid!r}:{status!r}"
                )
        clash = KNOWN_KEYS.intersection(self.extra)
        if clash:
            raise storage_errors.InvalidParameterException(
                f"extra keys={sorted(clash)!r} are modelled"
            )

    @property
    def pools(self) -> tuple[str, ...]:
        """The pools the domain belongs to (old metadata marks "none" with the blank UUID)."""
        return tuple(p for p in self.pool_uuids or () if p != sc.BLANK_UUID)

    @property
    def effective_block_size(self) -> int:
        return self.block_size if self.block_size is not None else sc.BLOCK_SIZE_512

    @property
    def effective_alignment(self) -> int:
        return self.alignment if self.alignment is not None else sc.ALIGNMENT_1M

    @property
    def is_master(self) -> bool:
        return self.role is sc.DomainRole.MASTER

    def to_entries(self) -> dict[str, str]:
        """The ``KEY=value`` pairs of this metadata, unsealed."""
        entries = dict(self.extra)
        entries.update(
            SDUUID=self.sd_uuid,
            VERSION=str(self.version),
            TYPE=self.storage_type.name,
            CLASS=self.domain_class.metadata_name,
            ROLE=self.role.value,
            DESCRIPTION=self.description,
        )
        optional: dict[str, str | int | None] = {
            "LOCKPOLICY": self.lock_policy,
            "LOCKRENEWALINTERVALSEC": self.lock_renewal_interval_sec,
            "LEASETIMESEC": self.lease_time_sec,
            "IOOPTIMEOUTSEC": self.io_op_timeout_sec,
            "LEASERETRIES": self.lease_retries,
            "BLOCK_SIZE": self.block_size,
            "ALIGNMENT": self.alignment,
            "REMOTE_PATH": self.remote_path,
            "VGUUID": self.vg_uuid,
            "POOL_DESCRIPTION": self.pool_description,
            "POOL_SPM_ID": self.pool_spm_id,
            "POOL_SPM_LVER": self.pool_spm_lver,
            "MASTER_VERSION": self.master_version,
        }
        entries.update({key: str(value) for key, value in optional.items() if value is not None})
        if self.pool_uuids is not None:
            entries["POOL_UUID"] = ",".join(self.pool_uuids)
        if self.pool_domains is not None:
            entries["POOL_DOMAINS"] = ",".join(f"{k}:{v}" for k, v in self.pool_domains.items())
        return entries

    @classmethod
    def from_entries(cls, entries: Mapping[str, str]) -> DomainMetadata:
        """The typed view of parsed entries; missing required keys are an error (751)."""
        missing = [key for key in _REQUIRED if key not in entries]
        if missing:
            raise storage_errors.MetaDataKeyNotFoundError(f"missing {', '.join(missing)}")
        try:
            return cls(
                sd_uuid=entries["SDUUID"],
                version=_int(entries, "VERSION"),
                storage_type=sc.StorageType.from_value(entries["TYPE"]),
                domain_class=_domain_class(entries["CLASS"]),
                role=sc.DomainRole.from_value(entries["ROLE"]),
                description=entries.get("DESCRIPTION", ""),
                pool_uuids=_pool_uuids(entries.get("POOL_UUID")),
                lock_policy=entries.get("LOCKPOLICY"),
                lock_renewal_interval_sec=_lease_int(entries, "LOCKRENEWALINTERVALSEC"),
                lease_time_sec=_lease_int(entries, "LEASETIMESEC"),
                io_op_timeout_sec=_lease_int(entries, "IOOPTIMEOUTSEC"),
                lease_retries=_lease_int(entries, "LEASERETRIES"),
                block_size=_opt_int(entries, "BLOCK_SIZE"),
                alignment=_opt_int(entries, "ALIGNMENT"),
                remote_path=entries.get("REMOTE_PATH"),
                vg_uuid=entries.get("VGUUID"),
                pool_description=entries.get("POOL_DESCRIPTION"),
                pool_domains=_pool_domains(entries.get("POOL_DOMAINS")),
                pool_spm_id=_opt_int(entries, "POOL_SPM_ID"),
                pool_spm_lver=_opt_int(entries, "POOL_SPM_LVER"),
                master_version=_opt_int(entries, "MASTER_VERSION"),
                extra={k: v for k, v in entries.items() if k not in KNOWN_KEYS},
            )
        except storage_errors.MetaDataValidationError:
            raise
        except errors.VirtHostError as e:
            raise storage_errors.MetaDataValidationError(e.wire_message) from e

    def render(self) -> bytes:
        """The sealed file content."""
        return render_entries(self.to_entries())

    @classmethod
    def parse(cls, data: bytes) -> DomainMetadata:
        """The metadata in a file's content, after checking its seal."""
        return cls.from_entries(parse_entries(data))


def _int(entries: Mapping[str, str], key: str) -> int:
    try:
        return int(entries[key])
    except ValueError:
        raise storage_errors.MetaDataValidationError(
            f"{key}={entries[key]!r} is not an integer"
        ) from None


def _opt_int(entries: Mapping[str, str], key: str) -> int | None:
    return _int(entries, key) if key in entries else None


def _lease_int(entries: Mapping[str, str], key: str) -> int | None:
    """Lease timings that do not parse fall back to the default, as VDSM reads them."""
    if key not in entries:
        return None
    try:
        return int(entries[key])
    except ValueError:
        log.warning("Invalid %s=%r, using %d", key, entries[key], _LEASE_DEFAULTS[key])
        return _LEASE_DEFAULTS[key]


def _domain_class(value: str) -> sc.DomainClass:
    for member in sc.DomainClass:
        if member.metadata_name == value:
            return member
    raise storage_errors.MetaDataValidationError(f"CLASS={value!r}")


def _pool_uuids(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(value.split(",")) if value else ()


def _pool_domains(value: str | None) -> dict[str, str] | None:
    if value is None:
        return None
    domains: dict[str, str] = {}
    for item in value.split(",") if value else ():
        parts = item.split(":")
        if len(parts) != 2:
            raise storage_errors.MetaDataValidationError(f"POOL_DOMAINS item {item!r}")
        domains[parts[0].strip("'")] = parts[1].strip("'").capitalize()
    return domains


# --- file access -------------------------------------------------------------------------


class MetadataFileIO(Protocol):
    """The file operations metadata needs; the out-of-process I/O pool provides them too.

    ``read_file`` raises :class:`FileNotFoundError` for a missing file; ``write_file`` replaces
    the file atomically (temporary file, fsync, rename).
    """

    def read_file(self, path: str, direct: bool = False) -> bytes: ...

    def write_file(
        self, path: str, data: bytes, direct: bool = False, mode: int = 0o644
    ) -> None: ...


class LocalFileIO:
    """:class:`MetadataFileIO` in this process, for local files and tests.

    A ``direct`` read bypasses the page cache (O_DIRECT, through a page-aligned buffer), so
    it sees what other hosts wrote; file systems without O_DIRECT are read normally. Writes
    are atomic and fsynced; ``direct`` does not change them.
    """

    def read_file(self, path: str, direct: bool = False) -> bytes:
        if direct and (data := _read_direct(path)) is not None:
            return data
        return Path(path).read_bytes()

    def write_file(self, path: str, data: bytes, direct: bool = False, mode: int = 0o644) -> None:
        fileutils.atomic_write(Path(path), data, mode)


def _read_direct(path: str) -> bytes | None:
    """The file read with O_DIRECT (a short read is its end); None where O_DIRECT fails."""
    chunks: list[bytes] = []
    fd = -1
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT | os.O_CLOEXEC)
        with mmap.mmap(-1, _DIRECT_CHUNK) as buffer:
            while True:
                count = os.readv(fd, [buffer])
                chunks.append(buffer[:count])
                if count < _DIRECT_CHUNK:
                    return b"".join(chunks)
    except OSError as e:
        if e.errno == errno.EINVAL and not chunks:
            return None
        raise
    finally:
        if fd >= 0:
            os.close(fd)


def metadata_path(domain_dir: str) -> str:
    """Where a file domain keeps its metadata."""
    return os.path.join(domain_dir, sc.DOMAIN_META_DATA, "metadata")


def read_entries(io: MetadataFileIO, path: str) -> dict[str, str]:
    """The sealed entries at ``path`` (read bypassing the cache); a missing file has none."""
    try:
        data = io.read_file(path, direct=True)
    except FileNotFoundError:
        return {}
    return parse_entries(data)


def write_entries(io: MetadataFileIO, path: str, entries: Mapping[str, str]) -> None:
    """Seal ``entries`` and replace the file at ``path`` with them atomically."""
    io.write_file(path, render_entries(entries), mode=METADATA_MODE)


def read_metadata(io: MetadataFileIO, path: str) -> DomainMetadata:
    """The domain metadata at ``path``."""
    return DomainMetadata.from_entries(read_entries(io, path))


def write_metadata(io: MetadataFileIO, path: str, metadata: DomainMetadata) -> None:
    """Replace the domain metadata at ``path``."""
    write_entries(io, path, metadata.to_entries())
