"""Hooks run by the real daemon: rewrite of the domain XML, custom properties, failure."""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from fixtures import daemon as daemon_fixtures
from guest import image
from virthost.common.pki import PkiPaths

from .vmhelpers import simple_params, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for qemu:///system"),
]

REWRITE = """#!/bin/sh
# before_vm_start: add a description, and record the custom property we were given
sed -i 's|<name>|<description>set by a hook</description><name>|' "$_hook_domxml"
echo "$colour" > "$(dirname "$0")/../../seen-custom"
"""
FAIL_FOR_RED = """#!/bin/sh
[ "$colour" = red ] && { echo "red is not allowed" >&2; exit 2; }
exit 0
"""
STATS = """#!/bin/sh
python3 - "$_hook_json" <<'PY'
import json, sys
stats = json.load(open(sys.argv[1]))
for entry in stats:
    entry["hooked"] = "yes"
json.dump(stats, open(sys.argv[1], "w"))
PY
"""
STARTED = """#!/bin/sh
touch "$(dirname "$0")/../../daemon-started"
"""


def _install(hooks: Path, point: str, name: str, text: str) -> None:
    directory = hooks / point
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / name
    script.write_text(text)
    script.chmod(0o755)


@pytest.fixture(scope="module")
def services(pki: PkiPaths) -> Iterator[daemon_fixtures.Services]:
    workdir = daemon_fixtures.make_workdir()
    hooks = workdir / "hooks"
    _install(hooks, "before_vm_start", "10_rewrite", REWRITE)
    _install(hooks, "before_vm_start", "20_refuse_red", FAIL_FOR_RED)
    _install(hooks, "after_get_all_vm_stats", "10_mark", STATS)
    _install(hooks, "before_virthost_start", "10_marker", STARTED)
    os.chmod(workdir, 0o777)  # the hooks (run as the daemon's user) write markers here
    running = daemon_fixtures.prepare(
        workdir,
        pki,
        overrides={"virt": {"domain_type": "qemu", "hooks_dir": str(hooks)}},
    )
    running.start_supervisor()
    running.start_daemon()
    yield running
    daemon_fixtures.cleanup(running)


def test_daemon_start_hook(services: daemon_fixtures.Services) -> None:
    assert (services.workdir / "daemon-started").exists()


def test_before_vm_start_rewrites_the_xml(services: daemon_fixtures.Services) -> None:
    guest = image.ensure_guest()
    vm_id = str(uuid.uuid4())
    logs = Path(tempfile.mkdtemp(prefix="virthost-hook-", dir="/tmp"))
    logs.chmod(0o777)
    params = simple_params(vm_id, guest, logs, custom={"colour": "blue"})
    with services.client() as cli:
        cli.VM.create(vmID=vm_id, vmParams=params)
        wait_for(lambda: cli.VM.getStats(vmID=vm_id)[0]["status"] in ("Up", "Powering up"))
        conn = libvirt.open("qemu:///system")
        try:
            live = conn.lookupByUUIDString(vm_id).XMLDesc(0)
        finally:
            conn.close()
        assert "<description>set by a hook</description>" in live
        assert (services.workdir / "seen-custom").read_text().strip() == "blue"
        stats = {s["vmId"]: s for s in cli.Host.getAllVmStats()}
        assert stats[vm_id]["hooked"] == "yes"
        cli.VM.destroy(vmID=vm_id)


def test_failing_hook_stops_the_start_and_leaves_nothing(
    services: daemon_fixtures.Services,
) -> None:
    guest = image.ensure_guest()
    vm_id = str(uuid.uuid4())
    logs = Path(tempfile.mkdtemp(prefix="virthost-hook-", dir="/tmp"))
    logs.chmod(0o777)
    params = simple_params(vm_id, guest, logs, custom={"colour": "red"})
    with services.client() as cli:
        cli.VM.create(vmID=vm_id, vmParams=params)
        down = wait_for(lambda: (s := cli.VM.getStats(vmID=vm_id)[0])["status"] == "Down" and s)
        assert down["exitReason"] == 3
        assert "red is not allowed" in down["exitMessage"]
        conn = libvirt.open("qemu:///system")
        try:
            with pytest.raises(libvirt.libvirtError):
                conn.lookupByUUIDString(vm_id)
        finally:
            conn.close()
        cli.VM.destroy(vmID=vm_id)
    assert json.dumps(down)
