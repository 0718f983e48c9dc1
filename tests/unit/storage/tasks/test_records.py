"""The ``field = value`` text of task files: escaping, strict parsing, records from fields."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from virthost.storage.tasks.records import (
    RecordFormatError,
    RecoveryStep,
    TaskRecord,
    decode_fields,
    encode_fields,
    escape,
    unescape,
)
from virthost.storage.tasks.states import TaskState

TASK_ID = "6f1f6b1c-3c2e-4f0a-9d5e-1b2c3d4e5f60"


@given(st.text())
def test_any_text_round_trips_on_one_line(value: str) -> None:
    escaped = escape(value)
    assert "\n" not in escaped and "\r" not in escaped
    escaped.encode("utf-8")  # lone surrogates are escaped too
    assert unescape(escaped) == value


def test_a_newline_cannot_forge_a_field() -> None:
    data = encode_fields({"message": "boom\nstate = finished", "state": "running"})
    assert data.count(b"\n") == 2
    assert decode_fields(data) == {"message": "boom\nstate = finished", "state": "running"}


def test_escapes_are_readable() -> None:
    assert escape("a\\b\nc\td\x00") == "a\\\\b\\nc\\td\\u0000"


@pytest.mark.parametrize("text", ["bad \\q escape", "ends with \\", "\\u12"])
def test_bad_escapes_are_refused(text: str) -> None:
    with pytest.raises(RecordFormatError):
        unescape(text)


@pytest.mark.parametrize(
    "data",
    [b"no separator\n", b"a = 1\na = 2\n", b"bad name! = x\n", b"\xff = x\n", b" = x\n"],
)
def test_malformed_files_are_refused(data: bytes) -> None:
    with pytest.raises(RecordFormatError):
        decode_fields(data)


def test_bad_field_names_are_not_written() -> None:
    with pytest.raises(ValueError):
        encode_fields({"a\nb": "x"})


def test_values_may_hold_the_separator_and_spaces() -> None:
    fields = {"message": " a = b ", "empty": ""}
    assert decode_fields(encode_fields(fields)) == fields


def test_recovery_step_fields() -> None:
    step = RecoveryStep("remove_volume", {"sdUUID": "x", "name": "y"})
    fields = step.to_fields()
    assert fields == {"name": "remove_volume", "params.sdUUID": "x", "params.name": "y"}
    assert RecoveryStep.from_fields(fields) == step


def test_recovery_step_is_frozen_against_its_callers_dict() -> None:
    params = {"path": "/a"}
    step = RecoveryStep("remove", params)
    params["path"] = "/b"
    assert step.params["path"] == "/a"


def test_recovery_step_refuses_strange_fields() -> None:
    with pytest.raises(RecordFormatError):
        RecoveryStep.from_fields({"name": "x", "other": "y"})
    with pytest.raises(RecordFormatError):
        RecoveryStep.from_fields({"params.a": "y"})


def test_record_from_its_own_fields() -> None:
    steps = (RecoveryStep("a", {"p": "1"}), RecoveryStep("b"))
    record = TaskRecord(
        TASK_ID, "Volume.create", TaskState.FINISHED, "pool", 0, "done", steps, {"k": [1, "v"]}
    )
    again = TaskRecord.from_files(
        record.task_fields(), [s.to_fields() for s in steps], record.result_fields()
    )
    assert again == record


@pytest.mark.parametrize(
    ("change", "recoveries"),
    [
        ({"state": "dancing"}, 0),
        ({"code": "x"}, 0),
        ({"recoveries": "2"}, 1),
        ({"id": None}, 0),
    ],
)
def test_inconsistent_records_are_refused(change: dict[str, str | None], recoveries: int) -> None:
    fields = TaskRecord(TASK_ID, "v", TaskState.RUNNING).task_fields()
    for key, value in change.items():
        if value is None:
            del fields[key]
        else:
            fields[key] = value
    with pytest.raises(RecordFormatError):
        TaskRecord.from_files(fields, [RecoveryStep("a").to_fields()] * recoveries, None)
