"""Fixtures: a scheduler on a fake clock, an event bus with its log, and registries."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from virthost.rpc.events import EventBus
from virthost.storage.jobs import JobRegistry

from .support import ClockedScheduler, EventLog


@pytest.fixture
def clocked() -> ClockedScheduler:
    return ClockedScheduler()


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
def event_log(bus: EventBus) -> EventLog:
    return EventLog(bus)


@pytest.fixture
def make_registry(clocked: ClockedScheduler, bus: EventBus) -> Iterator[Callable[..., JobRegistry]]:
    registries: list[JobRegistry] = []

    def make(**kwargs: Any) -> JobRegistry:
        registry = JobRegistry(clocked, bus, **kwargs)
        registry.start()
        registries.append(registry)
        return registry

    yield make
    for registry in registries:
        registry.shutdown()


@pytest.fixture
def registry(make_registry: Callable[..., JobRegistry]) -> JobRegistry:
    return make_registry(workers=2, max_queued=20)
