"""From ``Namespace.verb`` to a call of the namespace's API object, driven by the schema.

Every verb of the schema is callable: the schema validates the parameters (unknown method
-32601, bad parameter -32602 naming it) and the bridge looks the verb up on the namespace's
API object. A verb the API object does not implement yet answers VDSM's code 44 (method not
implemented): nothing pretends to work.

While the daemon is initialising or recovering, every verb except the few that only tell the
engine that the host is alive answers code 99, as VDSM does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from virthost.api.schema import Schema, Verb
from virthost.common import errors

ALWAYS_AVAILABLE = frozenset(
    {"Host.ping", "Host.ping2", "Host.echo", "Host.confirmConnectivity", "Host.setLogLevel"}
)


@dataclass
class BoundCall:
    """A validated call, ready to run (on the reactor when ``fast``, else in a worker)."""

    verb: Verb
    func: Callable[..., Any]
    kwargs: dict[str, Any]
    fast: bool

    @property
    def method(self) -> str:
        return self.verb.method

    def __call__(self) -> Any:
        return self.func(**self.kwargs)


def _not_implemented(method: str) -> Callable[..., Any]:
    def refuse(**_: Any) -> Any:
        raise errors.MethodNotImplemented(method)

    return refuse


class Bridge:
    def __init__(self, schema: Schema, api_objects: Mapping[str, object]) -> None:
        unknown = set(api_objects) - set(schema.namespaces)
        if unknown:
            raise ValueError(f"API objects for namespaces not in the schema: {sorted(unknown)}")
        self._schema = schema
        self._ready = threading.Event()
        self._functions: dict[str, Callable[..., Any]] = {}
        # an API object may veto running a fast verb inline (e.g. when hooks are installed)
        self._inline: dict[str, Callable[[str], bool]] = {}
        for namespace, verbs in schema.namespaces.items():
            api = api_objects.get(namespace)
            runs_inline = getattr(api, "runs_inline", None)
            if callable(runs_inline):
                self._inline[namespace] = runs_inline
            for verb in verbs.values():
                func = getattr(api, verb.name, None) if api is not None else None
                self._functions[verb.method] = (
                    func if callable(func) else _not_implemented(verb.method)
                )

    def set_ready(self, ready: bool = True) -> None:
        if ready:
            self._ready.set()
        else:
            self._ready.clear()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def implemented(self) -> list[str]:
        return sorted(
            method
            for method, func in self._functions.items()
            if getattr(func, "__name__", "") != "refuse"
        )

    def prepare(self, method: str, params: Any) -> BoundCall:
        verb = self._schema.get_verb(method)
        kwargs = self._schema.validate_params(verb, params)
        if not self._ready.is_set() and method not in ALWAYS_AVAILABLE:
            raise errors.RecoveryInProgress()
        fast = verb.fast
        if fast and verb.namespace in self._inline:
            fast = self._inline[verb.namespace](verb.name)
        return BoundCall(verb, self._functions[method], kwargs, fast)
