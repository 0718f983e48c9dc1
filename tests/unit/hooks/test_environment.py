"""What scripts find in their environment, and which custom properties are refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from unit.hooks.hook_scripts import VM_ID, XML, add_hook, assert_no_leftovers
from virthost.hooks import (
    BEFORE_VM_START,
    HookRunner,
)

POINT = BEFORE_VM_START


def test_custom_properties_vm_id_and_params_are_in_the_environment(
    hooks_dir: Path,
    hook_runner: HookRunner,
    marks: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VIRTHOST_TEST_DAEMON_VAR", "from-daemon")
    add_hook(
        hooks_dir,
        POINT,
        "10_env",
        f'printf "%s|%s|%s|%s|%s" "$vmId" "$sndbuf" "$macbind" "$extra" '
        f'"$VIRTHOST_TEST_DAEMON_VAR" > {marks}/env',
    )

    hook_runner.run_domxml(
        POINT,
        XML,
        vm_id=VM_ID,
        custom={"sndbuf": "0", "macbind": "a b; $(rm -rf /)"},
        env={"extra": "param"},
    )

    assert (marks / "env").read_text() == f"{VM_ID}|0|a b; $(rm -rf /)|param|from-daemon"


@pytest.mark.parametrize("name", ["a=b", "", "_hook_domxml", "vmId", "PATH", "LD_PRELOAD"])
def test_unusable_custom_property_names_are_left_out(
    hooks_dir: Path, hook_runner: HookRunner, marks: Path, tmp_dir: Path, name: str
) -> None:
    add_hook(hooks_dir, POINT, "10_any", f"env > {marks}/env")

    hook_runner.run_domxml(POINT, XML, custom={name: "leaked", "fine": "ok"})

    passed = (marks / "env").read_text()
    assert "=leaked" not in passed
    assert "fine=ok" in passed
    assert_no_leftovers(tmp_dir)


@pytest.mark.parametrize("name", ["dash-name", "has space", "1starts", "device_0f60872b-599c"])
def test_engine_style_custom_names_are_passed(
    hooks_dir: Path, hook_runner: HookRunner, marks: Path, name: str
) -> None:
    # a shell drops such names from the environment; a Python hook sees them
    script = add_hook(hooks_dir, POINT, "10_any", "")
    script.write_text(
        "#!/usr/bin/python3\nimport os\n"
        f"open({str(marks / 'env')!r}, 'w').write(''.join(f'{{k}}={{v}}\\n' "
        "for k, v in os.environ.items()))\n"
    )

    hook_runner.run_domxml(POINT, XML, custom={name: "v1"})

    assert f"{name}=v1" in (marks / "env").read_text()


def test_custom_property_value_with_nul_is_left_out(
    hooks_dir: Path, hook_runner: HookRunner, marks: Path
) -> None:
    add_hook(hooks_dir, POINT, "10_any", f"env > {marks}/env")
    hook_runner.run_domxml(POINT, XML, custom={"prop": "a\0b"})
    assert "prop=" not in (marks / "env").read_text()


def test_no_scripts_means_no_checks_at_all(hook_runner: HookRunner) -> None:
    assert hook_runner.run_domxml(POINT, XML, custom={"a=b": "x"}) == XML


def test_per_call_env_cannot_override_the_data_file(hook_runner: HookRunner) -> None:
    with pytest.raises(ValueError):
        hook_runner.run_domxml(POINT, XML, env={"_hook_domxml": "/etc/passwd"})


def test_stdin_is_dev_null(hooks_dir: Path, hook_runner: HookRunner, marks: Path) -> None:
    add_hook(hooks_dir, POINT, "10_read", f"cat > {marks}/stdin")

    hook_runner.run_domxml(POINT, XML)

    assert (marks / "stdin").read_text() == ""


def test_stale_hook_variables_of_the_daemon_are_not_passed_on(
    hooks_dir: Path, hook_runner: HookRunner, marks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("_hook_json", "/stale/path")
    add_hook(hooks_dir, POINT, "10_env", f'echo "[$_hook_json]" > {marks}/env')

    hook_runner.run_domxml(POINT, XML)

    assert (marks / "env").read_text() == "[]\n"


def test_os_environ_is_not_modified(hooks_dir: Path, hook_runner: HookRunner) -> None:
    add_hook(hooks_dir, POINT, "10_ok", "true")
    before = dict(os.environ)

    hook_runner.run_domxml(POINT, XML, custom={"prop": "1"}, vm_id=VM_ID)

    assert dict(os.environ) == before
