"""Exit codes, timeouts and failures to run: continue, stop, raise, and never leave files."""

from __future__ import annotations

from pathlib import Path

import pytest

from unit.hooks.hook_scripts import XML, add_hook, assert_no_leftovers, wait_gone
from virthost.common import errors
from virthost.common.commands import CommandRunner
from virthost.hooks import (
    AFTER_VIRTHOST_STOP,
    BEFORE_VIRTHOST_START,
    BEFORE_VM_START,
    HookRunner,
)

POINT = BEFORE_VM_START


def test_exit_1_continues_then_raises_naming_point_script_and_stderr(
    hooks_dir: Path, hook_runner: HookRunner, marks: Path, tmp_dir: Path
) -> None:
    add_hook(hooks_dir, POINT, "10_fail", "echo 'no such bridge br9' >&2; exit 1")
    add_hook(hooks_dir, POINT, "20_later", f"touch {marks}/later")

    with pytest.raises(errors.HookError) as info:
        hook_runner.run_domxml(POINT, XML)

    assert (marks / "later").exists()
    assert info.value.code == 1500
    assert "before_vm_start/10_fail" in info.value.wire_message
    assert "no such bridge br9" in info.value.wire_message
    assert "20_later" not in info.value.wire_message
    assert_no_leftovers(tmp_dir)


def test_exit_2_stops_the_chain(
    hooks_dir: Path, hook_runner: HookRunner, marks: Path, tmp_dir: Path
) -> None:
    add_hook(hooks_dir, POINT, "10_ok", f"touch {marks}/first")
    add_hook(hooks_dir, POINT, "20_stop", "echo 'refusing' >&2; exit 2")
    add_hook(hooks_dir, POINT, "30_later", f"touch {marks}/later")

    with pytest.raises(errors.HookError, match=r"before_vm_start/20_stop.*refusing"):
        hook_runner.run_domxml(POINT, XML)

    assert (marks / "first").exists()
    assert not (marks / "later").exists()
    assert_no_leftovers(tmp_dir)


def test_unexpected_exit_code_continues_like_1(
    hooks_dir: Path, hook_runner: HookRunner, marks: Path
) -> None:
    add_hook(hooks_dir, POINT, "10_odd", "exit 7")
    add_hook(hooks_dir, POINT, "20_later", f"touch {marks}/later")

    with pytest.raises(errors.HookError, match="rc=7"):
        hook_runner.run_domxml(POINT, XML)
    assert (marks / "later").exists()


def test_errors_are_only_logged_when_not_raising(
    hooks_dir: Path, hook_runner: HookRunner, tmp_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    add_hook(hooks_dir, POINT, "10_edit", "echo '<domain/>' > \"$_hook_domxml\"; exit 1")
    add_hook(hooks_dir, POINT, "20_stop", "exit 2")

    assert hook_runner.run_domxml(POINT, XML, raise_errors=False) == "<domain/>\n"

    assert "20_stop" in caplog.text
    assert_no_leftovers(tmp_dir)


def test_script_that_cannot_run_is_an_error(
    hooks_dir: Path, hook_runner: HookRunner, marks: Path
) -> None:
    path = hooks_dir / POINT / "10_bad_interpreter"
    path.parent.mkdir(parents=True)
    path.write_text("#!/nonexistent/interpreter\n")
    path.chmod(0o755)
    add_hook(hooks_dir, POINT, "20_later", f"touch {marks}/later")

    with pytest.raises(errors.HookError, match="10_bad_interpreter"):
        hook_runner.run_domxml(POINT, XML)
    assert (marks / "later").exists()


def test_timeout_kills_the_script_and_its_children_and_stops_the_chain(
    hooks_dir: Path, tmp_dir: Path, marks: Path
) -> None:
    runner = HookRunner(hooks_dir, CommandRunner(term_grace=0.1), timeout=0.5, tmp_dir=tmp_dir)
    add_hook(
        hooks_dir,
        POINT,
        "10_hang",
        f"sleep 60 & echo $! > {marks}/child; echo $$ > {marks}/pid; wait",
    )
    add_hook(hooks_dir, POINT, "20_later", f"touch {marks}/later")

    with pytest.raises(errors.HookError, match=r"before_vm_start/10_hang.*timed out"):
        runner.run_domxml(POINT, XML)

    assert wait_gone(int((marks / "pid").read_text()))
    assert wait_gone(int((marks / "child").read_text()))
    assert not (marks / "later").exists()
    assert_no_leftovers(tmp_dir)


def test_files_scripts_leave_in_the_data_directory_are_removed(
    hooks_dir: Path, hook_runner: HookRunner, tmp_dir: Path
) -> None:
    add_hook(
        hooks_dir,
        POINT,
        "10_litter",
        'd=$(dirname "$_hook_domxml"); mkdir "$d/sub"; touch "$d/sub/f" "$d/backup";'
        ' chmod 000 "$d/sub"; chmod 500 "$d"',
    )

    hook_runner.run_domxml(POINT, XML)

    assert_no_leftovers(tmp_dir)


def test_plain_hooks_run_without_data_and_do_not_raise_by_default(
    hooks_dir: Path, hook_runner: HookRunner, marks: Path
) -> None:
    add_hook(hooks_dir, BEFORE_VIRTHOST_START, "10_mark", f'echo "[$_hook_domxml]" > {marks}/s')
    add_hook(hooks_dir, AFTER_VIRTHOST_STOP, "10_fail", "exit 2")

    hook_runner.run_plain(BEFORE_VIRTHOST_START)
    hook_runner.run_plain(AFTER_VIRTHOST_STOP)

    assert (marks / "s").read_text() == "[]\n"
    with pytest.raises(errors.HookError):
        hook_runner.run_plain(AFTER_VIRTHOST_STOP, raise_errors=True)
