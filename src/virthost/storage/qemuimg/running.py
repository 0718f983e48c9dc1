"""Running qemu-img: the time box, the error it raises, and its progress reports.

Every qemu-img run goes through a :class:`~virthost.common.commands.Runner` with a timeout,
so a copy stuck on a dead NFS server is killed (with its process group) instead of holding a
thread for ever. A non-zero exit becomes :class:`QemuImgError` with the command, the exit code
and stderr, since qemu-img's stderr is the only account of what went wrong; a timeout stays
the runner's :class:`~virthost.common.errors.CommandTimeout`, which callers treat apart.

Long commands print progress with ``-p``: records like ``"    (42.00/100%)"``, each ended by a
carriage return. :class:`ProgressParser` takes that output in chunks cut anywhere. A runner
that can stream stdout (:class:`StreamingRunner`) lets the percentages reach the callback
while the command runs; with any other runner they arrive once it has ended.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Protocol, TypedDict, runtime_checkable

from virthost.common import errors
from virthost.common.commands import CommandResult, CommandRunner, Runner

QEMU_IMG = "qemu-img"

ProgressCallback = Callable[[float], None]

_DEFAULT_RUNNER: Runner = CommandRunner()


class Run(TypedDict, total=False):
    """How a command runs: the runner (default: a :class:`CommandRunner`) and its time box."""

    runner: Runner
    timeout: float


class QemuImgError(errors.CommandError):
    """qemu-img failed, could not be run, or printed what we cannot parse."""

    message = "qemu-img failed"

    def __init__(self, detail: str, argv: Sequence[str], rc: int | None, stderr: str = "") -> None:
        self.argv = tuple(argv)
        self.rc = rc
        self.stderr = stderr
        super().__init__(detail, argv=self.argv, rc=rc)


@runtime_checkable
class StreamingRunner(Runner, Protocol):
    """A runner that hands over the command's stdout, chunk by chunk, while it runs."""

    def run_streaming(
        self,
        argv: Sequence[str],
        timeout: float,
        on_stdout: Callable[[bytes], None],
        *,
        cwd: str | None = None,
        check: bool = True,
    ) -> CommandResult: ...


class ProgressParser:
    """Turns ``-p`` output, in chunks cut anywhere, into the percentages it reports."""

    _RECORD = re.compile(rb"\s*\((\d+(?:\.\d+)?)/100%\)\s*")

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[float]:
        """The percentages of the records ``data`` completes; the rest waits for more."""
        *records, self._pending = (self._pending + data).split(b"\r")
        matches = (self._RECORD.fullmatch(record) for record in records)
        return [float(m.group(1)) for m in matches if m]


def run(
    argv: list[str],
    options: Run,
    default_timeout: float,
    *,
    cwd: str | None = None,
    ok: tuple[int, ...] = (0,),
    progress: ProgressCallback | None = None,
) -> CommandResult:
    """Run ``argv`` and return its result when it exits with one of the ``ok`` codes."""
    runner = options.get("runner", _DEFAULT_RUNNER)
    timeout = options.get("timeout", default_timeout)
    parser = ProgressParser()

    def on_stdout(chunk: bytes) -> None:
        if progress is not None:
            for value in parser.feed(chunk):
                progress(value)

    try:
        if progress is not None and isinstance(runner, StreamingRunner):
            result = runner.run_streaming(argv, timeout, on_stdout, cwd=cwd, check=False)
        else:
            result = runner.run(argv, timeout, cwd=cwd, check=False)
            on_stdout(result.out)
    except errors.CommandTimeout:
        raise
    except errors.CommandError as e:
        raise QemuImgError(f"cannot run {argv[0]}: {e.detail}", argv, None) from e
    if result.rc not in ok:
        err = result.err_text.strip()
        raise QemuImgError(f"{shown(argv)} failed, rc={result.rc}: {err}", argv, result.rc, err)
    return result


def shown(argv: Sequence[str]) -> str:
    """The subcommand of ``argv`` (which may be wrapped, by prlimit say): ``qemu-img info``."""
    start = argv.index(QEMU_IMG) if QEMU_IMG in argv else 0
    return " ".join(argv[start : start + 2])
