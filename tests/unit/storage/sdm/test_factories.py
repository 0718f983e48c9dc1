"""The SDM job factories: which verbs they serve, what they refuse at once, what can abort."""

from __future__ import annotations

from unittest import mock

import pytest

from virthost.api.sdm import SdmApi
from virthost.common import errors
from virthost.storage import errors as se
from virthost.storage.jobs import JobRegistry
from virthost.storage.jobs import sdmrequests as req
from virthost.storage.sdm import SdmContext, job_factories

from .conftest import new_id

SD, IMG, VOL = new_id(), new_id(), new_id()


@pytest.fixture
def factories() -> dict[str, req.JobFactory[object]]:
    ctx = SdmContext(mock.Mock(), mock.Mock(), mock.Mock(), mock.Mock(), 1.0)
    return job_factories(ctx)


def volume(vol: str = VOL) -> req.VolumeEndpoint:
    return req.VolumeEndpoint(SD, IMG, vol)


def test_the_four_verbs_plug_into_sdm_api(factories: dict[str, req.JobFactory[object]]) -> None:
    assert sorted(factories) == ["amend_volume", "copy_data", "merge", "update_volume"]
    SdmApi(mock.Mock(spec=JobRegistry), factories)  # refuses verbs SDM does not have


def test_only_a_copy_can_be_aborted(factories: dict[str, req.JobFactory[object]]) -> None:
    works = {
        "copy_data": req.CopyDataRequest(
            req.DivEndpoint(volume()), req.DivEndpoint(volume(new_id()))
        ),
        "update_volume": req.UpdateVolumeRequest(volume(), req.VolumeAttributes(description="d")),
        "amend_volume": req.AmendVolumeRequest(volume(), "1.1"),
        "merge": req.MergeRequest(req.SubchainInfo(SD, IMG, VOL, new_id())),
    }
    abortable = {
        verb: factories[verb](new_id(), request).abortable for verb, request in works.items()
    }
    assert abortable == {
        "copy_data": True,
        "update_volume": False,
        "amend_volume": False,
        "merge": False,
    }


def test_what_is_refused_when_the_verb_is_called(
    factories: dict[str, req.JobFactory[object]],
) -> None:
    external = req.ExternalEndpoint("nbd://server/export")
    with pytest.raises(errors.UnsupportedOperation):
        factories["copy_data"](new_id(), req.CopyDataRequest(external, req.DivEndpoint(volume())))
    with pytest.raises(errors.UnsupportedOperation):
        factories["copy_data"](new_id(), req.CopyDataRequest(req.DivEndpoint(volume()), external))
    with pytest.raises(se.InvalidParameterException):
        factories["copy_data"](
            new_id(), req.CopyDataRequest(req.DivEndpoint(volume()), req.DivEndpoint(volume()))
        )
    merge = req.MergeRequest(req.SubchainInfo(SD, IMG, VOL, new_id()), merge_bitmaps=True)
    with pytest.raises(errors.UnsupportedOperation):
        factories["merge"](new_id(), merge)
