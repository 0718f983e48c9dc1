"""Shared by the storage benchmark, so that bench/storage.py reads as the measurements alone.

* :class:`LocalPool`: what an engine does to get a host ready for volume work (connect a local
  directory, create a domain and a pool, connect it, wait for the host id, become SPM), and the
  teardown that leaves no lockspace joined;
* the *hang file system* (tests/integration/storage/oop/blockfs.py's approach, serving a whole
  domain): a read-only FUSE file system that stops answering on demand, like an NFS server
  that went away. It runs as ``python bench/_storage.py serve MOUNTPOINT TREE.json`` in a
  process of its own (a FUSE loop owns its process's main thread), with ``allow_other``
  because the daemon's I/O helpers run as the service user. :class:`HangMount` drives it over
  stdin (``block``, ``release``); end of input releases every caller and lazily unmounts, so a
  dead benchmark never leaves a hung mount behind;
* :class:`InfoLoad`, StorageDomain.getInfo calls on one domain, and :func:`ping_for`.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import errno
import importlib.util
import json
import os
import queue
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from virthost.client import Client
from virthost.client import errors as client_errors
from virthost.storage import constants as sc
from virthost.storage import sdmetadata

T = TypeVar("T")

MiB = 1024 * 1024
GiB = 1024 * MiB
BLANK = "00000000-0000-0000-0000-000000000000"
LOCALFS = 4
RAW, COW = 5, 4  # volFormat
SPARSE = 2  # preallocate
TASK_TIMEOUT = 120.0
HOST_ID = 1
CLIENT_TIMEOUT = -1  # a call's outcome: the client gave up waiting


def wait_until(probe: Callable[[], T | None], timeout: float, what: str, pause: float = 0.1) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(pause)


def wait_task(cli: Client, task_id: str, poll: float) -> dict[str, Any]:
    """The task's final status, polled with Task.getStatus every ``poll`` seconds."""

    def finished() -> dict[str, Any] | None:
        status = cli.Task.getStatus(taskID=task_id)
        return dict(status) if status["taskState"] == "finished" else None

    return wait_until(finished, TASK_TIMEOUT, f"task {task_id}", poll)


def run_task(cli: Client, task_id: str, poll: float = 0.05) -> dict[str, Any]:
    """Wait for an SPM task, clear it, and fail loudly when it did not succeed."""
    status = wait_task(cli, task_id, poll)
    cli.Task.clear(taskID=task_id)
    if status["taskResult"] != "success":
        raise RuntimeError(f"task {task_id} failed: {status}")
    return status


# --- the pool ----------------------------------------------------------------------------------


