"""The schema-driven Client: namespaces, verbs, flows, timeouts, events, TLS set-up."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from unit.client.client_fakes import NO_REPLY, FakeServer, StubSchema
from virthost import client
from virthost.client import errors, tls
from virthost.common.pki import PkiPaths, init_dev_pki, issue, server_context


@pytest.fixture
def cli(server: FakeServer, schema: StubSchema) -> Iterator[client.Client]:
    connected = client.connect("127.0.0.1", server.port, use_tls=False, timeout=10, schema=schema)
    yield connected
    connected.close()


def sent_requests(server: FakeServer) -> list[dict[str, Any]]:
    return [json.loads(frame.body) for frame in server.frames("SEND")]


def test_verb_call(server: FakeServer, cli: client.Client) -> None:
    server.handlers["Host.getVMList"] = lambda params: [{"vmId": "1", "full": params}]
    assert cli.Host.getVMList(fullStatus=True) == [{"vmId": "1", "full": {"fullStatus": True}}]
    assert sent_requests(server)[0]["method"] == "Host.getVMList"


def test_per_call_timeout_is_not_sent(server: FakeServer, cli: client.Client) -> None:
    server.handlers["VM.getStats"] = lambda params: NO_REPLY
    with pytest.raises(errors.TimeoutError):
        cli.VM.getStats(vmID="abc", _timeout=0.2)
    assert sent_requests(server)[0]["params"] == {"vmID": "abc"}


def test_unknown_namespace_and_verb(cli: client.Client) -> None:
    with pytest.raises(errors.MissingSchemaError, match="Nope"):
        _ = cli.Nope
    with pytest.raises(errors.MissingSchemaError, match="nope"):
        _ = cli.VM.nope
    assert not hasattr(cli, "Missing")  # MissingSchemaError is an AttributeError
    assert {"Host", "VM"} <= set(dir(cli))
    assert dir(cli.VM) == ["create", "getStats"]


def test_verb_carries_its_doc(cli: client.Client) -> None:
    assert cli.VM.getStats.__doc__ == "Statistics of one VM."


def test_flow_id(server: FakeServer, cli: client.Client) -> None:
    with cli.flow("outer"):
        cli.Host.ping2()
        with cli.flow("inner"):
            cli.Host.ping2()
        cli.Host.ping2()
    cli.Host.ping2()
    flows = [frame.headers.get("ovirtCorrelationId") for frame in server.frames("SEND")]
    assert flows == ["outer", "inner", "outer", None]


def test_flow_id_is_per_thread(server: FakeServer, cli: client.Client) -> None:
    with cli.flow("main-thread"):
        worker = threading.Thread(target=cli.Host.ping2)
        worker.start()
        worker.join()
    assert server.frames("SEND")[0].headers.get("ovirtCorrelationId") is None


def test_subscribe_to_default_queue(server: FakeServer, cli: client.Client) -> None:
    sub_id = cli.subscribe()
    assert server.wait_until(lambda: server.subscriptions.get(sub_id) == "jms.queue.events")
    server.publish("jms.queue.events", {"jsonrpc": "2.0", "method": "|net|host_conn|no_id"})
    assert cli.events.get(timeout=10) == ("|net|host_conn|no_id", None)
    cli.unsubscribe(sub_id)
    assert server.wait_until(lambda: not server.subscriptions.get(sub_id))


def test_close_and_context_manager(server: FakeServer, schema: StubSchema) -> None:
    with client.connect("127.0.0.1", server.port, use_tls=False, schema=schema) as cli:
        assert not cli.closed
    assert cli.closed
    assert server.frames("DISCONNECT")
    with pytest.raises(errors.ConnectionError):
        cli.Host.ping2()


# --- TLS ------------------------------------------------------------------------------------


@pytest.fixture
def odd_pki(tmp_path: Path) -> PkiPaths:
    """A CA whose server certificate names a host we never dial."""
    paths = init_dev_pki(tmp_path / "pki", "localhost")
    issue(paths, "odd", "elsewhere.example", server=True)
    return paths


@pytest.fixture
def tls_server(odd_pki: PkiPaths) -> Iterator[FakeServer]:
    context = server_context(
        str(odd_pki.ca_cert), str(odd_pki.cert("odd")), str(odd_pki.key("odd"))
    )
    fake = FakeServer(ssl_context=context)
    yield fake
    fake.close()


def test_mutual_tls_verifies_the_chain_not_the_name(
    tls_server: FakeServer, odd_pki: PkiPaths, schema: StubSchema
) -> None:
    with client.connect(
        "127.0.0.1",
        tls_server.port,
        cert_file=odd_pki.cert("client"),
        key_file=odd_pki.key("client"),
        ca_file=odd_pki.ca_cert,
        timeout=10,
        schema=schema,
    ) as cli:
        assert cli.Host.ping2() is True
        big = "x" * 300_000  # several TLS records each way
        tls_server.handlers["Host.echo"] = lambda params: params["blob"]
        assert cli.call("Host.echo", {"blob": big}) == big


def test_pki_dir_from_environment(
    tls_server: FakeServer, odd_pki: PkiPaths, schema: StubSchema, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(tls.PKI_DIR_ENV, str(odd_pki.root))
    assert tls.pki_files().cert_file == odd_pki.cert("client")
    with client.connect("127.0.0.1", tls_server.port, timeout=10, schema=schema) as cli:
        assert cli.Host.ping2() is True


def test_server_from_another_ca_is_refused(
    tls_server: FakeServer, tmp_path: Path, schema: StubSchema
) -> None:
    other = init_dev_pki(tmp_path / "other", "localhost")
    with pytest.raises(errors.ConnectionError, match="TLS"):
        client.connect(
            "127.0.0.1",
            tls_server.port,
            cert_file=other.cert("client"),
            key_file=other.key("client"),
            ca_file=other.ca_cert,
            timeout=10,
            schema=schema,
        )


def test_missing_credentials(tmp_path: Path, schema: StubSchema) -> None:
    with pytest.raises(errors.ConnectionError, match="credentials"):
        client.connect("127.0.0.1", 1, ca_file=tmp_path / "none.pem", schema=schema)


def test_default_pki_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(tls.PKI_DIR_ENV, raising=False)
    files = tls.pki_files()
    assert files == tls.PkiFiles(
        Path("/etc/pki/virthost/certs/cacert.pem"),
        Path("/etc/pki/virthost/certs/clientcert.pem"),
        Path("/etc/pki/virthost/keys/clientkey.pem"),
    )


def test_client_context_verifies_the_chain_only(odd_pki: PkiPaths) -> None:
    context = tls.client_context(odd_pki.cert("client"), odd_pki.key("client"), odd_pki.ca_cert)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is False
