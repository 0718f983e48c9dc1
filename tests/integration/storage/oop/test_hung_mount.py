"""A hung mount costs only its own domain: the key property of out-of-process I/O.

A real FUSE mount (blockfs.py) stands in for an NFS server that stopped answering: once blocked,
every stat, lookup and read on it sleeps in the kernel, uninterruptibly (even SIGKILL waits),
until the test releases it. The test process plays the daemon and never touches the mount
itself. While the mount hangs we check that:

* calls on the hung domain's pool end with StorageTimeout and the calling threads return;
* the threads the kernel holds in the mount all belong to that domain's helper process (the
  file system reports the callers' thread ids), none to the daemon or another helper;
* another domain's pool, on a plain directory, keeps answering;
* a saturated hung pool refuses further calls at once instead of piling them up;

and once released, that the same helper (not a restarted one) serves the mount again.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from virthost.storage.oop import ProcessPools, StorageTimeout, TooManyRequests

pytestmark = pytest.mark.integration

BLOCKFS = Path(__file__).with_name("blockfs.py")
METADATA = b"CLASS=Data\nDESCRIPTION=hung-domain\nVERSION=5\n"
IDS = bytes(range(256)) * 32
WAIT_LIMIT = 30.0


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "mounting a FUSE file system needs root"
    if not os.path.exists("/dev/fuse"):
        return "this machine has no /dev/fuse"
    if shutil.which("fusermount3") is None:
        return "fusermount3 is missing: run scripts/install-deps.sh (Debian package fuse3)"
    if importlib.util.find_spec("fusepy") is None:
        return "fusepy is missing: run scripts/install-deps.sh (Debian package python3-fusepy)"
    return None


def eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_LIMIT
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        time.sleep(0.01)


def _mounted(path: Path) -> bool:
    with open("/proc/self/mounts") as mounts:
        return any(line.split()[1] == str(path) for line in mounts)


def _process_of(tid: int) -> int | None:
    """The process (thread group) a kernel thread id belongs to."""
    try:
        with open(f"/proc/{tid}/status") as status:
            for line in status:
                if line.startswith("Tgid:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        return None
    return None


class BlockFS:
    """The blockfs.py server and its mount; every exit path unmounts."""

    def __init__(self, mountpoint: Path, log: Path) -> None:
        self.mountpoint = mountpoint
        mountpoint.mkdir()
        self._log = log
        self._lines: queue.Queue[str] = queue.Queue()
        with open(log, "wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, str(BLOCKFS), str(mountpoint)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        threading.Thread(target=self._pump, daemon=True).start()
        self._expect("ready")

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.strip())
        self._lines.put("<exited>")

    def _expect(self, prefix: str) -> str:
        try:
            line = self._lines.get(timeout=WAIT_LIMIT)
        except queue.Empty:
            line = "<silent>"
        if not line.startswith(prefix):
            pytest.fail(f"blockfs said {line!r}, not {prefix!r}; log: {self._log.read_text()}")
        return line

    def _command(self, command: str, answer: str) -> str:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._expect(answer)

    def block(self) -> None:
        self._command("block", "ok")

    def release(self) -> None:
        if self.process.poll() is None:
            self._command("release", "ok")

    def waiting(self) -> list[int]:
        """Thread ids of the callers the mount holds right now."""
        return [int(tid) for tid in self._command("waiting", "waiting").split()[1:]]

    def unmount(self) -> None:
        try:
            self.release()
        finally:
            subprocess.run(["fusermount3", "-u", "-z", str(self.mountpoint)], check=False)
            try:
                self.process.wait(WAIT_LIMIT)
            except subprocess.TimeoutExpired:
                self.process.kill()  # closing /dev/fuse aborts whatever still waits
                self.process.wait()
            if _mounted(self.mountpoint):
                subprocess.run(["umount", "-l", str(self.mountpoint)], check=False)
        assert not _mounted(self.mountpoint), "blockfs is still mounted"


class Background:
    def __init__(self, func: Callable[[], object]) -> None:
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(func,), daemon=True)
        self._thread.start()

    def _run(self, func: Callable[[], object]) -> None:
        try:
            func()
        except BaseException as e:
            self.error = e

    def join(self) -> None:
        self._thread.join(WAIT_LIMIT)
        assert not self._thread.is_alive(), "a daemon thread is blocked on the hung mount"


@pytest.fixture
def blockfs(tmp_path: Path) -> Iterator[BlockFS]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    fs = BlockFS(tmp_path / "mnt", tmp_path / "blockfs.log")
    try:
        yield fs
    finally:
        fs.unmount()


def _make_pools(blockfs: BlockFS, **settings: float) -> Iterator[ProcessPools]:
    pools = ProcessPools(timeout=1.0, reap_interval=0, **settings)  # type: ignore[arg-type]
    try:
        yield pools
    finally:
        blockfs.release()  # let stuck helper threads return before their helpers are stopped
        pools.close()


@pytest.fixture
def pools(blockfs: BlockFS) -> Iterator[ProcessPools]:
    yield from _make_pools(blockfs)


@pytest.fixture
def small_pools(blockfs: BlockFS) -> Iterator[ProcessPools]:
    yield from _make_pools(blockfs, max_threads=2, max_queued=2)


def test_hung_mount_blocks_only_its_own_domain(
    blockfs: BlockFS, pools: ProcessPools, tmp_path: Path
) -> None:
    mnt = blockfs.mountpoint
    hung, healthy = pools.get("sd-hung"), pools.get("sd-healthy")
    plain = tmp_path / "plain"
    plain.mkdir()

    assert hung.listdir(mnt) == ["dom_md", "metadata"]
    assert hung.read_file(mnt / "metadata") == METADATA
    assert hung.directio_read(mnt / "dom_md" / "ids") == IDS[:4096]
    hung_pid = hung.helper_pid
    assert hung_pid is not None

    blockfs.block()
    calls = [
        Background(lambda: hung.stat(mnt / "metadata")),
        Background(lambda: hung.read_file(mnt / "metadata")),
        Background(lambda: hung.listdir(mnt / "dom_md")),
        Background(lambda: hung.directio_read(mnt / "dom_md" / "ids")),
    ]
    eventually(lambda: bool(blockfs.waiting()), "the mount holds a caller")
    for call in calls:
        call.join()
        assert isinstance(call.error, StorageTimeout), call.error

    # The mount is still hung, and only the hung domain's helper is stuck in it.
    stuck = blockfs.waiting()
    assert stuck
    assert {_process_of(tid) for tid in stuck} == {hung_pid}

    # Another domain keeps answering meanwhile.
    for i in range(20):
        healthy.write_file(plain / f"vol-{i}.meta", f"SIZE={i}\n".encode())
        assert healthy.readlines(plain / f"vol-{i}.meta") == [f"SIZE={i}"]
    assert len(healthy.listdir(plain)) == 20
    assert healthy.statvfs(plain).f_bsize > 0
    assert healthy.helper_pid not in (None, hung_pid)

    # The hung domain's helper is alive: its free threads answer what avoids the mount.
    hung.ping()
    assert hung.exists(plain / "vol-0.meta")
    assert blockfs.waiting(), "the mount was released too early for the test to mean anything"

    blockfs.release()
    eventually(lambda: not blockfs.waiting(), "the stuck helper threads return")
    assert hung.read_file(mnt / "metadata") == METADATA
    assert hung.stat(mnt / "dom_md" / "ids").st_size == len(IDS)
    assert hung.helper_pid == hung_pid  # the same helper, never restarted


def test_saturated_hung_domain_fails_fast_and_recovers(
    blockfs: BlockFS, small_pools: ProcessPools, tmp_path: Path
) -> None:
    mnt = blockfs.mountpoint
    hung, healthy = small_pools.get("sd-hung"), small_pools.get("sd-healthy")
    assert hung.exists(mnt / "metadata")
    hung_pid = hung.helper_pid

    blockfs.block()
    for expected_stuck in (1, 2):  # both helper threads end up stuck in the mount
        with pytest.raises(StorageTimeout):
            hung.stat(mnt / "metadata")
        eventually(lambda n=expected_stuck: len(blockfs.waiting()) == n, "a thread is stuck")
    for _ in range(2):  # then the queue fills with calls nobody can run
        with pytest.raises(StorageTimeout):
            hung.ping()
    with pytest.raises(TooManyRequests):
        hung.stat(mnt / "metadata")  # and the next call is refused at once
    assert healthy.listdir(tmp_path) == ["blockfs.log", "mnt"]
    assert {_process_of(tid) for tid in blockfs.waiting()} == {hung_pid}

    blockfs.release()

    def serves_the_mount() -> bool:
        try:
            return hung.read_file(mnt / "metadata") == METADATA
        except (TooManyRequests, StorageTimeout):
            return False  # the backlog is still draining

    eventually(serves_the_mount, "the hung domain serves again")
    assert hung.helper_pid == hung_pid
