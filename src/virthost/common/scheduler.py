"""One timer thread that calls functions at a point in the future.

Why one thread for all timers: the daemon arms a great many short-lived timers (every task with a
timeout in every executor, every periodic operation, retries), and a ``threading.Timer`` per timer
would mean a thread per timer. Here a single thread sleeps until the earliest deadline in a heap,
runs whatever is due, and sleeps again.

The price is that scheduled functions run *on the scheduler thread*: they must be quick and must
never block (typically they hand work to an executor, flip a flag or log). A slow callable
delays every other timer. An exception from a callable is logged and the thread carries on,
because a dead timer thread would silently stop all monitoring.

Deadlines come from a monotonic clock so wall-clock jumps (NTP, manual changes) neither fire
timers early nor hold them back. The clock is injectable for tests; in production it must advance
with real time, since the thread sleeps on a real condition variable.

Cancelling is O(1): the call is only marked, and the thread skips it when it comes due. Because
executors arm a timeout for each task and cancel it when the task finishes early, cancelled entries
could pile up in the heap for a whole timeout period; the heap is therefore rebuilt without them
once they make up more than half of it.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("virthost.scheduler")

# Rebuild the heap when at least this many entries are cancelled and they are the majority.
_COMPACT_MIN_CANCELLED = 64


class ScheduledCall:
    """A function due to run at ``deadline`` (on the scheduler's clock) unless cancelled."""

    __slots__ = ("_cancelled", "_queued", "_scheduler", "deadline", "func")

    def __init__(
        self, deadline: float, func: Callable[[], None], scheduler: Scheduler | None = None
    ) -> None:
        self.deadline = deadline
        self.func = func
        self._scheduler = scheduler
        self._cancelled = False
        self._queued = False  # in the scheduler's heap; guarded by the scheduler's lock

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        """Prevent the call from running; harmless if it already ran or was cancelled."""
        if self._scheduler is None:
            self._cancelled = True
        else:
            self._scheduler._cancel(self)

    def __repr__(self) -> str:
        state = " cancelled" if self._cancelled else ""
        return f"<ScheduledCall {self.func!r} at {self.deadline:.3f}{state}>"


class Scheduler:
    """Runs scheduled calls on a single named thread, in deadline order."""

    def __init__(
        self, name: str = "scheduler", clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._name = name
        self._clock = clock
        self._cond = threading.Condition(threading.Lock())
        # Entries are (deadline, sequence, call); the sequence keeps equal deadlines in FIFO order
        # and means calls themselves are never compared.
        self._heap: list[tuple[float, int, ScheduledCall]] = []
        self._sequence = itertools.count()
        self._cancelled_in_heap = 0
        self._running = False
        self._stopped = False
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self._name

    def start(self) -> None:
        with self._cond:
            if self._thread is not None:
                raise RuntimeError(f"scheduler {self._name} already started")
            self._running = True
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()
        log.debug("Scheduler %s started", self._name)

    def stop(self, wait: bool = True) -> None:
        """Stop the thread; calls not yet due are dropped."""
        with self._cond:
            self._running = False
            self._stopped = True
            for _, _, call in self._heap:
                call._queued = False
            self._heap.clear()
            self._cancelled_in_heap = 0
            self._cond.notify()
            thread = self._thread
        if wait and thread is not None and thread is not threading.current_thread():
            thread.join()
        log.debug("Scheduler %s stopped", self._name)

    def schedule(self, delay: float, func: Callable[[], None]) -> ScheduledCall:
        """Run ``func`` on the scheduler thread ``delay`` seconds from now.

        Calls may be scheduled before :meth:`start`; they run once the thread is up. After
        :meth:`stop` the returned call is already cancelled and never runs.
        """
        deadline = self._clock() + max(delay, 0.0)
        call = ScheduledCall(deadline, func, self)
        with self._cond:
            if self._stopped:
                call._cancelled = True
                return call
            call._queued = True
            heapq.heappush(self._heap, (deadline, next(self._sequence), call))
            # Only a new earliest deadline changes how long the thread should sleep.
            if self._heap[0][2] is call:
                self._cond.notify()
        return call

    def _cancel(self, call: ScheduledCall) -> None:
        with self._cond:
            if call._cancelled:
                return
            call._cancelled = True
            if not call._queued:
                return
            self._cancelled_in_heap += 1
            if (
                self._cancelled_in_heap >= _COMPACT_MIN_CANCELLED
                and self._cancelled_in_heap * 2 > len(self._heap)
            ):
                self._heap = [entry for entry in self._heap if not entry[2].cancelled]
                heapq.heapify(self._heap)
                self._cancelled_in_heap = 0

    def _run(self) -> None:
        while True:
            due = self._wait_for_due_calls()
            if due is None:
                return
            for call in due:
                self._call(call)

    def _wait_for_due_calls(self) -> list[ScheduledCall] | None:
        """Sleep until something is due; returns the due calls, or None when stopping."""
        with self._cond:
            while self._running:
                if not self._heap:
                    self._cond.wait()
                    continue
                now = self._clock()
                earliest = self._heap[0][0]
                if earliest > now:
                    self._cond.wait(earliest - now)
                    continue
                due: list[ScheduledCall] = []
                while self._heap and self._heap[0][0] <= now:
                    call = heapq.heappop(self._heap)[2]
                    call._queued = False
                    if call.cancelled:
                        self._cancelled_in_heap -= 1
                    else:
                        due.append(call)
                return due
            return None

    def _call(self, call: ScheduledCall) -> None:
        if call.cancelled:  # cancelled after being taken from the heap
            return
        try:
            call.func()
        except Exception:
            log.exception("Unhandled exception in scheduled call %r", call.func)
