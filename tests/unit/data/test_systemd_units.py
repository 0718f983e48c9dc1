"""The systemd units installed by `make install` parse (systemd-analyze verify)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNITS = Path(__file__).parents[3] / "data" / "systemd"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_units_verify(tmp_path: Path) -> None:
    bindir = str(Path(sys.executable).parent)
    names = []
    for unit in sorted(UNITS.glob("*.service")):
        # point ExecStart at this checkout's executables, which exist here
        text = unit.read_text().replace("/usr/local/bin", bindir)
        (tmp_path / unit.name).write_text(text)
        names.append(str(tmp_path / unit.name))
    assert len(names) == 2
    result = subprocess.run(
        ["systemd-analyze", "verify", *names], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "Unknown" not in result.stderr, result.stderr


def test_units_run_the_right_programs() -> None:
    daemon = (UNITS / "virthostd.service").read_text()
    supervisor = (UNITS / "virthost-supervisor.service").read_text()
    assert "ExecStart=/usr/local/bin/virthostd --config /etc/virthost/virthostd.toml" in daemon
    assert "Requires=virthost-supervisor.service" in daemon
    assert "ExecStart=/usr/local/bin/virthost-supervisor --config" in supervisor
