"""Who is being served right now: the verb, the flow id and the client of the current call.

Kept in context variables so the log format can name them on every line without threading
them through every function; the dispatcher sets them around each API call, in the worker
thread that runs it.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

current_verb: contextvars.ContextVar[str] = contextvars.ContextVar("verb", default="-")
current_flow_id: contextvars.ContextVar[str] = contextvars.ContextVar("flow_id", default="-")
current_client: contextvars.ContextVar[str] = contextvars.ContextVar("client", default="-")
# the local address the client connected to (Host.getCapabilities reports its interface)
current_local_address: contextvars.ContextVar[str] = contextvars.ContextVar(
    "local_address", default=""
)


@contextlib.contextmanager
def call_context(
    verb: str, flow_id: str | None, client: str | None, local_address: str = ""
) -> Iterator[None]:
    tokens = (
        current_verb.set(verb),
        current_flow_id.set(flow_id or "-"),
        current_client.set(client or "-"),
    )
    local_token = current_local_address.set(local_address)
    try:
        yield
    finally:
        current_local_address.reset(local_token)
        current_client.reset(tokens[2])
        current_flow_id.reset(tokens[1])
        current_verb.reset(tokens[0])
