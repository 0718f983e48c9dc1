"""Whole images on real file domains: copy and move between domains, deletion, and crashes at
every step of a creation followed by the recorded recoveries."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from virthost.common.commands import CommandResult, CommandRunner
from virthost.common.resources import ResourceManager
from virthost.storage import errors as se
from virthost.storage.filedomain import DomainHandle, FileDomains
from virthost.storage.images import ImageStore, SanlockVolumeLeases
from virthost.storage.volmetadata import VolumeMetadata

from .conftest import Lab

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


def new_id() -> str:
    return str(uuid.uuid4())


def qemu_io(path: Path, fmt: str, command: str) -> None:
    subprocess.run(["qemu-io", "-f", fmt, "-c", command, str(path)], check=True, timeout=60)


def identical(a: Path, b: Path) -> bool:
    return subprocess.run(["qemu-img", "compare", "-U", str(a), str(b)], timeout=60).returncode == 0


def chain_with_data(lab: Lab, sd: str) -> tuple[str, str, str]:
    img, base, top = new_id(), new_id(), new_id()
    lab.store.create_volume(sd, img, base, 4 * MiB, "RAW", "PREALLOCATED", "DATA", "", None, None)
    qemu_io(lab.image_dir(sd, img) / base, "raw", "write -P 0xab 0 1M")
    lab.store.create_volume(sd, img, top, None, "COW", "SPARSE", "DATA", "", img, base)
    qemu_io(lab.image_dir(sd, img) / top, "qcow2", "write -P 0xcd 512k 1M")
    return img, base, top


def test_copy_then_move_between_domains(lab: Lab) -> None:
    src, dst, third = lab.new_domain(), lab.new_domain(), lab.new_domain()
    img, base, top = chain_with_data(lab, src)
    reports: list[float] = []
    lab.store.copy_image(src, img, dst, move=False, progress=reports.append)
    source, copied = lab.image_dir(src, img), lab.image_dir(dst, img)
    assert identical(source / top, copied / top)
    assert identical(source / base, copied / base)
    assert reports and reports[-1] == pytest.approx(100.0)
    md = VolumeMetadata.parse((copied / f"{top}.meta").read_bytes())
    assert (md.domain, md.parent, md.legality.value, md.voltype.name) == (
        dst,
        base,
        "LEGAL",
        "LEAF",
    )
    assert lab.store.prepare_image(dst, img, top)["path"] == str(copied / top)
    assert (copied / f"{base}.lease").stat().st_size == MiB
    assert source.exists()
    with pytest.raises(se.MoveImageError):
        lab.store.copy_image(src, img, dst, move=False)

    lab.store.copy_image(dst, img, third, move=True)
    assert not copied.exists()
    assert identical(source / top, lab.image_dir(third, img) / top)
    with pytest.raises(se.InvalidParameterException):
        lab.store.copy_image(src, img, src, move=False)


class Crash(BaseException):
    """The daemon dying: not an Exception, so nothing inline catches it."""


class CrashingIO:
    """A domain's I/O that dies at the N-th change (file or command)."""

    MUTATING = ("write_file", "truncate", "unlink", "rename", "mkdir", "rmdir", "rmtree")

    def __init__(self, io: Any, budget: list[int]) -> None:
        self._io, self._budget = io, budget

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._io, name)
        if name not in self.MUTATING:
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            spend(self._budget)
            return attr(*args, **kwargs)

        return call


def spend(budget: list[int]) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise Crash()


class CrashingDomains:
    def __init__(self, domains: FileDomains, budget: list[int]) -> None:
        self._domains, self._budget = domains, budget

    def locate(self, sd: Any) -> DomainHandle:
        handle = self._domains.locate(sd)
        io: Any = CrashingIO(handle.io, self._budget)
        return DomainHandle(handle.directory, handle.metadata, io)


class CrashingRunner(CommandRunner):
    def __init__(self, budget: list[int]) -> None:
        super().__init__()
        self._budget = budget

    def run(self, argv: Any, timeout: float, **kwargs: Any) -> CommandResult:
        if "info" not in argv:
            spend(self._budget)
        return super().run(argv, timeout, **kwargs)


class CrashingLeases(SanlockVolumeLeases):
    def __init__(self, budget: list[int]) -> None:
        super().__init__()
        self._budget = budget

    def init_volume_lease(self, *args: Any) -> None:
        spend(self._budget)
        super().init_volume_lease(*args)


def run_recoveries(store: ImageStore, journal: list[tuple[str, Mapping[str, str]]]) -> None:
    for name, params in reversed(journal):
        store.recoveries()[name](params)


@pytest.mark.parametrize("kind", ["snapshot", "template"])
def test_crash_at_every_step_then_recoveries(lab: Lab, kind: str) -> None:
    sd = lab.new_domain()
    parent_img, parent = new_id(), new_id()
    lab.store.create_volume(sd, parent_img, parent, MiB, "RAW", "SPARSE", "DATA", "", None, None)
    if kind == "template":
        lab.store.update_volume(sd, parent_img, parent, vol_type="SHARED")
    img = parent_img if kind == "snapshot" else new_id()
    before = sorted(p.name for p in lab.image_dir(sd, parent_img).iterdir())
    steps = 0
    while True:
        budget = [steps]
        store = ImageStore(
            CrashingDomains(lab.domains, budget), CrashingRunner(budget), ResourceManager(), 10.0,
            CrashingLeases(budget),
        )  # fmt: skip
        journal: list[tuple[str, Mapping[str, str]]] = []
        vol = new_id()
        try:
            store.create_volume(
                sd, img, vol, None, "COW", "SPARSE", "DATA", "", parent_img, parent,
                record=lambda name, params, journal=journal: journal.append((name, params)),
            )  # fmt: skip
        except Crash:
            run_recoveries(lab.store, journal)
            run_recoveries(lab.store, journal)  # a second run changes nothing
            assert sorted(p.name for p in lab.image_dir(sd, parent_img).iterdir()) == before
            assert not (lab.image_dir(sd, img) / f"{vol}.meta").exists()
            expected = "SHARED" if kind == "template" else "LEAF"
            assert lab.store.volume_info(sd, parent_img, parent)["voltype"] == expected
            if kind == "template":
                assert not lab.image_dir(sd, img).exists()
            steps += 1
            continue
        break
    assert steps >= 6  # mkdir/link or meta, parent, data file, qemu-img, lease file, sanlock...
    assert lab.store.volume_info(sd, img, vol)["legality"] == "LEGAL"
    assert lab.store.chain(sd, img, vol) == [parent, vol]