@dataclass
class LocalPool:
    """A pool of one LOCALFS master domain on a local directory, this host its SPM."""

    directory: Path
    connection: dict[str, str]
    sp: str
    master: str
    spm: bool = False
    connected: bool = False

    def domain_dir(self) -> Path:
        return self.directory / self.master

    def image_dir(self, img: str) -> Path:
        return self.domain_dir() / "images" / img

    @classmethod
    def connect_directory(cls, cli: Client) -> LocalPool:
        """A new directory connected as LOCALFS storage (nothing created in it yet).

        Set-group-id and group ``sanlock`` (mode 2770): the daemon's files, made as the
        service user, then belong to that group and sanlock can use ``ids`` and ``leases``.
        """
        directory = Path(tempfile.mkdtemp(prefix="virthost-bench-localfs-", dir="/tmp"))
        shutil.chown(directory, group="sanlock")
        directory.chmod(0o2770)
        connection = {"id": str(uuid.uuid4()), "connection": str(directory)}
        answer = cli.StoragePool.connectStorageServer(
            storagepoolID=BLANK, domainType=LOCALFS, connectionParams=[connection]
        )
        if answer[0]["status"] != 0:
            shutil.rmtree(directory, ignore_errors=True)
            raise RuntimeError(f"connectStorageServer answered {answer}")
        return cls(directory, connection, str(uuid.uuid4()), str(uuid.uuid4()))

    def create_and_start(self, cli: Client) -> None:
        """Master domain, pool, connection, host id, then the SPM role (an async task)."""
        cli.StorageDomain.create(
            storagedomainID=self.master,
            domainType=LOCALFS,
            typeArgs=str(self.directory),
            name="bench-master",
            domainClass=1,
            version=5,
        )
        cli.StoragePool.create(
            storagepoolID=self.sp,
            name="bench-dc",
            masterSdUUID=self.master,
            masterVersion=1,
            domainList=[self.master],
            lockRenewalIntervalSec=5,
            leaseTimeSec=60,
            ioOpTimeoutSec=10,
            leaseRetries=3,
        )
        cli.StoragePool.connect(
            storagepoolID=self.sp,
            hostID=HOST_ID,
            scsiKey=self.sp,
            masterSdUUID=self.master,
            masterVersion=1,
        )
        self.connected = True
        wait_until(
            lambda: (
                cli.Host.getStorageRepoStats(domains=[self.master])[self.master]["acquired"] or None
            ),
            60,
            "the host id in the master domain",
            0.2,
        )
        status = cli.StoragePool.getSpmStatus(storagepoolID=self.sp)
        task = cli.StoragePool.spmStart(
            storagepoolID=self.sp,
            prevID=status["spmId"],
            prevLver=status["spmLver"],
            enableScsiFencing="false",
            maxHostID=250,
        )
        run_task(cli, task, 0.1)
        self.spm = True

    def volume_args(self, img: str, vol: str, **changes: Any) -> dict[str, Any]:
        """Volume.create arguments: a sparse RAW volume of 1 GiB unless ``changes`` say else."""
        args: dict[str, Any] = {
            "volumeID": vol,
            "storagepoolID": self.sp,
            "storagedomainID": self.master,
            "imageID": img,
            "size": GiB,
            "volFormat": RAW,
            "preallocate": SPARSE,
            "diskType": "DATA",
            "desc": "bench",
            "srcImgUUID": BLANK,
            "srcVolUUID": BLANK,
        }
        args.update(changes)
        return args

    def create_volume(self, cli: Client, img: str, vol: str, **changes: Any) -> None:
        run_task(cli, cli.Volume.create(**self.volume_args(img, vol, **changes)))

    def close(self, connect: Callable[[], Client], leave_timeout: float = 30.0) -> list[str]:
        """Stop the SPM, disconnect the pool and the storage, then wait for sanlock to have
        left the pool's lockspaces (disconnecting asks it to, without waiting). Every step
        is tried; the failures are returned as text."""
        failures: list[str] = []

        def attempt(name: str, call: Callable[[], object]) -> None:
            try:
                call()
            except Exception as e:
                failures.append(f"{name}: {e}")

        try:
            with connect() as cli:
                sp, storage = self.sp, [self.connection]
                if self.spm:
                    attempt("spmStop", lambda: cli.StoragePool.spmStop(storagepoolID=sp))
                if self.connected:
                    attempt(
                        "disconnect",
                        lambda: cli.StoragePool.disconnect(
                            storagepoolID=sp, hostID=HOST_ID, scsiKey=sp
                        ),
                    )
                attempt(
                    "disconnectStorageServer",
                    lambda: cli.StoragePool.disconnectStorageServer(
                        storagepoolID=BLANK, domainType=LOCALFS, connectionParams=storage
                    ),
                )
        except Exception as e:
            failures.append(f"connecting to the daemon: {e}")
        self.spm = self.connected = False
        try:
            wait_until(
                lambda: not lockspaces_left(self.master) or None,
                leave_timeout,
                "sanlock to leave the pool's lockspaces",
                0.5,
            )
        except TimeoutError as e:
            failures.append(str(e))
        shutil.rmtree(self.directory, ignore_errors=True)
        return failures


