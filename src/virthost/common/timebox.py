"""Run a call that may hang in a discardable worker and wait for it at most ``timeout``.

The caller gets the result, the call's own exception, or :class:`TimedOut`; a call that hangs
keeps its worker, which the executor discards and replaces, so the pool keeps serving.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from virthost.common import errors

T = TypeVar("T")


class TimedOut(errors.VirtHostError):
    code = 100
    message = "Operation timed out"


class WorkQueue(Protocol):
    def dispatch(
        self, func: Callable[[], object], timeout: float | None = None, discard: bool = True
    ) -> None: ...


class _Outcome(Generic[T]):
    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: T | None = None
        self.error: BaseException | None = None


def run_with_timeout(executor: WorkQueue, func: Callable[[], T], timeout: float, what: str) -> T:
    outcome: _Outcome[T] = _Outcome()

    def job() -> None:
        try:
            outcome.value = func()
        except BaseException as e:
            outcome.error = e
        finally:
            outcome.done.set()

    executor.dispatch(job, timeout=timeout, discard=True)
    if not outcome.done.wait(timeout):
        raise TimedOut(f"{what} did not finish within {timeout:g} s")
    if outcome.error is not None:
        raise outcome.error
    return outcome.value  # type: ignore[return-value]
