"""The schema-driven client object: ``cli.Host.getVMList()``, ``cli.VM.getStats(vmID=...)``.

Namespaces and verbs are looked up in the API schema when they are accessed, so a typo fails at
once with :class:`~virthost.client.errors.MissingSchemaError` instead of travelling to the
server, and ``dir(cli.VM)`` lists what exists. Parameters are passed through as keyword
arguments; the server validates them against the same schema.

The client depends only on the small protocols below, not on the schema module itself, so tests
(and tools holding another schema) can hand it any object of that shape.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from virthost.client import errors
from virthost.client.jsonrpc_client import EVENT_QUEUE, Event, JsonRpcClient


class ParamLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def doc(self) -> str: ...
    @property
    def default(self) -> Any: ...
    @property
    def required(self) -> bool: ...


class VerbLike(Protocol):
    @property
    def namespace(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def doc(self) -> str: ...
    @property
    def params(self) -> tuple[ParamLike, ...]: ...
    @property
    def method(self) -> str: ...


class TypeSpecLike(Protocol):
    """A named type: ``kind`` is string, enum, object, map or union."""

    @property
    def kind(self) -> str: ...
    @property
    def values(self) -> tuple[Any, ...]: ...
    @property
    def of(self) -> tuple[str, ...]: ...


class SchemaLike(Protocol):
    @property
    def namespaces(self) -> Mapping[str, Mapping[str, VerbLike]]: ...
    @property
    def types(self) -> Mapping[str, TypeSpecLike]: ...
    def template(self, verb: Any) -> dict[str, Any]: ...


class Client:
    """A connected client; attribute access yields the schema's namespaces."""

    def __init__(self, rpc: JsonRpcClient, schema: SchemaLike, timeout: float = 60.0) -> None:
        self._rpc = rpc
        self._schema = schema
        self._timeout = timeout
        self._local = threading.local()
        #: Where events go for :meth:`subscribe` calls without an ``event_queue``.
        self.events: queue.Queue[Event] = queue.Queue()

    def __getattr__(self, name: str) -> Namespace:
        if name.startswith("_"):
            raise AttributeError(name)
        verbs = self._schema.namespaces.get(name)
        if verbs is None:
            raise errors.MissingSchemaError(f"no namespace {name!r} in the API schema")
        return Namespace(self, name, verbs)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *self._schema.namespaces})

    @property
    def schema(self) -> SchemaLike:
        return self._schema

    @property
    def rpc(self) -> JsonRpcClient:
        """The JSON-RPC layer underneath (for batches and raw calls)."""
        return self._rpc

    @property
    def flow_id(self) -> str | None:
        """The flow id that calls made by this thread carry (see :meth:`flow`)."""
        value: str | None = getattr(self._local, "flow_id", None)
        return value

    @contextlib.contextmanager
    def flow(self, flow_id: str) -> Iterator[None]:
        """Within the block, calls from this thread carry ``ovirtCorrelationId: flow_id``."""
        previous = self.flow_id
        self._local.flow_id = flow_id
        try:
            yield
        finally:
            self._local.flow_id = previous

    def call(self, method: str, params: Mapping[str, Any] | None = None, **options: Any) -> Any:
        """Call ``Namespace.verb`` by name; ``_timeout=`` overrides the default timeout."""
        timeout = options.pop("_timeout", None)
        if options:
            raise errors.ClientError(f"unknown options {sorted(options)}")
        return self._rpc.call(
            method,
            dict(params or {}),
            self._timeout if timeout is None else float(timeout),
            self.flow_id,
        )

    def subscribe(
        self,
        queue: str = EVENT_QUEUE,
        event_queue: queue.Queue[Event] | Callable[[Event], None] | None = None,
    ) -> str:
        """Receive the events published to ``queue``; return the subscription id.

        Events arrive as :class:`~virthost.client.jsonrpc_client.Event` ``(method, params)``
        in ``event_queue`` (a queue, or a callback run on the client's event thread), or in
        :attr:`events` when none is given.
        """
        return self._rpc.subscribe(self.events if event_queue is None else event_queue, queue)

    def unsubscribe(self, sub_id: str) -> None:
        self._rpc.unsubscribe(sub_id)

    @property
    def closed(self) -> bool:
        return self._rpc.closed

    @property
    def failure(self) -> errors.ConnectionError | None:
        """Why the connection ended, or None while it is alive."""
        return self._rpc.connection.failure

    def close(self) -> None:
        self._rpc.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Namespace:
    """One schema namespace; its attributes are callables for its verbs."""

    def __init__(self, client: Client, name: str, verbs: Mapping[str, VerbLike]) -> None:
        self._client = client
        self._name = name
        self._verbs = verbs

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        verb = self._verbs.get(name)
        if verb is None:
            raise errors.MissingSchemaError(f"no verb {name!r} in namespace {self._name!r}")
        client, method = self._client, verb.method

        def invoke(**params: Any) -> Any:
            timeout = params.pop("_timeout", None)
            options = {} if timeout is None else {"_timeout": timeout}
            return client.call(method, params, **options)

        invoke.__name__ = name
        invoke.__qualname__ = method
        invoke.__doc__ = verb.doc
        return invoke

    def __dir__(self) -> list[str]:
        return sorted(self._verbs)

    def __repr__(self) -> str:
        return f"<virthost namespace {self._name} ({len(self._verbs)} verbs)>"
