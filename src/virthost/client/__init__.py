"""The virthost client library, in the spirit of ``vdsm.client``::

    from virthost import client

    with client.connect("host.example.com") as cli:
        vms = cli.Host.getVMList(fullStatus=True)
        with cli.flow("deploy-42"):
            cli.VM.getStats(vmID=vms[0]["vmId"], _timeout=10)

Layers, each usable on its own: :mod:`~virthost.client.stomp_client` (STOMP 1.2 connection),
:mod:`~virthost.client.jsonrpc_client` (JSON-RPC calls and events over it),
:mod:`~virthost.client.api_client` (namespaces from the API schema) and
:mod:`~virthost.client.cli` (the ``virthost-client`` command). Errors live in
:mod:`~virthost.client.errors`.
"""

from __future__ import annotations

import os

from virthost.client import errors, tls
from virthost.client.api_client import Client, Namespace, SchemaLike
from virthost.client.errors import (
    ClientError,
    ConnectionError,
    Error,
    MissingSchemaError,
    ServerError,
    StompError,
    TimeoutError,
)
from virthost.client.jsonrpc_client import EVENT_QUEUE, REQUEST_QUEUE, Event, JsonRpcClient
from virthost.client.stomp_client import StompConnection, open_connection

__all__ = [
    "EVENT_QUEUE",
    "REQUEST_QUEUE",
    "Client",
    "ClientError",
    "ConnectionError",
    "Error",
    "Event",
    "JsonRpcClient",
    "MissingSchemaError",
    "Namespace",
    "ServerError",
    "StompConnection",
    "StompError",
    "TimeoutError",
    "connect",
    "default_schema",
    "errors",
    "open_connection",
]

PathLike = str | os.PathLike[str]


def default_schema() -> SchemaLike:
    """The API schema packaged with virthost (imported on first use: loading it takes time)."""
    from virthost.api.schema import Schema

    schema: SchemaLike = Schema.default()
    return schema


def connect(
    host: str = "localhost",
    port: int = 54321,
    *,
    use_tls: bool = True,
    cert_file: PathLike | None = None,
    key_file: PathLike | None = None,
    ca_file: PathLike | None = None,
    timeout: float = 60.0,
    incoming_heartbeat: int = 30000,
    outgoing_heartbeat: int = 0,
    schema: SchemaLike | None = None,
) -> Client:
    """Connect to virthostd (or VDSM) and return a :class:`Client`.

    TLS is mutual: missing ``cert_file``/``key_file``/``ca_file`` default to the files under
    ``$VIRTHOST_PKI_DIR`` (or /etc/pki/virthost). ``timeout`` bounds the connection set-up and
    is the default timeout of every call. Heart-beats are in milliseconds (0 = none).
    """
    schema = default_schema() if schema is None else schema
    context = None
    if use_tls:
        files = tls.pki_files()
        context = tls.client_context(
            cert_file if cert_file is not None else files.cert_file,
            key_file if key_file is not None else files.key_file,
            ca_file if ca_file is not None else files.ca_file,
        )
    connection = open_connection(
        host,
        port,
        ssl_context=context,
        timeout=timeout,
        incoming_heartbeat=incoming_heartbeat,
        outgoing_heartbeat=outgoing_heartbeat,
    )
    try:
        rpc = JsonRpcClient(connection)
    except BaseException:
        connection.close()
        raise
    return Client(rpc, schema, timeout)
