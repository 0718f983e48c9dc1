"""The API schema: one YAML file (``vdsm-api.yml``) read into typed, immutable records.

Why one schema: VDSM's wire contract is large (196 verbs in the namespaces we serve) and
every layer needs the same facts about it. The RPC dispatcher asks it whether a method
exists and whether it may run inline (``fast``); the API layer validates and completes
parameters with it before a service sees them; the CLI builds its sub-commands, help and
JSON templates from it; ``docgen`` renders ``docs/api.md`` from it. Keeping those facts in
data rather than code means they cannot drift apart.

Validation follows VDSM's clients rather than its documentation: where VDSM accepts a
number sent as text, the schema says so with a named type (``IntOrString``), and object
records accept keys they do not declare. The schema file itself is checked strictly when
loaded (unknown keys, unknown type names, defaults that fail their own type), so a typo
fails at start-up with a message naming the spot instead of at a client's first call.

The YAML format is described at the top of ``vdsm-api.yml``.
"""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import yaml

from virthost.common import errors

__all__ = ["MISSING", "EventSpec", "Param", "Schema", "TypeSpec", "Verb"]


class _Missing:
    """Marks a required parameter (``None`` is a legitimate default)."""

    def __repr__(self) -> str:
        return "MISSING"

    def __copy__(self) -> _Missing:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> _Missing:
        return self


MISSING: Final = _Missing()

PACKAGED_SCHEMA: Final = Path(__file__).with_name("vdsm-api.yml")
BLANK_UUID: Final = "00000000-0000-0000-0000-000000000000"
_UUID_RE: Final = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")

PRIMITIVES: Final[Mapping[str, Callable[[Any], bool]]] = {
    "string": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "uint": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
    "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "any": lambda v: True,
    "object": lambda v: isinstance(v, dict),
    "none": lambda v: v is None,
}
_SAMPLES: Final[Mapping[str, Any]] = {
    "string": "",
    "int": 0,
    "uint": 0,
    "float": 0.0,
    "boolean": False,
    "any": None,
    "object": {},
    "none": None,
}


@dataclass(frozen=True)
class Param:
    """A verb parameter or an object property; ``default`` is MISSING when required."""

    name: str
    type: str
    doc: str
    default: Any = field(default=MISSING, hash=False)  # may be a list: keep records hashable

    @property
    def required(self) -> bool:
        return self.default is MISSING


@dataclass(frozen=True)
class Verb:
    namespace: str
    name: str
    doc: str
    params: tuple[Param, ...]
    returns: str
    returns_doc: str
    since: str
    deprecated: bool
    fast: bool

    @property
    def method(self) -> str:
        return f"{self.namespace}.{self.name}"


@dataclass(frozen=True)
class EventSpec:
    name: str
    doc: str
    params_doc: str


@dataclass(frozen=True)
class TypeSpec:
    """A named type. Which fields matter depends on ``kind`` (see the YAML header)."""

    name: str
    kind: str
    doc: str
    values: tuple[Any, ...] = ()  # enum members
    properties: tuple[Param, ...] = ()  # object
    of: tuple[str, ...] = ()  # union members
    key_type: str = "string"  # map
    value_type: str = "any"  # map
    format: str | None = None  # string: "uuid"
    pattern: str | None = None  # string: regular expression the whole value must match
    example: Any = None  # string: sample value for templates


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    kind = {str: "string", int: "int", float: "float"}.get(type(value), type(value).__name__)
    text = repr(value)
    return f"{kind} {text if len(text) <= 40 else text[:37] + '...'}"


def _list_item(expr: str) -> str | None:
    return expr[1:-1].strip() if expr.startswith("[") and expr.endswith("]") else None


