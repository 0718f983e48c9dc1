"""The JSON-RPC 2.0 engine, independent of the transport (STOMP or HTTP).

A transport hands over one message (bytes) with a ``respond`` callback. Parsing, validation
and the look-up of the verb happen at once on the caller's thread (the reactor): they are
cheap, and a malformed request is answered without touching a worker. Verbs the schema marks
``fast`` (they only read memory) run there too; every other call goes to the bounded
executor, and ``respond`` is later called from the worker thread, so transports must make
it thread-safe. A notification (no id) is executed but never answered; a batch is answered
with one array once all its calls have finished.

Errors follow VDSM: protocol problems get the negative JSON-RPC codes, service errors their
VDSM code, and anything unexpected code 16 with the traceback only in the log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import orjson

from virthost.common import errors
from virthost.common.context import call_context

log = logging.getLogger("virthost.jsonrpc")

Respond = Callable[[bytes], None]


class CallOrigin:
    """Where a request came from, for the log and the call context."""

    __slots__ = ("client", "flow_id", "local_address")

    def __init__(self, client: str, flow_id: str | None = None, local_address: str = "") -> None:
        self.client = client
        self.flow_id = flow_id
        self.local_address = local_address

    def _key(self) -> tuple[str, str | None, str]:
        return (self.client, self.flow_id, self.local_address)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CallOrigin):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"CallOrigin{self._key()!r}"


class PreparedCall(Protocol):
    @property
    def method(self) -> str: ...

    @property
    def fast(self) -> bool: ...

    def __call__(self) -> Any: ...


class Dispatcher(Protocol):
    def prepare(self, method: str, params: Any) -> PreparedCall: ...


class WorkQueue(Protocol):
    def dispatch(
        self, func: Callable[[], object], timeout: float | None = None, discard: bool = True
    ) -> None: ...


_NO_ID = object()


def _dumps(message: Any) -> bytes:
    # non-string keys are written as strings, as the standard json module does
    return orjson.dumps(message, option=orjson.OPT_NON_STR_KEYS)


def encode_answer(answer: dict[str, Any]) -> bytes:
    """Encode one response; a result that is not JSON becomes an unexpected error."""
    try:
        return _dumps(answer)
    except (TypeError, ValueError):
        log.exception("cannot encode the answer to request %r", answer.get("id"))
        return _dumps(error_response(answer.get("id"), errors.UnexpectedError()))


def error_response(request_id: Any, exc: BaseException) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": errors.to_wire(exc)}


def _summary(value: Any) -> str:
    if isinstance(value, list | dict):
        return f"{type(value).__name__}[{len(value)}]"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class _Batch:
    """Collects the answers of a batch and responds once, when the last call finished."""

    def __init__(self, expected: int, respond: Respond) -> None:
        self._lock = threading.Lock()
        self._pending = expected
        self._answers: list[bytes] = []
        self._respond = respond

    def add(self, answer: dict[str, Any] | None) -> None:
        encoded = None if answer is None else encode_answer(answer)
        with self._lock:
            if encoded is not None:
                self._answers.append(encoded)
            self._pending -= 1
            done = self._pending == 0
        if done and self._answers:
            self._respond(b"[" + b",".join(self._answers) + b"]")


class JsonRpcServer:
    def __init__(
        self,
        dispatcher: Dispatcher,
        executor: WorkQueue,
        *,
        worker_timeout: float = 60.0,
        slow_call_threshold: float = 1.0,
    ) -> None:
        self._dispatcher = dispatcher
        self._executor = executor
        self._worker_timeout = worker_timeout
        self._slow = slow_call_threshold
        self.calls_served = 0

    def handle(self, data: bytes, origin: CallOrigin, respond: Respond) -> bool:
        """Serve one message; ``respond`` receives the encoded answer (maybe from a worker).

        Returns whether an answer will come (False for notifications only).
        """
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError as e:
            respond(_dumps(error_response(None, errors.ParseError(str(e)))))
            return True
        if isinstance(message, list):
            if not message:
                respond(_dumps(error_response(None, errors.InvalidRequest("empty batch"))))
                return True
            expects_answer = not all(self._is_notification(item) for item in message)
            batch = _Batch(len(message), respond)
            for item in message:
                self._serve_one(item, origin, batch.add)
            return expects_answer

        def single(answer: dict[str, Any] | None) -> None:
            if answer is not None:
                respond(encode_answer(answer))

        self._serve_one(message, origin, single)
        return not self._is_notification(message)

    def _serve_one(
        self, message: Any, origin: CallOrigin, answer: Callable[[dict[str, Any] | None], None]
    ) -> None:
        request_id: Any = None
        try:
            request_id, method, params = self._parse_request(message)
            call = self._dispatcher.prepare(method, params)
        except Exception as e:
            if not isinstance(e, errors.VirtHostError):
                log.exception("cannot prepare request %r", message)
            if self._is_notification(message):
                answer(None)
            else:
                answer(error_response(None if request_id is _NO_ID else request_id, e))
            return

        def run() -> None:
            answer(self._execute(call, request_id, origin))

        if call.fast:
            run()
            return
        try:
            self._executor.dispatch(run, timeout=self._worker_timeout, discard=True)
        except errors.VirtHostError as e:
            log.warning("refusing %s from %s: %s", call.method, origin.client, e)
            answer(None if request_id is _NO_ID else error_response(request_id, e))

    @staticmethod
    def _is_notification(message: Any) -> bool:
        return (
            isinstance(message, dict)
            and "id" not in message
            and message.get("jsonrpc") == "2.0"
            and isinstance(message.get("method"), str)
        )

    @staticmethod
    def _parse_request(message: Any) -> tuple[Any, str, Any]:
        if not isinstance(message, dict):
            raise errors.InvalidRequest("a request must be a JSON object")
        request_id = message.get("id", _NO_ID)
        if request_id is not _NO_ID and not isinstance(request_id, str | int | type(None)):
            raise errors.InvalidRequest("id must be a string, a number or null")
        if isinstance(request_id, bool):
            raise errors.InvalidRequest("id must be a string, a number or null")
        if message.get("jsonrpc") != "2.0":
            raise errors.InvalidRequest('"jsonrpc" must be "2.0"')
        method = message.get("method")
        if not isinstance(method, str):
            raise errors.InvalidRequest('"method" must be a string')
        params = message.get("params", {})
        if not isinstance(params, dict | list):
            raise errors.InvalidRequest('"params" must be an object or an array')
        return request_id, method, params

    def _execute(
        self, call: PreparedCall, request_id: Any, origin: CallOrigin
    ) -> dict[str, Any] | None:
        if call.fast and not log.isEnabledFor(logging.DEBUG):
            return self._execute_quietly(call, request_id, origin)
        return self._execute_logged(call, request_id, origin)

    def _execute_logged(
        self, call: PreparedCall, request_id: Any, origin: CallOrigin
    ) -> dict[str, Any] | None:
        level = logging.DEBUG if call.fast else logging.INFO
        started = time.monotonic()
        with call_context(call.method, origin.flow_id, origin.client, origin.local_address):
            log.log(level, "START %s from=%s", call.method, origin.client)
            try:
                result = call()
                if result is None:
                    result = True
                response: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "result": result}
                outcome = _summary(result)
            except errors.VirtHostError as e:
                response = error_response(request_id, e)
                outcome = f"error {e.code}: {e.wire_message}"
                level = max(level, logging.INFO)
            except Exception as e:
                log.exception("%s failed unexpectedly", call.method)
                response = error_response(request_id, e)
                outcome = "unexpected error"
            elapsed = time.monotonic() - started
            if elapsed > self._slow:
                log.warning("%s took %.2f seconds", call.method, elapsed)
            log.log(level, "FINISH %s %s in %.3f s", call.method, outcome, elapsed)
        self.calls_served += 1
        if request_id is _NO_ID:
            return None
        return response

    def _execute_quietly(
        self, call: PreparedCall, request_id: Any, origin: CallOrigin
    ) -> dict[str, Any] | None:
        """The path of fast verbs when nothing would be logged: no context, no timing."""
        try:
            result = call()
            response = {"jsonrpc": "2.0", "id": request_id, "result": result}
            if result is None:
                response["result"] = True
        except errors.VirtHostError as e:
            log.info("%s from %s: error %s: %s", call.method, origin.client, e.code, e)
            response = error_response(request_id, e)
        except Exception as e:
            log.exception("%s failed unexpectedly", call.method)
            response = error_response(request_id, e)
        self.calls_served += 1
        return None if request_id is _NO_ID else response
