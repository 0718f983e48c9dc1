"""Thin typed functions over ``qemu-img``: one per subcommand, results as dataclasses.

Every volume operation ends in qemu-img, which knows image formats better than we could, so
this package adds only what qemu-img cannot give by itself: a time box on every run, results
read from ``--output json`` and checked into frozen dataclasses, errors carrying the command
and its stderr, progress reports, and arguments qemu-img cannot misread.

- :mod:`.commands`: ``info``, ``create``, ``convert``, ``commit``, ``rebase``, ``resize``,
  ``amend``, ``check``, ``measure``, ``map``, ``bitmap_add``, ``bitmap_remove``;
- :mod:`.results`: what they return, and how qemu-img's JSON becomes it;
- :mod:`.running`: the runner, :class:`QemuImgError`, and ``-p`` progress parsing.

Use it as a module: ``qemuimg.info(path, backing_chain=True)``.
"""

from __future__ import annotations

from virthost.storage.qemuimg.commands import (
    CHECK_CLEAN,
    CHECK_CORRUPTED,
    CHECK_LEAKED,
    CHECK_UNSUPPORTED,
    DATA_TIMEOUT,
    DEFAULT_QCOW2_COMPAT,
    INFO_TIMEOUT,
    METADATA_TIMEOUT,
    PREALLOCATION,
    QCOW2,
    QCOW2_COMPAT,
    RAW,
    amend,
    bitmap_add,
    bitmap_remove,
    check,
    commit,
    convert,
    create,
    info,
    map,
    measure,
    path_arg,
    rebase,
    resize,
)
from virthost.storage.qemuimg.results import (
    BitmapInfo,
    CheckResult,
    ImageInfo,
    MapExtent,
    MeasureResult,
)
from virthost.storage.qemuimg.running import (
    QEMU_IMG,
    ProgressCallback,
    ProgressParser,
    QemuImgError,
    Run,
    StreamingRunner,
)

__all__ = [
    "CHECK_CLEAN",
    "CHECK_CORRUPTED",
    "CHECK_LEAKED",
    "CHECK_UNSUPPORTED",
    "DATA_TIMEOUT",
    "DEFAULT_QCOW2_COMPAT",
    "INFO_TIMEOUT",
    "METADATA_TIMEOUT",
    "PREALLOCATION",
    "QCOW2",
    "QCOW2_COMPAT",
    "QEMU_IMG",
    "RAW",
    "BitmapInfo",
    "CheckResult",
    "ImageInfo",
    "MapExtent",
    "MeasureResult",
    "ProgressCallback",
    "ProgressParser",
    "QemuImgError",
    "Run",
    "StreamingRunner",
    "amend",
    "bitmap_add",
    "bitmap_remove",
    "check",
    "commit",
    "convert",
    "create",
    "info",
    "map",
    "measure",
    "path_arg",
    "rebase",
    "resize",
]
