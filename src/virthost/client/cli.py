"""``virthost-client``: call any API verb from the shell, the way ``vdsm-client`` does.

    virthost-client [-a HOST] [-p PORT] [--insecure] [--timeout S] [--flow-id ID]
                    [--pki-dir DIR] [-f FILE|-] [--events] Namespace verb [name=value ...]

The sub-commands are generated from the API schema, so ``virthost-client VM create -h`` shows
the verb's documentation, every parameter with its type and default, and a JSON template of
the parameters. Unlike vdsm-client, ``name=value`` values are converted by the parameter's
schema type where that is unambiguous (booleans, numbers, JSON for lists and objects); anything
else stays a string, and ``-f`` takes the whole parameter object as JSON instead.

Results are printed as ``json.dumps(result, indent=4, sort_keys=True)``. Errors print one line
``virthost-client: <message>`` on stderr and exit 1; usage errors exit 2. ``--events`` prints
every event as one JSON line until Ctrl-C (or until the connection ends, exit 1).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import queue
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TextIO

from virthost import client as client_lib
from virthost.client import errors, tls
from virthost.client.api_client import SchemaLike, TypeSpecLike, VerbLike
from virthost.client.jsonrpc_client import Event

PROG = "virthost-client"
_EVENT_POLL = 0.5  # seconds between checks that the connection is still alive


class UsageError(Exception):
    """The command line is wrong (exit status 2)."""


def _load_schema() -> SchemaLike:
    return client_lib.default_schema()


# --- parameter conversion ----------------------------------------------------------------


def convert_value(
    type_expr: str, text: str, types: Mapping[str, TypeSpecLike] | None = None
) -> Any:
    """``text`` as the schema type ``type_expr`` says; raises ValueError when it does not fit.

    Named types are looked up in ``types``: strings stay text, enum members take the member's
    own JSON type, objects and maps are parsed as JSON, and a union takes its first member
    that accepts the text. An unknown named type is JSON when it looks like an object or an
    array, else text.
    """
    types = types or {}
    if type_expr in _PRIMITIVE_CONVERTERS:
        return _PRIMITIVE_CONVERTERS[type_expr](text)
    if type_expr.startswith("[") and type_expr.endswith("]"):
        return _json_of(text, list)
    spec = types.get(type_expr)
    if spec is None:
        if text[:1] in ("{", "["):
            with contextlib.suppress(ValueError):
                return json.loads(text)
        return text
    if spec.kind in ("object", "map"):
        return _json_of(text, dict)
    if spec.kind == "enum":
        return next((value for value in spec.values if str(value) == text), text)
    if spec.kind == "union":
        for member in spec.of:
            with contextlib.suppress(ValueError):
                return convert_value(member, text, types)
        raise ValueError(f"{text!r} fits none of {', '.join(spec.of)}")
    return text


def _boolean(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise ValueError(f"expected true or false, got {text!r}")
    return text.lower() == "true"


def _integer(text: str, *, unsigned: bool = False) -> int:
    try:
        number = int(text, 10)
    except ValueError:
        raise ValueError(f"expected an integer, got {text!r}") from None
    if unsigned and number < 0:
        raise ValueError(f"expected a non-negative integer, got {text!r}")
    return number


def _real(text: str) -> float:
    try:
        real = float(text)
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None
    if not math.isfinite(real):
        raise ValueError(f"expected a finite number, got {text!r}")
    return real


def _json_of(text: str, want: type) -> Any:
    name = "object" if want is dict else "array"
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"expected a JSON {name}: {exc}") from None
    if not isinstance(value, want):
        raise ValueError(f"expected a JSON {name}, got {text!r}")
    return value


_PRIMITIVE_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "string": str,
    "any": str,
    "boolean": _boolean,
    "int": _integer,
    "uint": lambda text: _integer(text, unsigned=True),
    "float": _real,
    "object": lambda text: _json_of(text, dict),
}


def parse_params(
    verb: VerbLike, args: Sequence[str], types: Mapping[str, TypeSpecLike] | None = None
) -> dict[str, Any]:
    """Turn ``name=value`` words into the verb's params; raises UsageError."""
    param_types = {param.name: param.type for param in verb.params}
    params: dict[str, Any] = {}
    for arg in args:
        name, sep, text = arg.partition("=")
        if not sep or not name:
            raise UsageError(f"expected name=value, got {arg!r}")
        if name not in param_types:
            known = ", ".join(sorted(param_types)) or "none"
            raise UsageError(f"{verb.method} has no parameter {name!r} (known: {known})")
        if name in params:
            raise UsageError(f"parameter {name!r} given twice")
        try:
            params[name] = convert_value(param_types[name], text, types)
        except ValueError as exc:
            raise UsageError(f"{name}: {exc}") from None
    return params


def read_params_file(path: str, stdin: TextIO) -> dict[str, Any]:
    """The params object from ``path`` ('-' = stdin); OSError or UsageError."""
    if path == "-":
        text = stdin.read()
    else:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise UsageError(f"{path}: the parameters must be a JSON object")
    return value


# --- the parser ----------------------------------------------------------------------------


