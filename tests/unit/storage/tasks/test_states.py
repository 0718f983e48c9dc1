"""The task state machine: which moves are allowed, and what the engine is told."""

from __future__ import annotations

import pytest

from virthost.storage import errors as se
from virthost.storage.tasks.states import (
    ACTIVE_STATES,
    DONE_STATES,
    TaskState,
    can_move,
    check_move,
    wire_pair,
)

S = TaskState


@pytest.mark.parametrize(
    ("state", "pair"),
    [
        (S.INIT, ("running", "")),
        (S.QUEUED, ("running", "")),
        (S.RUNNING, ("running", "")),
        (S.FINISHED, ("finished", "success")),
        (S.ABORTING, ("aborting", "")),
        (S.RECOVERING, ("cleaning", "")),
        (S.RECOVERED, ("finished", "cleanSuccess")),
        (S.FAILED, ("finished", "cleanFailure")),
    ],
)
def test_deprecated_wire_pairs(state: TaskState, pair: tuple[str, str]) -> None:
    assert wire_pair(state) == pair


def test_state_names_are_vdsms() -> None:
    assert {str(state) for state in S} == {
        "init", "queued", "running", "finished", "aborting", "recovering", "recovered", "failed",
    }  # fmt: skip


def test_done_and_active_states() -> None:
    assert set(DONE_STATES) == {S.FINISHED, S.RECOVERED, S.FAILED}
    assert all(state.done for state in DONE_STATES)
    assert not any(state.done for state in ACTIVE_STATES)


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (S.INIT, S.QUEUED),
        (S.QUEUED, S.RUNNING),
        (S.RUNNING, S.FINISHED),
        (S.RUNNING, S.ABORTING),
        (S.QUEUED, S.ABORTING),
        (S.INIT, S.ABORTING),
        (S.ABORTING, S.RECOVERING),
        (S.FINISHED, S.RECOVERING),
        (S.RECOVERING, S.RECOVERED),
        (S.RECOVERING, S.FAILED),
    ],
)
def test_allowed_moves(source: TaskState, target: TaskState) -> None:
    assert can_move(source, target)
    check_move("t", source, target)


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (S.RUNNING, S.RECOVERED),  # a rollback always goes through aborting and recovering
        (S.QUEUED, S.FINISHED),
        (S.FINISHED, S.RUNNING),
        (S.RECOVERED, S.RECOVERING),  # rolled back once is enough
        (S.FAILED, S.RECOVERING),
        (S.ABORTING, S.FINISHED),
        (S.RECOVERING, S.FINISHED),
    ],
)
def test_forbidden_moves_raise_410(source: TaskState, target: TaskState) -> None:
    assert not can_move(source, target)
    with pytest.raises(se.TaskStateError) as info:
        check_move("t", source, target)
    assert info.value.code == 410


def test_ended_states_go_nowhere_but_revert() -> None:
    for state in S:
        targets = {target for target in S if can_move(state, target)}
        if state is S.FINISHED:
            assert targets == {S.RECOVERING}
        elif state.done:
            assert targets == set()
