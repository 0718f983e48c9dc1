"""Running hook scripts: the administrator's way into every VM operation.

Sites change what the daemon does without patching it by dropping executables into
``<hooks_dir>/<hook_point>/``; before_* scripts may even rewrite what the operation is about to
use (the domain XML of a starting VM, the stats about to be reported). We keep VDSM's contract
so scripts written for it keep working:

* the scripts of a point run one at a time in sorted name order, so a site orders them with a
  numeric prefix (``10_x`` before ``50_y``);
* data goes through a file, not stdin/stdout: its path is in ``_hook_domxml`` (XML) or
  ``_hook_json`` (JSON); a script edits it in place, the next script sees the edit and the
  runner reads the final content back;
* ``vmId``, the VM's custom properties and per-call parameters are in the environment;
* exit 0 is success, 1 an error after which the chain goes on, 2 an error that stops the
  chain; anything else is unexpected and handled like 1. Errors become one
  :class:`~virthost.common.errors.HookError` (1500) after the chain, and only when the caller
  asks: after_* and daemon hooks are usually best effort.

Unlike VDSM, every script is time-boxed, because a hung script would otherwise hang a VM start
for ever. An overrun kills the script's whole process group (the command runner does that) and
stops the chain like exit 2.

Custom properties come from the engine and become environment variables of programs that run
as the daemon's user, so their names are checked: a shell-safe identifier, not one of the names
the runner sets itself, and not one that changes which code a script or its interpreter loads
(``LD_PRELOAD``, ``PATH``, ...).

The data file is private (0600 in a 0700 directory: domain XML can hold secrets such as
display passwords), made per call, and its directory is removed whatever happens, together
with anything a script left in it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from virthost.common import errors
from virthost.common.commands import STDERR_TAIL_LINES, CommandResult, Runner
from virthost.hooks import points

log = logging.getLogger("virthost.hooks")

DOMXML_VAR = "_hook_domxml"
JSON_VAR = "_hook_json"
VM_ID_VAR = "vmId"

RC_OK = 0
RC_ERROR = 1
RC_STOP = 2

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RESERVED_PREFIX = "_hook_"
# Names that decide which code a script, its shell or its interpreter loads.
_PROTECTED_NAMES = frozenset(
    {"PATH", "IFS", "ENV", "BASH_ENV", "SHELLOPTS", "PYTHONPATH", "PYTHONHOME", "PERL5LIB"}
)
_PROTECTED_PREFIXES = ("LD_", "BASH_FUNC_")
_LOGGED_OUTPUT_CHARS = 2000
_STDERR_TAIL_CHARS = 500

_T = TypeVar("_T")
_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class _Outcome:
    """How one script went: ``failure`` describes an error, ``stop`` ends the chain."""

    failure: str | None = None
    stop: bool = False


class HookRunner:
    """Runs the scripts installed for a hook point; one instance serves the whole daemon.

    ``timeout`` bounds each script. ``tmp_dir`` is where the per-call private directories are
    made (the system temporary directory when None).
    """

    def __init__(
        self,
        hooks_dir: Path,
        runner: Runner,
        timeout: float = 30.0,
        *,
        tmp_dir: Path | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"hook timeout must be positive, got {timeout}")
        # Absolute, because scripts run with "/" as their working directory.
        self._hooks_dir = Path(hooks_dir).absolute()
        self._runner = runner
        self._timeout = timeout
        self._tmp_dir = tmp_dir

    def hooks(self, point: str) -> list[Path]:
        """The executables installed for ``point``, in the order they run."""
        _check_point(point, points.ALL_POINTS, "")
        directory = self._hooks_dir / point
        try:
            names = sorted(os.listdir(directory))
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as e:
            raise errors.HookError(
                f"cannot list hook directory {directory}: {e.strerror or e}", point=point
            ) from e
        scripts = []
        for name in names:
            path = directory / name
            try:
                mode = path.stat().st_mode
            except OSError as e:
                log.debug("Ignoring hook %s: %s", path, e.strerror or e)
                continue
            if not stat.S_ISREG(mode):
                log.debug("Ignoring hook %s: not a regular file", path)
            elif not mode & 0o111:
                log.debug("Ignoring hook %s: not executable", path)
            else:
                scripts.append(path)
        return scripts

    def run_domxml(
        self,
        point: str,
        domxml: str,
        *,
        env: Mapping[str, str] = _EMPTY,
        custom: Mapping[str, str] = _EMPTY,
        vm_id: str | None = None,
        raise_errors: bool = True,
    ) -> str:
        """Run ``point``'s scripts on ``domxml``; return the XML as the scripts left it."""
        _check_point(point, points.DOMXML_POINTS, "run_domxml")
        _checked_env(env)
        return self._run_with_data(
            point,
            DOMXML_VAR,
            domxml.encode("utf-8"),
            bytes.decode,  # UTF-8, strict
            domxml,
            lambda: _environment(env, custom, vm_id),
            raise_errors,
        )

    def run_json(
        self,
        point: str,
        data: Mapping[str, Any] | Sequence[Any],
        *,
        env: Mapping[str, str] = _EMPTY,
        custom: Mapping[str, str] = _EMPTY,
        vm_id: str | None = None,
        raise_errors: bool = True,
    ) -> Any:
        """Run ``point``'s scripts on ``data`` as JSON; return the data as the scripts left it.

        Without scripts, ``data`` itself is returned; otherwise a new object parsed from the
        file.
        """
        _check_point(point, points.JSON_POINTS, "run_json")
        _checked_env(env)
        return self._run_with_data(
            point,
            JSON_VAR,
            json.dumps(data).encode("utf-8"),
            json.loads,
            data,
            lambda: _environment(env, custom, vm_id),
            raise_errors,
        )

    def run_plain(
        self,
        point: str,
        *,
        env: Mapping[str, str] = _EMPTY,
        raise_errors: bool = False,
    ) -> None:
        """Run ``point``'s scripts with no data file (daemon start and stop)."""
        _check_point(point, points.PLAIN_POINTS, "run_plain")
        environment = _environment(env, {}, None)
        scripts = self.hooks(point)
        if scripts:
            self._run_chain(point, scripts, environment, None, raise_errors)

    def _run_with_data(
        self,
        point: str,
        variable: str,
        content: bytes,
        decode: Callable[[bytes], _T],
        initial: _T,
        make_environment: Callable[[], dict[str, str]],
        raise_errors: bool,
    ) -> _T:
        scripts = self.hooks(point)
        if not scripts:
            return initial  # nothing to run: no environment, no temporary file
        environment = make_environment()
        current = initial
        with self._data_file(point, content) as path:
            environment[variable] = str(path)

            def reread() -> str | None:
                nonlocal current
                try:
                    raw = path.read_bytes()
                except OSError as e:
                    return f"the data file {variable} is unreadable: {e.strerror or e}"
                try:
                    current = decode(raw)
                except ValueError as e:
                    return f"left invalid data in {variable}: {e}"
                return None

            self._run_chain(point, scripts, environment, reread, raise_errors)
        return current

    def _run_chain(
        self,
        point: str,
        scripts: list[Path],
        environment: Mapping[str, str],
        reread: Callable[[], str | None] | None,
        raise_errors: bool,
    ) -> None:
        """Run ``scripts`` in order; ``reread`` loads the data file back after each one."""
        log.debug("Running %d %s hook(s)", len(scripts), point)
        failures = []
        failed = []
        for index, script in enumerate(scripts, 1):
            name = f"{point}/{script.name}"
            outcome = self._run_one(name, script, environment)
            if outcome.failure is not None:
                failures.append(outcome.failure)
                failed.append(script.name)
            stop = outcome.stop
            problem = reread() if reread is not None else None
            if problem is not None:
                log.error("Hook %s %s", name, problem)
                failures.append(f"{name} {problem}")
                failed.append(script.name)
                stop = True  # nothing sensible is left for the following scripts
            if stop:
                if index < len(scripts):
                    skipped = ", ".join(s.name for s in scripts[index:])
                    log.error("Hook %s stopped the chain, skipping %s", name, skipped)
                break
        if failures and raise_errors:
            raise errors.HookError("; ".join(failures), point=point, scripts=failed)

    def _run_one(self, name: str, script: Path, environment: Mapping[str, str]) -> _Outcome:
        try:
            result = self._runner.run(
                [str(script)], self._timeout, env=environment, cwd="/", check=False
            )
        except errors.CommandTimeout:
            log.error("Hook %s did not finish within %g s and was killed", name, self._timeout)
            return _Outcome(f"{name} timed out after {self._timeout:g} s and was killed", True)
        except errors.CommandError as e:
            log.error("Hook %s could not run: %s", name, e.detail)
            return _Outcome(f"{name} could not run: {e.detail}")
        _log_output(name, result)
        if result.rc == RC_OK:
            return _Outcome()
        tail = _stderr_tail(result.err_text)
        if result.rc == RC_ERROR:
            log.error("Hook %s failed with rc=1%s", name, tail)
            return _Outcome(f"{name} failed with rc=1{tail}")
        if result.rc == RC_STOP:
            log.error("Hook %s failed with rc=2 (stop)%s", name, tail)
            return _Outcome(f"{name} failed with rc=2{tail}", True)
        log.error("Hook %s exited with unexpected rc=%d%s", name, result.rc, tail)
        return _Outcome(f"{name} exited with unexpected rc={result.rc}{tail}")

    @contextlib.contextmanager
    def _data_file(self, point: str, content: bytes) -> Iterator[Path]:
        """A private file holding ``content``; its directory goes away on exit."""
        directory = Path(tempfile.mkdtemp(prefix=f"virthost-{point}-", dir=self._tmp_dir))
        try:
            path = directory / "data"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as file:
                file.write(content)
            yield path
        finally:
            _remove_tree(directory)


