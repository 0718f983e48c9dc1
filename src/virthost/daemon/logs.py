"""Logging set-up: every line names the thread, the verb being served and its flow id.

Callers never wait for the disk: records are handed to a queue and written by one listener
thread (a slow or full log device must not stall API calls). The verb and flow id are read
from :mod:`virthost.common.context` in the calling thread, before the record is queued.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import sys

from virthost.common import context

LOG_FORMAT = (
    "%(asctime)s %(levelname)-5s (%(threadName)s) [%(name)s] "
    "verb=%(verb)s flow_id=%(flow_id)s %(message)s (%(module)s:%(lineno)d)"
)

LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


class ContextFilter(logging.Filter):
    """Adds the current verb, flow id and client to each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.verb = context.current_verb.get()
        record.flow_id = context.current_flow_id.get()
        record.client = context.current_client.get()
        return True


class _PreparingQueueHandler(logging.handlers.QueueHandler):
    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        # Keep the record as is (the formatter runs in the listener), but render the message
        # and the exception text now, while the arguments are still valid.
        record.message = record.getMessage()
        record.msg = record.message
        record.args = None
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        return record


class LogSetup:
    """Owns the queue listener; ``stop()`` flushes and closes the output."""

    def __init__(self, level: str = "INFO", log_file: str = "") -> None:
        self._queue: queue.Queue[logging.LogRecord] = queue.Queue()
        output: logging.Handler
        if log_file:
            output = logging.handlers.WatchedFileHandler(log_file)
        else:
            output = logging.StreamHandler(sys.stderr)
        output.setFormatter(logging.Formatter(LOG_FORMAT))
        self._output = output
        self._listener = logging.handlers.QueueListener(self._queue, output)
        handler = _PreparingQueueHandler(self._queue)
        handler.addFilter(ContextFilter())
        root = logging.getLogger()
        for old in list(root.handlers):
            root.removeHandler(old)
        root.addHandler(handler)
        root.setLevel(parse_level(level))
        self._listener.start()

    def stop(self) -> None:
        self._listener.stop()
        self._output.close()


def parse_level(level: str) -> int:
    """Map a level name to its number; raises ValueError for unknown names."""
    name = level.strip().upper()
    if name == "WARN":
        name = "WARNING"
    if name not in LEVELS:
        raise ValueError(f"unknown log level {level!r}; expected one of {', '.join(LEVELS)}")
    return int(logging.getLevelName(name))


def set_level(level: str, logger_name: str = "") -> None:
    """Change a logger's level at run time (Host.setLogLevel); "" or "root" is the root."""
    name = "" if logger_name in ("", "root") else logger_name
    logging.getLogger(name or None).setLevel(parse_level(level))
