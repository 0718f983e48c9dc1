"""Turns the parsed ``vdsm-api.yml`` document into schema records, checking its shape.

Kept apart from ``schema.py`` so that module stays about using the schema (lookup,
validation, templates) while this one is about reading the file strictly: every mapping
may hold only the keys the format defines, every doc must be present, and every mistake is
reported as a ``ValueError`` naming the file and the place in it. Checks that need the
whole type table (unknown type names, defaults that fail their own type) run afterwards in
``Schema._self_check``.
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

from virthost.api.schema import MISSING, PRIMITIVES, EventSpec, Param, TypeSpec, Verb

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VERB_RE = re.compile(r"[A-Z][A-Za-z0-9]*\.[A-Za-z_][A-Za-z0-9_]*")
_VERSION_RE = re.compile(r"[0-9]+(?:\.[0-9]+)*")
_KIND_KEYS = {
    "string": {"format", "pattern", "example"},
    "enum": {"values"},
    "object": {"properties"},
    "map": {"keys", "values"},
    "union": {"of"},
}
_TOP_KEYS = {"shared", "types", "verbs", "events"}
_VERB_KEYS = {"doc", "since", "deprecated", "fast", "params", "returns"}
_PARAM_KEYS = {"name", "type", "doc", "default"}


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> NoReturn:
        raise ValueError(f"{self.source}: {where}: {problem}")

    def mapping(self, value: Any, where: str, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(where, f"expected a mapping, got {type(value).__name__}")
        unknown = sorted(str(k) for k in value if k not in allowed)
        if unknown:
            self.fail(where, f"unknown key(s) {', '.join(unknown)}")
        return value

    def text(self, value: Any, where: str, what: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(where, f"{what} must be a non-empty string, got {value!r}")
        return value.strip()

    def flag(self, value: Any, where: str, what: str) -> bool:
        if not isinstance(value, bool):
            self.fail(where, f"{what} must be true or false, got {value!r}")
        return value

    def type_expr(self, value: Any, where: str) -> str:
        expr = self.text(value, where, "type")
        inner = expr
        while inner.startswith("["):
            if not inner.endswith("]"):
                self.fail(where, f"malformed list type {expr!r}")
            inner = inner[1:-1].strip()
        if not _NAME_RE.fullmatch(inner):
            self.fail(where, f"malformed type {expr!r}")
        return expr

    def param(self, raw: Any, where: str, name: str | None = None) -> Param:
        data = self.mapping(raw, where, _PARAM_KEYS if name is None else _PARAM_KEYS - {"name"})
        if name is None:
            name = self.text(data.get("name"), where, "name")
        if not _NAME_RE.fullmatch(name):
            self.fail(where, f"malformed name {name!r}")
        return Param(
            name=name,
            type=self.type_expr(data.get("type"), f"{where}.type"),
            doc=self.text(data.get("doc"), where, "doc"),
            default=data.get("default", MISSING),
        )

    def type_spec(self, name: Any, raw: Any) -> TypeSpec:
        where = f"types.{name}"
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or name in PRIMITIVES:
            self.fail(where, "type names must be identifiers other than the primitives")
        kind = raw.get("kind") if isinstance(raw, dict) else None
        if kind not in _KIND_KEYS:
            self.fail(where, f"kind must be one of {', '.join(_KIND_KEYS)}, got {kind!r}")
        data = self.mapping(raw, where, {"kind", "doc"} | _KIND_KEYS[kind])
        spec: dict[str, Any] = {
            "name": name,
            "kind": kind,
            "doc": self.text(data.get("doc"), where, "doc"),
        }
        if kind == "string":
            spec["format"] = data.get("format")
            if spec["format"] not in (None, "uuid"):
                self.fail(where, f"unknown format {spec['format']!r}")
            pattern = data.get("pattern")
            if pattern is not None:
                try:
                    re.compile(self.text(pattern, where, "pattern"))
                except re.error as exc:
                    self.fail(where, f"bad pattern: {exc}")
                if "example" not in data:
                    self.fail(where, "a type with a pattern needs an example")
            spec["pattern"] = pattern
            spec["example"] = data.get("example")
        elif kind == "enum":
            values = data.get("values")
            if not isinstance(values, list) or not values:
                self.fail(where, "values must be a non-empty list")
            for value in values:
                if isinstance(value, bool) or not isinstance(value, str | int):
                    self.fail(where, f"enum values must be strings or integers, got {value!r}")
            spec["values"] = tuple(values)
        elif kind == "union":
            members = data.get("of")
            if not isinstance(members, list) or len(members) < 2:
                self.fail(where, "of must list at least two types")
            spec["of"] = tuple(self.type_expr(m, f"{where}.of") for m in members)
        elif kind == "map":
            spec["key_type"] = self.type_expr(data.get("keys", "string"), f"{where}.keys")
            spec["value_type"] = self.type_expr(data.get("values"), f"{where}.values")
        else:
            props = data.get("properties", {})
            if not isinstance(props, dict):
                self.fail(where, "properties must be a mapping")
            spec["properties"] = tuple(
                self.param(p, f"{where}.{pname}", name=str(pname)) for pname, p in props.items()
            )
        return TypeSpec(**spec)

    def verb(self, method: Any, raw: Any) -> Verb:
        where = f"verbs.{method}"
        if not isinstance(method, str) or not _VERB_RE.fullmatch(method):
            self.fail(where, "verb names must look like Namespace.verb")
        data = self.mapping(raw, where, _VERB_KEYS)
        since = data.get("since")
        if not isinstance(since, str) or not _VERSION_RE.fullmatch(since):
            self.fail(where, f'since must be a quoted version like "4.2", got {since!r}')
        raw_params = data.get("params", [])
        if not isinstance(raw_params, list):
            self.fail(where, "params must be a list")
        params = tuple(self.param(p, f"{where}.params[{i}]") for i, p in enumerate(raw_params))
        names = [p.name for p in params]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            self.fail(where, f"duplicate parameter(s) {', '.join(duplicates)}")
        returns = self.mapping(data.get("returns", {}), f"{where}.returns", {"type", "doc"})
        namespace, _, name = method.partition(".")
        return Verb(
            namespace=namespace,
            name=name,
            doc=self.text(data.get("doc"), where, "doc"),
            params=params,
            returns=self.type_expr(returns.get("type", "none"), f"{where}.returns"),
            returns_doc=self.text(returns.get("doc", "Nothing; the result is true."), where, "doc"),
            since=since,
            deprecated=self.flag(data.get("deprecated", False), where, "deprecated"),
            fast=self.flag(data.get("fast", False), where, "fast"),
        )

    def event(self, raw: Any, where: str) -> EventSpec:
        data = self.mapping(raw, where, {"name", "doc", "params"})
        return EventSpec(
            name=self.text(data.get("name"), where, "name"),
            doc=self.text(data.get("doc"), where, "doc"),
            params_doc=self.text(data.get("params"), where, "params"),
        )


def parse(
    raw: Any, source: str
) -> tuple[dict[str, dict[str, Verb]], dict[str, TypeSpec], list[EventSpec]]:
    """Records from a parsed schema document, in file order; raises ValueError on mistakes."""
    reader = _Reader(source)
    top = reader.mapping(raw, "document", _TOP_KEYS)
    raw_types = reader.mapping(top.get("types", {}), "types", set(top.get("types") or {}))
    raw_verbs = top.get("verbs")
    if not isinstance(raw_verbs, dict) or not raw_verbs:
        reader.fail("verbs", "the schema must declare verbs")
    raw_events = top.get("events", [])
    if not isinstance(raw_events, list):
        reader.fail("events", "events must be a list")
    types = {name: reader.type_spec(name, spec) for name, spec in raw_types.items()}
    namespaces: dict[str, dict[str, Verb]] = {}
    for method, spec in raw_verbs.items():
        verb = reader.verb(method, spec)
        namespaces.setdefault(verb.namespace, {})[verb.name] = verb
    events = [reader.event(e, f"events[{i}]") for i, e in enumerate(raw_events)]
    return namespaces, types, events
