"""The qemu-img subcommands, one thin function each: build the arguments, run, parse.

Arguments are built so qemu-img cannot misread them:

- a relative name starting with ``-`` would be an option, and one with ``word:`` before any
  ``/`` a protocol (VDSM's mount directories, ``server:_export``, look like one): both get
  ``./`` in front;
- commas inside ``-o`` values are doubled, qemu's escape, so a path with a comma stays whole;
- a backing file always comes with its format: probing a format is unsafe (a raw image can
  pose as qcow2 and point at any host file) and qemu 7 refuses it anyway;
- images are opened with ``cache=none`` (O_DIRECT) by default, as VDSM does, so a copy
  neither evicts the host's page cache nor reads data another host's writes made stale.

Every function takes ``runner=`` and ``timeout=`` (see :class:`~.running.Run`); the defaults
give metadata commands minutes and data copies hours.
"""

from __future__ import annotations

import os
from typing import Unpack

from virthost.storage import errors as storage_errors
from virthost.storage.qemuimg import results
from virthost.storage.qemuimg.results import CheckResult, ImageInfo, MapExtent, MeasureResult
from virthost.storage.qemuimg.running import QEMU_IMG, ProgressCallback, Run, run

RAW, QCOW2 = "raw", "qcow2"
PREALLOCATION = ("off", "metadata", "falloc", "full")  # metadata: qcow2 only
QCOW2_COMPAT = ("0.10", "1.1")
DEFAULT_QCOW2_COMPAT = "1.1"
INFO_TIMEOUT = 60.0
METADATA_TIMEOUT = 600.0  # check, measure, map, amend, bitmaps: they walk image metadata
DATA_TIMEOUT = 6 * 3600.0  # convert, commit, safe rebase, full preallocation: they move data
# ``qemu-img check`` exit codes: those that still come with a JSON report, and "no checker".
CHECK_CLEAN, CHECK_CORRUPTED, CHECK_LEAKED, CHECK_UNSUPPORTED = 0, 2, 3, 63

StrPath = str | os.PathLike[str]


def info(
    path: StrPath,
    format: str | None = None,
    backing_chain: bool = False,
    force_share: bool = False,
    untrusted: bool = False,
    **options: Unpack[Run],
) -> ImageInfo:
    """What the image is; with ``backing_chain``, also every image below it.

    ``force_share`` (``-U``) reads an image a running VM holds; ``untrusted`` caps CPU time
    and memory, since a hostile header can make qemu-img allocate without bound.
    """
    argv = [QEMU_IMG, "info", "--output", "json", *_flag("-f", format), *_on(force_share, "-U")]
    argv += [*_on(backing_chain, "--backing-chain"), path_arg(path)]
    if untrusted:
        argv = ["prlimit", "--cpu=30", f"--as={1 << 30}", *argv]
    result = run(argv, options, INFO_TIMEOUT)
    return results.parse(result, results.image_chain if backing_chain else results.image_info)


def create(
    path: StrPath,
    format: str,
    size: int | None = None,
    backing: str | None = None,
    backing_format: str | None = None,
    preallocation: str | None = None,
    compat: str | None = None,
    cluster_size: int | None = None,
    unsafe: bool = False,
    **options: Unpack[Run],
) -> None:
    """Create an image; without ``size`` it takes its backing file's size.

    ``backing`` is stored as given (a relative name is relative to the image's directory);
    qcow2 images get ``compat`` (default 1.1); ``unsafe`` does not open the backing file.
    """
    if compat and format != QCOW2:
        raise storage_errors.InvalidParameterException(f"compat={compat!r} for format={format!r}")
    opts = [_opt("compat", _compat(compat))] if format == QCOW2 else []
    opts += [_opt("cluster_size", str(cluster_size))] if cluster_size else []
    opts += [_opt("preallocation", _prealloc(preallocation, format))] if preallocation else []
    argv = [QEMU_IMG, "create", "-f", format, *_opts(opts), *_backing(backing, backing_format)]
    argv += [*_on(unsafe, "-u"), path_arg(path), *_size(size)]
    run(argv, options, DATA_TIMEOUT if preallocation == "full" else METADATA_TIMEOUT)


