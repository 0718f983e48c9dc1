"""LinkEvents on the real kernel: a veth pair coming and going is noticed."""

from __future__ import annotations

import os
import subprocess
import threading
import uuid
from typing import Any

import pytest

from virthost.network.linkevents import EVENT, LinkEvents

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="creating links needs root"),
]


def test_a_new_link_is_published() -> None:
    seen = threading.Event()
    names: list[str] = []

    def publish(name: str, params: dict[str, Any]) -> None:
        names.append(name)
        seen.set()

    events = LinkEvents(publish, quiet=0.2)
    events.start()
    link = f"lkev{uuid.uuid4().hex[:6]}"
    try:
        # The listener may not be bound yet: change links until it has seen one.
        for _ in range(50):
            subprocess.run(["ip", "link", "add", link, "type", "veth"], check=True)
            subprocess.run(["ip", "link", "del", link], check=True)
            if seen.wait(0.2):
                break
        assert seen.is_set() and names[0] == EVENT
    finally:
        subprocess.run(["ip", "link", "del", link], capture_output=True)
        events.stop()
