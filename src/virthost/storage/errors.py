"""VDSM's storage error codes: volumes, images, domains, pools, SPM and cluster locks.

They extend the hierarchy of :mod:`virthost.common.errors` (every class carries VDSM's code
and message); kept apart because they are many and only the storage code raises them.
"""

from __future__ import annotations

from virthost.common.errors import VirtHostError

# --- SPM and cluster locks (sanlock host ids and leases), VDSM's 650-662 and 700-702 -----


class SpmStartError(VirtHostError):
    code = 650
    message = "Error starting SPM"


class AcquireLockFailure(VirtHostError):
    """A cluster lock (a sanlock lease such as the SPM's "SDM") could not be acquired."""

    code = 651
    message = "Cannot obtain lock"


class LeaseHeldByOtherHost(AcquireLockFailure):
    """The lease is held, or being taken, by another live host: retrying now will not help."""


class SpmParamsMismatch(VirtHostError):
    code = 652
    message = "Pool previous lver/id don't match request"


class SpmStopError(VirtHostError):
    code = 653
    message = "Error stopping SPM, SPM has unfinished task(s)"


class SpmStatusError(VirtHostError):
    code = 654
    message = "Not SPM"


class IsSpm(VirtHostError):
    code = 656
    message = "Operation not allowed while SPM is active"


class DomainAlreadyLocked(VirtHostError):
    code = 657
    message = "Cannot acquire lock, resource marked as locked"


class DomainLockDoesNotExist(VirtHostError):
    code = 658
    message = "Cannot release lock, resource not found"


class ReleaseLockFailure(VirtHostError):
    code = 660
    message = "Cannot release lock"


class AcquireHostIdFailure(VirtHostError):
    code = 661
    message = "Cannot acquire host id"


class ReleaseHostIdFailure(VirtHostError):
    code = 662
    message = "Cannot release host id"


class HostIdMismatch(VirtHostError):
    code = 700
    message = "Host id not found or does not match manager host id"


class ClusterLockInitError(VirtHostError):
    code = 701
    message = "Could not initialize cluster lock"


class InquireNotSupportedError(VirtHostError):
    code = 702
    message = "Cluster lock inquire isnt supported"


class ClusterLockQueryError(VirtHostError):
    """Reading lock state (host liveness, lease owners) failed; VDSM has no code of its own."""

    code = 100
    message = "Cannot read cluster lock state"


# --- storage: volumes, domain types and classes, metadata (VDSM's 200-234, 372-386, 749-756)


class StorageException(VirtHostError):
    """Base of VDSM's storage errors."""

    code = 200
    message = "General Storage Exception"


class VolumeDoesNotExist(StorageException):
    code = 201
    message = "Volume does not exist"


class IncorrectFormat(StorageException):
    code = 202
    message = "Incorrect Volume format"


class VolumeCreationError(StorageException):
    code = 205
    message = "Error creating a new volume"


class VolumeMetadataReadError(StorageException):
    code = 207
    message = "Error while processing volume meta data"


class VolumeMetadataWriteError(StorageException):
    code = 208
    message = "Error while updating volume meta data"


class VolumeAlreadyExists(StorageException):
    code = 212
    message = "Volume already exists"


class CreateIllegalVolumeSnapshotError(StorageException):
    code = 226
    message = "Cannot create volume snapshot from illegal volume"


class PrepareIllegalVolumeError(StorageException):
    code = 227
    message = "Cannot prepare illegal volume"


class IncorrectType(StorageException):
    code = 231
    message = "Incorrect Volume Preallocate Type"


class StorageDomainTypeError(StorageException):
    code = 372
    message = "Unsupported Storage Domain type"


class StorageDomainClassError(StorageException):
    code = 386
    message = "Invalid domain class value"


class MetaDataGeneralError(StorageException):
    code = 749
    message = "General Meta data error"


class MetaDataKeyNotFoundError(MetaDataGeneralError):
    code = 751
    message = "Meta Data key not found error"


class MetaDataSealIsBroken(MetaDataGeneralError):
    """The ``_SHA_CKSUM`` of a metadata file does not match its content."""

    code = 752
    message = "Meta Data seal is broken (checksum mismatch)"


class MetaDataValidationError(MetaDataGeneralError):
    code = 753
    message = "Meta Data self-validation failed"


class MetadataOverflowError(MetaDataGeneralError):
    """Rendered metadata does not fit its fixed-size slot."""

    code = 756
    message = "Metadata is too big. Cannot change Metadata"


class InvalidParameterException(VirtHostError):
    """A storage verb got a value it cannot use; the detail reads ``name=value``."""

    code = 1000
    message = "Invalid parameter"


# --- storage domains (VDSM's 351-394) ------------------------------------------------------


class StorageDomainCreationError(StorageException):
    code = 351
    message = "Error creating a storage domain"


class StorageDomainDoesNotExist(StorageException):
    code = 358
    message = "Storage domain does not exist"


class StorageDomainFSNotMounted(StorageException):
    code = 360
    message = "Storage domain remote path not mounted"


class StorageDomainAlreadyExists(StorageException):
    code = 365
    message = "Storage domain already exists"


class StorageDomainAccessError(StorageException):
    code = 379
    message = "Domain is either partially accessible or entirely inaccessible"


class StorageDomainDescriptionTooLongError(StorageException):
    code = 387
    message = "Storage domain description is too long"


class StorageDomainIllegalRemotePath(StorageException):
    code = 390
    message = "Remote path is illegal"


class CannotFormatAttachedStorageDomain(StorageException):
    code = 391
    message = "Cannot format attached storage domain"


class UnsupportedDomainVersion(StorageException):
    code = 394
    message = "Domain version is unsupported by this version of the host agent"
