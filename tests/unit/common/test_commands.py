from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from virthost.common import errors
from virthost.common.commands import CommandFailed, CommandResult, CommandRunner, Runner

SH = "/bin/sh"


@pytest.fixture
def runner() -> CommandRunner:
    return CommandRunner(term_grace=0.1)


def process_gone(pid: int) -> bool:
    """True once ``pid`` no longer runs (a zombie awaiting reaping by init counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def wait_gone(pid: int, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process_gone(pid):
            return True
        time.sleep(0.01)
    return process_gone(pid)


def test_captures_output_and_rc(runner: CommandRunner) -> None:
    result = runner.run(["echo", "hello"], timeout=5)
    assert result.rc == 0
    assert result.out == b"hello\n"
    assert result.err == b""
    assert result.argv == ("echo", "hello")
    assert result.duration >= 0


def test_input_goes_to_stdin(runner: CommandRunner) -> None:
    assert runner.run(["cat"], timeout=5, input=b"data").out == b"data"


def test_no_shell_is_involved(runner: CommandRunner) -> None:
    assert runner.run(["echo", "$HOME;", "`id`"], timeout=5).out_text == "$HOME; `id`\n"


def test_non_zero_exit_raises_with_rc_and_stderr_tail(runner: CommandRunner) -> None:
    script = "for i in 1 2 3 4 5 6 7; do echo line$i >&2; done; exit 3"
    with pytest.raises(CommandFailed) as info:
        runner.run([SH, "-c", script], timeout=5)
    error = info.value
    assert isinstance(error, errors.CommandError)
    assert "rc=3" in error.wire_message
    assert "line7" in error.wire_message
    assert "line1" not in error.wire_message  # only the last lines
    assert error.result.rc == 3
    assert error.context["rc"] == 3


def test_check_false_returns_failed_result(runner: CommandRunner) -> None:
    result = runner.run([SH, "-c", "exit 4"], timeout=5, check=False)
    assert result.rc == 4


def test_missing_executable_is_a_command_error(runner: CommandRunner) -> None:
    with pytest.raises(errors.CommandError) as info:
        runner.run(["/nonexistent/virthost-no-such-tool"], timeout=5)
    assert not isinstance(info.value, errors.CommandTimeout)
    assert "virthost-no-such-tool" in info.value.wire_message


def test_timeout_kills_the_whole_process_group(runner: CommandRunner, tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = f"sleep 30 & echo $! > {pid_file}; wait"
    with pytest.raises(errors.CommandTimeout) as info:
        runner.run([SH, "-c", script], timeout=0.2)
    assert "sleep 30" in info.value.wire_message
    assert "0.2" in info.value.wire_message
    assert info.value.code == 3
    grandchild = int(pid_file.read_text())
    assert wait_gone(grandchild)


def test_timeout_escalates_to_sigkill(
    runner: CommandRunner, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="virthost.commands")
    pid_file = tmp_path / "pid"
    script = f"trap '' TERM; echo $$ > {pid_file}; while :; do sleep 0.01; done"
    with pytest.raises(errors.CommandTimeout):
        runner.run([SH, "-c", script], timeout=0.1)
    assert wait_gone(int(pid_file.read_text()))
    assert any("SIGKILL" in r.getMessage() for r in caplog.records)


def test_env_replaces_environment(runner: CommandRunner) -> None:
    result = runner.run([SH, "-c", "echo $FOO:$HOME"], timeout=5, env={"FOO": "bar"})
    assert result.out_text == "bar:\n"


def test_cwd(runner: CommandRunner, tmp_path: Path) -> None:
    result = runner.run(["pwd"], timeout=5, cwd=str(tmp_path))
    assert Path(result.out_text.strip()).resolve() == tmp_path.resolve()


def test_nice_wraps_command(runner: CommandRunner) -> None:
    result = runner.run([sys.executable, "-c", "import os; print(os.nice(0))"], timeout=5, nice=5)
    assert result.argv[:3] == ("nice", "-n", "5")
    assert int(result.out_text) == min(os.nice(0) + 5, 19)


@pytest.mark.skipif(shutil.which("ionice") is None, reason="ionice not installed")
def test_ionice_idle_wraps_command(runner: CommandRunner) -> None:
    result = runner.run([SH, "-c", "ionice -p $$"], timeout=5, ionice_idle=True, nice=1)
    assert result.argv[:6] == ("nice", "-n", "1", "ionice", "-c", "3")
    assert result.out_text.strip() == "idle"


def test_text_helpers_replace_undecodable_bytes() -> None:
    result = CommandResult(("x",), 0, b"ok\xff", b"\xfeerr", 0.0)
    assert result.out_text == "ok\ufffd"
    assert result.err_text == "\ufffderr"


def test_logs_command_at_debug(runner: CommandRunner, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="virthost.commands")
    runner.run(["echo", "logged-arg"], timeout=5)
    messages = [r.getMessage() for r in caplog.records if r.name == "virthost.commands"]
    assert any("echo logged-arg" in m for m in messages)
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name == "virthost.commands")


def test_bad_argv_is_refused(runner: CommandRunner) -> None:
    with pytest.raises(TypeError):
        runner.run("echo hi", timeout=5)
    with pytest.raises(ValueError):
        runner.run([], timeout=5)
    with pytest.raises(ValueError):
        runner.run(["true"], timeout=0)


def test_command_runner_satisfies_runner_protocol() -> None:
    def service(runner: Runner) -> str:
        return runner.run(["echo", "via-protocol"], timeout=5).out_text

    assert service(CommandRunner()) == "via-protocol\n"


def test_streaming_delivers_output_while_the_command_runs(tmp_path: Path) -> None:
    import threading

    fifo = tmp_path / "gate"
    os.mkfifo(fifo)
    chunks: list[bytes] = []
    first = threading.Event()

    def on_stdout(chunk: bytes) -> None:
        chunks.append(chunk)
        first.set()

    results: list[CommandResult] = []
    runner = threading.Thread(
        target=lambda: results.append(
            CommandRunner().run_streaming(
                ["sh", "-c", f"echo first; read x < {fifo}; echo second"], 30, on_stdout
            )
        )
    )
    runner.start()
    assert first.wait(10), "no output reached the callback while the command was blocked"
    with open(fifo, "w") as gate:
        gate.write("go\n")
    runner.join(30)
    assert b"".join(chunks) == b"first\nsecond\n"
    assert results[0].rc == 0 and results[0].out == b""


def test_streaming_timeout_and_failure() -> None:
    with pytest.raises(errors.CommandTimeout):
        CommandRunner(term_grace=0.5).run_streaming(["sleep", "30"], 0.3, lambda _: None)
    with pytest.raises(errors.CommandError, match="oops"):
        CommandRunner().run_streaming(["sh", "-c", "echo oops >&2; exit 3"], 10, lambda _: None)
