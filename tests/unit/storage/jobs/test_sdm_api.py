"""SdmApi: every SDM verb validates, asks its factory for the work and runs it as a job."""

from __future__ import annotations

import inspect
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from virthost.api.dispatch import Bridge
from virthost.api.schema import Schema
from virthost.api.sdm import SDM_VERBS, SdmApi
from virthost.common import errors
from virthost.storage.jobs import JobContext, JobRegistry, JobWork
from virthost.storage.jobs import sdmrequests as req

from .support import WAIT, EventLog

SD = "11111111-2222-3333-4444-555555555555"
IMG = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
VOL = "99999999-8888-7777-6666-555555555555"
BASE = "12345678-1234-1234-1234-123456789abc"
VOL_INFO = {"sd_id": SD, "img_id": IMG, "vol_id": VOL, "generation": 3}
VOLUME = req.VolumeEndpoint(SD, IMG, VOL, 3)

# verb -> (wire params after job_id, the request its factory must receive)
CASES: dict[str, tuple[dict[str, Any], object]] = {
    "copy_data": (
        {
            "source": {"endpoint_type": "div", **VOL_INFO},
            "destination": {"endpoint_type": "external", "url": "nbd+unix:///?socket=/s"},
            "copy_bitmaps": True,
        },
        req.CopyDataRequest(
            req.DivEndpoint(VOLUME), req.ExternalEndpoint("nbd+unix:///?socket=/s"), True
        ),
    ),
    "sparsify_volume": ({"vol_info": VOL_INFO}, req.VolumeRequest(VOLUME)),
    "merge": (
        {
            "subchain_info": {"sd_id": SD, "img_id": IMG, "top_id": VOL, "base_id": BASE},
            "merge_bitmaps": False,
        },
        req.MergeRequest(req.SubchainInfo(SD, IMG, VOL, BASE), False),
    ),
    "amend_volume": (
        {"vol_info": VOL_INFO, "qcow2_attr": {"compat": "1.1"}},
        req.AmendVolumeRequest(VOLUME, "1.1"),
    ),
    "move_domain_device": (
        {"move_params": {"sd_id": SD, "guid": "360014051", "dst_guids": ["360014052"]}},
        req.MoveDeviceRequest(SD, "360014051", ("360014052",)),
    ),
    "reduce_domain": (
        {"reduce_params": {"sd_id": SD, "guid": "360014051"}},
        req.ReduceDomainRequest(SD, "360014051"),
    ),
    "update_volume": (
        {"vol_info": VOL_INFO, "vol_attr": {"legality": "LEGAL", "type": 6}},
        req.UpdateVolumeRequest(VOLUME, req.VolumeAttributes(legality="LEGAL", role="SHARED")),
    ),
    "add_bitmap": (
        {"vol_info": VOL_INFO, "bitmap": "backup-1"},
        req.BitmapRequest(VOLUME, "backup-1"),
    ),
    "remove_bitmap": (
        {"vol_info": VOL_INFO, "bitmap": "backup-1"},
        req.BitmapRequest(VOLUME, "backup-1"),
    ),
    "clear_bitmaps": ({"vol_info": VOL_INFO}, req.VolumeRequest(VOLUME)),
}


class RecordingFactory:
    """A job factory whose work records the thread it ran on."""

    def __init__(self, abortable: bool = False) -> None:
        self.requests: list[tuple[str, object]] = []
        self.ran_on: list[threading.Thread] = []
        self.abortable = abortable

    def __call__(self, job_id: str, request: object) -> JobWork:
        self.requests.append((job_id, request))
        return JobWork(run=self._work, abortable=self.abortable)

    def _work(self, ctx: JobContext) -> None:
        self.ran_on.append(threading.current_thread())
        if self.abortable:
            ctx.wait_for_abort(WAIT)
            ctx.check_aborted()


def new_id() -> str:
    return str(uuid.uuid4())


def call_verb(api: SdmApi, verb: str, job_id: str) -> None:
    getattr(api, verb)(job_id=job_id, **CASES[verb][0])


def test_the_verbs_match_the_schema_names_and_parameters() -> None:
    verbs = Schema.default().namespaces["SDM"]
    assert set(verbs) == SDM_VERBS == set(CASES)
    for name, verb in verbs.items():
        signature = inspect.signature(getattr(SdmApi, name))
        assert list(signature.parameters)[1:] == [p.name for p in verb.params], name


