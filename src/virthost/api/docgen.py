"""Renders the API schema as Markdown: ``docs/api.md`` is generated, never written by hand.

The reference is built from the same ``vdsm-api.yml`` that validates requests, so the docs
say exactly what the server enforces. ``--check`` lets tests and CI catch a schema change
that was committed without regenerating the file::

    venv/bin/python -m virthost.api.docgen > docs/api.md
    venv/bin/python -m virthost.api.docgen --check docs/api.md   # exit 1 when stale
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from virthost.api.schema import PRIMITIVES, Param, Schema, TypeSpec, Verb

REGENERATE = "venv/bin/python -m virthost.api.docgen > docs/api.md"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _type_ref(expr: str) -> str:
    """A type expression with named types linked to their definitions."""
    if expr.startswith("[") and expr.endswith("]"):
        return f"list of {_type_ref(expr[1:-1].strip())}"
    if expr in PRIMITIVES:
        return f"`{expr}`"
    return f"[{expr}](#type-{expr.lower()})"


def _value(value: Any) -> str:
    return f"`{json.dumps(value)}`"


def _param_table(params: Sequence[Param], first: str) -> list[str]:
    lines = [f"| {first} | Type | Default | Description |", "|---|---|---|---|"]
    for p in params:
        default = "*required*" if p.required else _value(p.default)
        lines.append(f"| `{p.name}` | {_type_ref(p.type)} | {default} | {_cell(p.doc)} |")
    return lines


def _verb(verb: Verb) -> list[str]:
    notes = [f"Since {verb.since}."]
    if verb.deprecated:
        notes.append("**Deprecated.**")
    if verb.fast:
        notes.append("Fast: answered without a worker thread.")
    lines = [f"### {verb.method}", "", verb.doc, "", " ".join(notes), ""]
    if verb.params:
        lines += [*_param_table(verb.params, "Parameter"), ""]
    else:
        lines += ["No parameters.", ""]
    lines += [f"Returns {_type_ref(verb.returns)}: {verb.returns_doc}", ""]
    return lines


def _type(spec: TypeSpec) -> list[str]:
    lines = [f'<a id="type-{spec.name.lower()}"></a>', f"### {spec.name}", "", spec.doc, ""]
    if spec.kind == "string":
        detail = "A string"
        if spec.format:
            detail += f" in {spec.format} format"
        if spec.pattern:
            detail += f" matching `{spec.pattern}`"
        lines.append(detail + (f", e.g. {_value(spec.example)}." if spec.example else "."))
    elif spec.kind == "enum":
        lines.append("One of: " + ", ".join(_value(v) for v in spec.values) + ".")
    elif spec.kind == "union":
        lines.append("Any of: " + ", ".join(_type_ref(m) for m in spec.of) + ".")
    elif spec.kind == "map":
        key, value = _type_ref(spec.key_type), _type_ref(spec.value_type)
        lines.append(f"An object mapping {key} keys to {value} values.")
    elif spec.properties:
        lines += [
            "An object; keys not listed here are accepted and passed on.",
            "",
            *_param_table(spec.properties, "Property"),
        ]
    else:
        lines.append("An object; its keys are not checked.")
    return [*lines, ""]


def render_markdown(schema: Schema) -> str:
    """The whole API reference as one Markdown document."""
    total = sum(len(verbs) for verbs in schema.namespaces.values())
    lines = [
        "# virthost API reference",
        "",
        "<!-- Generated from src/virthost/api/vdsm-api.yml; do not edit. -->",
        f"<!-- Regenerate with: {REGENERATE} -->",
        "",
        "Requests are JSON-RPC 2.0 calls of `Namespace.verb`, normally carried over STOMP",
        "(VDSM's contract). Parameters are given by name (or by position, in the order listed).",
        "A parameter with a default may be left out. A wrong, missing or unknown parameter is",
        "answered with error -32602 naming it; an unknown method with -32601.",
        "",
        f"{total} verbs in {len(schema.namespaces)} namespaces, {len(schema.types)} named types"
        f" and {len(schema.events)} events.",
        "",
        "## Contents",
        "",
    ]
    for namespace, verbs in schema.namespaces.items():
        lines.append(f"- [{namespace}](#{namespace.lower()}) ({len(verbs)} verbs)")
    lines += ["- [Types](#types)", "- [Events](#events)", ""]
    for namespace, verbs in schema.namespaces.items():
        lines += [f"## {namespace}", ""]
        for verb in verbs.values():
            lines += _verb(verb)
    lines += ["## Types", ""]
    for spec in schema.types.values():
        lines += _type(spec)
    lines += [
        "## Events",
        "",
        "Notifications the server sends to subscribers of the events queue, as JSON-RPC",
        "requests without an id; `<vmId>` and `<jobId>` stand for the object concerned.",
        "",
    ]
    for event in schema.events:
        lines += [f"### `{event.name}`", "", event.doc, "", f"Params: `{event.params_doc}`", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m virthost.api.docgen",
        description="Write the API reference (Markdown) generated from the schema to stdout.",
    )
    parser.add_argument(
        "--check",
        metavar="FILE",
        type=Path,
        help="do not print; exit 1 if FILE differs from what would be generated",
    )
    args = parser.parse_args(argv)
    text = render_markdown(Schema.default())
    if args.check is None:
        sys.stdout.write(text)
        return 0
    try:
        current = args.check.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"docgen: cannot read {args.check}: {exc}", file=sys.stderr)
        return 1
    if current != text:
        print(f"docgen: {args.check} is stale; regenerate with: {REGENERATE}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
