"""Images and volumes of file storage domains, in VDSM's layout: the ImageStore service.

- :mod:`.store`: :class:`ImageStore`, the verbs (create/delete/info/extend/measure/prepare...);
- :mod:`.create`, :mod:`.delete`, :mod:`.copy`: the steps of the bigger verbs, crash-safe;
- :mod:`.recovery`: what a task runs to undo or finish an interrupted verb;
- :mod:`.chain`: chains from a volume to its base, checked against qemu-img;
- :mod:`.volume`, :mod:`.layout`: one volume's files, records and paths;
- :mod:`.leases`: the per-volume sanlock lease;
- :mod:`.context`: locks, and what every verb needs.
"""

from __future__ import annotations

from virthost.storage.images.context import (
    IMAGE_NAMESPACE_PREFIX,
    STORAGE_NAMESPACE,
    DomainLocator,
    Record,
    Recovery,
    image_namespace,
)
from virthost.storage.images.leases import SanlockVolumeLeases, VolumeLeaseInitializer
from virthost.storage.images.recovery import RECOVERY_NAMES
from virthost.storage.images.store import ImageStore

__all__ = [
    "IMAGE_NAMESPACE_PREFIX",
    "RECOVERY_NAMES",
    "STORAGE_NAMESPACE",
    "DomainLocator",
    "ImageStore",
    "Record",
    "Recovery",
    "SanlockVolumeLeases",
    "VolumeLeaseInitializer",
    "image_namespace",
]
