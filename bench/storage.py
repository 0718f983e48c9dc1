"""Benchmark: storage verbs of virthostd against the tools they wrap, measured in one run.

Against the real virthost-supervisor and virthostd (started here, joining lockspaces of the
local sanlock daemon with io_timeout 1), on a LOCALFS pool this host is SPM of:

1. Volume.create latency through the API (the call, then Task.getStatus until the task is
   finished), sparse RAW volumes and COW snapshots (each over the previous leaf, building the
   chain of section 3), against ``qemu-img create`` of the same image run directly, alternating.
2. SDM.copy_data of a volume of real (random) data, followed with Host.getJobs until done,
   against ``qemu-img convert -O raw`` of the same file into the same directory, alternating:
   MB/s and their ratio. A second baseline copies with ``-t none -T none`` (no page cache),
   as the daemon does, to tell the cost of the cache mode from the daemon's own.
3. Image.prepare of a chain of 1 base + 49 COW snapshots created through the API (for
   reference: ``qemu-img info --backing-chain`` walking the same chain).
4. Host.ping2 latency while StorageDomain.getInfo calls on a domain whose storage hangs (a
   FUSE mount that stops answering, see bench/_storage.py) pile up in the daemon, against the
   same load on the same domain while it answers. The calls on the hung domain end with code
   3 once the out-of-process I/O timeout passes, so the hung window outlasts that timeout.

Everything it creates is removed on the way out, whatever failed: the hung mount is released
and unmounted, the pool disconnected (its lockspaces left), the daemon stopped, the
directories removed.

    venv/bin/python bench/storage.py [--creates 20] [--chain 50] [--copy-mib 512]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _daemon  # first: it puts tests/ on sys.path (fixtures)
import _storage

from fixtures import sanlock as sanlock_fixtures
from virthost.api.schema import Schema
from virthost.client import Client
from virthost.client import errors as client_errors
from virthost.storage import constants as sc
from virthost.storage.oop.client import DEFAULT_TIMEOUT as OOP_TIMEOUT

MiB = _storage.MiB
TARGET_COPY_RATIO = 0.95
TARGET_PING_RATIO = 2.0
NOT_IMPLEMENTED = 44
TASK_POLL = 0.005  # seconds between Task.getStatus calls while timing a Volume.create
JOB_POLL = 0.01  # seconds between Host.getJobs calls while timing a copy
CALL_TIMEOUT = OOP_TIMEOUT + 60.0  # client side: longer than any storage call may block
LOADERS = 4  # threads calling StorageDomain.getInfo on the domain that hangs
LOAD_PAUSE = 0.1  # seconds each of them rests between calls
PING_PAUSE = 0.01  # seconds between two Host.ping2 calls
HUNG_NAME = "bench-hangfs"  # the hung "mount" under <repository>/mnt


def note(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def timed(call: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    call()
    return time.perf_counter() - t0


def run_command(argv: list[str]) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=300)


def alternate(ours: Callable[[int], None], baseline: Callable[[int], None], runs: int) -> None:
    """Run both ``runs`` times, changing which goes first each time (fair to a warm cache)."""
    for run in range(runs):
        for step in (ours, baseline) if run % 2 == 0 else (baseline, ours):
            step(run)


# --- 1 and 3: volumes and the chain ----------------------------------------------------------


@dataclass
class Creates:
    raw: list[float] = field(default_factory=list)
    raw_baseline: list[float] = field(default_factory=list)
    cow: list[float] = field(default_factory=list)
    cow_baseline: list[float] = field(default_factory=list)


def timed_create(
    cli: Client, pool: _storage.LocalPool, img: str, vol: str, **changes: Any
) -> float:
    """Seconds from Volume.create to Task.getStatus reporting the task finished."""
    t0 = time.perf_counter()
    task = cli.Volume.create(**pool.volume_args(img, vol, **changes))
    status = _storage.wait_task(cli, task, TASK_POLL)
    elapsed = time.perf_counter() - t0
    cli.Task.clear(taskID=task)
    if status["taskResult"] != "success":
        raise RuntimeError(f"Volume.create of {vol} failed: {status}")
    return elapsed


def bench_raw_creates(
    cli: Client, pool: _storage.LocalPool, scratch: Path, count: int, result: Creates
) -> None:
    def ours(run: int) -> None:
        result.raw.append(timed_create(cli, pool, str(uuid.uuid4()), str(uuid.uuid4())))

    def baseline(run: int) -> None:
        argv = ["qemu-img", "create", "-f", "raw", str(scratch / f"raw-{run}"), str(_storage.GiB)]
        result.raw_baseline.append(timed(lambda: run_command(argv)))

    alternate(ours, baseline, count)


@dataclass
class Chain:
    img: str
    volumes: list[str]

    @property
    def leaf(self) -> str:
        return self.volumes[-1]


def bench_chain(
    cli: Client, pool: _storage.LocalPool, scratch: Path, length: int, result: Creates
) -> Chain:
    """A sparse RAW base and ``length - 1`` COW snapshots, each over the last, through the API;
    the same chain built with qemu-img in ``scratch``, step by step in alternation."""
    chain = Chain(str(uuid.uuid4()), [str(uuid.uuid4())])
    pool.create_volume(cli, chain.img, chain.volumes[0])
    run_command(["qemu-img", "create", "-f", "raw", str(scratch / "chain-0"), str(_storage.GiB)])
    compat = sc.qcow2_compat(5)

    def ours(run: int) -> None:
        parent, vol = chain.volumes[-1], str(uuid.uuid4())
        over = {"volFormat": _storage.COW, "srcImgUUID": chain.img, "srcVolUUID": parent}
        result.cow.append(timed_create(cli, pool, chain.img, vol, **over))
        chain.volumes.append(vol)

    def baseline(run: int) -> None:
        # the daemon's command: the backing file named relative to the image's directory
        argv = ["qemu-img", "create", "-f", "qcow2", "-o", f"compat={compat}"]
        argv += ["-b", f"chain-{run}", "-F", "raw" if run == 0 else "qcow2"]
        argv += [str(scratch / f"chain-{run + 1}"), str(_storage.GiB)]
        result.cow_baseline.append(timed(lambda: run_command(argv)))

    alternate(ours, baseline, length - 1)
    return chain


@dataclass
class Prepare:
    calls: list[float]
    volumes: int
    qemu_info: list[float]


def bench_prepare(cli: Client, pool: _storage.LocalPool, chain: Chain, count: int) -> Prepare:
    image = {"storagepoolID": pool.sp, "storagedomainID": pool.master, "imageID": chain.img}

    def prepare() -> dict[str, Any]:
        return dict(cli.Image.prepare(volumeID=chain.leaf, **image))

    volumes = len(prepare()["imgVolumesInfo"])  # also warms the caches both sides use
    calls = [timed(prepare) for _ in range(count)]
    leaf = pool.image_dir(chain.img) / chain.leaf
    argv = ["qemu-img", "info", "-U", "--backing-chain", "--output", "json", str(leaf)]
    qemu_info = [timed(lambda: run_command(argv)) for _ in range(max(1, count // 2))]
    cli.Image.teardown(**image)
    return Prepare(calls, volumes, qemu_info)


# --- 2. copy ----------------------------------------------------------------------------------


@dataclass
class Copy:
    size: int
    ours: list[float] = field(default_factory=list)
    plain: list[float] = field(default_factory=list)
    direct: list[float] = field(default_factory=list)
    implemented: bool = True
    mismatches: int = 0


def fill_with_data(path: Path, size: int) -> None:
    """Random data (qemu-img skips zeros, so zeros would measure nothing), on disk."""
    chunks = [os.urandom(MiB) for _ in range(8)]
    with path.open("r+b") as f:
        for index in range(size // MiB):
            f.write(chunks[index % len(chunks)])
        f.flush()
        os.fsync(f.fileno())


def same_samples(a: Path, b: Path, size: int) -> bool:
    """The first, middle and last MiB of both files are equal (a cheap check of a copy)."""
    with a.open("rb") as fa, b.open("rb") as fb:
        for offset in (0, size // 2, size - MiB):
            fa.seek(offset)
            fb.seek(offset)
            if fa.read(MiB) != fb.read(MiB):
                return False
    return True


def copy_with_job(
    cli: Client, pool: _storage.LocalPool, src: tuple[str, str], dst: tuple[str, str]
) -> float:
    def endpoint(img: str, vol: str) -> dict[str, str]:
        return {"endpoint_type": "div", "sd_id": pool.master, "img_id": img, "vol_id": vol}

    job = str(uuid.uuid4())
    t0 = time.perf_counter()
    cli.SDM.copy_data(job_id=job, source=endpoint(*src), destination=endpoint(*dst))

    def finished() -> dict[str, Any] | None:
        info = cli.Host.getJobs(job_ids=[job]).get(job)
        return dict(info) if info and info["status"] not in ("pending", "running") else None

    info = _storage.wait_until(finished, 600, f"copy job {job}", JOB_POLL)
    elapsed = time.perf_counter() - t0
    if info["status"] != "done":
        raise RuntimeError(f"copy job {job} ended {info['status']}: {info.get('error')}")
    return elapsed


def bench_copy(cli: Client, pool: _storage.LocalPool, size: int, runs: int) -> Copy:
    result = Copy(size)
    src = (str(uuid.uuid4()), str(uuid.uuid4()))
    pool.create_volume(cli, *src, size=size)
    source = pool.image_dir(src[0]) / src[1]
    fill_with_data(source, size)
    target = source.parent / "bench-baseline-copy.raw"

    def ours(run: int) -> None:
        if not result.implemented:
            return
        dst = (str(uuid.uuid4()), str(uuid.uuid4()))
        pool.create_volume(cli, *dst, size=size)
        try:
            result.ours.append(copy_with_job(cli, pool, src, dst))
        except client_errors.ServerError as e:
            if e.code != NOT_IMPLEMENTED:
                raise
            result.implemented = False
            return
        if not same_samples(source, pool.image_dir(dst[0]) / dst[1], size):
            result.mismatches += 1

    def baseline(run: int) -> None:
        for options, into in (([], result.plain), (["-t", "none", "-T", "none"], result.direct)):
            argv = ["qemu-img", "convert", *options, "-f", "raw", "-O", "raw"]
            argv += [str(source), str(target)]
            try:
                into.append(timed(functools.partial(run_command, argv)))
            finally:
                target.unlink(missing_ok=True)

    alternate(ours, baseline, runs)
    return result


# --- 4. a hung domain -------------------------------------------------------------------------


@dataclass
class Hang:
    healthy: _storage.Pings
    hung: _storage.Pings
    healthy_calls: Counter[int]
    hung_calls: Counter[int]
    timeouts: list[float]  # seconds the getInfo calls that ended with code 3 took
    monitor: dict[str, Any]  # the hung domain in Host.getStorageRepoStats at the end
    master_probe: tuple[float, str]  # StorageDomain.getInfo of the healthy master meanwhile


def bench_hang(
    services: _daemon.Services,
    schema: Schema,
    pool: _storage.LocalPool,
    scratch: Path,
    healthy_seconds: float,
    hung_seconds: float,
) -> Hang:
    """A domain on the hang file system, monitored; Host.ping2 under getInfo load on it, first
    while it answers, then while it hangs. The mount is released and unmounted, and the
    monitoring stopped, whatever fails."""
    sd = str(uuid.uuid4())

    def connect() -> Client:
        return _daemon.client(services, schema, timeout=CALL_TIMEOUT)

    def load() -> _storage.InfoLoad:
        return _storage.InfoLoad(connect, sd, LOADERS, LOAD_PAUSE, CALL_TIMEOUT + 10)

    def get_master_info() -> None:
        with connect() as cli:
            cli.StorageDomain.getInfo(storagedomainID=pool.master)

    tree = _storage.domain_tree(sd, HUNG_NAME, pool.domain_dir())
    mount = _storage.HangMount(services.workdir / "data-center" / "mnt" / HUNG_NAME, tree, scratch)
    try:
        with connect() as cli:
            if cli.StorageDomain.getInfo(storagedomainID=sd)["name"] != HUNG_NAME:
                raise RuntimeError(f"domain {sd} on the hang file system is not the one served")
            cli.Host.startMonitoringDomain(sdUUID=sd, hostID=_storage.HOST_ID)
            try:
                _storage.wait_until(
                    lambda: cli.Host.getStorageRepoStats(domains=[sd])[sd]["actual"] or None,
                    30,
                    "a first check of the hung domain",
                )
                note(f"4. {healthy_seconds:g} s of Host.ping2 with getInfo load, nothing hung")
                with load() as healthy_load:
                    healthy_load.start()
                    healthy = _storage.ping_for(cli, healthy_seconds, PING_PAUSE)
                note(f"4. the domain's storage hangs for {hung_seconds:g} s")
                # left from the inside out: the mount answers again before the calls are joined
                with (
                    ThreadPoolExecutor(1) as probes,
                    load() as hung_load,
                    _storage.blocked(mount),
                ):
                    hung_load.start()
                    probe = probes.submit(_storage.timed_outcome, get_master_info, 2.0)
                    hung = _storage.ping_for(cli, hung_seconds, PING_PAUSE)
                    monitor = dict(cli.Host.getStorageRepoStats(domains=[sd])[sd])
                    note("4. releasing the mount; waiting for the calls in flight")
                master_probe = probe.result()
            finally:
                mount.release()
                cli.Host.stopMonitoringDomain(sdUUID=sd)
    finally:
        mount.close()
    return Hang(
        healthy,
        hung,
        healthy_load.counts(),
        hung_load.counts(),
        hung_load.durations(3),
        monitor,
        master_probe,
    )


# --- report -----------------------------------------------------------------------------------


def pcts(values: list[float]) -> tuple[float, float, float]:
    return (
        _daemon.percentile(values, 0.5),
        _daemon.percentile(values, 0.9),
        _daemon.percentile(values, 0.99),
    )


def report_creates(creates: Creates) -> None:
    print("1. Volume.create through the API (call + Task.getStatus until finished)")
    print(f"   against qemu-img create run directly; Task.getStatus polled every {ms(TASK_POLL)}")
    print(f"  {'':<44} {'p50':>9} {'p90':>9}  {'ratio p50':>9}")

    def row(label: str, values: list[float], baseline: list[float] | None = None) -> None:
        p50, p90, _ = pcts(values)
        ratio = f"{p50 / _daemon.percentile(baseline, 0.5):>9.2f}" if baseline else ""
        print(f"  {f'{label} ({len(values)})':<44} {ms(p50):>9} {ms(p90):>9}  {ratio}")

    row("RAW sparse 1 GiB, Volume.create", creates.raw, creates.raw_baseline)
    row("  qemu-img create -f raw", creates.raw_baseline)
    row("COW snapshot, Volume.create", creates.cow, creates.cow_baseline)
    row("  qemu-img create -f qcow2 -b", creates.cow_baseline)
    print("   (a sparse RAW volume is a truncate in the domain's I/O helper, no qemu-img;")
    print(
        f"    the snapshots build the chain of section 3, each over the last leaf: length "
        f"2 to {len(creates.cow) + 1})"
    )


def report_copy(copy: Copy) -> None:
    mib = copy.size // MiB
    print(f"2. Copy of a {mib} MiB volume of random data (median of {len(copy.plain)} runs each)")

    def rate(values: list[float]) -> float:
        return copy.size / 1e6 / _daemon.median(values)

    plain, direct = rate(copy.plain), rate(copy.direct)
    if copy.implemented:
        ours = rate(copy.ours)
        print(f"  SDM.copy_data (job followed with Host.getJobs)  {ours:>8.0f} MB/s")
    else:
        print("  SDM.copy_data: not implemented")
    print(f"  qemu-img convert -O raw, same directory         {plain:>8.0f} MB/s")
    print(f"  qemu-img convert -t none -T none -O raw         {direct:>8.0f} MB/s")
    if copy.implemented:
        ratio = ours / plain
        print(
            f"  ratio SDM.copy_data / plain convert: {ratio:.2f}   "
            f"target >= {TARGET_COPY_RATIO:g}: {verdict(ratio >= TARGET_COPY_RATIO)}"
        )
        print(f"  ratio SDM.copy_data / convert without cache: {ours / direct:.2f}")
        if copy.mismatches:
            print(f"  WARNING: {copy.mismatches} copies differ from the source in sampled MiBs")


def report_prepare(prepare: Prepare) -> None:
    p50, p90, _ = pcts(prepare.calls)
    info = _daemon.percentile(prepare.qemu_info, 0.5)
    print(f"3. Image.prepare of a {prepare.volumes}-volume chain ({len(prepare.calls)} calls)")
    print(f"  p50 {ms(p50)}   p90 {ms(p90)}")
    print(f"  (reference: qemu-img info --backing-chain of the same leaf, p50 {ms(info)})")


def report_hang(hang: Hang) -> None:
    print(f"4. Host.ping2 while StorageDomain.getInfo on one domain hangs ({LOADERS} threads)")
    print(f"  {'':<30} {'calls':>6} {'p50':>9} {'p99':>9} {'max':>9}")
    for label, pings in (("domain answers", hang.healthy), ("domain hung", hang.hung)):
        p50, _, p99 = pcts(pings.latencies)
        label = f"{label} ({pings.sent_at[-1]:.0f} s)"
        print(
            f"  {label:<30} {len(pings.latencies):>6} {ms(p50):>9} {ms(p99):>9} "
            f"{ms(max(pings.latencies)):>9}"
        )
    p99s = [_daemon.percentile(p.latencies, 0.99) for p in (hang.hung, hang.healthy)]
    ratio = p99s[0] / p99s[1]
    print(
        f"  ratio p99 hung / answering: {ratio:.2f}   "
        f"target <= {TARGET_PING_RATIO:g}x: {verdict(ratio <= TARGET_PING_RATIO)}"
    )
    slowest = ", ".join(f"{ms(lat)} at {at:.1f} s" for lat, at in hang.hung.slowest(5))
    print(f"  slowest while hung (seconds after the hang began): {slowest}")

    def outcomes(counts: Counter[int]) -> str:
        named = {0: "ok", _storage.CLIENT_TIMEOUT: "client timeout"}
        return ", ".join(f"{named.get(c, f'code {c}')}: {n}" for c, n in sorted(counts.items()))

    print(f"  getInfo outcomes, domain answering: {outcomes(hang.healthy_calls)}")
    print(f"  getInfo outcomes, domain hung:      {outcomes(hang.hung_calls)}")
    if hang.timeouts:
        print(
            f"  calls ending with code 3 took {min(hang.timeouts):.1f}-{max(hang.timeouts):.1f} s "
            f"(out-of-process I/O timeout {OOP_TIMEOUT:g} s)"
        )
    m = hang.monitor
    print(
        f"  monitor of the hung domain at the end: valid {m.get('valid')}, code {m.get('code')}, "
        f"lastCheck {m.get('lastCheck')} s"
    )
    seconds, outcome = hang.master_probe
    print(
        f"  StorageDomain.getInfo of the healthy master meanwhile: {outcome} after {seconds:.1f} s"
    )


def other_daemons(ours: int) -> int:
    """virthostd processes that are not this benchmark's (their load is in the figures)."""
    count = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == ours:
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if argv and argv[0].endswith(b"virthostd"):
                count += 1
    return count


