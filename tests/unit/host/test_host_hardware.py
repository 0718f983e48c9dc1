"""Host.getHardwareInfo from dmidecode, with the sysfs fallback."""

from __future__ import annotations

from pathlib import Path

from unit.host.host_fakes import FakeRunner, make_tree, result
from virthost.common import errors
from virthost.host import hardware

# Written for these tests in the layout dmidecode 3.x prints for `-t system`.
DMIDECODE_SYSTEM = """\
# dmidecode 3.5
Getting SMBIOS data from sysfs.
SMBIOS 3.3.0 present.

Handle 0x0001, DMI type 1, 27 bytes
System Information
\tManufacturer: Acme Servers Inc.
\tProduct Name: RackLine 2200 G3
\tVersion: Rev. B
\tSerial Number: ACM2200X0042
\tUUID: 7c1e2a90-5d3b-11ee-8c99-0242ac120002
\tWake-up Type: Power Switch
\tSKU Number: RL2200-G3-STD
\tFamily: RackLine

Handle 0x0018, DMI type 12, 5 bytes
System Configuration Options
\tOption 1: To Be Filled By O.E.M.

Handle 0x0020, DMI type 32, 20 bytes
System Boot Information
\tStatus: No errors detected

Handle 0x0043, DMI type 15, 73 bytes
System Event Log
\tArea Length: 4 bytes
\tAccess Method: Memory-mapped physical 32-bit address
\tSupported Log Type Descriptors: 3
\tDescriptor 1: Single-bit ECC memory error
\tData Format 1: Multiple-event handle
"""

EXPECTED = {
    "systemManufacturer": "Acme Servers Inc.",
    "systemProductName": "RackLine 2200 G3",
    "systemVersion": "Rev. B",
    "systemSerialNumber": "ACM2200X0042",
    "systemUUID": "7c1e2a90-5d3b-11ee-8c99-0242ac120002",
    "systemFamily": "RackLine",
}

SYSFS = {
    "/sys/class/dmi/id/sys_vendor": "QEMU\n",
    "/sys/class/dmi/id/product_name": "Standard PC (Q35 + ICH9, 2009)\n",
    "/sys/class/dmi/id/product_version": "pc-q35-7.2\n",
    "/sys/class/dmi/id/product_uuid": "3a6e1f00-0000-4000-8000-000000000001\n",
}


def test_parse_dmidecode_system_record() -> None:
    assert hardware.parse_dmidecode(DMIDECODE_SYSTEM) == EXPECTED


def test_parse_ignores_other_records_and_list_lines() -> None:
    text = (
        "Handle 0x0000, DMI type 0, 26 bytes\nBIOS Information\n\tVersion: 2.1\n"
        "\tCharacteristics:\n\t\tPCI is supported\n\n" + DMIDECODE_SYSTEM
    )
    assert hardware.parse_dmidecode(text)["systemVersion"] == "Rev. B"
    assert (
        hardware.parse_dmidecode("# dmidecode 3.4\n# No SMBIOS nor DMI entry point found.\n") == {}
    )


def test_read_uses_dmidecode_time_boxed(tmp_path: Path) -> None:
    runner = FakeRunner({("dmidecode",): result(("dmidecode",), DMIDECODE_SYSTEM)})
    assert hardware.read_hardware_info(runner, str(tmp_path), timeout=4.0) == EXPECTED
    assert runner.calls == [(("dmidecode", "-t", "system"), 4.0, False)]


def test_fallback_to_sysfs_when_dmidecode_fails(tmp_path: Path) -> None:
    root = make_tree(tmp_path, SYSFS)
    runner = FakeRunner({("dmidecode",): result(("dmidecode",), "# dmidecode 3.4\n", rc=1)})
    info = hardware.read_hardware_info(runner, root)
    assert info == {
        "systemManufacturer": "QEMU",
        "systemProductName": "Standard PC (Q35 + ICH9, 2009)",
        "systemVersion": "pc-q35-7.2",
        "systemUUID": "3a6e1f00-0000-4000-8000-000000000001",
    }


def test_fallback_when_dmidecode_is_missing_or_hangs(tmp_path: Path) -> None:
    root = make_tree(tmp_path, SYSFS)
    assert hardware.read_hardware_info(FakeRunner(), root)["systemManufacturer"] == "QEMU"
    hung = FakeRunner({("dmidecode",): errors.CommandTimeout("dmidecode")})
    assert hardware.read_hardware_info(hung, root)["systemManufacturer"] == "QEMU"


def test_nothing_anywhere_is_empty(tmp_path: Path) -> None:
    runner = FakeRunner({("dmidecode",): result(("dmidecode",), "", rc=1)})
    assert hardware.read_hardware_info(runner, str(tmp_path)) == {}
