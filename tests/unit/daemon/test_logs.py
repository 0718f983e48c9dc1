"""Log lines name the thread, the verb and the flow id; levels change at run time."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from virthost.common.context import call_context
from virthost.daemon import logs


def test_lines_carry_thread_verb_and_flow(tmp_path: Path) -> None:
    path = tmp_path / "d.log"
    setup = logs.LogSetup("INFO", str(path))
    try:

        def work() -> None:
            with call_context("Host.getStats", "flow-42", "1.2.3.4:5"):
                logging.getLogger("virthost.test").info("inside %s", "call")
            logging.getLogger("virthost.test").info("outside")

        t = threading.Thread(target=work, name="jsonrpc/3")
        t.start()
        t.join()
    finally:
        setup.stop()
    inside, outside = path.read_text().splitlines()
    assert "(jsonrpc/3)" in inside
    assert "verb=Host.getStats flow_id=flow-42 inside call" in inside
    assert "verb=- flow_id=- outside" in outside


def test_set_level_at_run_time() -> None:
    logs.set_level("debug", "virthost.some.thing")
    assert logging.getLogger("virthost.some.thing").level == logging.DEBUG
    logs.set_level("WARN", "virthost.some.thing")
    assert logging.getLogger("virthost.some.thing").level == logging.WARNING
    with pytest.raises(ValueError, match="unknown log level"):
        logs.set_level("LOUD", "x")
