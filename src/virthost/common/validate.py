"""Checks for identifiers that arrive from the wire, before they reach a path, argv or XML.

UUIDs, names and path pieces sent by the engine end up in file paths (``<sd>/images/<img>``),
command lines (``lvchange <vg>/<lv>``) and domain XML. One unchecked ``../`` or leading ``-`` turns
an identifier into a path escape or a command-line option. So services validate at the edge with
these functions, which return the value in the form to use from then on (a UUID in canonical
lowercase, so the same UUID always makes the same path) and raise
:class:`~virthost.common.errors.InvalidParameter` (code 91) naming the parameter otherwise.

The rules are allow-lists (what a good value looks like), not deny-lists of bad characters, and
``path_under`` checks the *resolved* path as well, because a symlink inside the base directory can
point anywhere.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path, PurePosixPath
from uuid import UUID

from virthost.common import errors

NAME_MAX_BYTES = 255  # a file name's limit on Linux file systems

_UUID_FORM = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE
)
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_SHOWN_VALUE_CHARS = 80


def uuid(value: object, name: str) -> str:
    """``value`` as a canonical lowercase 8-4-4-4-12 UUID string."""
    if isinstance(value, UUID):
        return str(value)
    if not isinstance(value, str) or not _UUID_FORM.fullmatch(value):
        raise _invalid(name, value, "not a UUID")
    return value.lower()


def safe_name(value: object, name: str, max_len: int = 255) -> str:
    """A name of ASCII letters, digits and ``._-`` that does not start with ``.`` or ``-``.

    Safe as a file name, a command-line argument (never taken for an option) and XML text.
    """
    if not isinstance(value, str):
        raise _invalid(name, value, "not a string")
    if not value:
        raise _invalid(name, value, "empty")
    if len(value) > max_len:
        raise _invalid(name, value, f"longer than {max_len} characters")
    if not _SAFE_NAME.fullmatch(value):
        raise _invalid(
            name,
            value,
            "may only hold letters, digits, '.', '_', '-' and not start with '.' or '-'",
        )
    return value


def safe_path_component(value: object, name: str) -> str:
    """A single file name: no ``/``, not ``.`` or ``..``, no control characters, fits NAME_MAX.

    More permissive than :func:`safe_name` (spaces and non-ASCII letters pass) for names the
    user chose, but still exactly one component of a path.
    """
    if not isinstance(value, str):
        raise _invalid(name, value, "not a string")
    if value in ("", ".", ".."):
        raise _invalid(name, value, "not a file name")
    if "/" in value:
        raise _invalid(name, value, "contains '/'")
    if _CONTROL_CHARS.search(value):
        raise _invalid(name, value, "contains control characters")
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:
        raise _invalid(name, value, "not valid unicode") from None
    if len(encoded) > NAME_MAX_BYTES:
        raise _invalid(name, value, f"longer than {NAME_MAX_BYTES} bytes")
    return value


def path_under(base: Path, *parts: str) -> Path:
    """``base`` joined with ``parts``, refusing any result that would leave ``base``.

    Parts may be relative paths of several components but not absolute, and never contain
    ``..``; after symlinks are resolved the path must still lie inside the resolved ``base``.
    The joined (unresolved) path is returned.
    """
    relative: list[str] = []
    for part in parts:
        if not isinstance(part, str) or not part or "\0" in part:
            raise _invalid("path", part, "not a relative path")
        pure = PurePosixPath(part)
        if pure.is_absolute():
            raise _invalid("path", part, "absolute path not allowed here")
        if ".." in pure.parts:
            raise _invalid("path", part, "'..' not allowed")
        relative.append(part)
    candidate = base.joinpath(*relative)
    if not candidate.resolve().is_relative_to(base.resolve()):
        raise _invalid("path", str(candidate), f"resolves outside {base}")
    return candidate


def absolute_path(value: object, name: str, max_len: int = 4096) -> str:
    """An absolute, normalised path: no ``..``, ``.``, ``//``, trailing ``/`` or control chars."""
    if not isinstance(value, str):
        raise _invalid(name, value, "not a string")
    if _CONTROL_CHARS.search(value) or len(value) > max_len:
        raise _invalid(name, value, "contains control characters or is too long")
    if not value.startswith("/"):
        raise _invalid(name, value, "not an absolute path")
    if ".." in value.split("/"):
        raise _invalid(name, value, "'..' not allowed")
    if value.startswith("//") or posixpath.normpath(value) != value or value == "/":
        raise _invalid(name, value, "not a normalised path")
    return value


def flag(value: object) -> bool:
    """A legacy flag (the schema's BoolOrString): a boolean, or the text "true"/"false"."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def _invalid(name: str, value: object, problem: str) -> errors.InvalidParameter:
    shown = repr(value)
    if len(shown) > _SHOWN_VALUE_CHARS:
        shown = shown[: _SHOWN_VALUE_CHARS - 3] + "..."
    return errors.InvalidParameter(f"{name}={shown}: {problem}", param=name)
