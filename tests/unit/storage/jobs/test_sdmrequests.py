"""Parsing SDM params into typed requests: canonical ids, and every bad value named."""

from __future__ import annotations

from typing import Any

import pytest

from virthost.common import errors
from virthost.storage.jobs import sdmrequests as req

SD = "11111111-2222-3333-4444-555555555555"
IMG = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
VOL = "99999999-8888-7777-6666-555555555555"
VOL_INFO = {"sd_id": SD.upper(), "img_id": IMG, "vol_id": VOL}


def refused(parse: Any, value: Any, where: str = "p") -> str:
    """The parameter the InvalidParameter raised by ``parse(value, where)`` names."""
    with pytest.raises(errors.InvalidParameter) as exc:
        parse(value, where)
    assert exc.value.code == 91
    return str(exc.value.context["param"])


def test_volume_endpoint_uuids_are_canonical_and_generation_optional() -> None:
    assert req.volume_endpoint(VOL_INFO, "vol_info") == req.VolumeEndpoint(SD, IMG, VOL, None)
    with_generation = req.volume_endpoint({**VOL_INFO, "generation": 0}, "vol_info")
    assert with_generation.generation == 0


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"vol_id": "x"}, "vol_info.vol_id"),
        ({"sd_id": None}, "vol_info.sd_id"),
        ({"generation": -1}, "vol_info.generation"),
        ({"generation": True}, "vol_info.generation"),
        ({"generation": "3"}, "vol_info.generation"),
    ],
)
def test_bad_volume_endpoints_name_the_field(change: dict[str, Any], param: str) -> None:
    assert refused(req.volume_endpoint, {**VOL_INFO, **change}, "vol_info") == param


def test_not_an_object_is_refused() -> None:
    assert refused(req.volume_endpoint, [SD, IMG, VOL], "vol_info") == "vol_info"


def test_copy_endpoints() -> None:
    div = req.copy_endpoint({"endpoint_type": "div", "prepared": True, **VOL_INFO}, "source")
    assert div == req.DivEndpoint(req.VolumeEndpoint(SD, IMG, VOL), prepared=True)
    external = req.copy_endpoint({"endpoint_type": "external", "url": "nbd:x"}, "d")
    assert external == req.ExternalEndpoint("nbd:x")
    assert refused(req.copy_endpoint, {"endpoint_type": "external"}, "d") == "d.url"
    assert refused(req.copy_endpoint, {"endpoint_type": "ftp"}, "d") == "d.endpoint_type"
    bad_prepared = {"endpoint_type": "div", "prepared": "yes", **VOL_INFO}
    assert refused(req.copy_endpoint, bad_prepared, "s") == "s.prepared"


def test_subchain_info() -> None:
    record = {"sd_id": SD, "img_id": IMG, "top_id": VOL, "base_id": IMG, "base_generation": 2}
    assert req.subchain_info(record, "s") == req.SubchainInfo(SD, IMG, VOL, IMG, 2)
    assert refused(req.subchain_info, {**record, "base_id": "../x"}, "s") == "s.base_id"


def test_qcow2_compat_levels() -> None:
    assert req.qcow2_compat({"compat": "0.10"}, "q") == "0.10"
    assert refused(req.qcow2_compat, {"compat": "2"}, "q") == "q.compat"
    assert refused(req.qcow2_compat, {}, "q") == "q.compat"


@pytest.mark.parametrize(("wire", "role"), [(6, "SHARED"), ("SHARED", "SHARED"), (8, "LEAF")])
def test_volume_roles_by_code_or_name(wire: Any, role: str) -> None:
    assert req.volume_attributes({"type": wire}, "a").role == role


def test_volume_attributes() -> None:
    attrs = req.volume_attributes({"description": "d", "generation": 4, "legality": "ILLEGAL"}, "a")
    assert attrs == req.VolumeAttributes(legality="ILLEGAL", description="d", generation=4)
    assert req.volume_attributes({}, "a") == req.VolumeAttributes()
    assert refused(req.volume_attributes, {"type": 9}, "a") == "a.type"
    assert refused(req.volume_attributes, {"type": True}, "a") == "a.type"
    assert refused(req.volume_attributes, {"legality": "legal"}, "a") == "a.legality"
    assert refused(req.volume_attributes, {"description": 5}, "a") == "a.description"


def test_bitmap_names_are_safe_for_a_command_line() -> None:
    assert req.bitmap_name("a1b2-c3.d_4", "bitmap") == "a1b2-c3.d_4"
    for bad in ("-o", "a b", "", "x" * 1024, "../b", 7):
        assert refused(req.bitmap_name, bad, "bitmap") == "bitmap"


def test_device_guids_are_safe_names() -> None:
    move = req.move_device({"sd_id": SD, "guid": "36001405a"}, "m")
    assert move == req.MoveDeviceRequest(SD, "36001405a", ())
    assert refused(req.move_device, {"sd_id": SD, "guid": "/dev/sda"}, "m") == "m.guid"
    bad_targets = {"sd_id": SD, "guid": "a", "dst_guids": ["b", "-c"]}
    assert refused(req.move_device, bad_targets, "m") == "m.dst_guids[1]"
    assert refused(req.move_device, {"sd_id": SD, "guid": "a", "dst_guids": "b"}, "m") == (
        "m.dst_guids"
    )
    assert refused(req.reduce_domain, {"sd_id": SD, "guid": ".."}, "r") == "r.guid"


def test_flags() -> None:
    assert req.flag(None, "f") is False
    assert req.flag(True, "f") is True
    assert refused(req.flag, 1, "f") == "f"
