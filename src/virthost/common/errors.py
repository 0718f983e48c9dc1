"""The error hierarchy of virthost: every error that reaches the wire carries VDSM's code.

::

    VirtHostError (code 100, "General Exception")
     +-- JsonRpcError                     protocol level, negative codes
     |    +-- ParseError          -32700
     |    +-- InvalidRequest      -32600
     |    +-- MethodNotFound      -32601
     |    +-- InvalidParams       -32602  (names the parameter)
     |    +-- InternalError       -32603
     +-- NoSuchVM 1, AccessTimeout 3, VMExists 4, VMIsDown 6, CannotCreateVM 9,
     |   MissingParameter 11, ImageFileNotFound 13, UnexpectedError 16,
     |   ResourceUnavailable 40, MethodNotImplemented 44, CannotRetrieveHWInfo 57,
     |   UnsupportedOperation 75, HookFailed 78, InvalidParameter 91,
     |   RecoveryInProgress 99, InvalidConfiguration 101, ActionStopped 443,
     |   ResourceTimeout 851, ResourceExhausted 1100, HookError 1500
     +-- device/guest operations: SpiceTicketError 18, NonResponsiveGuestAgent 19,
     |   ChangeDiskFailed 41, HotplugDiskFailed 45, HotunplugDiskFailed 46,
     |   HotplugNicFailed 49, HotunplugNicFailed 50, MigrationInProgress 51,
     |   BalloonError 53, FreezeGuestFSFailed 76, ThawGuestFSFailed 77
     +-- CommandError                     an external command failed (code 100)
     |    +-- CommandTimeout              it did not finish in time (code 3)
     +-- SupervisorError                  the privileged helper failed or is unreachable

Services raise these; the RPC layer turns them into ``{"code": ..., "message": ...}``.
Any other exception becomes :class:`UnexpectedError` on the wire, with the traceback only in
the log.
"""

from __future__ import annotations

from typing import Any, ClassVar


class VirtHostError(Exception):
    """Base class. ``code`` and ``message`` are VDSM's; ``detail`` says what happened."""

    code: ClassVar[int] = 100
    message: ClassVar[str] = "General Exception"

    def __init__(self, detail: str | None = None, **context: Any) -> None:
        self.detail = detail
        self.context = context
        super().__init__(self.wire_message)

    @property
    def wire_message(self) -> str:
        """The text sent to clients: VDSM's message, then the detail when there is one."""
        if self.detail:
            return f"{self.message}: {self.detail}"
        return self.message

    def to_wire(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.wire_message}


# --- JSON-RPC protocol errors ------------------------------------------------------------


class JsonRpcError(VirtHostError):
    code = -32603
    message = "Internal JSON-RPC error"


class ParseError(JsonRpcError):
    code = -32700
    message = "Parse error"


class InvalidRequest(JsonRpcError):
    code = -32600
    message = "Invalid request"


class MethodNotFound(JsonRpcError):
    code = -32601
    message = "The method does not exist or is not available"


class InvalidParams(JsonRpcError):
    """A parameter is missing, unknown or of the wrong type; ``param`` names it."""

    code = -32602
    message = "Invalid parameter"

    def __init__(self, param: str, problem: str) -> None:
        self.param = param
        super().__init__(f"{param!r}: {problem}", param=param)


class InternalError(JsonRpcError):
    code = -32603
    message = "Internal JSON-RPC error"


# --- VDSM general and virt errors --------------------------------------------------------


class NoSuchVM(VirtHostError):
    code = 1
    message = "Virtual machine does not exist"


class AccessTimeout(VirtHostError):
    code = 3
    message = "Image repository access timeout"


class VMExists(VirtHostError):
    code = 4
    message = "Virtual machine already exists"


class VMIsDown(VirtHostError):
    code = 6
    message = "Virtual machine is down"


class CannotCreateVM(VirtHostError):
    code = 9
    message = "Error creating the requested VM"


class MissingParameter(VirtHostError):
    code = 11
    message = "Missing required parameter"


class ImageFileNotFound(VirtHostError):
    code = 13
    message = "Drive image file could not be found"


class UnexpectedError(VirtHostError):
    code = 16
    message = "Unexpected exception"


class ResourceUnavailable(VirtHostError):
    code = 40
    message = "Resource unavailable"


class MethodNotImplemented(VirtHostError):
    code = 44
    message = "Method not implemented"


class CannotRetrieveHWInfo(VirtHostError):
    code = 57
    message = "Cannot retrieve host hardware information"


class UnsupportedOperation(VirtHostError):
    code = 75
    message = "Operation not supported"


class HookFailed(VirtHostError):
    code = 78
    message = "Hook failed"


class InvalidParameter(VirtHostError):
    code = 91
    message = "Invalid parameter"


class RecoveryInProgress(VirtHostError):
    code = 99
    message = "Recovering from crash or Initializing"


class InvalidConfiguration(VirtHostError):
    code = 101
    message = "Invalid configuration"


class ActionStopped(VirtHostError):
    code = 443
    message = "Action was stopped"


class ResourceTimeout(VirtHostError):
    code = 851
    message = "Resource timeout"


class ResourceExhausted(VirtHostError):
    code = 1100
    message = "Not enough resources"


class HookError(VirtHostError):
    code = 1500
    message = "Hook error"


# --- infrastructure ----------------------------------------------------------------------


class CommandError(VirtHostError):
    """An external command exited non-zero (or could not be started)."""

    code = 100
    message = "Command failed"


class CommandTimeout(CommandError):
    """An external command did not finish within its time box and was killed."""

    code = 3
    message = "Command timed out"


class SupervisorError(VirtHostError):
    """The privileged helper refused, failed or could not be reached."""

    code = 100
    message = "Privileged operation failed"


def to_wire(exc: BaseException) -> dict[str, Any]:
    """The JSON-RPC error object for any exception (never leaks a traceback)."""
    if isinstance(exc, VirtHostError):
        return exc.to_wire()
    return UnexpectedError().to_wire()


# --- device and guest operations (VM.changeCD, hot(un)plug, balloon, freeze, ticket) -----


class SpiceTicketError(VirtHostError):
    code = 18
    message = "Error while setting spice ticket"


class NonResponsiveGuestAgent(VirtHostError):
    code = 19
    message = "Guest agent non-responsive"


class ChangeDiskFailed(VirtHostError):
    code = 41
    message = "Failed to change disk image"


class HotplugDiskFailed(VirtHostError):
    code = 45
    message = "Failed to hotplug disk"


class HotunplugDiskFailed(VirtHostError):
    code = 46
    message = "Failed to hotunplug disk"


class HotplugNicFailed(VirtHostError):
    code = 49
    message = "Failed to hotplug NIC"


class HotunplugNicFailed(VirtHostError):
    code = 50
    message = "Failed to hotunplug NIC"


class MigrationInProgress(VirtHostError):
    code = 51
    message = "Command not supported during migration"


class BalloonError(VirtHostError):
    code = 53
    message = "Balloon operation is not available"


class FreezeGuestFSFailed(VirtHostError):
    code = 76
    message = "Unable to freeze guest filesystems"


class ThawGuestFSFailed(VirtHostError):
    code = 77
    message = "Unable to thaw guest filesystems"


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
