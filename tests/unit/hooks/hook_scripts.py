"""Helpers for the hook tests: real sh scripts written into a temporary hooks directory."""

from __future__ import annotations

import time
from pathlib import Path

XML = "<domain type='kvm'><name>vm1</name></domain>"
VM_ID = "2b6e1a3c-6f0e-4d9e-9a55-0c1f7d2e8a11"


def add_hook(hooks_dir: Path, point: str, name: str, body: str, mode: int = 0o755) -> Path:
    directory = hooks_dir / point
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(mode)
    return path


def assert_no_leftovers(tmp_dir: Path) -> None:
    assert list(tmp_dir.iterdir()) == []


def wait_gone(pid: int, timeout: float = 5.0) -> bool:
    """True once ``pid`` no longer runs (a zombie counts as gone)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return True
        except (FileNotFoundError, ProcessLookupError):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