# --- main -------------------------------------------------------------------------------------


@contextlib.contextmanager
def local_sanlock(log_dir: Path) -> Iterator[None]:
    """This host's sanlock daemon: the running one, or one started (and stopped) here."""
    reason = sanlock_fixtures.unavailable_reason()
    if reason is not None:
        raise SystemExit(f"cannot run the storage benchmark: {reason}")
    with sanlock_fixtures.running_daemon(log_dir):
        yield


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--creates", type=int, default=20, help="RAW Volume.create calls (1)")
    parser.add_argument("--chain", type=int, default=50, help="volumes in the chain (1, 3)")
    parser.add_argument("--copy-mib", type=int, default=512, help="size of the copy (2)")
    parser.add_argument("--copies", type=int, default=5, help="copies of each kind (2)")
    parser.add_argument("--prepares", type=int, default=20, help="Image.prepare calls (3)")
    parser.add_argument("--healthy-seconds", type=float, default=30.0, help="(4)")
    parser.add_argument(
        "--hung-seconds", type=float, default=OOP_TIMEOUT + 5, help="(4) past the I/O timeout"
    )
    args = parser.parse_args()
    if min(args.creates, args.copies, args.prepares) < 1 or args.chain < 2 or args.copy_mib < 2:
        parser.error("counts must be at least 1, --chain and --copy-mib at least 2")
    reason = _storage.hang_fs_unavailable()
    if reason is not None:
        raise SystemExit(f"cannot run the storage benchmark: {reason}")

    schema = Schema.default()
    work = _daemon.make_workdir("virthost-bench-storage-")
    scratch = Path(tempfile.mkdtemp(prefix="baseline-", dir=work))
    t_start = time.monotonic()
    pool: _storage.LocalPool | None = None
    creates = Creates()
    try:
        with local_sanlock(work):
            overrides = _daemon.quiet_config(
                storage={"sanlock_io_timeout": 1, "domain_check_interval": 1.0}
            )
            services = _daemon.start(_daemon.make_pki(work), overrides, "virthost-bench-storage-")
            others = other_daemons(_daemon.daemon_pid(services))
            mount_root = str(services.workdir / "data-center" / "mnt")  # in every ids path
            try:
                with _daemon.client(services, schema, timeout=CALL_TIMEOUT) as cli:
                    note("setting up a LOCALFS pool, this host SPM")
                    pool = _storage.LocalPool.connect_directory(cli)
                    setup = timed(functools.partial(pool.create_and_start, cli))
                    note(f"1. {args.creates} RAW volumes, each way")
                    bench_raw_creates(cli, pool, scratch, args.creates, creates)
                    note(f"1./3. a chain of {args.chain} volumes, each way")
                    chain = bench_chain(cli, pool, scratch, args.chain, creates)
                    note(f"3. {args.prepares} Image.prepare calls")
                    prepare = bench_prepare(cli, pool, chain, args.prepares)
                    note(f"2. {args.copies} copies of {args.copy_mib} MiB each way")
                    copy = bench_copy(cli, pool, args.copy_mib * MiB, args.copies)
                hang = bench_hang(
                    services, schema, pool, scratch, args.healthy_seconds, args.hung_seconds
                )
            except BaseException:
                note("the daemon's log ends with:\n" + services.log_text()[-4000:])
                raise
            finally:
                if pool is not None:
                    for failure in pool.close(lambda: _daemon.client(services, schema)):
                        note(f"cleanup: {failure}")
                _daemon.cleanup(services)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    left = _storage.lockspaces_left(mount_root)

    print()
    print(
        f"virthostd storage benchmark: {os.cpu_count()} CPUs, LOCALFS domain on "
        f"{Path(tempfile.gettempdir())}, sanlock io_timeout 1 s, run took "
        f"{time.monotonic() - t_start:.0f} s\n(of which {setup:.1f} s to create and connect the "
        f"pool and become SPM)"
    )
    print()
    report_creates(creates)
    print()
    report_copy(copy)
    print()
    report_prepare(prepare)
    print()
    report_hang(hang)
    print()
    print(f"Other virthostd processes running on this machine during the run: {others}.")
    print(f"Lockspaces of this run still joined in sanlock: {len(left) or 'none'}.")
    for line in left:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
