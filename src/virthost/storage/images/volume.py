"""One volume's files on a file domain: its metadata record, its size, its neighbours.

Every call here goes through the domain's out-of-process I/O (a hung mount costs a helper
thread, never ours) and takes paths from :mod:`.layout`, built from validated UUIDs.

The metadata file is replaced atomically (temporary file, fsync, rename), so a reader on any
host sees the old record or the new one, never half of each; that is what makes "metadata
first, ILLEGAL" a safe first step of a creation.

Who is a child of whom is only written in the children's records (``PUUID``), as on VDSM file
domains: finding a volume's children means reading the records of its image (or of every image,
for a template, whose children live in other images).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable
from dataclasses import replace
from typing import Protocol

from virthost.storage import constants as sc
from virthost.storage import errors as se
from virthost.storage.images.layout import VolumePaths, volume_name_of_meta
from virthost.storage.volmetadata import VolumeMetadata

log = logging.getLogger("virthost.storage.images")


class VolumeIO(Protocol):
    """The file operations volumes need (:class:`~virthost.storage.oop.OutOfProcessIO`)."""

    def exists(self, path: str) -> bool: ...
    def listdir(self, path: str) -> list[str]: ...
    def stat(self, path: str, follow_symlinks: bool = True) -> os.stat_result: ...
    def read_file(
        self, path: str, direct: bool = False, offset: int = 0, size: int | None = None
    ) -> bytes: ...
    def write_file(
        self, path: str, data: bytes, direct: bool = False, mode: int = 0o644
    ) -> None: ...
    def truncate(
        self, path: str, size: int, mode: int | None = None, exclusive: bool = False
    ) -> None: ...
    def unlink(self, path: str) -> None: ...
    def rename(self, src: str, dst: str) -> None: ...
    def link(self, src: str, dst: str) -> None: ...
    def mkdir(self, path: str, mode: int = 0o755) -> None: ...
    def rmdir(self, path: str) -> None: ...
    def rmtree(self, path: str, root: str) -> None: ...


# --- metadata ------------------------------------------------------------------------------


def read_metadata(io: VolumeIO, paths: VolumePaths) -> VolumeMetadata:
    """The volume's record; 201 when it has none, 207 when it cannot be read or parsed."""
    try:
        data = io.read_file(paths.meta)
    except FileNotFoundError:
        raise se.VolumeDoesNotExist(paths.volume) from None
    except OSError as e:
        raise se.VolumeMetadataReadError(f"{paths.meta}: {e}") from e
    return VolumeMetadata.parse(data)


def write_metadata(
    io: VolumeIO, paths: VolumePaths, md: VolumeMetadata, domain_version: int
) -> None:
    """Replace the volume's record atomically with ``md`` (208 when the write fails)."""
    data = md.render(domain_version)
    try:
        io.write_file(paths.meta, data, mode=sc.FILE_VOLUME_PERMISSIONS)
    except OSError as e:
        raise se.VolumeMetadataWriteError(f"{paths.meta}: {e}") from e


def update_metadata(
    io: VolumeIO, paths: VolumePaths, domain_version: int, **changes: object
) -> VolumeMetadata:
    """Read, change the given fields, write back; returns the new record."""
    md = replace(read_metadata(io, paths), **changes)  # type: ignore[arg-type]
    write_metadata(io, paths, md, domain_version)
    return md


# --- files ---------------------------------------------------------------------------------


def volume_exists(io: VolumeIO, paths: VolumePaths) -> bool:
    """Whether anything of the volume is there (data, record or lease)."""
    return any(io.exists(path) for path in paths.all())


def remove_file(io: VolumeIO, path: str) -> bool:
    """Unlink ``path``; a missing file is fine (so removals can run twice)."""
    try:
        io.unlink(path)
    except FileNotFoundError:
        return False
    log.info("Removed %s", path)
    return True


def remove_volume_files(io: VolumeIO, paths: VolumePaths) -> None:
    """Remove data and lease, then the record: a record without data is still recognisable."""
    remove_file(io, paths.data)
    remove_file(io, paths.lease)
    remove_file(io, paths.meta)


def list_dir(io: VolumeIO, directory: str) -> list[str]:
    """The names in ``directory``; none when it does not exist."""
    try:
        return io.listdir(directory)
    except FileNotFoundError:
        return []


def volumes_in_dir(io: VolumeIO, directory: str) -> list[str]:
    """The volumes that have a record in ``directory`` (own and linked), sorted."""
    found = (volume_name_of_meta(name) for name in list_dir(io, directory))
    return sorted(vol for vol in found if vol is not None)


def records_in_dir(io: VolumeIO, directory: str) -> dict[str, VolumeMetadata]:
    """The readable records in ``directory`` by volume; unreadable ones are skipped."""
    records: dict[str, VolumeMetadata] = {}
    for vol in volumes_in_dir(io, directory):
        try:
            records[vol] = read_metadata(io, VolumePaths(directory, vol))
        except (se.VolumeDoesNotExist, se.VolumeMetadataReadError) as e:
            log.warning("Skipping volume %s in %s: %s", vol, directory, e)
    return records


def children_in(records: dict[str, VolumeMetadata], vol: str) -> list[str]:
    return sorted(child for child, md in records.items() if md.parent == vol and child != vol)


def children(io: VolumeIO, directories: Iterable[str], vol: str) -> list[str]:
    """Volumes whose record names ``vol`` as parent, in any of ``directories``."""
    found: set[str] = set()
    for directory in directories:
        found.update(children_in(records_in_dir(io, directory), vol))
    return sorted(found)


def recheck_role(
    io: VolumeIO, paths: VolumePaths, domain_version: int, image_dirs: Iterable[str]
) -> sc.VolumeRole | None:
    """Make a non-template volume LEAF without children and INTERNAL with some.

    Returns the role it has now; None when the volume is gone. Running it twice changes nothing.
    """
    try:
        md = read_metadata(io, paths)
    except se.VolumeDoesNotExist:
        return None
    if md.voltype is sc.VolumeRole.SHARED:
        return md.voltype
    role = sc.VolumeRole.INTERNAL if children(io, image_dirs, paths.volume) else sc.VolumeRole.LEAF
    if role is not md.voltype:
        write_metadata(io, paths, replace(md, voltype=role), domain_version)
        log.info("Volume %s is now %s", paths.volume, role.name)
    return role


def sizes(io: VolumeIO, paths: VolumePaths) -> tuple[int, int]:
    """(apparent size, true size) of the data file in bytes; 201 when it is missing."""
    try:
        st = io.stat(paths.data)
    except FileNotFoundError:
        raise se.VolumeDoesNotExist(paths.volume) from None
    except OSError as e:
        raise se.VolumeAccessError(f"{paths.data}: {e}") from e
    return st.st_size, st.st_blocks * 512


def hard_link(io: VolumeIO, src: str, dst: str) -> None:
    """Make ``dst`` another name of ``src``; an existing ``dst`` is left alone."""
    with contextlib.suppress(FileExistsError):
        io.link(src, dst)
