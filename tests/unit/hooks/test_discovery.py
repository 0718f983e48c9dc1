"""Which scripts a hook point runs, and in what order."""

from __future__ import annotations

from pathlib import Path

import pytest

from unit.hooks.hook_scripts import XML, add_hook, assert_no_leftovers
from virthost.common.commands import CommandRunner
from virthost.hooks import (
    AFTER_GET_ALL_VM_STATS,
    AFTER_VM_DESTROY,
    BEFORE_VM_START,
    HookRunner,
)

POINT = BEFORE_VM_START


def test_hooks_are_the_executables_sorted_by_name(hooks_dir: Path, hook_runner: HookRunner) -> None:
    add_hook(hooks_dir, POINT, "20_b", "true")
    add_hook(hooks_dir, POINT, "10_a", "true")
    add_hook(hooks_dir, POINT, "15_not_executable", "true", mode=0o644)
    (hooks_dir / POINT / "05_subdir").mkdir(mode=0o755)
    (hooks_dir / POINT / "07_dangling").symlink_to(hooks_dir / "nowhere")
    add_hook(hooks_dir, POINT, "30_c", "true", mode=0o700)

    assert [p.name for p in hook_runner.hooks(POINT)] == ["10_a", "20_b", "30_c"]


def test_missing_directory_means_no_hooks(hook_runner: HookRunner, tmp_dir: Path) -> None:
    assert hook_runner.hooks(POINT) == []
    assert hook_runner.run_domxml(POINT, XML) == XML
    assert_no_leftovers(tmp_dir)


def test_unknown_hook_point_is_a_programming_error(hook_runner: HookRunner) -> None:
    with pytest.raises(ValueError, match="unknown hook point"):
        hook_runner.hooks("before_everything")
    with pytest.raises(ValueError, match="unknown hook point"):
        hook_runner.run_domxml("../etc", XML)


def test_point_must_be_run_with_its_kind_of_data(hook_runner: HookRunner) -> None:
    with pytest.raises(ValueError):
        hook_runner.run_json(BEFORE_VM_START, {})
    with pytest.raises(ValueError):
        hook_runner.run_domxml(AFTER_GET_ALL_VM_STATS, XML)
    with pytest.raises(ValueError):
        hook_runner.run_plain(AFTER_VM_DESTROY)


def test_scripts_run_in_sorted_order(hooks_dir: Path, hook_runner: HookRunner, marks: Path) -> None:
    for name in ("b", "c", "a"):
        add_hook(hooks_dir, POINT, name, f"echo {name} >> {marks}/order")

    hook_runner.run_domxml(POINT, XML)

    assert (marks / "order").read_text().split() == ["a", "b", "c"]


def test_non_executable_file_does_not_run(
    hooks_dir: Path, hook_runner: HookRunner, marks: Path
) -> None:
    add_hook(hooks_dir, POINT, "10_off", f"touch {marks}/ran", mode=0o644)

    hook_runner.run_domxml(POINT, XML)

    assert not (marks / "ran").exists()


def test_non_positive_timeout_is_refused(hooks_dir: Path) -> None:
    with pytest.raises(ValueError):
        HookRunner(hooks_dir, CommandRunner(), timeout=0)
