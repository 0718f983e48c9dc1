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


# --- volumes (VDSM's 203-223) -------------------------------------------------------------


class VolumeIsBusy(StorageException):
    code = 203
    message = "Volume is busy"


class VolumeImageHasChildren(StorageException):
    code = 204
    message = "Cannot delete volume which has children"


class VolumeExtendingError(StorageException):
    code = 206
    message = "Error extending volume"


class VolumeAccessError(StorageException):
    code = 209
    message = "Error volume access"


class VolumeUnlinkError(StorageException):
    code = 210
    message = "Error removing a volume"


class CannotCloneVolume(StorageException):
    code = 217
    message = "Cannot clone volume"


class CannotShareVolume(StorageException):
    code = 218
    message = "Cannot share volume"


class SharedVolumeNonWritable(StorageException):
    code = 219
    message = "Shared volume is non-writable"


class InternalVolumeNonWritable(StorageException):
    code = 220
    message = "Internal volume is non-writable"


class CannotDeleteVolume(StorageException):
    code = 222
    message = "Cannot delete volume"


class CannotDeleteSharedVolume(StorageException):
    code = 223
    message = "Cannot delete shared volume"


# --- images (VDSM's 251-268) --------------------------------------------------------------


class MoveImageError(StorageException):
    code = 251
    message = "Error moving image"


class ImagePathError(StorageException):
    code = 254
    message = "Image path does not exist or cannot be accessed/created"


class ImageDeleteError(StorageException):
    code = 256
    message = "Could not remove all image's volumes"


class ImageIsNotLegalChain(StorageException):
    code = 262
    message = "Image is not a legal chain"


class ImageDoesNotExistInSD(StorageException):
    code = 268
    message = "Image does not exist in domain"


# --- pools (VDSM's 300-330) ---------------------------------------------------------------


class StoragePoolActionError(StorageException):
    code = 300
    message = "Error storage pool action"


class StoragePoolCreationError(StorageException):
    code = 301
    message = "Error creating a storage pool"


class StoragePoolMasterNotFound(StorageException):
    code = 304
    message = "Cannot find master domain"


class StoragePoolDestroyingError(StorageException):
    code = 308
    message = "Error destroying a storage pool"


class StoragePoolUnknown(StorageException):
    code = 309
    message = "Unknown pool id, pool not connected"


class StoragePoolNotConnected(StorageException):
    code = 313
    message = "Storage pool not connected"


class StoragePoolAlreadyExists(StorageException):
    code = 316
    message = "Error creating a storage pool - pool already exists"


class IsoCannotBeMasterDomain(StorageException):
    code = 317
    message = "ISO domain cannot be a master storage domain"


class BackupCannotBeMasterDomain(StorageException):
    code = 319
    message = "Backup domain cannot be a master storage domain"


class CannotConnectMultiplePools(StorageException):
    code = 323
    message = "Cannot connect pool, already connected to another pool"


class StoragePoolWrongMaster(StorageException):
    code = 324
    message = "Wrong Master domain or its version"


class StoragePoolConnected(StorageException):
    code = 325
    message = "Cannot perform action while storage pool is connected"


class StoragePoolDescriptionTooLongError(StorageException):
    code = 327
    message = "Storage pool description is too long"


class GetFileListError(StorageException):
    code = 330
    message = "Cannot get file list"


# --- domains in pools (VDSM's 353-397) -----------------------------------------------------


class StorageDomainNotInPool(StorageException):
    code = 353
    message = "Storage domain not in pool"


class StorageDomainAttachError(StorageException):
    code = 354
    message = "Error attaching storage domain"


class StorageDomainMasterError(StorageException):
    code = 355
    message = "Error validating master storage domain"


class StorageDomainDetachError(StorageException):
    code = 356
    message = "Error detaching storage domain"


class StorageDomainDeactivateError(StorageException):
    code = 357
    message = "Error deactivating storage domain"


class StorageDomainActivateError(StorageException):
    code = 359
    message = "Error activating storage domain"


class StorageDomainNotActive(StorageException):
    code = 369
    message = "Storage domain not active"


class StorageDomainNotMemberOfPool(StorageException):
    code = 375
    message = "Domain is not member in pool"


class StorageDomainStatusError(StorageException):
    code = 376
    message = "Error in storage domain status"


class StorageDomainAlreadyAttached(StorageException):
    code = 380
    message = "Storage domain already attached to pool"


class StorageDomainStateTransitionIllegal(StorageException):
    code = 381
    message = "Domain state change illegal"


class StorageDomainActive(StorageException):
    code = 382
    message = "Illegal action, domain active"


class CannotDetachMasterStorageDomain(StorageException):
    code = 383
    message = "Illegal action, cannot detach master domain"


class NoSpaceLeftOnDomain(StorageException):
    code = 397
    message = "No space left on domain"


# --- storage tasks (VDSM's 401-411) -------------------------------------------------------


class UnknownTask(StorageException):
    code = 401
    message = "Task id unknown"


class TaskNotFinished(StorageException):
    code = 403
    message = "Task not finished"


class TaskMetaDataSaveError(StorageException):
    code = 407
    message = "Can't save Task Metadata"


class TaskMetaDataLoadError(StorageException):
    code = 408
    message = "Can't load Task Metadata"


class TaskStateError(StorageException):
    code = 410
    message = "Operation is not allowed in this task state"


class TaskAborted(StorageException):
    code = 411
    message = "Task is aborted"


# --- SDM jobs (VDSM's 911-912) ------------------------------------------------------------


class GenerationMismatch(StorageException):
    code = 911
    message = "Generation mismatch"


class JobStatusMismatch(StorageException):
    code = 912
    message = "Job status mismatch"
