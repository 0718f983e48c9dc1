"""What a persisted task is made of, and its ``field = value`` text form.

A task directory holds one ``<id>.task`` file (the task), one ``<id>.recover.<n>`` file per
rollback step (``n`` counting from 0 in registration order) and, once the task has finished,
an ``<id>.result`` file. Each is a list of ``field = value`` lines, as in VDSM.

Why values are escaped: messages come from exceptions and recovery parameters from callers,
and a value holding a newline would otherwise write a second line that a reader takes for a
field of its own (``message = x\\nstate = finished``). So every value is written on one line:
backslash, newline, carriage return and tab become ``\\\\``, ``\\n``, ``\\r``, ``\\t``, other
control characters and lone surrogates ``\\u`` and four hex digits. Field names are
checked against a strict pattern instead. Reading is strict as well: a line that is not
``field = value``, a repeated field or a bad escape makes the file unreadable rather than
half-read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from virthost.storage.tasks.states import TaskState

FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PARAM_PREFIX = "params."

_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_UNESCAPES = {"\\": "\\", "n": "\n", "r": "\r", "t": "\t"}
_NEEDS_ESCAPE = re.compile(r"[\x00-\x1f\x7f\\\ud800-\udfff]")
_ESCAPE_SEQUENCE = re.compile(r"\\(u[0-9a-fA-F]{4}|.|$)", re.DOTALL)


class RecordFormatError(ValueError):
    """A task file could not be parsed (the store reports it as TaskMetaDataLoadError)."""


def escape(value: str) -> str:
    """``value`` on a single line, reversibly (see the module docstring)."""

    def replace(match: re.Match[str]) -> str:
        char = match.group()
        return _ESCAPES.get(char) or f"\\u{ord(char):04x}"

    return _NEEDS_ESCAPE.sub(replace, value)


def unescape(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        code = match.group(1)
        if len(code) == 5:
            return chr(int(code[1:], 16))
        if code not in _UNESCAPES:
            raise RecordFormatError(f"bad escape sequence after a backslash: {code!r}")
        return _UNESCAPES[code]

    return _ESCAPE_SEQUENCE.sub(replace, text)


def encode_fields(fields: Mapping[str, str]) -> bytes:
    lines = []
    for name, value in fields.items():
        if not FIELD_NAME.fullmatch(name):
            raise ValueError(f"bad field name {name!r}")
        lines.append(f"{name} = {escape(value)}\n")
    return "".join(lines).encode("utf-8")


def decode_fields(data: bytes) -> dict[str, str]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RecordFormatError(f"not UTF-8: {e}") from None
    fields: dict[str, str] = {}
    for number, line in enumerate(text.split("\n"), 1):
        if not line:
            continue
        name, sep, value = line.partition(" = ")
        if not sep or not FIELD_NAME.fullmatch(name):
            raise RecordFormatError(f"line {number} is not 'field = value'")
        if name in fields:
            raise RecordFormatError(f"field {name!r} appears twice")
        fields[name] = unescape(value)
    return fields


@dataclass(frozen=True)
class RecoveryStep:
    """One rollback step: the name of a registered recovery function and its parameters."""

    name: str
    params: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Frozen means frozen: a caller keeping the dict it passed cannot change a saved step.
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RecoveryStep):
            return NotImplemented
        return self.name == other.name and dict(self.params) == dict(other.params)

    def __hash__(self) -> int:
        return hash((self.name, tuple(sorted(self.params.items()))))

    def to_fields(self) -> dict[str, str]:
        fields = {"name": self.name}
        fields.update((PARAM_PREFIX + key, value) for key, value in self.params.items())
        return fields

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> RecoveryStep:
        if "name" not in fields:
            raise RecordFormatError("recovery step without a name")
        params = {}
        for key, value in fields.items():
            if key == "name":
                continue
            if not key.startswith(PARAM_PREFIX):
                raise RecordFormatError(f"unexpected field {key!r} in a recovery step")
            params[key[len(PARAM_PREFIX) :]] = value
        return cls(fields["name"], params)


@dataclass(frozen=True)
class TaskRecord:
    """Everything persisted about a task; ``result`` is whatever JSON can carry."""

    task_id: str
    verb: str
    state: TaskState
    tag: str = ""
    code: int = 0
    message: str = ""
    recoveries: tuple[RecoveryStep, ...] = ()
    result: object = None

    def task_fields(self) -> dict[str, str]:
        return {
            "id": self.task_id,
            "verb": self.verb,
            "state": self.state.value,
            "tag": self.tag,
            "code": str(self.code),
            "message": self.message,
            "recoveries": str(len(self.recoveries)),
        }

    def result_fields(self) -> dict[str, str]:
        return {"result": json.dumps(self.result, default=str, sort_keys=True)}

    @classmethod
    def from_files(
        cls,
        task: Mapping[str, str],
        recoveries: Sequence[Mapping[str, str]],
        result: Mapping[str, str] | None,
    ) -> TaskRecord:
        """The record from the decoded fields of its files (``recoveries`` in order)."""
        missing = {"id", "verb", "state", "code", "recoveries"} - set(task)
        if missing:
            raise RecordFormatError(f"fields missing: {', '.join(sorted(missing))}")
        try:
            state = TaskState(task["state"])
            code = int(task["code"])
            expected = int(task["recoveries"])
        except ValueError as e:
            raise RecordFormatError(str(e)) from None
        if expected != len(recoveries):
            raise RecordFormatError(f"{expected} recovery steps listed, {len(recoveries)} found")
        value: object = None
        if result is not None:
            if "result" not in result:
                raise RecordFormatError("result file without a result")
            try:
                value = json.loads(result["result"])
            except ValueError as e:
                raise RecordFormatError(f"bad result: {e}") from None
        return cls(
            task_id=task["id"],
            verb=task["verb"],
            state=state,
            tag=task.get("tag", ""),
            code=code,
            message=task.get("message", ""),
            recoveries=tuple(RecoveryStep.from_fields(fields) for fields in recoveries),
            result=value,
        )
