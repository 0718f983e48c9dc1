"""Hook point names: VDSM's directory names, each with exactly one kind of data."""

from __future__ import annotations

import re

from virthost import hooks
from virthost.hooks import points


def test_every_point_has_exactly_one_kind() -> None:
    kinds = (points.DOMXML_POINTS, points.JSON_POINTS, points.PLAIN_POINTS)
    assert sum(len(kind) for kind in kinds) == len(points.ALL_POINTS)
    assert points.DOMXML_POINTS.isdisjoint(points.JSON_POINTS | points.PLAIN_POINTS)
    assert points.JSON_POINTS.isdisjoint(points.PLAIN_POINTS)


def test_names_are_vdsm_directory_names() -> None:
    for name in points.ALL_POINTS:
        assert re.fullmatch(r"(before|after)_[a-z_]+", name), name
    assert {
        "before_vm_start",
        "after_vm_destroy",
        "before_nic_hotunplug",
        "after_get_all_vm_stats",
        "before_virthost_start",
        "after_virthost_stop",
    } <= points.ALL_POINTS


def test_every_before_vm_point_has_an_after_point() -> None:
    for name in points.DOMXML_POINTS | points.JSON_POINTS:
        if name.startswith("before_"):
            assert "after_" + name.removeprefix("before_") in points.ALL_POINTS


def test_constants_are_re_exported_from_the_package() -> None:
    constants = {n for n in vars(points) if n.isupper() and not n.endswith("POINTS")}
    assert {getattr(points, n) for n in constants} == set(points.ALL_POINTS)
    for name in constants:
        assert getattr(hooks, name) == getattr(points, name)
