"""VDSM's mount directory names for storage connections."""

from __future__ import annotations

from pathlib import Path

from virthost.storage.connections import GLUSTERFS, LOCALFS, StorageConnections, transform_path


def test_transform_path_doubles_underscores_first() -> None:
    assert transform_path("server:/exports/data") == "server:_exports_data"
    assert transform_path("/tmp/a_b") == "_tmp_a__b"


def test_mount_points() -> None:
    conns = StorageConnections(Path("/rhev/data-center/mnt"), supervisor=None)  # type: ignore[arg-type]
    assert conns.mount_point(LOCALFS, "/data/sd_1") == Path("/rhev/data-center/mnt/_data_sd__1")
    assert conns.mount_point(GLUSTERFS, "gl:/vol") == Path(
        "/rhev/data-center/mnt/glusterSD/gl:_vol"
    )