class Schema:
    """The loaded schema. Immutable; share one instance (``Schema.default()``)."""

    def __init__(
        self,
        namespaces: Mapping[str, Mapping[str, Verb]],
        types: Mapping[str, TypeSpec],
        events: Sequence[EventSpec],
    ) -> None:
        self.namespaces: Mapping[str, Mapping[str, Verb]] = MappingProxyType(
            {ns: MappingProxyType(dict(verbs)) for ns, verbs in namespaces.items()}
        )
        self.types: Mapping[str, TypeSpec] = MappingProxyType(dict(types))
        self.events: tuple[EventSpec, ...] = tuple(events)

    # --- loading ---------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path | None = None) -> Schema:
        """Read and check a schema file; ``None`` reads the one shipped with the package."""
        source = path or PACKAGED_SCHEMA
        with open(source, encoding="utf-8") as f:
            raw = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        from virthost.api._schema_loader import parse

        namespaces, types, events = parse(raw, str(source))
        schema = cls(namespaces, types, events)
        schema._self_check(str(source))
        return schema

    @classmethod
    def default(cls) -> Schema:
        """The packaged schema, loaded once per process."""
        global _default
        with _default_lock:
            if _default is None:
                _default = cls.load()
            return _default

    def _self_check(self, source: str) -> None:
        """Check what needs the finished type table: references, defaults, examples."""

        def fail(where: str, problem: str) -> None:
            raise ValueError(f"{source}: {where}: {problem}")

        def check_value(expr: str, value: Any, where: str, what: str) -> None:
            if value is None:  # null always means "not given"
                return
            err = self._check(expr, value, where)
            if err is not None:
                fail(where, f"{what} {value!r} does not fit {expr}: {err[0]}: {err[1]}")

        for spec in self.types.values():
            where = f"types.{spec.name}"
            for member in spec.of:
                self._require_type(member, where, fail)
            if spec.kind == "map":
                self._require_type(spec.key_type, where, fail)
                self._require_type(spec.value_type, where, fail)
            for prop in spec.properties:
                self._require_type(prop.type, f"{where}.{prop.name}", fail)
            if spec.kind == "union":
                self._check_union_cycle(spec.name, [], fail)
        for spec in self.types.values():
            for prop in spec.properties:
                if not prop.required:
                    where = f"types.{spec.name}.{prop.name}"
                    check_value(prop.type, prop.default, where, "default")
            if spec.example is not None:
                check_value(spec.name, spec.example, f"types.{spec.name}", "example")
        for verbs in self.namespaces.values():
            for verb in verbs.values():
                self._require_type(verb.returns, f"verbs.{verb.method}.returns", fail)
                for param in verb.params:
                    where = f"verbs.{verb.method}.{param.name}"
                    self._require_type(param.type, where, fail)
                    if not param.required:
                        check_value(param.type, param.default, where, "default")

    def _require_type(self, expr: str, where: str, fail: Callable[[str, str], None]) -> None:
        item = _list_item(expr)
        if item is not None:
            self._require_type(item, where, fail)
        elif expr not in PRIMITIVES and expr not in self.types:
            fail(where, f"unknown type {expr!r}")

    def _check_union_cycle(
        self, name: str, path: list[str], fail: Callable[[str, str], None]
    ) -> None:
        if name in path:
            fail(f"types.{name}", f"union refers to itself: {' -> '.join([*path, name])}")
        spec = self.types.get(name)
        if spec is not None and spec.kind == "union":
            for member in spec.of:
                self._check_union_cycle(member, [*path, name], fail)

    # --- lookup ----------------------------------------------------------------------------

    def get_verb(self, method: str) -> Verb:
        namespace, _, name = method.partition(".")
        verb = self.namespaces.get(namespace, {}).get(name)
        if verb is None:
            raise errors.MethodNotFound(method)
        return verb

    # --- validation --------------------------------------------------------------------------

    def validate_params(
        self, verb: Verb, params: Mapping[str, Any] | Sequence[Any] | None
    ) -> dict[str, Any]:
        """Check request params against ``verb`` and return them by name, defaults filled.

        ``params`` is a JSON-RPC params value: an object (by name), an array (by position,
        in declaration order) or absent. Raises ``errors.InvalidParams`` naming the
        offending parameter (a dotted path inside records).
        """
        if not params and not verb.params:
            return {}  # the common case of a verb without parameters, kept cheap
        if params is None:
            given: dict[str, Any] = {}
        elif isinstance(params, Mapping):
            given = dict(params)
            known = {p.name for p in verb.params}
            for key in given:
                if key not in known:
                    raise errors.InvalidParams(str(key), f"unknown parameter of {verb.method}")
        elif isinstance(params, Sequence) and not isinstance(params, str | bytes):
            if len(params) > len(verb.params):
                raise errors.InvalidParams(
                    "params",
                    f"{verb.method} takes at most {len(verb.params)} positional "
                    f"parameters, got {len(params)}",
                )
            given = {p.name: v for p, v in zip(verb.params, params, strict=False)}
        else:
            raise errors.InvalidParams("params", "must be a JSON object or array")
        result: dict[str, Any] = {}
        for param in verb.params:
            if param.name not in given:
                if param.required:
                    raise errors.InvalidParams(param.name, f"required by {verb.method}")
                result[param.name] = copy.deepcopy(param.default)
                continue
            value = given[param.name]
            if value is not None or param.default is not None:
                self.check_type(param.type, value, param.name)
            result[param.name] = value
        return result

    def check_type(self, type_expr: str, value: Any, where: str) -> None:
        """Raise ``errors.InvalidParams(path, problem)`` unless ``value`` fits ``type_expr``."""
        err = self._check(type_expr, value, where)
        if err is not None:
            raise errors.InvalidParams(*err)

    def _check(self, expr: str, value: Any, where: str) -> tuple[str, str] | None:
        item = _list_item(expr)
        if item is not None:
            if not isinstance(value, list | tuple):
                return where, f"expected a list of {item}, got {_describe(value)}"
            for i, element in enumerate(value):
                err = self._check(item, element, f"{where}[{i}]")
                if err is not None:
                    return err
            return None
        primitive = PRIMITIVES.get(expr)
        if primitive is not None:
            return None if primitive(value) else (where, f"expected {expr}, got {_describe(value)}")
        spec = self.types.get(expr)
        if spec is None:
            return where, f"schema error: unknown type {expr!r}"
        return self._check_named(spec, value, where)

    def _check_named(self, spec: TypeSpec, value: Any, where: str) -> tuple[str, str] | None:
        expected = f"expected {spec.name}, got {_describe(value)}"
        if spec.kind == "string":
            if not isinstance(value, str):
                return where, expected
            if spec.format == "uuid" and not _UUID_RE.fullmatch(value):
                return where, f"{expected}: not a UUID"
            if spec.pattern is not None and not re.fullmatch(spec.pattern, value):
                return where, f"{expected}: does not match {spec.pattern}"
            return None
        if spec.kind == "enum":
            if any(type(v) is type(value) and v == value for v in spec.values):
                return None
            choices = ", ".join(repr(v) for v in spec.values)
            return where, f"{expected}: not one of {choices}"
        if spec.kind == "union":
            if any(self._check(member, value, where) is None for member in spec.of):
                return None
            return where, f"{expected} (one of: {', '.join(spec.of)})"
        if not isinstance(value, dict):
            return where, f"expected {spec.name} (an object), got {_describe(value)}"
        if spec.kind == "map":
            for key, element in value.items():
                err = self._check(spec.key_type, key, f"{where}[{key!r}]") or self._check(
                    spec.value_type, element, f"{where}[{key!r}]"
                )
                if err is not None:
                    return err
            return None
        for prop in spec.properties:  # object: declared properties; others pass untouched
            path = f"{where}.{prop.name}"
            if prop.name not in value:
                if prop.required:
                    return path, f"required property of {spec.name} is missing"
                continue
            if value[prop.name] is None and prop.default is None:
                continue
            err = self._check(prop.type, value[prop.name], path)
            if err is not None:
                return err
        return None

    # --- templates ---------------------------------------------------------------------------

    def template(self, verb: Verb) -> dict[str, Any]:
        """Params for ``verb`` as a fill-in JSON template: samples for required params,
        defaults for optional ones. The template itself passes ``validate_params``."""
        return {
            p.name: self._sample(p.type) if p.required else copy.deepcopy(p.default)
            for p in verb.params
        }

    def _sample(self, expr: str) -> Any:
        if _list_item(expr) is not None:
            return []
        if expr in _SAMPLES:
            return copy.copy(_SAMPLES[expr])
        spec = self.types[expr]
        if spec.kind == "string":
            if spec.example is not None:
                return spec.example
            return BLANK_UUID if spec.format == "uuid" else ""
        if spec.kind == "enum":
            return spec.values[0]
        if spec.kind == "union":
            return self._sample(spec.of[0])
        if spec.kind == "map":
            return {}
        return {
            p.name: self._sample(p.type) if p.required else copy.deepcopy(p.default)
            for p in spec.properties
        }


_default: Schema | None = None
_default_lock = threading.Lock()
