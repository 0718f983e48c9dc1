from __future__ import annotations

import uuid as stdlib_uuid
from pathlib import Path

import pytest

from virthost.common import errors, validate

GOOD_UUID = "5f0c5c8e-1a2b-4c3d-8e9f-0123456789ab"


def test_uuid_returns_canonical_lowercase() -> None:
    assert validate.uuid(GOOD_UUID, "vmID") == GOOD_UUID
    assert validate.uuid(GOOD_UUID.upper(), "vmID") == GOOD_UUID
    assert validate.uuid(stdlib_uuid.UUID(GOOD_UUID), "vmID") == GOOD_UUID


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not-a-uuid",
        GOOD_UUID.replace("-", ""),
        "{" + GOOD_UUID + "}",
        "urn:uuid:" + GOOD_UUID,
        GOOD_UUID + "\n",
        GOOD_UUID[:-1] + "g",
        "../" + GOOD_UUID,
        None,
        42,
    ],
)
def test_uuid_rejects_other_forms(value: object) -> None:
    with pytest.raises(errors.InvalidParameter) as info:
        validate.uuid(value, "vmID")
    assert info.value.code == 91
    assert "vmID" in info.value.wire_message
    assert info.value.context["param"] == "vmID"


@pytest.mark.parametrize("value", ["vm1", "ovirtmgmt", "my_disk.qcow2", "a-b", "_x", "9"])
def test_safe_name_accepts(value: str) -> None:
    assert validate.safe_name(value, "name") == value


@pytest.mark.parametrize(
    "value",
    ["", ".hidden", "-rf", "a/b", "a b", "a;b", "..", "é", "a\nb", "a\0b", None, b"bytes"],
)
def test_safe_name_rejects(value: object) -> None:
    with pytest.raises(errors.InvalidParameter) as info:
        validate.safe_name(value, "netName")
    assert "netName" in info.value.wire_message


def test_safe_name_length_limit() -> None:
    assert validate.safe_name("a" * 15, "bridge", max_len=15) == "a" * 15
    with pytest.raises(errors.InvalidParameter):
        validate.safe_name("a" * 16, "bridge", max_len=15)


@pytest.mark.parametrize("value", ["disk one.img", "-leading", ".dot", "naïve", "a" * 255])
def test_safe_path_component_accepts(value: str) -> None:
    assert validate.safe_path_component(value, "fileName") == value


@pytest.mark.parametrize(
    "value", ["", ".", "..", "a/b", "/abs", "a\0b", "a\nb", "\x7f", "é" * 128, "\udcff", 5]
)
def test_safe_path_component_rejects(value: object) -> None:
    with pytest.raises(errors.InvalidParameter) as info:
        validate.safe_path_component(value, "fileName")
    assert "fileName" in info.value.wire_message


def test_path_under_joins(tmp_path: Path) -> None:
    assert validate.path_under(tmp_path, "images", "img-1") == tmp_path / "images" / "img-1"
    assert validate.path_under(tmp_path, "images/img-1") == tmp_path / "images" / "img-1"
    assert validate.path_under(tmp_path) == tmp_path


@pytest.mark.parametrize(
    "parts", [("..",), ("a", "../../etc"), ("a/../b",), ("/etc/passwd",), ("",), ("a\0",)]
)
def test_path_under_refuses_escapes(tmp_path: Path, parts: tuple[str, ...]) -> None:
    with pytest.raises(errors.InvalidParameter):
        validate.path_under(tmp_path / "base", *parts)


def test_path_under_refuses_symlink_out_of_base(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (tmp_path / "outside").mkdir()
    (base / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(errors.InvalidParameter):
        validate.path_under(base, "link", "file")


def test_path_under_allows_symlink_within_base(tmp_path: Path) -> None:
    base = tmp_path / "base"
    (base / "real").mkdir(parents=True)
    (base / "link").symlink_to(base / "real")
    assert validate.path_under(base, "link", "file") == base / "link" / "file"


def test_path_under_works_when_base_is_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    base = tmp_path / "base"
    base.symlink_to(tmp_path / "real")
    assert validate.path_under(base, "x") == base / "x"
