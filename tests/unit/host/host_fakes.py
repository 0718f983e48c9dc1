"""Test doubles for the host modules: a scripted command runner and fake /proc-/sys trees."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from virthost.common import errors
from virthost.common.commands import CommandResult

DATA = Path(__file__).parent / "data"


def data_text(name: str) -> str:
    return (DATA / name).read_text()


Reply = CommandResult | BaseException | Callable[[Sequence[str]], CommandResult]


def result(argv: Sequence[str], out: str = "", rc: int = 0, err: str = "") -> CommandResult:
    return CommandResult(tuple(argv), rc, out.encode(), err.encode(), 0.01)


class FakeRunner:
    """Answers commands by their first words; unknown commands look like missing programs.

    ``replies`` maps an argv prefix (a tuple of words) to a result, an exception to raise, or a
    callable building the result from the argv. The longest matching prefix wins.
    """

    def __init__(self, replies: Mapping[tuple[str, ...], Reply] | None = None) -> None:
        self.replies: dict[tuple[str, ...], Reply] = dict(replies or {})
        self.calls: list[tuple[tuple[str, ...], float, bool]] = []

    def reply(self, prefix: tuple[str, ...], out: str = "", rc: int = 0) -> None:
        self.replies[prefix] = result(prefix, out, rc)

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
        argv = tuple(argv)
        self.calls.append((argv, timeout, check))
        matches = [p for p in self.replies if argv[: len(p)] == p]
        if not matches:
            raise errors.CommandError(f"{argv[0]}: not found")
        reply = self.replies[max(matches, key=len)]
        if isinstance(reply, BaseException):
            raise reply
        if callable(reply):
            reply = reply(argv)
        if check and reply.rc != 0:
            raise errors.CommandError(f"{argv[0]} failed rc={reply.rc}")
        return CommandResult(argv, reply.rc, reply.out, reply.err, reply.duration)


def make_tree(root: Path, files: Mapping[str, str]) -> str:
    """Write ``{"/proc/stat": text, ...}`` below ``root`` and return it as a root string."""
    for path, text in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return str(root)
