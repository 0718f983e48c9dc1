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

VDSM's storage codes (volumes, images, domains, pools, SPM, cluster locks) extend this tree in
:mod:`virthost.storage.errors`.

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


class NoSuchJob(VirtHostError):
    code = 66
    message = "No such job"


class JobNotDone(VirtHostError):
    code = 68
    message = "Job not done"


class JobExists(VirtHostError):
    code = 69
    message = "Job exists"


class AbortNotSupported(VirtHostError):
    code = 80
    message = "Job does not support abort"


class JobNotActive(VirtHostError):
    code = 84
    message = "Job not active"


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


class SnapshotFailed(VirtHostError):
    code = 48
    message = "Snapshot failed"


class MergeFailed(VirtHostError):
    code = 52
    message = "Merge failed"


class BalloonError(VirtHostError):
    code = 53
    message = "Balloon operation is not available"


class FreezeGuestFSFailed(VirtHostError):
    code = 76
    message = "Unable to freeze guest filesystems"


class ThawGuestFSFailed(VirtHostError):
    code = 77
    message = "Unable to thaw guest filesystems"
