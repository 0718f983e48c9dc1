"""SDM.copy_data: copy one volume's data into a volume the engine has already created.

The engine creates the destination with ``Volume.create`` (same capacity, the format it wants,
a parent when the destination image is a chain being rebuilt volume by volume) and then asks
for the data. The work, with VDSM's semantics on file domains:

1. lock the source image SHARED and the destination image EXCLUSIVE (and both domains SHARED),
   all at once in sorted order;
2. check the source chain: records and data files present, no ILLEGAL volume (227), since
   qemu-img reads the source *with its backing chain*, as a guest would see it;
3. fence the destination by its generation (911) and mark it ILLEGAL;
4. ``qemu-img convert -n`` into the existing destination file, ``-O`` its format; when the
   destination has a parent, ``-B <parent>`` (the parent's file name, relative as the
   destination's header already says) so only the data the destination's own chain does not
   already hold is written, one layer of a chain copied at a time;
5. mark the destination LEGAL with the next generation.

The job is abortable: the progress callback stops qemu-img (see
:func:`~virthost.storage.sdm.context.progress_reporter`), the destination stays ILLEGAL with
its old generation, and the same copy can be asked again.

The destination is always a volume of our domains (``div``). The source may also be an
``external`` image given as a ``file://`` URL of an absolute path on this host, which is how an
administrator fills a new template volume from an existing disk image; its format is probed
(qemu-img with CPU and memory limits) and an image with a backing file is refused, since that
file would be read from wherever the header points.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from virthost.common import errors, validate
from virthost.storage import constants as sc
from virthost.storage import errors as se
from virthost.storage import qemuimg
from virthost.storage.images import chain as chains
from virthost.storage.images.context import image_lock
from virthost.storage.images.layout import ImagePaths
from virthost.storage.jobs import JobContext, JobWork
from virthost.storage.jobs.sdmrequests import (
    CopyDataRequest,
    CopyEndpoint,
    DivEndpoint,
    ExternalEndpoint,
)
from virthost.storage.sdm.context import (
    EXCLUSIVE,
    SHARED,
    LocatedVolume,
    SdmContext,
    progress_reporter,
    volume_operation,
)

log = logging.getLogger("virthost.storage.sdm")


@dataclass(frozen=True)
class ExternalImage:
    """A source image outside our domains (a file on this host)."""

    path: str
    qemu_format: str


def external_path(endpoint: ExternalEndpoint) -> str:
    """The absolute path of a ``file://`` source URL (75 for other schemes, 91 for bad ones)."""
    url = urlsplit(endpoint.url)
    if url.scheme != "file":
        raise errors.UnsupportedOperation("source.url: only file:// URLs are supported here")
    if url.netloc not in ("", "localhost") or url.query or url.fragment:
        raise errors.InvalidParameter(f"source.url={endpoint.url!r} is not a local file URL")
    return validate.absolute_path(unquote(url.path), "source.url")


class CopyData:
    """The work of one SDM.copy_data job."""

    def __init__(self, ctx: SdmContext, request: CopyDataRequest) -> None:
        self._ctx = ctx
        self._external: str | None = None
        self._source: DivEndpoint | None = None
        if isinstance(request.source, ExternalEndpoint):
            self._external = external_path(request.source)
        else:
            self._source = request.source
        self._destination = _div(request.destination, "destination")
        self._copy_bitmaps = request.copy_bitmaps
        dst = self._destination.volume
        if self._source is not None:
            src = self._source.volume
            if (src.sd_id, src.img_id, src.vol_id) == (dst.sd_id, dst.img_id, dst.vol_id):
                raise se.InvalidParameterException(
                    f"volume {src.vol_id} cannot be copied onto itself"
                )

    def work(self) -> JobWork:
        return JobWork(run=self.run, abortable=True)

    def run(self, job: JobContext) -> None:
        dst = self._destination.volume
        locks = list(image_lock(dst.sd_id, dst.img_id, EXCLUSIVE))
        if self._source is not None:
            src = self._source.volume
            locks += image_lock(src.sd_id, src.img_id, SHARED)
        with self._ctx.lock(locks):
            job.check_aborted()
            source = self._source_image()
            target = self._ctx.locate(dst.sd_id, dst.img_id, dst.vol_id)
            backing = _backing(target)
            bitmaps = (
                self._copy_bitmaps
                and isinstance(source, LocatedVolume)
                and _both_qcow2(source, target)
            )
            with volume_operation(target, dst.generation) as target:
                log.info(
                    "Copying %s (%s) to %s (%s)%s",
                    source.path, source.qemu_format, target.path, target.qemu_format,
                    f" over {backing.volume}" if backing else "",
                )  # fmt: skip
                qemuimg.convert(
                    source.path,
                    target.path,
                    src_format=source.qemu_format,
                    dst_format=target.qemu_format,
                    backing=backing.volume if backing else None,
                    backing_format=backing.qemu_format if backing else None,
                    create=False,
                    bitmaps=bitmaps,
                    progress=progress_reporter(job),
                    **self._ctx.qemu,
                )

    def _source_image(self) -> LocatedVolume | ExternalImage:
        if self._source is None:
            assert self._external is not None
            return self._probe_external(self._external)
        src = self._source.volume
        return self._source_top(src.sd_id, src.img_id, src.vol_id)

    def _probe_external(self, path: str) -> ExternalImage:
        try:
            info = qemuimg.info(path, untrusted=True, **self._ctx.qemu)
        except qemuimg.QemuImgError as e:
            raise se.InvalidParameterException(f"source.url: {path}: {e}") from e
        if info.backing_filename:
            raise se.InvalidParameterException(
                f"source.url: {path} has a backing file ({info.backing_filename})"
            )
        if info.format not in (qemuimg.RAW, qemuimg.QCOW2):
            raise se.IncorrectFormat(f"source.url: {path} is {info.format}")
        return ExternalImage(path, info.format)

    def _source_top(self, sd: str, img: str, vol: str) -> LocatedVolume:
        """The source volume, once its whole chain is known to be readable and LEGAL."""
        handle = self._ctx.domains.locate(sd)
        links = chains.resolve(handle.io, ImagePaths(handle.images_dir, img), vol)
        chains.check_illegal(links)
        chains.check_data_files(handle.io, links)
        top = links[-1]
        return LocatedVolume(handle, top.paths, top.metadata)


def _div(endpoint: CopyEndpoint, where: str) -> DivEndpoint:
    if not isinstance(endpoint, DivEndpoint):
        raise errors.UnsupportedOperation(f"{where}: only 'div' copy endpoints are supported")
    return endpoint


def _backing(target: LocatedVolume) -> LocatedVolume | None:
    """The destination's parent (its record says which, in the same image directory)."""
    parent = target.metadata.parent
    if parent == sc.BLANK_UUID:
        return None
    try:
        return target.sibling(parent)
    except se.VolumeDoesNotExist:
        raise se.ImageIsNotLegalChain(
            f"parent {parent} of destination {target.volume} is missing"
        ) from None


def _both_qcow2(source: LocatedVolume, target: LocatedVolume) -> bool:
    if source.qemu_format == target.qemu_format == qemuimg.QCOW2:
        return True
    log.info("Not copying bitmaps of %s: only qcow2 volumes have bitmaps", source.volume)
    return False


def copy_data_work(ctx: SdmContext, request: CopyDataRequest) -> JobWork:
    """The JobWork of SDM.copy_data; endpoint errors answer the verb itself."""
    return CopyData(ctx, request).work()
