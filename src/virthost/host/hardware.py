"""Host hardware identity for ``Host.getHardwareInfo`` (SMBIOS "System Information").

The engine shows the manufacturer, product, serial number and UUID of each host, and uses the
family/product to pick fencing defaults. ``dmidecode -t system`` is the source VDSM uses; it
needs root (it reads /sys/firmware/dmi/tables or /dev/mem), so this runs inside the privileged
supervisor. Where dmidecode is missing or fails, the kernel's /sys/class/dmi/id attributes give
the same fields (the serial and UUID files are root-readable only). Machines without SMBIOS at
all (some VMs, many ARM boards) produce an empty dict; whether that is an error
(``CannotRetrieveHWInfo``) is the caller's decision.
"""

from __future__ import annotations

import logging

from virthost.common import errors
from virthost.common.commands import Runner
from virthost.host import hostfs

log = logging.getLogger("virthost.host.hardware")

DEFAULT_TIMEOUT = 10.0

_DMIDECODE_KEYS = {
    "Manufacturer": "systemManufacturer",
    "Product Name": "systemProductName",
    "Version": "systemVersion",
    "Serial Number": "systemSerialNumber",
    "UUID": "systemUUID",
    "Family": "systemFamily",
}
_SYSFS_FILES = {
    "sys_vendor": "systemManufacturer",
    "product_name": "systemProductName",
    "product_version": "systemVersion",
    "product_serial": "systemSerialNumber",
    "product_uuid": "systemUUID",
    "product_family": "systemFamily",
}


def parse_dmidecode(text: str) -> dict[str, str]:
    """The ``System Information`` record of ``dmidecode -t system`` in VDSM's key names.

    Records are separated by blank lines; a record starts with a ``Handle ...`` line and its
    title, then one ``<TAB>Key: Value`` line per field (list values continue on lines indented
    by two tabs, which are ignored here).
    """
    info: dict[str, str] = {}
    in_system = False
    for line in text.splitlines():
        if not line.strip():
            if in_system and info:
                break
            in_system = False
            continue
        if not line.startswith("\t"):
            in_system = line.strip() == "System Information"
            continue
        if not in_system or line.startswith("\t\t"):
            continue
        key, sep, value = line.strip().partition(":")
        if sep and key in _DMIDECODE_KEYS:
            info[_DMIDECODE_KEYS[key]] = value.strip()
    return info


def read_sysfs_dmi(root: str = "/") -> dict[str, str]:
    """The same fields from /sys/class/dmi/id (absent files are left out)."""
    info: dict[str, str] = {}
    for filename, key in _SYSFS_FILES.items():
        value = hostfs.read_line(root, f"/sys/class/dmi/id/{filename}")
        if value is not None:
            info[key] = value
    return info


def read_hardware_info(
    runner: Runner, root: str = "/", timeout: float = DEFAULT_TIMEOUT
) -> dict[str, str]:
    """Hardware identity from dmidecode, else from sysfs, else ``{}``."""
    try:
        result = runner.run(["dmidecode", "-t", "system"], timeout, check=False)
    except errors.CommandError as exc:
        log.info("dmidecode unavailable (%s), using /sys/class/dmi/id", exc)
    else:
        if result.rc == 0:
            info = parse_dmidecode(result.out.decode("utf-8", "replace"))
            if info:
                return info
        log.info("dmidecode found no system information (rc=%d), using sysfs", result.rc)
    return read_sysfs_dmi(root)