@pytest.mark.parametrize("verb", sorted(SDM_VERBS))
def test_each_verb_runs_its_factory_work_as_a_job(
    verb: str, registry: JobRegistry, event_log: EventLog
) -> None:
    factory = RecordingFactory()
    api = SdmApi(registry, {verb: factory})
    job_id = new_id()
    call_verb(api, verb, job_id.upper())
    event_log.wait_for(job_id, "done")
    assert factory.requests == [(job_id, CASES[verb][1])]
    assert factory.ran_on and factory.ran_on[0] is not threading.current_thread()
    info = api.get_jobs(None, [job_id])[job_id]
    assert info["description"] == verb and info["job_type"] == "storage"


@pytest.mark.parametrize("verb", sorted(SDM_VERBS))
def test_a_verb_without_factory_answers_44(verb: str, registry: JobRegistry) -> None:
    api = SdmApi(registry, {})
    with pytest.raises(errors.MethodNotImplemented) as exc:
        call_verb(api, verb, new_id())
    assert exc.value.code == 44
    assert registry.get_jobs() == {}


@pytest.mark.parametrize(
    "job_id", ["", "../x", "1234", None, "6c2ac3c9-7d3f-4bd4-8a61-3ef0d0f3a2a1/"]
)
def test_a_bad_job_id_is_refused_before_the_factory(job_id: Any, registry: JobRegistry) -> None:
    factory = RecordingFactory()
    api = SdmApi(registry, {"sparsify_volume": factory})
    with pytest.raises(errors.InvalidParameter) as exc:
        api.sparsify_volume(job_id, VOL_INFO)
    assert exc.value.code == 91 and exc.value.context["param"] == "job_id"
    assert factory.requests == []


def test_a_bad_nested_uuid_is_refused_naming_it(registry: JobRegistry) -> None:
    factory = RecordingFactory()
    api = SdmApi(registry, {"update_volume": factory})
    with pytest.raises(errors.InvalidParameter) as exc:
        api.update_volume(new_id(), {**VOL_INFO, "img_id": "../../etc"}, {})
    assert exc.value.context["param"] == "vol_info.img_id"
    assert factory.requests == [] and registry.get_jobs() == {}


def test_a_factory_error_answers_the_verb_and_registers_nothing(registry: JobRegistry) -> None:
    def refusing(job_id: str, request: object) -> JobWork:
        raise errors.InvalidParameter("no such domain here")

    api = SdmApi(registry, {"clear_bitmaps": refusing})
    with pytest.raises(errors.InvalidParameter):
        api.clear_bitmaps(new_id(), VOL_INFO)
    assert registry.get_jobs() == {}


def test_a_reused_job_id_answers_job_exists(registry: JobRegistry, event_log: EventLog) -> None:
    api = SdmApi(registry, {"sparsify_volume": RecordingFactory()})
    job_id = new_id()
    api.sparsify_volume(job_id, VOL_INFO)
    with pytest.raises(errors.JobExists):
        api.sparsify_volume(job_id, VOL_INFO)
    event_log.wait_for(job_id, "done")


def test_abort_and_delete_go_to_the_registry(registry: JobRegistry, event_log: EventLog) -> None:
    factory = RecordingFactory(abortable=True)
    api = SdmApi(registry, {"copy_data": factory})
    job_id = new_id()
    call_verb(api, "copy_data", job_id)
    event_log.wait_for(job_id, "running")
    with pytest.raises(errors.JobNotDone):
        api.delete_job(job_id)
    api.abort_job(job_id)
    event_log.wait_for(job_id, "aborted")
    api.delete_job(job_id)
    assert api.get_jobs() == {}
    with pytest.raises(errors.NoSuchJob):
        api.abort_job(job_id)


def test_factories_for_unknown_verbs_are_a_wiring_error(registry: JobRegistry) -> None:
    with pytest.raises(ValueError, match="copy_date"):
        SdmApi(registry, {"copy_date": RecordingFactory()})


def test_the_bridge_dispatches_sdm_verbs_to_the_api(
    registry: JobRegistry, event_log: EventLog
) -> None:
    factory = RecordingFactory()
    bridge = Bridge(Schema.default(), {"SDM": SdmApi(registry, {"merge": factory})})
    bridge.set_ready()
    job_id = new_id()
    params = {"job_id": job_id, **CASES["merge"][0]}
    del params["merge_bitmaps"]  # the schema fills the default
    bridge.prepare("SDM.merge", params)()
    event_log.wait_for(job_id, "done")
    assert factory.requests == [(job_id, CASES["merge"][1])]
    not_plugged: Callable[[], Any] = bridge.prepare(
        "SDM.sparsify_volume", {"job_id": new_id(), "vol_info": VOL_INFO}
    )
    with pytest.raises(errors.MethodNotImplemented):
        not_plugged()
