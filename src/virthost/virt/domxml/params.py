"""Checking VDSM-style parameters one by one, each error naming the parameter at fault.

Simple VM parameters come from people and scripts as JSON: numbers may arrive as strings,
booleans as ``"true"``, and a path may be relative or climb out with ``..``. These functions
turn one raw value into the type the builder uses or raise :class:`errors.MissingParameter`
(code 11) / :class:`errors.InvalidParameter` (code 91) with the parameter's name (such as
``drives[1].path``), so the caller learns exactly what to fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from virthost.common import errors
from virthost.common.validate import absolute_path as absolute_path  # re-exported

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
_INT = re.compile(r"[+-]?[0-9]+")


def _invalid(name: str, value: object, problem: str) -> errors.InvalidParameter:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return errors.InvalidParameter(f"{name}={shown}: {problem}", param=name)


def required(params: Mapping[str, Any], key: str, name: str | None = None) -> Any:
    """``params[key]``; MissingParameter when absent or None."""
    value = params.get(key)
    if value is None:
        raise errors.MissingParameter(name or key, param=name or key)
    return value


def integer(value: object, name: str, *, minimum: int, maximum: int) -> int:
    """An int, or a string of decimal digits, within ``minimum..maximum``."""
    if isinstance(value, str) and _INT.fullmatch(value.strip()):
        number = int(value.strip())
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise _invalid(name, value, "not an integer")
    if not minimum <= number <= maximum:
        raise _invalid(name, value, f"not in {minimum}..{maximum}")
    return number


def boolean(value: object, name: str) -> bool:
    """A bool, or the strings ``true``/``false`` in any case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _invalid(name, value, "not a boolean")


def choice(value: object, name: str, allowed: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise _invalid(name, value, f"must be one of {', '.join(allowed)}")
    return value


def text(value: object, name: str, *, max_len: int = 4096) -> str:
    """A string without control characters (safe as XML text or attribute value)."""
    if not isinstance(value, str):
        raise _invalid(name, value, "not a string")
    if _CONTROL.search(value):
        raise _invalid(name, value, "contains control characters")
    if len(value) > max_len:
        raise _invalid(name, value, f"longer than {max_len} characters")
    return value


def mac_address(value: object, name: str) -> str:
    """``xx:xx:xx:xx:xx:xx`` in lowercase, refusing multicast addresses (low bit of byte 0)."""
    if not isinstance(value, str) or not _MAC.fullmatch(value.lower()):
        raise _invalid(name, value, "not a MAC address like 56:6f:00:00:00:01")
    mac = value.lower()
    if int(mac[:2], 16) & 1:
        raise _invalid(name, value, "a multicast address cannot be a NIC's")
    return mac


def mapping(value: object, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _invalid(name, value, "not an object")
    return value


def sequence(value: object, name: str) -> list[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise _invalid(name, value, "not a list")
    return list(value)


def string_dict(value: object, name: str) -> dict[str, str]:
    """A mapping of string keys to string values."""
    result: dict[str, str] = {}
    for key, item in mapping(value, name).items():
        if not isinstance(key, str):
            raise _invalid(name, key, "keys must be strings")
        result[key] = text(item, f"{name}.{key}")
    return result
