"""The Volume namespace: volume verbs of the connected pool's domains.

Changes of shared storage (create, delete, extendSize, setLegality, setDescription) are SPM
work; the first three answer with a task id, as VDSM does. Reads need the pool connected and
the domain in it.
"""

from __future__ import annotations

from typing import Any

from virthost.common import validate
from virthost.storage.images import ImageStore
from virthost.storage.spmtasks import SpmTasks
from virthost.storage.tasks import TaskContext


class VolumeApi:
    def __init__(self, images: ImageStore, spm: SpmTasks) -> None:
        self._images = images
        self._spm = spm

    def create(
        self,
        volumeID: str,
        storagepoolID: str,
        storagedomainID: str,
        imageID: str,
        size: Any,
        volFormat: Any,
        preallocate: Any,
        diskType: Any,
        desc: str,
        srcImgUUID: str,
        srcVolUUID: str,
        initialSize: Any = None,
        addBitmaps: bool = False,
        legal: bool = True,
        sequence: Any = 0,
        bitmap: str | None = None,
    ) -> str:
        def work(ctx: TaskContext) -> None:
            self._images.create_volume(
                storagedomainID,
                imageID,
                volumeID,
                size,
                volFormat,
                preallocate,
                diskType,
                desc,
                srcImgUUID,
                srcVolUUID,
                initial_size=initialSize,
                legal=legal,
                sequence=sequence,
                record=ctx.add_recovery,
            )

        return self._spm.schedule(storagepoolID, (storagedomainID,), "Volume.create", work)

    def delete(
        self,
        volumeID: str,
        storagepoolID: str,
        storagedomainID: str,
        imageID: str,
        postZero: Any,
        force: Any,
        discard: bool = False,
    ) -> str:
        def work(ctx: TaskContext) -> None:
            self._images.delete_volume(
                storagedomainID,
                imageID,
                volumeID,
                force=validate.flag(force),
                record=ctx.add_recovery,
            )

        return self._spm.schedule(storagepoolID, (storagedomainID,), "Volume.delete", work)

    def extendSize(
        self,
        storagepoolID: str,
        storagedomainID: str,
        imageID: str,
        volumeID: str,
        newSize: Any,
    ) -> str:
        def work(ctx: TaskContext) -> None:
            self._images.extend_size(
                storagedomainID, imageID, volumeID, newSize, record=ctx.add_recovery
            )

        return self._spm.schedule(storagepoolID, (storagedomainID,), "Volume.extendSize", work)

    def getInfo(
        self, volumeID: str, storagepoolID: str, storagedomainID: str, imageID: str
    ) -> dict[str, Any]:
        self._spm.member(storagepoolID, storagedomainID)
        info = self._images.volume_info(storagedomainID, imageID, volumeID)
        info["pool"] = self._spm.pools.get(storagepoolID).sp_uuid
        return info

    def getSize(
        self, volumeID: str, storagepoolID: str, storagedomainID: str, imageID: str
    ) -> dict[str, str]:
        self._spm.member(storagepoolID, storagedomainID)
        return self._images.volume_size(storagedomainID, imageID, volumeID)

    def measure(
        self,
        volumeID: str,
        storagepoolID: str,
        storagedomainID: str,
        imageID: str,
        dstVolFormat: Any,
        backing_chain: bool = True,
        baseID: str | None = None,
    ) -> dict[str, Any]:
        self._spm.member(storagepoolID, storagedomainID)
        return self._images.measure(
            storagedomainID, imageID, volumeID, dstVolFormat, backing_chain, baseID
        )

    def getQemuImageInfo(
        self, volumeID: str, storagepoolID: str, storagedomainID: str, imageID: str
    ) -> dict[str, Any]:
        self._spm.member(storagepoolID, storagedomainID)
        return self._images.qemu_image_info(storagedomainID, imageID, volumeID)

    def refresh(
        self, volumeID: str, storagepoolID: str, storagedomainID: str, imageID: str
    ) -> None:
        self._spm.member(storagepoolID, storagedomainID)
        self._images.refresh_volume(storagedomainID, imageID, volumeID)

    def teardown(self, storagedomainID: str, imageID: str, volumeID: str) -> None:
        self._images.teardown_volume(storagedomainID, imageID, volumeID)

    def setDescription(
        self,
        volumeID: str,
        storagepoolID: str,
        storagedomainID: str,
        imageID: str,
        description: str,
    ) -> None:
        self._spm.member(storagepoolID, storagedomainID).spm.require()
        self._images.set_description(storagedomainID, imageID, volumeID, description)

    def setLegality(
        self,
        volumeID: str,
        storagepoolID: str,
        storagedomainID: str,
        imageID: str,
        legality: str,
    ) -> None:
        self._spm.member(storagepoolID, storagedomainID).spm.require()
        self._images.set_legality(storagedomainID, imageID, volumeID, legality)
