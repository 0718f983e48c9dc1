"""LinkEvents' pacing: one event at once, the rest of a burst folded into one more."""

from __future__ import annotations

from typing import Any

from virthost.network.linkevents import EVENT, LinkEvents


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_gives_one_event_now_and_one_after_the_quiet_period() -> None:
    clock, published = Clock(), []

    def publish(name: str, params: dict[str, Any]) -> None:
        published.append((clock.now, name, params))

    events = LinkEvents(publish, quiet=1.0, clock=clock)
    events.changed()
    for _ in range(5):
        clock.now += 0.1
        events.changed()
        events.tick()
    assert published == [(100.0, EVENT, {})]
    clock.now = 101.2
    events.tick()
    events.tick()
    assert [t for t, _, _ in published] == [100.0, 101.2]
    clock.now = 105.0
    events.tick()  # nothing pending
    events.changed()
    assert [t for t, _, _ in published] == [100.0, 101.2, 105.0]


def test_a_failing_publisher_does_not_stop_the_events() -> None:
    clock = Clock()
    calls = []

    def publish(name: str, params: dict[str, Any]) -> None:
        calls.append(name)
        raise RuntimeError("no listener")

    events = LinkEvents(publish, quiet=0.0, clock=clock)
    events.changed()
    events.changed()
    assert calls == [EVENT, EVENT]
