"""VDSM's storage vocabulary: the codes and names that the engine and the disks speak.

The same value travels in two spellings. The engine sends a volume format as ``5`` in one verb
and as ``"RAW"`` in another, older engines send numbers as strings, and the metadata on disk
stores names (``FORMAT=RAW``, ``CLASS=Data``, ``TYPE=LOCALFS``). Every enum here therefore
keeps VDSM's numeric code as its value (or its on-disk word, where VDSM has no number) and
offers ``from_value``, which takes either spelling and answers with the member or with the
error VDSM would send for a bad value. Anything that has to match VDSM byte for byte on shared
storage (sizes, slots, prefixes, defaults) is named here once.
"""

from __future__ import annotations

import enum
import re
from typing import Self

from virthost.common import errors
from virthost.storage import errors as storage_errors

KiB = 1024
MiB = 1024 * KiB

BLANK_UUID = "00000000-0000-0000-0000-000000000000"
ISO_IMAGE_UUID = "11111111-1111-1111-1111-111111111111"

# --- block sizes, sanlock alignment and host limits --------------------------------------

BLOCK_SIZE_512 = 512
BLOCK_SIZE_4K = 4096
BLOCK_SIZES = (BLOCK_SIZE_512, BLOCK_SIZE_4K)

ALIGNMENT_1M = 1 * MiB
ALIGNMENT_2M = 2 * MiB
ALIGNMENT_4M = 4 * MiB
ALIGNMENT_8M = 8 * MiB
ALIGNMENTS = (ALIGNMENT_1M, ALIGNMENT_2M, ALIGNMENT_4M, ALIGNMENT_8M)

HOSTS_MAX = 2000
_MAX_HOSTS = {
    (BLOCK_SIZE_512, ALIGNMENT_1M): HOSTS_MAX,
    (BLOCK_SIZE_4K, ALIGNMENT_1M): 250,
    (BLOCK_SIZE_4K, ALIGNMENT_2M): 500,
    (BLOCK_SIZE_4K, ALIGNMENT_4M): 1000,
    (BLOCK_SIZE_4K, ALIGNMENT_8M): HOSTS_MAX,
}


def max_hosts(block_size: int, alignment: int) -> int:
    """How many host ids a lockspace with this sector size and alignment can hold."""
    try:
        return _MAX_HOSTS[(block_size, alignment)]
    except KeyError:
        raise storage_errors.InvalidParameterException(
            f"block_size={block_size}, alignment={alignment}"
        ) from None


# --- domain versions and metadata sizes --------------------------------------------------

DOMAIN_VERSIONS = (0, 2, 3, 4, 5)
# qcow2 images get compat 1.1 on v4+ domains, 0.10 before.
QCOW2_COMPAT_V4 = "1.1"
QCOW2_COMPAT_LEGACY = "0.10"

# A volume's metadata must fit one 512-byte sector, so a block device writes it atomically.
METADATA_SIZE = 512
# Volume descriptions longer than this are cut (VDSM does the same, it never refuses them).
DESCRIPTION_SIZE = 210
MAX_DOMAIN_DESCRIPTION_SIZE = 50
MAX_POOL_DESCRIPTION_SIZE = 50

# Volume metadata slots in a block domain's ``metadata`` LV.
SLOT_SIZE_V4 = 512
SLOT_SIZE_V5 = 8 * KiB
SLOTS_OFFSET_V5 = 1 * MiB
# Volume leases of a block domain sit at (RESERVED_LEASES + slot) * alignment.
RESERVED_LEASES = 100

DEFAULT_GENERATION = 0
MAX_GENERATION = 999
DEFAULT_SEQUENCE = 0
MAX_SEQUENCE = 2**32 - 1

SPM_ID_FREE = -1
LVER_INVALID = -1

FILE_VOLUME_PERMISSIONS = 0o660
META_FILEEXT = ".meta"
LEASE_FILEEXT = ".lease"
REMOVED_IMAGE_PREFIX = "_remove_me_"
ZEROED_IMAGE_PREFIX = REMOVED_IMAGE_PREFIX + "ZERO_"

DOMAIN_META_DATA = "dom_md"
DOMAIN_IMAGES = "images"
MASTER_FS_DIR = "master"

# Lease parameters written into new domains' metadata.
DEFAULT_LOCK_POLICY = "ON"
DEFAULT_LOCK_RENEWAL_INTERVAL_SEC = 5
DEFAULT_LEASE_TIME_SEC = 60
DEFAULT_IO_OP_TIMEOUT_SEC = 10
DEFAULT_LEASE_RETRIES = 3


# --- conversions -------------------------------------------------------------------------

_CODE = re.compile(r"-?[0-9]+")