def _check_point(point: str, allowed: frozenset[str], method: str) -> None:
    if point not in points.ALL_POINTS:
        raise ValueError(f"unknown hook point {point!r}")
    if point not in allowed:
        raise ValueError(f"hook point {point!r} cannot be run with {method}")


def _environment(
    env: Mapping[str, str], custom: Mapping[str, str], vm_id: str | None
) -> dict[str, str]:
    """The daemon's environment, then custom properties, then per-call values."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(_RESERVED_PREFIX) and name != VM_ID_VAR
    }
    for name, value in custom.items():
        if _usable_custom(name, value):
            environment[name] = str(value)
    environment.update(_checked_env(env))
    if vm_id is not None:
        if "\0" in vm_id:
            raise errors.InvalidParameter(f"vmId {vm_id!r} contains a NUL character")
        environment[VM_ID_VAR] = vm_id
    return environment


def _checked_env(env: Mapping[str, str]) -> Mapping[str, str]:
    """The daemon's own per-call variables: a bad one is a programming error."""
    for name, value in env.items():
        if not isinstance(name, str) or not _ENV_NAME.fullmatch(name) or _is_reserved(name):
            raise ValueError(f"invalid hook environment variable name {name!r}")
        if not isinstance(value, str) or "\0" in value:
            raise ValueError(f"invalid value for hook environment variable {name}")
    return env


