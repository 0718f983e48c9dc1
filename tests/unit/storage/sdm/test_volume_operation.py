"""The generation/legality protocol of SDM work, and qemu-img progress as job progress."""

from __future__ import annotations

import threading

import pytest

from virthost.storage import errors as se
from virthost.storage.jobs import JobContext, JobStatus
from virthost.storage.sdm import volume_operation
from virthost.storage.sdm.context import progress_reporter

from .conftest import WAIT, Env, MiB, RunningJob, new_id, run_in_job


def raw_volume(env: Env) -> tuple[str, str]:
    img, vol = new_id(), new_id()
    env.store.create_volume(env.sd, img, vol, MiB, "RAW", "SPARSE", "DATA", "", None, None)
    return img, vol


def test_illegal_during_the_work_then_legal_with_the_next_generation(env: Env) -> None:
    img, vol = raw_volume(env)
    seen = []
    with volume_operation(env.ctx.locate(env.sd, img, vol), 0) as volume:
        seen.append(env.meta(img, vol).legality.value)
        assert volume.metadata.legality.value == "ILLEGAL"
    md = env.meta(img, vol)
    assert seen == ["ILLEGAL"]
    assert (md.legality.value, md.generation) == ("LEGAL", 1)


def test_a_generation_mismatch_touches_nothing(env: Env) -> None:
    img, vol = raw_volume(env)
    ran = []
    volume = env.ctx.locate(env.sd, img, vol)
    with pytest.raises(se.GenerationMismatch) as e, volume_operation(volume, 4):
        ran.append(True)
    assert e.value.code == 911 and "requested generation 4, actual 0" in str(e.value)
    md = env.meta(img, vol)
    assert (ran, md.legality.value, md.generation) == ([], "LEGAL", 0)


def test_failed_work_leaves_the_volume_illegal_with_its_old_generation(env: Env) -> None:
    img, vol = raw_volume(env)
    volume = env.ctx.locate(env.sd, img, vol)
    with pytest.raises(RuntimeError), volume_operation(volume, None):
        raise RuntimeError("qemu-img died")
    md = env.meta(img, vol)
    assert (md.legality.value, md.generation) == ("ILLEGAL", 0)
    # The retry the engine makes with the generation it knows is accepted.
    with volume_operation(env.ctx.locate(env.sd, img, vol), 0):
        pass
    assert (env.meta(img, vol).legality.value, env.meta(img, vol).generation) == ("LEGAL", 1)


def test_without_set_illegal_only_the_generation_moves_and_wraps(env: Env) -> None:
    img, vol = raw_volume(env)
    env.store.update_volume(env.sd, img, vol, legality="ILLEGAL", generation=999)
    with volume_operation(env.ctx.locate(env.sd, img, vol), 999, set_illegal=False):
        pass
    md = env.meta(img, vol)
    assert (md.legality.value, md.generation) == ("ILLEGAL", 0)


def test_progress_is_clamped_and_reported() -> None:
    def work(ctx: JobContext) -> None:
        report = progress_reporter(ctx)
        report(42.5)
        report(100.01)

    job = run_in_job(work)
    assert (job.status, job.progress) == (JobStatus.DONE, 100.0)


def test_an_abort_raises_from_the_next_progress_report() -> None:
    reported, may_report = threading.Event(), threading.Event()
    reached: list[float] = []

    def work(ctx: JobContext) -> None:
        report = progress_reporter(ctx)
        report(10.0)
        reported.set()
        assert may_report.wait(WAIT)
        report(20.0)
        reached.append(20.0)

    running = RunningJob(work)
    assert reported.wait(WAIT)
    running.job.abort()
    may_report.set()
    running.join()
    assert running.job.status is JobStatus.ABORTED
    assert (running.job.progress, reached) == (10.0, [])
