"""Running external commands, each inside a time box.

The daemon drives qemu-img, lvm, dd, mount helpers and the like. Any of them can hang (a dead NFS
server, a device that stopped answering), so every run takes a timeout, and running out of it
kills the command *and everything it started*: the command is made the leader of a new session
(and so of a new process group), and the whole group gets SIGTERM, a short grace period, then
SIGKILL. The process is then reaped, but only for a bounded time: a process stuck in
uninterruptible sleep cannot die, and waiting for it would hang the caller we just promised a
time box to.

No shell is ever involved: the argument vector goes to ``execve`` as is, so identifiers from the
wire cannot inject shell syntax. ``nice`` and ``ionice -c 3`` (idle I/O class) wrap background
work so it yields to VMs.

Failures are errors from :mod:`virthost.common.errors`: a missing executable or a non-zero exit
is a :class:`~virthost.common.errors.CommandError` (the latter as :class:`CommandFailed`, which
carries the :class:`CommandResult`), an overrun a
:class:`~virthost.common.errors.CommandTimeout`. Services depend on the :class:`Runner`
protocol, not on :class:`CommandRunner`, so unit tests can hand them a double.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from virthost.common import errors

log = logging.getLogger("virthost.commands")

STDERR_TAIL_LINES = 5
_SHOWN_COMMAND_CHARS = 300


@dataclass(frozen=True)
class CommandResult:
    """What a finished command produced; ``argv`` is what actually ran (wrappers included)."""

    argv: tuple[str, ...]
    rc: int
    out: bytes
    err: bytes
    duration: float

    @property
    def out_text(self) -> str:
        return self.out.decode("utf-8", errors="replace")

    @property
    def err_text(self) -> str:
        return self.err.decode("utf-8", errors="replace")


class CommandFailed(errors.CommandError):
    """A command exited non-zero; ``result`` holds its rc and output."""

    def __init__(self, detail: str, result: CommandResult) -> None:
        self.result = result
        super().__init__(detail, rc=result.rc)


class Runner(Protocol):
    """What services need from a command runner."""

    def run(
        self,
        argv: Sequence[str],
        timeout: float,
        *,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        nice: int | None = None,
        ionice_idle: bool = False,
        check: bool = True,
    ) -> CommandResult: ...


class CommandRunner:
    """Runs commands without a shell, killing the process group on timeout.

    ``term_grace`` is how long a timed-out command gets between SIGTERM and SIGKILL, and how
    long reaping it may take after SIGKILL.
    """

    def __init__(self, term_grace: float = 2.0) -> None:
        self._term_grace = term_grace

    def run(
        self,
        argv: Sequence[str],
        timeout: float,
        *,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        nice: int | None = None,
        ionice_idle: bool = False,
        check: bool = True,
    ) -> CommandResult:
        """Run ``argv`` for at most ``timeout`` seconds and return what it produced.

        ``env``, when given, is the command's whole environment (as with :mod:`subprocess`).
        """
        full_argv = _wrapped_argv(argv, nice, ionice_idle)
        shown = _shown(full_argv)
        started = time.monotonic()
        process = _spawn(full_argv, shown, timeout, input is not None, env, cwd)

        try:
            out, err = process.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill_group(process, shown)
            raise errors.CommandTimeout(
                f"{shown} did not finish within {timeout:g} s and was killed",
                argv=full_argv,
                timeout=timeout,
            ) from None
        except BaseException:
            self._kill_group(process, shown)  # do not leave it running behind an interrupt
            raise

        result = CommandResult(
            tuple(full_argv), process.returncode, out, err, time.monotonic() - started
        )
        log.debug("Finished %s: rc=%d in %.3f s", shown, result.rc, result.duration)
        if check and result.rc != 0:
            raise CommandFailed(f"{shown} {_describe_exit(result.rc)}{_stderr_tail(err)}", result)
        return result

    def run_streaming(
        self,
        argv: Sequence[str],
        timeout: float,
        on_stdout: Callable[[bytes], None],
        *,
        cwd: str | None = None,
        check: bool = True,
    ) -> CommandResult:
        """Like :meth:`run`, handing stdout to ``on_stdout`` chunk by chunk as it comes.

        For long commands that report progress (``qemu-img convert -p``); the returned
        result's ``out`` is empty since the output went to the callback.
        """
        full_argv = _wrapped_argv(argv, None, False)
        shown = _shown(full_argv)
        started = time.monotonic()
        deadline = started + timeout
        process = _spawn(full_argv, shown, timeout, False, None, cwd)
        assert process.stdout is not None and process.stderr is not None
        err_chunks: list[bytes] = []
        err_reader = threading.Thread(
            target=lambda: err_chunks.append(process.stderr.read() if process.stderr else b""),
            name="command-stderr",
            daemon=True,
        )
        err_reader.start()
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(process.stdout, selectors.EVENT_READ)
                while True:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise subprocess.TimeoutExpired(full_argv, timeout)
                    if not selector.select(remaining):
                        continue
                    chunk = os.read(process.stdout.fileno(), 65536)
                    if not chunk:
                        break
                    on_stdout(chunk)
            process.wait(max(deadline - time.monotonic(), 0.001))
        except subprocess.TimeoutExpired:
            self._kill_group(process, shown)
            raise errors.CommandTimeout(
                f"{shown} did not finish within {timeout:g} s and was killed",
                argv=full_argv,
                timeout=timeout,
            ) from None
        except BaseException:
            self._kill_group(process, shown)
            raise
        err_reader.join(self._term_grace)
        err = b"".join(err_chunks)
        result = CommandResult(
            tuple(full_argv), process.returncode, b"", err, time.monotonic() - started
        )
        if check and result.rc != 0:
            raise CommandFailed(f"{shown} {_describe_exit(result.rc)}{_stderr_tail(err)}", result)
        return result

    def _kill_group(self, process: subprocess.Popen[bytes], shown: str) -> None:
        """SIGTERM the group, SIGKILL after the grace period, then reap within a bound."""
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.communicate(timeout=self._term_grace)
            return
        except subprocess.TimeoutExpired:
            pass
        log.warning("%s ignored SIGTERM, sending SIGKILL", shown)
        _signal_group(process.pid, signal.SIGKILL)
        try:
            # Pipes close once every group member is dead, unless one escaped the group.
            process.communicate(timeout=self._term_grace)
            return
        except subprocess.TimeoutExpired:
            pass
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()
        try:
            process.wait(timeout=self._term_grace)
        except subprocess.TimeoutExpired:
            log.error("%s (pid %d) could not be reaped after SIGKILL", shown, process.pid)


def _spawn(
    argv: list[str],
    shown: str,
    timeout: float,
    with_input: bool,
    env: Mapping[str, str] | None,
    cwd: str | None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a session of its own (so a timeout can kill the whole group)."""
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    log.debug("Running %s (timeout %g s)", shown, timeout)
    try:
        return subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if with_input else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as e:
        raise errors.CommandError(f"cannot run {shown}: {e.strerror or e}", argv=argv) from e