def lockspaces_left(part: str) -> list[str]:
    """Lockspaces the local sanlock daemon has whose line (name:host id:ids path:offset)
    holds ``part``: a domain's UUID, or a directory its ids file is reached through."""
    try:
        status = subprocess.run(
            ["sanlock", "client", "status"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line for line in status.splitlines() if line.startswith("s ") and part in line]


# --- the hang file system: the server --------------------------------------------------------


class _Gate:
    """Open by default; while closed, every file system operation waits."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._open = True

    def pass_through(self) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._open)

    def set_open(self, value: bool) -> None:
        with self._cond:
            self._open = value
            self._cond.notify_all()


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _serve(mountpoint: str, tree_file: str) -> None:
    """The FUSE loop: serve the files of ``tree_file`` (path -> base64) read-only."""
    import fusepy  # type: ignore[import-untyped]

    files = {
        path: base64.b64decode(data)
        for path, data in json.loads(Path(tree_file).read_text()).items()
    }
    dirs = {"/"}
    for path in files:
        parts = path.strip("/").split("/")
        dirs.update("/" + "/".join(parts[:i]) for i in range(1, len(parts)))
    gate = _Gate()

    class HangFS(fusepy.Operations):  # type: ignore[misc]
        use_ns = True

        def init(self, path: str) -> None:
            _say("ready")

        def getattr(self, path: str, fh: Any = None) -> dict[str, Any]:
            gate.pass_through()
            if path in dirs:
                return {"st_mode": stat.S_IFDIR | 0o755, "st_nlink": 2}
            if path in files:
                return {"st_mode": stat.S_IFREG | 0o644, "st_nlink": 1, "st_size": len(files[path])}
            raise fusepy.FuseOSError(errno.ENOENT)

        def readdir(self, path: str, fh: Any) -> list[str]:
            gate.pass_through()
            prefix = path.rstrip("/") + "/"
            children = {
                name[len(prefix) :].split("/")[0]
                for name in [*files, *dirs]
                if name.startswith(prefix) and name != prefix
            }
            return [".", "..", *sorted(children)]

        def open(self, path: str, flags: int) -> int:
            gate.pass_through()
            if path not in files:
                raise fusepy.FuseOSError(errno.ENOENT)
            return 0

        def read(self, path: str, size: int, offset: int, fh: Any) -> bytes:
            gate.pass_through()
            return files[path][offset : offset + size]

    def control() -> None:
        for raw in sys.stdin:
            command = raw.strip()
            if command in ("block", "release"):
                gate.set_open(command == "release")
                _say("ok")
            else:
                _say(f"error unknown command {command!r}")
        gate.set_open(True)
        subprocess.run(["fusermount3", "-u", "-z", mountpoint], check=False)

    threading.Thread(target=control, daemon=True).start()
    fusepy.FUSE(
        HangFS(),
        mountpoint,
        foreground=True,
        ro=True,
        allow_other=True,
        direct_io=True,
        attr_timeout=0,
        entry_timeout=0,
        negative_timeout=0,
        fsname="bench-hangfs",
    )


# --- the hang file system: the controller -----------------------------------------------------


def hang_fs_unavailable() -> str | None:
    """Why the hang file system cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "mounting a FUSE file system needs root"
    if not os.path.exists("/dev/fuse"):
        return "this machine has no /dev/fuse"
    if shutil.which("fusermount3") is None:
        return "fusermount3 is missing (Debian package fuse3)"
    if importlib.util.find_spec("fusepy") is None:
        return "fusepy is missing (Debian package python3-fusepy)"
    return None


def mounted(path: Path) -> bool:
    with open("/proc/self/mounts") as mounts:
        return any(line.split()[1] == str(path) for line in mounts)


class HangMount:
    """The hang file system mounted at ``mountpoint`` serving ``tree``; always unmounted by
    :meth:`close`, whatever state it is in."""

    ANSWER_TIMEOUT = 30.0

    def __init__(self, mountpoint: Path, tree: dict[str, bytes], scratch: Path) -> None:
        self.mountpoint = mountpoint
        tree_file = scratch / "hangfs-tree.json"
        tree_file.write_text(
            json.dumps({path: base64.b64encode(data).decode() for path, data in tree.items()})
        )
        self._log = scratch / "hangfs.log"
        self._lines: queue.Queue[str] = queue.Queue()
        mountpoint.mkdir()
        with open(self._log, "wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, __file__, "serve", str(mountpoint), str(tree_file)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        threading.Thread(target=self._pump, daemon=True).start()
        try:
            self._expect("ready")
        except BaseException:
            self.close()
            raise

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.strip())
        self._lines.put("<exited>")

    def _expect(self, prefix: str) -> None:
        try:
            line = self._lines.get(timeout=self.ANSWER_TIMEOUT)
        except queue.Empty:
            line = "<silent>"
        if not line.startswith(prefix):
            raise RuntimeError(f"hangfs said {line!r}, not {prefix!r}: {self._log.read_text()}")

    def _command(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        self._expect("ok")

    def block(self) -> None:
        self._command("block")

    def release(self) -> None:
        if self.process.poll() is None:
            self._command("release")

    def close(self) -> None:
        """Release every caller, unmount, end the server (killing it if it lingers)."""
        with contextlib.suppress(Exception):
            self.release()
        subprocess.run(["fusermount3", "-u", "-z", str(self.mountpoint)], check=False)
        with contextlib.suppress(Exception):
            if self.process.stdin is not None:
                self.process.stdin.close()
        try:
            self.process.wait(self.ANSWER_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()  # closing /dev/fuse aborts whatever still waits
            self.process.wait()
        if mounted(self.mountpoint):
            subprocess.run(["umount", "-l", str(self.mountpoint)], check=False)
        with contextlib.suppress(OSError):
            self.mountpoint.rmdir()


# --- load on a domain, and what a client sees meanwhile ----------------------------------------


def domain_tree(sd: str, name: str, like: Path) -> dict[str, bytes]:
    """What the hang file system serves for a regular, unattached data domain ``sd``: the
    metadata of the domain directory ``like`` (sealed again) with the identity changed, under
    ``/<sd>/dom_md/metadata``, and an empty ``/<sd>/images``."""
    md = sdmetadata.DomainMetadata.parse((like / sc.DOMAIN_META_DATA / "metadata").read_bytes())
    copy = dataclasses.replace(
        md,
        sd_uuid=sd,
        description=name,
        role=sc.DomainRole.REGULAR,
        pool_uuids=(),
        remote_path=f"hang:/{name}",
        pool_description=None,
        pool_domains=None,
        pool_spm_id=None,
        pool_spm_lver=None,
        master_version=None,
    )
    return {f"/{sd}/{sc.DOMAIN_META_DATA}/metadata": copy.render(), f"/{sd}/images/.keep": b""}


@contextlib.contextmanager
def blocked(mount: HangMount) -> Iterator[None]:
    """The mount hangs inside the block and answers again on the way out, whatever happened."""
    mount.block()
    try:
        yield
    finally:
        mount.release()


class InfoLoad:
    """Threads calling StorageDomain.getInfo on one domain, each on its own connection, from
    :meth:`start` until the block ends; each call's outcome (0, the error code, or
    CLIENT_TIMEOUT) and duration are kept. Leaving the block waits for the calls in flight,
    so whatever holds them must be released before (an inner block)."""

    def __init__(
        self, connect: Callable[[], Client], sd: str, threads: int, pause: float, join: float
    ) -> None:
        self._connect = connect
        self._sd = sd
        self._pause = pause
        self._join = join
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._outcomes: list[tuple[int, float]] = []
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        with self._connect() as cli:
            while not self._stop.is_set():
                t0 = time.perf_counter()
                try:
                    cli.StorageDomain.getInfo(storagedomainID=self._sd)
                    code = 0
                except client_errors.ServerError as e:
                    code = e.code
                except client_errors.TimeoutError:
                    code = CLIENT_TIMEOUT
                with self._lock:
                    self._outcomes.append((code, time.perf_counter() - t0))
                self._stop.wait(self._pause)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def __enter__(self) -> InfoLoad:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(self._join)

    def counts(self) -> Counter[int]:
        with self._lock:
            return Counter(code for code, _ in self._outcomes)

    def durations(self, code: int) -> list[float]:
        with self._lock:
            return [seconds for c, seconds in self._outcomes if c == code]


@dataclass
class Pings:
    """Host.ping2 round trips (seconds) and when each was sent (seconds from the first)."""

    latencies: list[float] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)

    def slowest(self, count: int) -> list[tuple[float, float]]:
        """The ``count`` slowest as (latency, sent at), slowest first."""
        return sorted(zip(self.latencies, self.sent_at, strict=True), reverse=True)[:count]


def ping_for(cli: Client, seconds: float, pause: float) -> Pings:
    """Host.ping2, one every ``pause`` seconds, for ``seconds``."""
    pings = Pings()
    start = time.monotonic()
    while (now := time.monotonic()) < start + seconds:
        t0 = time.perf_counter()
        cli.Host.ping2()
        pings.latencies.append(time.perf_counter() - t0)
        pings.sent_at.append(now - start)
        time.sleep(pause)
    return pings


def timed_outcome(call: Callable[[], object], delay: float = 0.0) -> tuple[float, str]:
    """After ``delay`` seconds, make ``call``: how long it took and how it ended."""
    time.sleep(delay)
    t0 = time.perf_counter()
    try:
        call()
        outcome = "answered"
    except client_errors.ServerError as e:
        outcome = f"error {e.code}"
    except client_errors.Error as e:
        outcome = type(e).__name__
    return time.perf_counter() - t0, outcome


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "serve":
        raise SystemExit(f"usage: {sys.argv[0]} serve MOUNTPOINT TREE.json")
    _serve(sys.argv[2], sys.argv[3])
