"""The supervisor's mount operations, with what it accepts spelled out.

Mounting is the most dangerous thing the daemon asks for: a crafted source, target or option
string could mount over /etc or inject options. So every argument is checked against an
allow-list here, in the privileged process, whatever the daemon already checked: targets must
lie below the configured mount root, file system types come from a fixed list, and options
are plain ``key[=value]`` words.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from pathlib import Path

from virthost.common import errors
from virthost.common.commands import Runner

log = logging.getLogger("virthost.supervisor.mounts")

FS_TYPES = frozenset({"glusterfs", "nfs", "nfs4", "ext4", "ext3", "xfs", "btrfs", "tmpfs"})
_SOURCE = re.compile(r"[A-Za-z0-9_.:/@\[\]+-]{1,1024}")
_OPTION = re.compile(r"[A-Za-z0-9_.]+(=[A-Za-z0-9_.:/@+-]*)?")


class MountError(errors.VirtHostError):
    code = 477
    message = "Problem while trying to mount target"


def check_target(mount_root: Path, target: str) -> Path:
    path = Path(os.path.normpath(target))
    if not target.startswith("/") or str(path) != target.rstrip("/"):
        raise errors.InvalidParameter(f"mount target {target!r} is not a normalised path")
    root = Path(os.path.realpath(mount_root))
    parent = Path(os.path.realpath(path.parent))
    if not (parent == root or root in parent.parents):
        raise errors.InvalidParameter(f"mount target {target!r} is not below {mount_root}")
    return parent / path.name


def check_source(source: str) -> str:
    if not _SOURCE.fullmatch(source) or source.startswith("-"):
        raise errors.InvalidParameter(f"mount source {source!r} is not acceptable")
    return source


def check_options(options: str) -> str:
    if options and not all(_OPTION.fullmatch(word) for word in options.split(",")):
        raise errors.InvalidParameter(f"mount options {options!r} are not acceptable")
    return options


def is_mounted(target: Path) -> bool:
    wanted = str(target)
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == wanted for line in f if len(line.split()) > 1)


class Mounter:
    def __init__(self, runner: Runner, mount_root: Path, timeout: float = 120.0) -> None:
        self._runner = runner
        self._root = mount_root
        self._timeout = timeout

    def mount(self, source: str, target: str, fstype: str, options: str) -> str:
        """Mount ``source`` on ``target`` (created when missing); idempotent."""
        if fstype not in FS_TYPES:
            raise errors.InvalidParameter(f"file system type {fstype!r} is not supported")
        path = check_target(self._root, target)
        check_source(source)
        check_options(options)
        if is_mounted(path):
            return str(path)
        path.mkdir(parents=True, exist_ok=True)
        argv = ["mount", "-t", fstype]
        if options:
            argv += ["-o", options]
        argv += ["--", source, str(path)]
        try:
            self._runner.run(argv, self._timeout)
        except errors.CommandError as e:
            _remove_empty(path)
            raise MountError(f"{source} on {path}: {e.detail}") from None
        log.info("mounted %s (%s) on %s", source, fstype, path)
        return str(path)

    def umount(self, target: str, lazy: bool = False) -> None:
        path = check_target(self._root, target)
        if is_mounted(path):
            argv = ["umount", *(["-l"] if lazy else []), "--", str(path)]
            try:
                self._runner.run(argv, self._timeout)
            except errors.CommandError as e:
                raise MountError(f"unmounting {path}: {e.detail}") from None
            log.info("unmounted %s", path)
        _remove_empty(path)


def _remove_empty(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.rmdir()