def _is_reserved(name: str) -> bool:
    return name.startswith(_RESERVED_PREFIX) or name == VM_ID_VAR


def _usable_custom(name: object, value: object) -> bool:
    """Whether a custom property can be passed to hooks; the others are left out, logged.

    Engines use names such as ``device_<uuid>`` or with dashes: any name the environment can
    hold is passed (scripts in Python read them from ``os.environ``), except empty ones, ones
    with ``=`` or NUL, and names that are ours or change what code a script runs.
    """
    if not isinstance(name, str) or not name or "=" in name or "\0" in name:
        log.warning("custom property %r cannot be an environment variable; not passed", name)
        return False
    if _is_reserved(name) or name in _PROTECTED_NAMES or name.startswith(_PROTECTED_PREFIXES):
        log.warning("custom property %r is reserved; not passed to hooks", name)
        return False
    if "\0" in str(value):
        log.warning("custom property %r has a NUL character; not passed to hooks", name)
        return False
    return True


def _log_output(name: str, result: CommandResult) -> None:
    if result.out:
        log.debug("Hook %s stdout: %s", name, _truncated(result.out_text))
    if result.err:
        log.info("Hook %s stderr: %s", name, _truncated(result.err_text))


def _truncated(text: str) -> str:
    text = text.rstrip()
    if len(text) <= _LOGGED_OUTPUT_CHARS:
        return text
    return text[:_LOGGED_OUTPUT_CHARS] + f"... ({len(text) - _LOGGED_OUTPUT_CHARS} more chars)"


def _stderr_tail(err: str) -> str:
    lines = err.strip().splitlines()
    if not lines:
        return ""
    tail = " | ".join(lines[-STDERR_TAIL_LINES:])
    if len(tail) > _STDERR_TAIL_CHARS:
        tail = "..." + tail[-_STDERR_TAIL_CHARS:]
    return ": " + tail


def _remove_tree(directory: Path) -> None:
    # A script may have made (part of) the directory unreadable; give ourselves access back,
    # each directory before os.walk descends into it.
    with contextlib.suppress(OSError):
        os.chmod(directory, 0o700)
    for root, subdirs, _ in os.walk(directory):
        for subdir in subdirs:
            with contextlib.suppress(OSError):
                os.chmod(os.path.join(root, subdir), 0o700, follow_symlinks=False)
    try:
        shutil.rmtree(directory)
    except OSError as e:
        log.error("Cannot remove hook data directory %s: %s", directory, e)
