"""The hook points: where in the daemon's work site scripts may run.

A hook point is the name of a directory under the hooks directory, so these names are a contract
with administrators (and with scripts written for VDSM): they are VDSM's directory names, except
that VDSM's daemon start/stop points are named after us (``before_virthost_start``,
``after_virthost_stop``).

Points differ in what they hand the scripts, and the runner refuses a point used the wrong way:

* :data:`DOMXML_POINTS` pass the domain (or device) XML in a file named by ``_hook_domxml``;
* :data:`JSON_POINTS` pass JSON (the stats) in a file named by ``_hook_json``;
* :data:`PLAIN_POINTS` pass no data, only the environment.
"""

from __future__ import annotations

from typing import Final

BEFORE_VM_START: Final = "before_vm_start"
AFTER_VM_START: Final = "after_vm_start"
BEFORE_VM_DESTROY: Final = "before_vm_destroy"
AFTER_VM_DESTROY: Final = "after_vm_destroy"
BEFORE_VM_PAUSE: Final = "before_vm_pause"
AFTER_VM_PAUSE: Final = "after_vm_pause"
BEFORE_VM_CONT: Final = "before_vm_cont"
AFTER_VM_CONT: Final = "after_vm_cont"
BEFORE_VM_HIBERNATE: Final = "before_vm_hibernate"
AFTER_VM_HIBERNATE: Final = "after_vm_hibernate"
BEFORE_VM_DEHIBERNATE: Final = "before_vm_dehibernate"
AFTER_VM_DEHIBERNATE: Final = "after_vm_dehibernate"
BEFORE_VM_SET_TICKET: Final = "before_vm_set_ticket"
AFTER_VM_SET_TICKET: Final = "after_vm_set_ticket"
BEFORE_DISK_HOTPLUG: Final = "before_disk_hotplug"
AFTER_DISK_HOTPLUG: Final = "after_disk_hotplug"
BEFORE_DISK_HOTUNPLUG: Final = "before_disk_hotunplug"
AFTER_DISK_HOTUNPLUG: Final = "after_disk_hotunplug"
BEFORE_NIC_HOTPLUG: Final = "before_nic_hotplug"
AFTER_NIC_HOTPLUG: Final = "after_nic_hotplug"
BEFORE_NIC_HOTUNPLUG: Final = "before_nic_hotunplug"
AFTER_NIC_HOTUNPLUG: Final = "after_nic_hotunplug"
BEFORE_GET_VM_STATS: Final = "before_get_vm_stats"
AFTER_GET_VM_STATS: Final = "after_get_vm_stats"
BEFORE_GET_ALL_VM_STATS: Final = "before_get_all_vm_stats"
AFTER_GET_ALL_VM_STATS: Final = "after_get_all_vm_stats"
BEFORE_NETWORK_SETUP: Final = "before_network_setup"
AFTER_NETWORK_SETUP: Final = "after_network_setup"
AFTER_NETWORK_SETUP_FAIL: Final = "after_network_setup_fail"
BEFORE_VIRTHOST_START: Final = "before_virthost_start"
AFTER_VIRTHOST_STOP: Final = "after_virthost_stop"

DOMXML_POINTS: Final = frozenset(
    {
        BEFORE_VM_START,
        AFTER_VM_START,
        BEFORE_VM_DESTROY,
        AFTER_VM_DESTROY,
        BEFORE_VM_PAUSE,
        AFTER_VM_PAUSE,
        BEFORE_VM_CONT,
        AFTER_VM_CONT,
        BEFORE_VM_HIBERNATE,
        AFTER_VM_HIBERNATE,
        BEFORE_VM_DEHIBERNATE,
        AFTER_VM_DEHIBERNATE,
        BEFORE_VM_SET_TICKET,
        AFTER_VM_SET_TICKET,
        BEFORE_DISK_HOTPLUG,
        AFTER_DISK_HOTPLUG,
        BEFORE_DISK_HOTUNPLUG,
        AFTER_DISK_HOTUNPLUG,
        BEFORE_NIC_HOTPLUG,
        AFTER_NIC_HOTPLUG,
        BEFORE_NIC_HOTUNPLUG,
        AFTER_NIC_HOTUNPLUG,
    }
)
"""Points whose scripts get the domain or device XML (``_hook_domxml``)."""

JSON_POINTS: Final = frozenset(
    {
        BEFORE_GET_VM_STATS,
        AFTER_GET_VM_STATS,
        BEFORE_GET_ALL_VM_STATS,
        AFTER_GET_ALL_VM_STATS,
        BEFORE_NETWORK_SETUP,
        AFTER_NETWORK_SETUP,
        AFTER_NETWORK_SETUP_FAIL,
    }
)
"""Points whose scripts get JSON (``_hook_json``) and may rewrite it."""

PLAIN_POINTS: Final = frozenset({BEFORE_VIRTHOST_START, AFTER_VIRTHOST_STOP})
"""Points whose scripts get no data, only the environment."""

ALL_POINTS: Final = DOMXML_POINTS | JSON_POINTS | PLAIN_POINTS
"""Every valid hook point, i.e. every directory name the runner looks into."""