def _default_text(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def verb_epilog(schema: SchemaLike, verb: VerbLike) -> str:
    """The end of a verb's ``-h`` text: each param (type, default, doc) and a JSON template."""
    lines: list[str] = []
    if verb.params:
        lines.append("parameters:")
        for param in verb.params:
            default = "required" if param.required else f"default {_default_text(param.default)}"
            lines.append(f"  {param.name} ({param.type}, {default})")
            lines += [f"      {line}" for line in param.doc.strip().splitlines()]
    else:
        lines.append("This verb takes no parameters.")
    lines += ["", "JSON template (for -f):", json.dumps(schema.template(verb), indent=4)]
    return "\n".join(lines)


def build_parser(schema: SchemaLike) -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog=PROG, description="Call virthost (or VDSM) API verbs.", formatter_class=raw
    )
    parser.add_argument("-a", "--host", default="localhost", help="server (default: localhost)")
    parser.add_argument("-p", "--port", type=int, default=54321, help="port (default: 54321)")
    parser.add_argument("--insecure", action="store_true", help="plain TCP instead of TLS")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds (default: 60)")
    parser.add_argument("--flow-id", help="flow id sent as ovirtCorrelationId")
    pki_default = f"${tls.PKI_DIR_ENV} or {tls.DEFAULT_PKI_DIR}"
    parser.add_argument("--pki-dir", help=f"client certificates (default: {pki_default})")
    parser.add_argument("-f", "--file", metavar="FILE", help="params as a JSON object ('-': stdin)")
    parser.add_argument("--events", action="store_true", help="print events until Ctrl-C")
    namespaces = parser.add_subparsers(dest="namespace", metavar="Namespace", required=False)
    for ns_name in sorted(schema.namespaces):
        verbs = schema.namespaces[ns_name]
        ns_parser = namespaces.add_parser(ns_name, help=f"{len(verbs)} verbs")
        verb_parsers = ns_parser.add_subparsers(dest="verb", metavar="verb", required=True)
        for verb_name in sorted(verbs):
            verb = verbs[verb_name]
            summary = verb.doc.strip().split("\n", 1)[0]
            verb_parser = verb_parsers.add_parser(
                verb_name,
                help=summary,
                description=verb.doc.strip() or verb.method,
                epilog=verb_epilog(schema, verb),
                formatter_class=raw,
            )
            verb_parser.add_argument("params", nargs="*", metavar="name=value")
            verb_parser.set_defaults(verb_obj=verb, verb_parser=verb_parser)
    return parser


# --- running -------------------------------------------------------------------------------


def _fail(message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return 1


def _connect(args: argparse.Namespace, schema: SchemaLike) -> client_lib.Client:
    files = tls.pki_files(args.pki_dir)
    return client_lib.connect(
        args.host,
        args.port,
        use_tls=not args.insecure,
        cert_file=files.cert_file,
        key_file=files.key_file,
        ca_file=files.ca_file,
        timeout=args.timeout,
        schema=schema,
    )


def _follow(cli: client_lib.Client) -> Iterator[Event]:
    """Events of the default subscription until the connection ends (ConnectionError)."""
    while True:
        try:
            yield cli.events.get(timeout=_EVENT_POLL)
        except queue.Empty:
            failure = cli.failure
            if failure is not None:
                raise failure from None


def _params(args: argparse.Namespace, schema: SchemaLike) -> dict[str, Any]:
    verb_parser: argparse.ArgumentParser = args.verb_parser
    try:
        if args.file is not None:
            if args.params:
                raise UsageError("-f cannot be combined with name=value parameters")
            return read_params_file(args.file, sys.stdin)
        return parse_params(args.verb_obj, args.params, schema.types)
    except UsageError as exc:
        verb_parser.error(str(exc))


def _run(args: argparse.Namespace, schema: SchemaLike, parser: argparse.ArgumentParser) -> int:
    verb: VerbLike | None = getattr(args, "verb_obj", None)
    if verb is None and not args.events:
        parser.error("Namespace and verb are required (unless --events is given)")
    params: Mapping[str, Any] = {}
    if verb is not None:
        try:
            params = _params(args, schema)
        except OSError as exc:
            return _fail(f"cannot read {args.file}: {exc.strerror or exc}")
    with _connect(args, schema) as cli:
        if args.events:
            cli.subscribe()
        if verb is not None:
            flow = cli.flow(args.flow_id) if args.flow_id else contextlib.nullcontext()
            with flow:
                result = cli.call(verb.method, params, _timeout=args.timeout)
            print(json.dumps(result, indent=4, sort_keys=True), flush=True)
        if args.events:
            try:
                for event in _follow(cli):
                    line = {"method": event.method, "params": event.params}
                    print(json.dumps(line, sort_keys=True), flush=True)
            except KeyboardInterrupt:
                return 0
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: sys.argv[1:]); return the exit status."""
    try:
        schema = _load_schema()
        parser = build_parser(schema)
    except Exception as exc:
        return _fail(f"cannot load the API schema: {exc}")
    try:
        args = parser.parse_args(argv)
        return _run(args, schema, parser)
    except SystemExit as exc:  # argparse: -h (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except errors.ServerError as exc:
        return _fail(f"error {exc.code}: {exc.message}")
    except errors.Error as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
