"""The Image namespace: whole images (disks) of the connected pool's domains.

Image.delete, deleteVolumes and move change shared storage and answer with an SPM task id;
prepare and teardown make a chain usable on this host (any host of the pool may run a VM).
"""

from __future__ import annotations

from typing import Any

from virthost.common import errors, validate
from virthost.storage import errors as se
from virthost.storage.images import ImageStore
from virthost.storage.spmtasks import SpmTasks
from virthost.storage.tasks import TaskContext

MOVE_OPERATION = 2
COPY_OPERATION = 1


class ImageApi:
    def __init__(self, images: ImageStore, spm: SpmTasks) -> None:
        self._images = images
        self._spm = spm

    def delete(
        self,
        imageID: str,
        storagepoolID: str,
        storagedomainID: str,
        postZero: Any,
        force: Any,
        discard: bool = False,
    ) -> str:
        def work(ctx: TaskContext) -> None:
            self._images.delete_image(storagedomainID, imageID, record=ctx.add_recovery)

        return self._spm.schedule(storagepoolID, (storagedomainID,), "Image.delete", work)

    def deleteVolumes(
        self,
        imageID: str,
        storagepoolID: str,
        storagedomainID: str,
        volumeList: list[str],
        postZero: Any = False,
        force: Any = False,
        discard: bool = False,
    ) -> str:
        forced = validate.flag(force)

        def work(ctx: TaskContext) -> None:
            # Children go before their parents, whatever order the list has.
            remaining = list(dict.fromkeys(volumeList))
            while remaining:
                progress = False
                for vol in list(remaining):
                    try:
                        self._images.delete_volume(
                            storagedomainID, imageID, vol, force=forced, record=ctx.add_recovery
                        )
                    except se.VolumeImageHasChildren:
                        continue
                    remaining.remove(vol)
                    progress = True
                if not progress:
                    raise se.VolumeImageHasChildren(f"{', '.join(remaining)} still have children")

        return self._spm.schedule(storagepoolID, (storagedomainID,), "Image.deleteVolumes", work)

    def getVolumes(self, imageID: str, storagepoolID: str, storagedomainID: str) -> list[str]:
        self._spm.member(storagepoolID, storagedomainID)
        return self._images.image_volumes(storagedomainID, imageID)

    def move(
        self,
        imageID: str,
        storagepoolID: str,
        storagedomainID: str,
        dstSdUUID: str,
        operation: Any,
        postZero: Any,
        force: Any,
        discard: bool = False,
    ) -> str:
        if int(operation) not in (COPY_OPERATION, MOVE_OPERATION):
            raise errors.InvalidParameter(f"operation={operation!r}")
        moving = int(operation) == MOVE_OPERATION

        def work(ctx: TaskContext) -> None:
            self._images.copy_image(
                storagedomainID, imageID, dstSdUUID, moving, record=ctx.add_recovery
            )

        return self._spm.schedule(storagepoolID, (storagedomainID, dstSdUUID), "Image.move", work)

    def prepare(
        self,
        storagepoolID: str,
        storagedomainID: str,
        imageID: str,
        volumeID: str,
        allowIllegal: bool = False,
    ) -> dict[str, Any]:
        self._spm.member(storagepoolID, storagedomainID)
        return self._images.prepare_image(storagedomainID, imageID, volumeID, allowIllegal)

    def teardown(
        self,
        storagepoolID: str,
        storagedomainID: str,
        imageID: str,
        volumeID: str | None = None,
    ) -> None:
        self._spm.member(storagepoolID, storagedomainID)
        self._images.teardown_image(storagedomainID, imageID, volumeID)