def _as_code(value: object) -> int | None:
    """``value`` as an integer code if it is one (``5`` or ``"5"``), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _CODE.fullmatch(value.strip()):
        return int(value.strip())
    return None


class _CodedEnum(enum.IntEnum):
    """An enum whose value is VDSM's number and whose name is VDSM's word for it."""

    @classmethod
    def _bad_value(cls, value: object) -> errors.VirtHostError:
        return storage_errors.InvalidParameterException(f"{cls.__name__}={value!r}")

    @classmethod
    def from_value(cls, value: object) -> Self:
        """The member for a code (``5``, ``"5"``) or a name in any case (``"raw"``)."""
        code = _as_code(value)
        if code is not None:
            try:
                return cls(code)
            except ValueError:
                raise cls._bad_value(value) from None
        if isinstance(value, str):
            wanted = value.strip().upper()
            for member in cls:
                if member.name == wanted:
                    return member
        raise cls._bad_value(value)


class VolumeFormat(_CodedEnum):
    """``FORMAT`` in volume metadata: RAW data or a COW (qcow2) layer."""

    UNKNOWN = 3
    COW = 4
    RAW = 5

    @classmethod
    def _bad_value(cls, value: object) -> errors.VirtHostError:
        return storage_errors.IncorrectFormat(repr(value))

    @property
    def qemu_format(self) -> str:
        """The name qemu-img uses for this format."""
        if self is VolumeFormat.COW:
            return "qcow2"
        if self is VolumeFormat.RAW:
            return "raw"
        raise storage_errors.IncorrectFormat(f"{self.name} has no qemu-img format")

    @classmethod
    def from_qemu(cls, fmt: str) -> VolumeFormat:
        """The volume format for a qemu-img format name (``qcow2`` or ``raw``)."""
        if fmt == "qcow2":
            return cls.COW
        if fmt == "raw":
            return cls.RAW
        raise storage_errors.IncorrectFormat(repr(fmt))


class VolumeType(_CodedEnum):
    """``TYPE`` in volume metadata: the allocation policy."""

    UNKNOWN = 0
    PREALLOCATED = 1
    SPARSE = 2

    @classmethod
    def _bad_value(cls, value: object) -> errors.VirtHostError:
        return storage_errors.IncorrectType(repr(value))


class VolumeRole(_CodedEnum):
    """``VOLTYPE`` in volume metadata: where the volume sits in its chain.

    SHARED is a template's volume, INTERNAL has children, LEAF is the one a VM writes to.
    """

    SHARED = 6
    INTERNAL = 7
    LEAF = 8


class StorageType(_CodedEnum):
    """A storage domain's type; ``TYPE`` in domain metadata."""

    UNKNOWN = 0
    NFS = 1
    FCP = 2
    ISCSI = 3
    LOCALFS = 4
    CIFS = 5
    POSIXFS = 6
    GLUSTERFS = 7

    @classmethod
    def from_value(cls, value: object) -> Self:
        # The API schema calls POSIXFS "SHAREDFS".
        if isinstance(value, str) and value.strip().upper() == "SHAREDFS":
            return cls.from_value(cls.POSIXFS.value)
        return super().from_value(value)

    @classmethod
    def _bad_value(cls, value: object) -> errors.VirtHostError:
        return storage_errors.StorageDomainTypeError(repr(value))

    @property
    def is_block(self) -> bool:
        return self in (StorageType.FCP, StorageType.ISCSI)

    @property
    def is_file(self) -> bool:
        return self in (
            StorageType.NFS,
            StorageType.LOCALFS,
            StorageType.CIFS,
            StorageType.POSIXFS,
            StorageType.GLUSTERFS,
        )


class DomainClass(_CodedEnum):
    """A storage domain's class; ``CLASS`` in domain metadata, written capitalised."""

    DATA = 1
    ISO = 2
    BACKUP = 3

    @classmethod
    def _bad_value(cls, value: object) -> errors.VirtHostError:
        return storage_errors.StorageDomainClassError(repr(value))

    @property
    def metadata_name(self) -> str:
        """The word in ``dom_md/metadata``: ``Data``, ``Iso`` or ``Backup``."""
        return self.name.capitalize()


class _WordEnum(enum.StrEnum):
    """An enum whose value is VDSM's word; ``from_value`` ignores case."""

    @classmethod
    def from_value(cls, value: object) -> Self:
        if isinstance(value, str):
            wanted = value.strip().upper()
            for member in cls:
                if member.value.upper() == wanted or member.name == wanted:
                    return member
        raise storage_errors.InvalidParameterException(f"{cls.__name__}={value!r}")


class Legality(_WordEnum):
    """``LEGALITY`` in volume metadata: may the volume's content be trusted."""

    LEGAL = "LEGAL"
    ILLEGAL = "ILLEGAL"
    FAKE = "FAKE"


class DiskType(_WordEnum):
    """``DISKTYPE`` in volume metadata: what the engine uses the disk for."""

    DATA = "DATA"
    ISOF = "ISOF"  # ISO image
    MEMD = "MEMD"  # memory dump of a snapshot or hibernation
    MEMM = "MEMM"  # memory metadata
    OVFS = "OVFS"  # OVF store
    HEVD = "HEVD"  # hosted engine VM disk
    HESD = "HESD"  # hosted engine sanlock disk
    HEMD = "HEMD"  # hosted engine metadata
    HECI = "HECI"  # hosted engine configuration image
    SCRD = "SCRD"  # backup scratch disk
    LEGACY_DATA = "2"  # engines before 4.2
    LEGACY_V2V_DATA = "1"  # virt-v2v

    @classmethod
    def from_value(cls, value: object) -> Self:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        return super().from_value(value)


class DomainRole(_WordEnum):
    """``ROLE`` in domain metadata."""

    MASTER = "Master"
    REGULAR = "Regular"


class DomainStatus(_WordEnum):
    """A domain's status inside its pool (``POOL_DOMAINS``); ``Inactive`` is old Attached."""

    ACTIVE = "Active"
    ATTACHED = "Attached"
    UNATTACHED = "Unattached"
    UNKNOWN = "Unknown"

    @classmethod
    def from_value(cls, value: object) -> Self:
        if isinstance(value, str) and value.strip().capitalize() == "Inactive":
            return cls.from_value(cls.ATTACHED.value)
        return super().from_value(value)


class VolumeStatus(_WordEnum):
    """The ``status`` Volume.getInfo reports: is the metadata readable and the volume usable."""

    OK = "OK"
    INIT = "INIT"
    INVALID = "INVALID"
    REMOVED = "REMOVED"


def qcow2_compat(domain_version: int) -> str:
    """The qcow2 compat level images get on a domain of this version."""
    return QCOW2_COMPAT_V4 if domain_version >= 4 else QCOW2_COMPAT_LEGACY
