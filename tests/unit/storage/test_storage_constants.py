"""Storage enums accept VDSM's codes and names alike, and answer bad values with VDSM's errors."""

from __future__ import annotations

import pytest

from virthost.common import errors
from virthost.storage import constants as sc
from virthost.storage import errors as storage_errors


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, sc.VolumeFormat.RAW),
        ("5", sc.VolumeFormat.RAW),
        ("RAW", sc.VolumeFormat.RAW),
        ("raw", sc.VolumeFormat.RAW),
        (4, sc.VolumeFormat.COW),
        ("COW", sc.VolumeFormat.COW),
        (3, sc.VolumeFormat.UNKNOWN),
    ],
)
def test_volume_format_from_code_or_name(value: object, expected: sc.VolumeFormat) -> None:
    assert sc.VolumeFormat.from_value(value) is expected


def test_vdsm_numeric_codes() -> None:
    assert (sc.VolumeType.PREALLOCATED, sc.VolumeType.SPARSE) == (1, 2)
    assert (sc.VolumeRole.SHARED, sc.VolumeRole.INTERNAL, sc.VolumeRole.LEAF) == (6, 7, 8)
    assert (sc.DomainClass.DATA, sc.DomainClass.ISO, sc.DomainClass.BACKUP) == (1, 2, 3)
    assert sc.StorageType.NFS == 1 and sc.StorageType.FCP == 2 and sc.StorageType.ISCSI == 3
    assert sc.StorageType.LOCALFS == 4 and sc.StorageType.CIFS == 5
    assert sc.StorageType.POSIXFS == 6 and sc.StorageType.GLUSTERFS == 7
    assert sc.BLANK_UUID == "00000000-0000-0000-0000-000000000000"
    assert sc.METADATA_SIZE == 512 and sc.DESCRIPTION_SIZE == 210


@pytest.mark.parametrize(
    ("enum", "value", "error"),
    [
        (sc.VolumeFormat, "qcow2", storage_errors.IncorrectFormat),
        (sc.VolumeFormat, 7, storage_errors.IncorrectFormat),
        (sc.VolumeType, "THIN", storage_errors.IncorrectType),
        (sc.VolumeType, 9, storage_errors.IncorrectType),
        (sc.StorageType, "CEPH", storage_errors.StorageDomainTypeError),
        (sc.DomainClass, "Export", storage_errors.StorageDomainClassError),
        (sc.VolumeRole, "ROOT", storage_errors.InvalidParameterException),
        (sc.Legality, "MAYBE", storage_errors.InvalidParameterException),
        (sc.VolumeFormat, True, storage_errors.IncorrectFormat),
        (sc.VolumeFormat, None, storage_errors.IncorrectFormat),
        (sc.VolumeType, "--1", storage_errors.IncorrectType),
    ],
)
def test_bad_values_raise_vdsm_errors(
    enum: type[sc.VolumeFormat], value: object, error: type[errors.VirtHostError]
) -> None:
    with pytest.raises(error):
        enum.from_value(value)


def test_error_codes() -> None:
    assert storage_errors.IncorrectFormat.code == 202
    assert storage_errors.IncorrectType.code == 231
    assert storage_errors.StorageDomainTypeError.code == 372
    assert storage_errors.StorageDomainClassError.code == 386
    assert storage_errors.InvalidParameterException.code == 1000
    assert issubclass(storage_errors.MetaDataSealIsBroken, storage_errors.MetaDataGeneralError)


def test_storage_type_schema_name_and_families() -> None:
    assert sc.StorageType.from_value("SHAREDFS") is sc.StorageType.POSIXFS
    assert sc.StorageType.from_value("localfs") is sc.StorageType.LOCALFS
    assert sc.StorageType.ISCSI.is_block and not sc.StorageType.ISCSI.is_file
    assert sc.StorageType.GLUSTERFS.is_file and not sc.StorageType.GLUSTERFS.is_block
    assert not sc.StorageType.UNKNOWN.is_file and not sc.StorageType.UNKNOWN.is_block


def test_domain_class_metadata_name() -> None:
    assert [c.metadata_name for c in sc.DomainClass] == ["Data", "Iso", "Backup"]
    assert sc.DomainClass.from_value("Iso") is sc.DomainClass.ISO


def test_disk_types_include_legacy_numbers() -> None:
    assert sc.DiskType.from_value("DATA") is sc.DiskType.DATA
    assert sc.DiskType.from_value("2") is sc.DiskType.LEGACY_DATA
    assert sc.DiskType.from_value(1) is sc.DiskType.LEGACY_V2V_DATA
    assert sc.DiskType.from_value("ovfs") is sc.DiskType.OVFS


def test_domain_status_maps_deprecated_inactive() -> None:
    assert sc.DomainStatus.from_value("Inactive") is sc.DomainStatus.ATTACHED
    assert sc.DomainStatus.from_value("active") is sc.DomainStatus.ACTIVE


def test_qemu_format_names() -> None:
    assert sc.VolumeFormat.COW.qemu_format == "qcow2"
    assert sc.VolumeFormat.from_qemu("raw") is sc.VolumeFormat.RAW
    with pytest.raises(storage_errors.IncorrectFormat):
        sc.VolumeFormat.from_qemu("vmdk")
    with pytest.raises(storage_errors.IncorrectFormat):
        _ = sc.VolumeFormat.UNKNOWN.qemu_format


def test_max_hosts_by_sector_and_alignment() -> None:
    assert sc.max_hosts(512, sc.ALIGNMENT_1M) == 2000
    assert sc.max_hosts(4096, sc.ALIGNMENT_1M) == 250
    assert sc.max_hosts(4096, sc.ALIGNMENT_8M) == 2000
    with pytest.raises(storage_errors.InvalidParameterException):
        sc.max_hosts(512, sc.ALIGNMENT_2M)


def test_qcow2_compat_by_domain_version() -> None:
    assert sc.qcow2_compat(3) == "0.10"
    assert sc.qcow2_compat(4) == sc.qcow2_compat(5) == "1.1"
