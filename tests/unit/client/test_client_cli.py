"""virthost-client: parameter conversion, the generated parser and help, and whole runs."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from unit.client.client_fakes import NO_REPLY, FakeServer, RpcFault, StubSchema, Verb
from virthost import client as client_lib
from virthost.client import cli, errors
from virthost.client.jsonrpc_client import Event


@pytest.fixture(autouse=True)
def stub_schema_loader(schema: StubSchema, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_load_schema", lambda: schema)


def run(
    server: FakeServer | None, *args: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    argv = ["--insecure", "-p", str(server.port if server else 1), "--timeout", "10", *args]
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# --- conversion ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_expr", "text", "value"),
    [
        ("string", "true", "true"),
        ("string", "{}", "{}"),
        ("any", "12", "12"),
        ("boolean", "true", True),
        ("boolean", "FALSE", False),
        ("int", "-12", -12),
        ("uint", "12", 12),
        ("float", "1.5", 1.5),
        ("float", "2", 2.0),
        ("object", '{"a": [1]}', {"a": [1]}),
        ("[UUID]", '["a", "b"]', ["a", "b"]),
        ("[int]", "[]", []),
        ("UUID", "6f1b6a6e-0000-4000-8000-000000000001", "6f1b6a6e-0000-4000-8000-000000000001"),
        ("UUID", "[not json", "[not json"),
        ("VmParameters", '{"memSize": 1}', {"memSize": 1}),
        ("StorageType", "1", 1),
        ("StorageType", "NFS", "NFS"),
        ("StorageType", "BOGUS", "BOGUS"),
        ("IntOrString", "7", 7),
        ("IntOrString", "seven", "seven"),
        ("UUIDListOrCsv", '["a"]', ["a"]),
        ("UUIDListOrCsv", "a,b", "a,b"),
        ("UnknownType", '{"x": 1}', {"x": 1}),
        ("UnknownType", "plain", "plain"),
    ],
)
def test_convert_value(type_expr: str, text: str, value: Any, schema: StubSchema) -> None:
    converted = cli.convert_value(type_expr, text, schema.types)
    assert converted == value
    assert type(converted) is type(value)


@pytest.mark.parametrize(
    ("type_expr", "text"),
    [
        ("boolean", "yes"),
        ("int", "1.5"),
        ("int", "ten"),
        ("uint", "-1"),
        ("float", "nan"),
        ("float", "x"),
        ("object", "[1]"),
        ("object", "{bad"),
        ("[UUID]", '"a"'),
        ("VmParameters", "plain"),
        ("BoolOrNumber", "maybe"),
    ],
)
def test_convert_value_rejects(type_expr: str, text: str, schema: StubSchema) -> None:
    with pytest.raises(ValueError):
        cli.convert_value(type_expr, text, schema.types)


def test_parse_params(schema: StubSchema) -> None:
    verb = schema.namespaces["VM"]["create"]
    params = cli.parse_params(verb, ["vmID=x", "memSize=2048", "name=a=b"], schema.types)
    assert params == {"vmID": "x", "memSize": 2048, "name": "a=b"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["novalue"], "name=value"),
        (["=x"], "name=value"),
        (["bogus=1"], "no parameter 'bogus'"),
        (["vmID=a", "vmID=b"], "twice"),
        (["memSize=lots"], "memSize"),
    ],
)
def test_parse_params_errors(args: list[str], message: str, schema: StubSchema) -> None:
    with pytest.raises(cli.UsageError, match=message):
        cli.parse_params(schema.namespaces["VM"]["create"], args, schema.types)


# --- parser and help -------------------------------------------------------------------------


def test_verb_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["VM", "create", "-h"]) == 0
    out = capsys.readouterr().out
    assert "Create and start a VM." in out
    assert "vmID (UUID, required)" in out
    assert "memSize (uint, default 1024)" in out
    assert "Memory in MiB." in out
    assert out.index("Create and start") < out.index("options:") < out.index("vmID (UUID")
    marker = "JSON template (for -f):\n"
    template, _ = json.JSONDecoder().raw_decode(out[out.index(marker) + len(marker) :])
    assert template["memSize"] == "<uint>"
    assert set(template) >= {"vmID", "vmParams", "extra"}


def test_top_level_help_lists_namespaces(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["-h"]) == 0
    out = capsys.readouterr().out
    assert "Host" in out and "VM" in out and "--events" in out


def test_namespace_help_lists_verbs(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["Host", "-h"]) == 0
    out = capsys.readouterr().out
    assert "getVMList" in out and "List the VMs of the host." in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Namespace and verb are required"),
        (["Nope", "x"], "Nope"),
        (["VM"], "verb"),
        (["VM", "explode"], "explode"),
        (["VM", "getStats", "vmID"], "name=value"),
        (["Host", "getVMList", "fullStatus=maybe"], "fullStatus"),
        (["-f", "-", "VM", "getStats", "vmID=x"], "cannot be combined"),
    ],
)
def test_usage_errors_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(args) == 2
    assert message in capsys.readouterr().err


def test_schema_failure_is_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken() -> Any:
        raise OSError("no schema file")

    monkeypatch.setattr(cli, "_load_schema", broken)
    assert cli.main(["Host", "ping2"]) == 1
    err = capsys.readouterr().err
    assert err == "virthost-client: cannot load the API schema: no schema file\n"


# --- whole runs against the in-test responder ---------------------------------------------


def test_call_prints_sorted_indented_json(
    server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    result = [{"vmId": "b", "status": "Up"}, {"vmId": "a"}]
    server.handlers["Host.getVMList"] = lambda params: result if params["fullStatus"] else []
    code, out, err = run(server, "Host", "getVMList", "fullStatus=true", capsys=capsys)
    assert (code, err) == (0, "")
    assert out == json.dumps(result, indent=4, sort_keys=True) + "\n"


def test_server_error_is_one_line_with_the_code(
    server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail(params: Any) -> Any:
        raise RpcFault(44, "Method not implemented")

    server.handlers["VM.getStats"] = fail
    code, out, err = run(server, "VM", "getStats", "vmID=x", capsys=capsys)
    assert (code, out) == (1, "")
    assert err == "virthost-client: error 44: Method not implemented\n"


def test_connection_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(None, "Host", "ping2", capsys=capsys)
    assert code == 1
    assert err.startswith("virthost-client: cannot connect to localhost:1")
    assert err.count("\n") == 1


def test_timeout(server: FakeServer, capsys: pytest.CaptureFixture[str]) -> None:
    server.handlers["Host.ping2"] = lambda params: NO_REPLY
    code, _, err = cli.main(["--insecure", "-p", str(server.port), "--timeout", "0.3",
                             "Host", "ping2"]), *capsys.readouterr()  # fmt: skip
    assert code == 1
    assert err.startswith("virthost-client: no response to Host.ping2")


def test_flow_id_option(server: FakeServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(server, "--flow-id", "f-1", "Host", "ping2", capsys=capsys)
    assert code == 0
    assert server.frames("SEND")[0].headers["ovirtCorrelationId"] == "f-1"


def test_params_from_stdin(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    server.handlers["VM.create"] = lambda params: params
    monkeypatch.setattr("sys.stdin", io.StringIO('{"vmID": "x", "vmParams": {"a": 1}}'))
    code, out, _ = run(server, "-f", "-", "VM", "create", capsys=capsys)
    assert code == 0
    assert json.loads(out) == {"vmID": "x", "vmParams": {"a": 1}}


def test_params_from_file(
    server: FakeServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server.handlers["VM.getStats"] = lambda params: params["vmID"]
    path = tmp_path / "params.json"
    path.write_text('{"vmID": "from-file"}')
    assert run(server, "-f", str(path), "VM", "getStats", capsys=capsys)[:2] == (
        0,
        '"from-file"\n',
    )


@pytest.mark.parametrize(("content", "status"), [("[1]", 2), ("{oops", 2), (None, 1)])
def test_bad_params_file(
    content: str | None, status: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "params.json"
    if content is not None:
        path.write_text(content)
    code, _, err = run(None, "-f", str(path), "VM", "getStats", capsys=capsys)
    assert code == status
    assert str(path) in err


def test_events_are_printed_one_json_line_each(
    server: FakeServer, capsys: pytest.CaptureFixture[str]
) -> None:
    def on_subscribe(sub_id: str, destination: str) -> None:
        if destination == "jms.queue.events":
            server.publish(destination, {"jsonrpc": "2.0", "method": "|a|b|1", "params": {"x": 1}})
            server.publish(destination, {"jsonrpc": "2.0", "method": "|a|b|2"})
            server.drop_client()

    server.on_subscribe = on_subscribe
    code, out, err = run(server, "--events", capsys=capsys)
    assert out.splitlines() == [
        '{"method": "|a|b|1", "params": {"x": 1}}',
        '{"method": "|a|b|2", "params": null}',
    ]
    assert code == 1
    assert err.startswith("virthost-client: connection closed by")


def test_events_after_a_call(server: FakeServer, capsys: pytest.CaptureFixture[str]) -> None:
    def ping(params: Any) -> Any:
        server.publish("jms.queue.events", {"jsonrpc": "2.0", "method": "|x|y|z"})
        return True

    server.handlers["Host.ping2"] = ping
    server.drop_after_reply = True
    code, out, err = run(server, "--events", "Host", "ping2", capsys=capsys)
    assert out.splitlines(), err
    assert out.splitlines() == ["true", '{"method": "|x|y|z", "params": null}']
    assert code == 1


def test_ctrl_c_ends_the_event_stream(
    server: FakeServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def follow(client: object) -> Iterator[Event]:
        yield Event("|one|event|", None)
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_follow", follow)
    code, out, err = run(server, "--events", capsys=capsys)
    assert (code, err) == (0, "")
    assert out == '{"method": "|one|event|", "params": null}\n'


def test_error_classes_map_to_exit_status_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(*args: object, **kwargs: object) -> Any:
        raise errors.ConnectionError("cannot load TLS credentials: nope")

    monkeypatch.setattr(client_lib, "connect", refuse)
    assert cli.main(["Host", "ping2"]) == 1
    assert capsys.readouterr().err == "virthost-client: cannot load TLS credentials: nope\n"


def test_real_schema_builds_a_parser(capsys: pytest.CaptureFixture[str]) -> None:
    """The packaged schema satisfies what the CLI needs of it (skipped until it loads)."""
    try:
        from virthost.api.schema import Schema

        schema = Schema.default()
    except ModuleNotFoundError as exc:
        pytest.skip(f"schema not complete yet: {exc}")
    parser = cli.build_parser(schema)
    args = parser.parse_args(["VM", "getStats", "vmID=x"])
    verb: Verb = args.verb_obj
    assert verb.method == "VM.getStats"
    assert cli.parse_params(verb, args.params, schema.types) == {"vmID": "x"}