def convert(
    src: StrPath,
    dst: StrPath,
    src_format: str | None = None,
    dst_format: str | None = None,
    dst_compat: str | None = None,
    backing: str | None = None,
    backing_format: str | None = None,
    preallocation: str | None = None,
    compressed: bool = False,
    unordered_writes: bool = False,
    create: bool = True,
    bitmaps: bool = False,
    cache: str | None = "none",
    progress: ProgressCallback | None = None,
    **options: Unpack[Run],
) -> None:
    """Copy ``src`` into ``dst``, converting formats; ``create=False`` writes into an
    existing target (a block device, say).

    With ``backing``, one layer of a chain is copied: the target refers to ``backing`` (the
    copy of the source's backing chain) and gets only the data the source image itself holds.
    ``unordered_writes`` (``-W``) is faster, for preallocated raw targets; ``bitmaps`` copies
    persistent bitmaps too; ``cache`` applies to both images.
    """
    argv = [QEMU_IMG, "convert", *_on(progress, "-p"), *_flag("-t", cache), *_flag("-T", cache)]
    argv += [*_on(not create, "-n"), *_flag("-f", src_format), *_flag("-O", dst_format)]
    opts = []
    if create and dst_format == QCOW2:
        opts.append(_opt("compat", _compat(dst_compat)))
    if create and preallocation:
        opts.append(_opt("preallocation", _prealloc(preallocation, dst_format)))
    if create and backing is not None:
        _, name, _, fmt = _backing(backing, backing_format)
        opts += [_opt("backing_file", name), _opt("backing_fmt", fmt)]
    elif backing is not None:
        argv += ["-B", backing]
    argv += [*_opts(opts), *_on(compressed, "-c"), *_on(unordered_writes, "-W")]
    argv += [*_on(bitmaps, "--bitmaps"), path_arg(src), path_arg(dst)]
    run(argv, options, DATA_TIMEOUT, progress=progress)


def commit(
    top: StrPath,
    top_format: str,
    base: str | None = None,
    cache: str | None = "none",
    progress: ProgressCallback | None = None,
    **options: Unpack[Run],
) -> None:
    """Write ``top``'s data into ``base`` (default: its backing file), keeping ``top``.

    qemu-img runs in ``top``'s directory, so a relative ``base`` names a chain member the way
    the image headers do.
    """
    top_path = os.path.abspath(top)
    argv = [QEMU_IMG, "commit", *_on(progress, "-p"), *_flag("-t", cache), "-f", top_format]
    # Without -b, -d keeps top's data (else it is emptied); with -b, qemu-img keeps it anyway.
    argv += [*(["-b", base] if base else ["-d"]), top_path]
    run(argv, options, DATA_TIMEOUT, cwd=os.path.dirname(top_path), progress=progress)


def rebase(
    image: StrPath,
    backing: str,
    format: str | None = None,
    backing_format: str | None = None,
    unsafe: bool = False,
    cache: str | None = "none",
    progress: ProgressCallback | None = None,
    **options: Unpack[Run],
) -> None:
    """Make ``backing`` the backing file of ``image``; ``""`` removes the backing file.

    A safe rebase first copies into ``image`` what differs between the old and the new chain
    (all of it, when removing); ``unsafe`` only rewrites the header, for a backing file that
    was renamed or moved. qemu-img runs in the image's directory, as for :func:`commit`.
    """
    image_path = os.path.abspath(image)
    argv = [QEMU_IMG, "rebase", *_on(progress, "-p"), *_flag("-t", cache), *_flag("-T", cache)]
    argv += [*_on(unsafe, "-u"), *_flag("-f", format)]
    argv += [*(_backing(backing, backing_format) if backing else ["-b", ""]), image_path]
    timeout = INFO_TIMEOUT if unsafe else DATA_TIMEOUT
    run(argv, options, timeout, cwd=os.path.dirname(image_path), progress=progress)


def resize(
    path: StrPath,
    size: int,
    format: str | None = None,
    shrink: bool = False,
    preallocation: str | None = None,
    **options: Unpack[Run],
) -> None:
    """Set the virtual size; making an image smaller needs ``shrink``."""
    argv = [QEMU_IMG, "resize", *_flag("-f", format), *_on(shrink, "--shrink")]
    if preallocation:
        argv.append(f"--preallocation={_prealloc(preallocation, format)}")
    run([*argv, path_arg(path), *_size(size)], options, METADATA_TIMEOUT)


def amend(path: StrPath, compat: str, **options: Unpack[Run]) -> None:
    """Change a qcow2 image's compat level in place (``0.10`` <-> ``1.1``)."""
    argv = [QEMU_IMG, "amend", "-f", QCOW2, "-o", _opt("compat", _compat(compat))]
    run([*argv, path_arg(path)], options, METADATA_TIMEOUT)


