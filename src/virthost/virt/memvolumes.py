"""Where a hibernated VM's memory goes and comes back from: a file, or storage volumes.

VM.hibernate's ``hibernationVolHandle`` and VM.create's restore keys name the memory image in
the forms engines have used over the years:

* an absolute path: a plain file (virthost's own form, for people and tests);
* VDSM's legacy comma list ``"<sd>,<sp>,<memImg>,<memVol>,<confImg>,<confVol>"``;
* volume records: ``{"memoryDumpVolume": {PDIV}, "memoryConfVolume": {PDIV}}`` or one PDIV
  record for the memory volume alone.

The memory volume receives what libvirt's save writes; the configuration volume is prepared
with it (VDSM writes its VM configuration there, but the save image already carries the exact
domain XML the guest resumes with, which is what restoring uses).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from virthost.common import errors, validate
from virthost.virt.domxml.volumes import VolumeRef

_LEGACY_PARTS = 6


@dataclass(frozen=True)
class MemoryVolumes:
    """The volume receiving the memory image and, optionally, the configuration volume."""

    memory: VolumeRef
    config: VolumeRef | None = None

    def refs(self) -> list[VolumeRef]:
        return [self.memory] + ([self.config] if self.config is not None else [])


MemoryTarget = str | MemoryVolumes


def memory_target(handle: Any, name: str = "hibernationVolHandle") -> MemoryTarget:
    """The file path or the volumes a handle names.

    A string that is neither a path nor six UUIDs is UnsupportedOperation (75); a volume
    record with bad ids is InvalidParameter (91).
    """
    if isinstance(handle, str):
        if handle.startswith("/"):
            return str(validate.absolute_path(handle, name))
        legacy = _legacy(handle)
        if legacy is None:
            raise errors.UnsupportedOperation(
                f"{name}={handle!r}: neither a file path nor memory and configuration volumes"
            )
        return legacy
    if isinstance(handle, Mapping):
        if "memoryDumpVolume" in handle:
            return volumes_of(handle.get("memoryDumpVolume"), handle.get("memoryConfVolume"))
        return MemoryVolumes(VolumeRef.from_wire(handle, name))
    raise errors.InvalidParameter(f"{name}={handle!r}: not a path or volumes", param=name)


def volumes_of(memory: Any, config: Any) -> MemoryVolumes:
    """``memoryDumpVolume`` and ``memoryConfVolume`` records (the latter may be absent)."""
    return MemoryVolumes(
        VolumeRef.from_wire(memory, "memoryDumpVolume"),
        None if config is None else VolumeRef.from_wire(config, "memoryConfVolume"),
    )


def restore_source(params: Mapping[str, Any]) -> MemoryTarget | None:
    """What VM.create restores the guest from: ``restoreState``, ``hiberVolHandle`` or
    ``memoryDumpVolume``/``memoryConfVolume``; None for a fresh boot."""
    for key in ("restoreState", "hiberVolHandle"):
        value = params.get(key)
        if value:
            return memory_target(value, key)
    if params.get("memoryDumpVolume"):
        return volumes_of(params["memoryDumpVolume"], params.get("memoryConfVolume"))
    return None


def _legacy(handle: str) -> MemoryVolumes | None:
    parts = [part.strip() for part in handle.split(",")]
    if len(parts) != _LEGACY_PARTS:
        return None
    try:
        sd, sp, mem_img, mem_vol, conf_img, conf_vol = (
            validate.uuid(part, "hibernationVolHandle") for part in parts
        )
    except errors.InvalidParameter:
        return None
    return MemoryVolumes(VolumeRef(sp, sd, mem_img, mem_vol), VolumeRef(sp, sd, conf_img, conf_vol))
