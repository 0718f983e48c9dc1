"""VDSM's VM statuses and exit reasons, exactly as the engine reads them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final

WAIT_FOR_LAUNCH: Final = "WaitForLaunch"
POWERING_UP: Final = "Powering up"
UP: Final = "Up"
PAUSED: Final = "Paused"
POWERING_DOWN: Final = "Powering down"
REBOOT_IN_PROGRESS: Final = "RebootInProgress"
MIGRATION_SOURCE: Final = "Migration Source"
MIGRATION_DESTINATION: Final = "Migration Destination"
SAVING_STATE: Final = "Saving State"
RESTORING_STATE: Final = "Restoring state"
DOWN: Final = "Down"

ALL: Final = frozenset(
    {
        WAIT_FOR_LAUNCH,
        POWERING_UP,
        UP,
        PAUSED,
        POWERING_DOWN,
        REBOOT_IN_PROGRESS,
        MIGRATION_SOURCE,
        MIGRATION_DESTINATION,
        SAVING_STATE,
        RESTORING_STATE,
        DOWN,
    }
)

# a VM in one of these has a running QEMU process
RUNNING: Final = frozenset(ALL - {WAIT_FOR_LAUNCH, DOWN})


class ExitCode(IntEnum):
    NORMAL = 0
    ERROR = 1


class ExitReason(IntEnum):
    SUCCESS = 0
    GENERIC_ERROR = 1
    LOST_QEMU_CONNECTION = 2
    LIBVIRT_START_FAILED = 3
    MIGRATION_SUCCEEDED = 4
    SAVE_STATE_SUCCEEDED = 5
    ADMIN_SHUTDOWN = 6
    USER_SHUTDOWN = 7
    MIGRATION_FAILED = 8
    LIBVIRT_DOMAIN_MISSING = 9
    DESTROYED_ON_STARTUP = 10
    HOST_SHUTDOWN = 11
    POSTCOPY_MIGRATION_FAILED = 12
    DESTROYED_ON_REBOOT = 13
    DESTROYED_ON_PAUSE_TIMEOUT = 14


EXIT_MESSAGES: Final[dict[ExitReason, str]] = {
    ExitReason.SUCCESS: "VM terminated successfully",
    ExitReason.GENERIC_ERROR: "VM terminated with error",
    ExitReason.LOST_QEMU_CONNECTION: "Lost connection with qemu process",
    ExitReason.LIBVIRT_START_FAILED: "Failed to start the VM",
    ExitReason.MIGRATION_SUCCEEDED: "Migration succeeded",
    ExitReason.SAVE_STATE_SUCCEEDED: "SaveState succeeded",
    ExitReason.ADMIN_SHUTDOWN: "Admin shut down from the engine",
    ExitReason.USER_SHUTDOWN: "User shut down from within the guest",
    ExitReason.MIGRATION_FAILED: "VM failed to migrate",
    ExitReason.LIBVIRT_DOMAIN_MISSING: "Failed to find the libvirt domain",
    ExitReason.DESTROYED_ON_STARTUP: "VM destroyed during the startup",
    ExitReason.HOST_SHUTDOWN: "VM has been terminated on the host",
    ExitReason.POSTCOPY_MIGRATION_FAILED: "Migration failed in post-copy",
    ExitReason.DESTROYED_ON_REBOOT: "VM destroyed on reboot",
    ExitReason.DESTROYED_ON_PAUSE_TIMEOUT: "VM destroyed after being paused for too long",
}


@dataclass(frozen=True)
class ExitInfo:
    """Why a VM is Down: what getStats and the status event report."""

    code: ExitCode
    reason: ExitReason
    message: str

    @classmethod
    def of(cls, reason: ExitReason, message: str | None = None) -> ExitInfo:
        normal = reason in (
            ExitReason.SUCCESS,
            ExitReason.MIGRATION_SUCCEEDED,
            ExitReason.SAVE_STATE_SUCCEEDED,
            ExitReason.ADMIN_SHUTDOWN,
            ExitReason.USER_SHUTDOWN,
        )
        return cls(
            ExitCode.NORMAL if normal else ExitCode.ERROR,
            reason,
            message or EXIT_MESSAGES[reason],
        )

    def to_wire(self) -> dict[str, object]:
        return {
            "exitCode": int(self.code),
            "exitReason": int(self.reason),
            "exitMessage": self.message,
        }