def check(path: StrPath, format: str | None = None, **options: Unpack[Run]) -> CheckResult:
    """Check an image's consistency: corruptions and leaks are reported, not raised.

    A format without a checker (raw) fails with rc :data:`CHECK_UNSUPPORTED`.
    """
    argv = [QEMU_IMG, "check", "--output", "json", *_flag("-f", format), path_arg(path)]
    result = run(argv, options, METADATA_TIMEOUT, ok=(CHECK_CLEAN, CHECK_CORRUPTED, CHECK_LEAKED))
    return results.parse(result, lambda out: results.build(CheckResult, out))


def measure(
    path: StrPath | None = None,
    format: str | None = None,
    output_format: str = QCOW2,
    size: int | None = None,
    **options: Unpack[Run],
) -> MeasureResult:
    """Bytes an ``output_format`` image needs to hold ``path``, or a new image of ``size``."""
    if (path is None) == (size is None):
        raise storage_errors.InvalidParameterException("measure needs either path or size")
    argv = [QEMU_IMG, "measure", "--output", "json", "-O", output_format, *_flag("-f", format)]
    argv += ["--size", *_size(size)] if path is None else [path_arg(path)]
    result = run(argv, options, METADATA_TIMEOUT)
    return results.parse(result, lambda out: results.build(MeasureResult, out))


def map(path: StrPath, format: str | None = None, **options: Unpack[Run]) -> list[MapExtent]:
    """Which ranges of the image hold data, zeros or nothing, and at which chain depth."""
    argv = [QEMU_IMG, "map", "--output", "json", *_flag("-f", format), path_arg(path)]
    result = run(argv, options, METADATA_TIMEOUT)
    return results.parse(result, lambda out: [results.build(MapExtent, item) for item in out])


def bitmap_add(
    path: StrPath,
    name: str,
    granularity: int | None = None,
    enabled: bool = True,
    **options: Unpack[Run],
) -> None:
    """Add a persistent dirty bitmap to a qcow2 image; ``enabled``: it starts tracking."""
    argv = [QEMU_IMG, "bitmap", "--add", *_flag("-g", str(granularity) if granularity else None)]
    argv += [*_on(not enabled, "--disable"), *_bitmap(path, name)]
    run(argv, options, METADATA_TIMEOUT)


def bitmap_remove(path: StrPath, name: str, **options: Unpack[Run]) -> None:
    """Remove a persistent dirty bitmap from a qcow2 image."""
    run([QEMU_IMG, "bitmap", "--remove", *_bitmap(path, name)], options, METADATA_TIMEOUT)


# --- arguments ---------------------------------------------------------------------------


def path_arg(path: StrPath) -> str:
    """``path`` written so that qemu-img reads a file name, not an option or a protocol."""
    text = os.fspath(path)
    if not text:
        raise storage_errors.InvalidParameterException("path=''")
    if not text.startswith("/") and (text.startswith("-") or ":" in text.split("/", 1)[0]):
        return "./" + text
    return text


def _on(condition: object, *args: str) -> list[str]:
    return list(args) if condition else []


def _flag(flag: str, value: str | None) -> list[str]:
    return [flag, value] if value else []


def _opt(key: str, value: str) -> str:
    return f"{key}={value.replace(',', ',,')}"


def _opts(opts: list[str]) -> list[str]:
    return ["-o", ",".join(opts)] if opts else []


def _size(size: int | None) -> list[str]:
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise storage_errors.InvalidParameterException(f"size={size!r}")
    return [] if size is None else [str(size)]


def _backing(backing: str | None, backing_format: str | None) -> list[str]:
    if backing is not None and not backing_format:
        raise storage_errors.InvalidParameterException(
            f"backing={backing!r} needs a backing_format"
        )
    return [] if backing is None else ["-b", backing, "-F", str(backing_format)]


def _compat(compat: str | None) -> str:
    value = compat or DEFAULT_QCOW2_COMPAT
    if value not in QCOW2_COMPAT:
        raise storage_errors.InvalidParameterException(f"compat={compat!r}")
    return value


def _prealloc(mode: str, format: str | None) -> str:
    if mode not in PREALLOCATION or (mode == "metadata" and format != QCOW2):
        raise storage_errors.InvalidParameterException(
            f"preallocation={mode!r} for format={format!r}"
        )
    return mode


def _bitmap(path: StrPath, name: str) -> list[str]:
    if not name or name.startswith("-"):
        raise storage_errors.InvalidParameterException(f"bitmap={name!r}")
    return ["-f", QCOW2, path_arg(path), name]