def _wrapped_argv(argv: Sequence[str], nice: int | None, ionice_idle: bool) -> list[str]:
    if isinstance(argv, str | bytes):
        raise TypeError("argv must be a sequence of arguments, not a string")
    command = list(argv)
    if not command:
        raise ValueError("argv must not be empty")
    for arg in command:
        if not isinstance(arg, str):
            raise TypeError(f"command arguments must be str, got {arg!r}")
    if ionice_idle:
        command = ["ionice", "-c", "3", *command]
    if nice is not None:
        command = ["nice", "-n", str(int(nice)), *command]
    return command


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # the whole group is already gone
        os.killpg(pgid, signum)


def _shown(argv: Sequence[str]) -> str:
    text = shlex.join(argv)
    if len(text) > _SHOWN_COMMAND_CHARS:
        return text[: _SHOWN_COMMAND_CHARS - 3] + "..."
    return text


def _describe_exit(rc: int) -> str:
    if rc < 0:
        try:
            return f"was killed by {signal.Signals(-rc).name} (rc={rc})"
        except ValueError:
            return f"was killed by signal {-rc} (rc={rc})"
    return f"failed with rc={rc}"


def _stderr_tail(err: bytes) -> str:
    lines = err.decode("utf-8", errors="replace").strip().splitlines()
    if not lines:
        return ""
    return ": " + " | ".join(lines[-STDERR_TAIL_LINES:])
