"""Hook scripts run around VM and daemon operations, VDSM-compatible.

The package's face: :class:`HookRunner` runs the executables installed for a hook point, and
the hook point names (the directory names administrators install scripts into) are constants
here and in :mod:`virthost.hooks.points`. The module docstring of
:mod:`virthost.hooks.runner` explains the contract scripts rely on.
"""

from __future__ import annotations

from virthost.hooks import points
from virthost.hooks.points import (
    AFTER_DISK_HOTPLUG,
    AFTER_DISK_HOTUNPLUG,
    AFTER_GET_ALL_VM_STATS,
    AFTER_GET_VM_STATS,
    AFTER_NIC_HOTPLUG,
    AFTER_NIC_HOTUNPLUG,
    AFTER_VIRTHOST_STOP,
    AFTER_VM_CONT,
    AFTER_VM_DEHIBERNATE,
    AFTER_VM_DESTROY,
    AFTER_VM_HIBERNATE,
    AFTER_VM_PAUSE,
    AFTER_VM_SET_TICKET,
    AFTER_VM_START,
    ALL_POINTS,
    BEFORE_DISK_HOTPLUG,
    BEFORE_DISK_HOTUNPLUG,
    BEFORE_GET_ALL_VM_STATS,
    BEFORE_GET_VM_STATS,
    BEFORE_NIC_HOTPLUG,
    BEFORE_NIC_HOTUNPLUG,
    BEFORE_VIRTHOST_START,
    BEFORE_VM_CONT,
    BEFORE_VM_DEHIBERNATE,
    BEFORE_VM_DESTROY,
    BEFORE_VM_HIBERNATE,
    BEFORE_VM_PAUSE,
    BEFORE_VM_SET_TICKET,
    BEFORE_VM_START,
    DOMXML_POINTS,
    JSON_POINTS,
    PLAIN_POINTS,
)
from virthost.hooks.runner import DOMXML_VAR, JSON_VAR, VM_ID_VAR, HookRunner

__all__ = [
    "AFTER_DISK_HOTPLUG",
    "AFTER_DISK_HOTUNPLUG",
    "AFTER_GET_ALL_VM_STATS",
    "AFTER_GET_VM_STATS",
    "AFTER_NIC_HOTPLUG",
    "AFTER_NIC_HOTUNPLUG",
    "AFTER_VIRTHOST_STOP",
    "AFTER_VM_CONT",
    "AFTER_VM_DEHIBERNATE",
    "AFTER_VM_DESTROY",
    "AFTER_VM_HIBERNATE",
    "AFTER_VM_PAUSE",
    "AFTER_VM_SET_TICKET",
    "AFTER_VM_START",
    "ALL_POINTS",
    "BEFORE_DISK_HOTPLUG",
    "BEFORE_DISK_HOTUNPLUG",
    "BEFORE_GET_ALL_VM_STATS",
    "BEFORE_GET_VM_STATS",
    "BEFORE_NIC_HOTPLUG",
    "BEFORE_NIC_HOTUNPLUG",
    "BEFORE_VIRTHOST_START",
    "BEFORE_VM_CONT",
    "BEFORE_VM_DEHIBERNATE",
    "BEFORE_VM_DESTROY",
    "BEFORE_VM_HIBERNATE",
    "BEFORE_VM_PAUSE",
    "BEFORE_VM_SET_TICKET",
    "BEFORE_VM_START",
    "DOMXML_POINTS",
    "DOMXML_VAR",
    "JSON_POINTS",
    "JSON_VAR",
    "PLAIN_POINTS",
    "VM_ID_VAR",
    "HookRunner",
    "points",
]
